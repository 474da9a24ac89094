#!/usr/bin/env python3
"""Records what Transformers 4's Llama tokenizer adds when tokenizer_config.json's
add_bos_token / add_eos_token disagree with tokenizer.json's post-processor: its
LlamaTokenizerFast rebuilds the post-processor from the flags at load (Transformers 5
leaves the post-processor as it is; the checkpoints people have were saved with the two
in agreement). Run after make_family_tokenizers.py, in an environment with Transformers 4:

    python3 -m venv /tmp/v4 && /tmp/v4/bin/pip install 'transformers<5' tokenizers
    /tmp/v4/bin/python Tests/FlowMLTests/Fixtures/make_flag_fixtures.py
"""
import json
import os
import shutil

from transformers import AutoTokenizer

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokenizers")
source = os.path.join(here, "llama2-legacy")
samples = ["The board's plan: growth of 12.5% in 2026!", "Café naïve 東京", ""]
expected = []
for name, flags in [("llama2-eos-only", {"add_bos_token": False, "add_eos_token": True}), ("llama2-eos-added", {"add_eos_token": True})]:
    folder = os.path.join(here, name)
    os.makedirs(folder, exist_ok=True)
    shutil.copy(os.path.join(source, "tokenizer.json"), folder)
    config = json.load(open(os.path.join(source, "tokenizer_config.json")))
    config.pop("add_bos_token", None)
    config.pop("add_eos_token", None)
    config.update(flags)
    config["tokenizer_class"] = "LlamaTokenizerFast"
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as handle:
        json.dump(config, handle, ensure_ascii=False, indent=2)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    cases = [{"text": text, "ids_with_special_tokens": tokenizer(text)["input_ids"]} for text in samples]
    with open(os.path.join(folder, "expected.json"), "w") as handle:
        json.dump({"transformers": __import__("transformers").__version__, "cases": cases}, handle, ensure_ascii=False, indent=1)
    print(name, [case["ids_with_special_tokens"][:2] + ["..."] + case["ids_with_special_tokens"][-1:] for case in cases])
