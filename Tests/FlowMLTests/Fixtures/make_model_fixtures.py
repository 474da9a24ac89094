#!/usr/bin/env python3
"""Makes the tiny models of FlowMLTests with PyTorch and Transformers, and the logits
the Swift model must reproduce.

Run by developers (not by CI) when the fixtures change:

    python3 -m pip install torch transformers safetensors
    python3 Tests/FlowMLTests/Fixtures/make_model_fixtures.py

tiny-llama: Llama with grouped-query attention and an untied head, saved as two shards;
tiny-qwen2: Qwen2 with q/k/v biases and tied embeddings, in one BF16-free F32 file.
"""
import json
import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
ids = [[1, 5, 9, 17, 33, 2, 60, 7], [3, 3, 40, 12, 8, 61, 0, 25]]

def make(name, model, max_shard_size=None):
    folder = os.path.join(here, name)
    model.eval()
    with torch.no_grad():
        for parameter in model.parameters():
            # Larger than the default init, so the logits say something about every weight.
            parameter.copy_(torch.randn_like(parameter) * 0.2)
    kwargs = {"safe_serialization": True}
    if max_shard_size:
        kwargs["max_shard_size"] = max_shard_size
    model.save_pretrained(folder, **kwargs)
    with torch.no_grad():
        logits = model(torch.tensor(ids)).logits
    with open(os.path.join(folder, "expected-logits.json"), "w") as handle:
        json.dump({"ids": ids, "logits": [row.flatten().tolist() for row in logits]}, handle)

torch.manual_seed(0)
make("tiny-llama", LlamaForCausalLM(LlamaConfig(
    vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
    max_position_embeddings=64)), max_shard_size="20KB")

torch.manual_seed(1)
make("tiny-qwen2", Qwen2ForCausalLM(Qwen2Config(
    vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
    max_position_embeddings=64)))
