#!/usr/bin/env python3
"""Trains the two small tokenizers of FlowMLTests with Hugging Face's `tokenizers` and
writes the encodings the Swift tokenizer must reproduce token for token.

Run by developers (not by CI) when the fixtures change:

    python3 -m pip install tokenizers
    python3 Tests/FlowMLTests/Fixtures/make_tokenizer_fixtures.py

- byte-level.tokenizer.json: byte-level BPE behind Qwen2's regex split (Llama 3 style);
- metaspace.tokenizer.json: Metaspace BPE with byte fallback (Mistral, Llama 2 style).
"""
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

here = os.path.dirname(os.path.abspath(__file__))
corpus = [
    "The quarterly report shows growth in every region, and the board approved the plan.",
    "Risks: hiring is slow; costs rose 12% while revenue grew 8.5% over 2025.",
    "Café, naïve, résumé — accents travel well. Über große Straßen.",
    "東京と大阪で会議があります。北京欢迎你。",
    "Emoji 🎉🚀 and symbols ∑ ≠ → appear in notes.",
    "    indented code\n\tand tabs\n\n\nand blank lines   with trailing spaces   ",
    "I'm sure they'll say it's done; we've seen what you'd do.",
] * 20

samples = [
    "The board's plan: growth of 12.5% in 2026!",
    "Café naïve 東京 北京 🎉🚀 ∑≠→",
    "  leading spaces\n\n\ttab then   runs of   spaces  \n",
    "I'm, they'll, we've, you'd, IT'S LOUD",
    "unseen words: zyxwvut qqq ✈️ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "",
    "<|endoftext|>special<|im_start|>between<|im_end|>",
]

qwen_split = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

byte_level = Tokenizer(models.BPE())
byte_level.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Split(Regex(qwen_split), behavior="isolated", invert=False),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
])
byte_level.decoder = decoders.ByteLevel()
byte_level.train_from_iterator(corpus, trainers.BpeTrainer(
    vocab_size=600, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))

metaspace = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
metaspace.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
metaspace.pre_tokenizer = None
metaspace.decoder = decoders.Sequence([
    decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0),
])
metaspace.train_from_iterator(corpus, trainers.BpeTrainer(
    vocab_size=700, special_tokens=["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)],
    show_progress=False))

for name, tokenizer in [("byte-level", byte_level), ("metaspace", metaspace)]:
    tokenizer.save(os.path.join(here, f"{name}.tokenizer.json"))
    expected = []
    for text in samples:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        expected.append({"text": text, "ids": ids, "decoded": tokenizer.decode(ids, skip_special_tokens=False)})
    with open(os.path.join(here, f"{name}.expected.json"), "w") as handle:
        json.dump(expected, handle, ensure_ascii=False, indent=1)
