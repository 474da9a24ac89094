#!/usr/bin/env python3
"""Makes a PEFT LoRA adapter for tiny-llama and the logits with it applied, and checks
that PEFT loads an adapter written by the Swift engine. Run by developers, not by CI:

    python3 -m pip install torch transformers peft safetensors
    python3 Tests/FlowMLTests/Fixtures/make_adapter_fixtures.py            # make the fixture
    python3 Tests/FlowMLTests/Fixtures/make_adapter_fixtures.py --check DIR  # check a Swift adapter

--check loads DIR with PeftModel.from_pretrained on tiny-llama, fails on any missing or
unexpected key, and prints the logits of the fixture ids as JSON, for comparison with the
Swift model's.
"""
import json
import os
import sys
import warnings

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
base_folder = os.path.join(here, "tiny-llama")
ids = [[1, 5, 9, 17, 33, 2, 60, 7], [3, 3, 40, 12, 8, 61, 0, 25]]

if len(sys.argv) == 3 and sys.argv[1] == "--check":
    base = AutoModelForCausalLM.from_pretrained(base_folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(base, sys.argv[2])
    problems = [str(w.message) for w in caught if "key" in str(w.message).lower()]
    if problems:
        sys.exit("PEFT warned about keys: " + "; ".join(problems))
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor(ids)).logits
    print(json.dumps({"ids": ids, "logits": [row.flatten().tolist() for row in logits]}))
    sys.exit(0)

torch.manual_seed(3)
base = AutoModelForCausalLM.from_pretrained(base_folder)
config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
model = get_peft_model(base, config)
with torch.no_grad():
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            # PEFT starts B at zero; a non-zero B makes the adapter change the logits.
            parameter.copy_(torch.randn_like(parameter) * 0.3)
folder = os.path.join(here, "tiny-llama-lora")
model.save_pretrained(folder)
# A path that means something on every machine, and no model card.
with open(os.path.join(folder, "adapter_config.json")) as handle:
    adapter_config = json.load(handle)
adapter_config["base_model_name_or_path"] = "../tiny-llama"
with open(os.path.join(folder, "adapter_config.json"), "w") as handle:
    json.dump(adapter_config, handle, indent=2, sort_keys=True)
os.remove(os.path.join(folder, "README.md"))
model.eval()
with torch.no_grad():
    logits = model(torch.tensor(ids)).logits
with open(os.path.join(folder, "expected-logits.json"), "w") as handle:
    json.dump({"ids": ids, "logits": [row.flatten().tolist() for row in logits]}, handle)

# The training reference: loss and LoRA gradients for a batch with masked labels, then
# the adapter after three AdamW steps on that batch (written only when making fixtures).
labels = [[-100, -100, 9, 17, 33, 2, 60, 7], [3, 3, 40, -100, 8, 61, 0, 25]]
model.train()
optimizer = torch.optim.AdamW([p for n, p in model.named_parameters() if p.requires_grad], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
trace = {"ids": ids, "labels": labels, "lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01, "steps": []}
for step in range(3):
    optimizer.zero_grad()
    output = model(torch.tensor(ids), labels=torch.tensor(labels))
    output.loss.backward()
    entry = {"loss": output.loss.item()}
    if step == 0:
        entry["gradients"] = {n[len("base_model.model."):]: p.grad.flatten().tolist() for n, p in model.named_parameters() if p.requires_grad}
    optimizer.step()
    trace["steps"].append(entry)
trace["final"] = {n[len("base_model.model."):]: p.detach().flatten().tolist() for n, p in model.named_parameters() if p.requires_grad}
with open(os.path.join(folder, "expected-training.json"), "w") as handle:
    json.dump(trace, handle)
