#!/usr/bin/env python3
"""Writes the safetensors fixtures of FlowMLTests with Hugging Face's own library.

Run by developers (not by CI) when the fixtures change:

    python3 -m pip install safetensors numpy
    python3 Tests/FlowMLTests/Fixtures/make_safetensors_fixtures.py

mixed.safetensors holds F32, F16 and BF16 tensors (BF16 as the raw upper halves of F32,
which is what bfloat16 is); expected.json holds every value as the reference reads it.
"""
import json
import os

import numpy as np
from safetensors.numpy import save_file

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
weight = rng.standard_normal((3, 4)).astype(np.float32)
half = rng.standard_normal((5,)).astype(np.float16)
brain = rng.standard_normal((2, 3)).astype(np.float32)
brain_bits = (brain.view(np.uint32) >> 16).astype(np.uint16)

# numpy has no bfloat16: save its bits as U16 with safetensors, then relabel the dtype,
# which keeps the library's own layout, padding and offsets.
path = os.path.join(here, "mixed.safetensors")
save_file({"model.layers.0.weight": weight, "model.norm.half": half, "model.embed.bf16": brain_bits},
          path, metadata={"format": "pt", "source": "make_safetensors_fixtures.py"})
with open(path, "rb") as handle:
    raw = bytearray(handle.read())
length = int.from_bytes(raw[:8], "little")
header = raw[8:8 + length].decode("utf-8").rstrip(" ")
assert header.count('"U16"') == 1
header = header.replace('"U16"', '"BF16"').encode("utf-8")
header += b" " * (-len(header) % 8)
with open(path, "wb") as handle:
    handle.write(len(header).to_bytes(8, "little") + header + raw[8 + length:])

expected = {
    "model.layers.0.weight": {"shape": [3, 4], "values": weight.flatten().tolist()},
    "model.norm.half": {"shape": [5], "values": half.astype(np.float32).flatten().tolist()},
    "model.embed.bf16": {"shape": [2, 3], "values": (brain_bits.astype(np.uint32) << 16).view(np.float32).flatten().tolist()},
}
with open(os.path.join(here, "expected.json"), "w") as handle:
    json.dump({"metadata": {"format": "pt", "source": "make_safetensors_fixtures.py"}, "tensors": expected}, handle, indent=1)
