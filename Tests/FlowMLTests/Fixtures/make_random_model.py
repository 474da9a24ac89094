#!/usr/bin/env python3
"""Writes a random-initialised Llama model folder with Transformers, in BF16 by default:
the same files a downloaded checkpoint has (config.json, sharded model-*.safetensors with
an index), for measuring the engine on large models on machines that download none.

    python3 -m pip install torch transformers safetensors
    python3 Tests/FlowMLTests/Fixtures/make_random_model.py OUTPUT --preset 1b
    python3 Tests/FlowMLTests/Fixtures/make_random_model.py OUTPUT --preset bench-small --dtype float32

Presets: `1b` is TinyLlama-1.1B's shape (hidden 2048, 22 layers, 32 heads, 4 key-value
heads, intermediate 5632, vocabulary 32000); `mistral-7b` is Mistral-7B-v0.1's exact
configuration (`MistralConfig()`'s defaults: 7.24B parameters, 14.5 GB in BF16; building it
needs about 15 GB of memory and a few minutes); `bench-small` is the training benchmark's.
--tokenizer copies a tokenizer.json into the folder, or, given a folder, its tokenizer.json
and tokenizer_config.json (which carries the chat template).
"""
import argparse
import os
import shutil

import torch
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

PRESETS = {
    "1b": dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
               num_attention_heads=32, num_key_value_heads=4),
    "bench-small": dict(vocab_size=8192, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                        num_attention_heads=8, num_key_value_heads=4),
    "mistral-7b": dict(),
}

parser = argparse.ArgumentParser()
parser.add_argument("output")
parser.add_argument("--preset", choices=sorted(PRESETS), default="1b")
parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16")
parser.add_argument("--tokenizer")
parser.add_argument("--seed", type=int, default=0)
arguments = parser.parse_args()

torch.manual_seed(arguments.seed)
dtype = getattr(torch, arguments.dtype)
if arguments.preset == "mistral-7b":
    # The published checkpoint's config.json, field for field, is MistralConfig's defaults.
    config = MistralConfig(torch_dtype=arguments.dtype)
    model_class = MistralForCausalLM
else:
    config = LlamaConfig(rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                         max_position_embeddings=2048, torch_dtype=arguments.dtype, **PRESETS[arguments.preset])
    model_class = LlamaForCausalLM
torch.set_default_dtype(dtype)
model = model_class(config)
model.eval()
model.save_pretrained(arguments.output, safe_serialization=True, max_shard_size="2GB")
if arguments.tokenizer and os.path.isdir(arguments.tokenizer):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(arguments.tokenizer, name), os.path.join(arguments.output, name))
elif arguments.tokenizer:
    shutil.copy(arguments.tokenizer, os.path.join(arguments.output, "tokenizer.json"))
count = sum(parameter.numel() for parameter in model.parameters())
print(f"wrote {arguments.preset} ({count / 1e9:.2f}B parameters, {arguments.dtype}) to {arguments.output}")
