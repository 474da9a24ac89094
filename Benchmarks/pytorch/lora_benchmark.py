#!/usr/bin/env python3
"""The PyTorch + PEFT peer of flow-training-benchmark: LoRA fine-tuning of the same model
folder on the same token sequences with the same settings, printing one JSON line.

    python3 -m pip install torch transformers peft safetensors
    python3 Benchmarks/pytorch/lora_benchmark.py --model DIR --data sequences.json --steps 20 --threads 2
"""
import argparse
import json
import resource
import time

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--data", required=True, help="a JSON list of token-id lists, all one length")
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--warmup", type=int, default=2, help="steps run before the clock starts")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--batch-size", type=int, default=4)
parser.add_argument("--prompt-length", type=int, default=0, help="positions at the start of each sequence with no label (-100): a completion-only loss, as chat data has")
arguments = parser.parse_args()

import torch

torch.set_num_threads(arguments.threads)
torch.set_num_interop_threads(1)
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(arguments.model, torch_dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
model.train()
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.01)
sequences = json.load(open(arguments.data))
batch_size = arguments.batch_size


def step(index):
    start = (index * batch_size) % len(sequences)
    batch = torch.tensor([sequences[(start + offset) % len(sequences)] for offset in range(batch_size)])
    labels = batch.clone()
    labels[:, : arguments.prompt_length] = -100
    loss = model(input_ids=batch, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    optimizer.zero_grad()
    return loss.item(), batch.numel()


for index in range(arguments.warmup):
    step(index)
tokens = 0
began = time.perf_counter()
for index in range(arguments.steps):
    loss, count = step(arguments.warmup + index)
    tokens += count
elapsed = time.perf_counter() - began
print(json.dumps({
    "tokens_per_second": tokens / elapsed,
    "step_seconds": elapsed / arguments.steps,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "final_loss": loss,
    "torch": torch.__version__,
}))
