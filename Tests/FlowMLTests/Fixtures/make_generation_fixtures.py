#!/usr/bin/env python3
"""Greedy continuations of the tiny models by Transformers' `generate`, which the Swift
generator (with its KV cache) must reproduce token for token.

Run by developers (not by CI) when the model fixtures change:

    python3 -m pip install torch transformers safetensors
    python3 Tests/FlowMLTests/Fixtures/make_generation_fixtures.py
"""
import json
import os

import torch
from transformers import AutoModelForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
prompts = [[1, 5, 9, 17, 33], [3, 40, 12]]

for name in ["tiny-llama", "tiny-qwen2"]:
    folder = os.path.join(here, name)
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    model.eval()
    cases = []
    for prompt in prompts:
        with torch.no_grad():
            output = model.generate(
                torch.tensor([prompt]), max_new_tokens=24, do_sample=False, eos_token_id=None,
                pad_token_id=0, use_cache=True,
            )
        cases.append({"prompt": prompt, "greedy": output[0, len(prompt):].tolist()})
    with open(os.path.join(folder, "expected-generation.json"), "w") as handle:
        json.dump({"max_new_tokens": 24, "cases": cases}, handle)
    print(name, cases)
