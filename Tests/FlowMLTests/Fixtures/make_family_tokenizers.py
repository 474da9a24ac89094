#!/usr/bin/env python3
"""Builds one small tokenizer in the configuration of each model family the engine
supports, with each family's real chat template, and records what Hugging Face's
`tokenizers` and `transformers` produce; the Swift tests must reproduce it exactly.

Run by developers (not by CI) when the fixtures change:

    python3 -m pip install tokenizers transformers jinja2
    python3 Tests/FlowMLTests/Fixtures/make_family_tokenizers.py

Each folder under tokenizers/ holds tokenizer.json, tokenizer_config.json and
expected.json. The pipelines are those the families' published tokenizer.json files
declare; each vocabulary is trained here on a small corpus (no machine here downloads
models). The chat templates are the families' published ones, character for character.
"""
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokenizers")

corpus = [
    "The quarterly report shows growth in every region, and the board approved the plan.",
    "Risks: hiring is slow; costs rose 12% while revenue grew 8.5% over 2025.",
    "Café, naïve, résumé — accents travel well. Über große Straßen.",
    "東京と大阪で会議があります。北京欢迎你。서울에서 만나요.",
    "Emoji 🎉🚀 and symbols ∑ ≠ → appear in notes. ❤️ 👍🏽",
    "Привет, мир! Γειά σου κόσμε. مرحبا بالعالم. नमस्ते दुनिया",
    "    indented code\n\tand tabs\n\n\nand blank lines   with trailing spaces   ",
    "I'm sure they'll say it's done; we've seen what you'd do.",
    "e\u0301 and é differ in bytes; ▁ ️ is a space then a variation selector.",
] * 20

samples = [
    "The board's plan: growth of 12.5% in 2026!",
    "Café naïve 東京 北京 🎉🚀 ∑≠→ ❤️ 👍🏽",
    "  leading spaces\n\n\ttab then   runs of   spaces  \n",
    "I'm, they'll, we've, you'd, IT'S LOUD",
    "Привет мир, Γειά, مرحبا, नमस्ते, 서울",
    "e\u0301 versus é, and a lone \u0301 mark, ▁ ️ too",
    "unseen: zyxwvut qqq ✈️ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "",
    " a leading space",
]

chats = [
    [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "What grew in 2025?"},
        {"role": "assistant", "content": "Revenue, by 8.5%."},
        {"role": "user", "content": "  And in Tōkyō? 東京  "},
        {"role": "assistant", "content": " Growth was strong. 🎉 "},
    ],
    [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "Café?"},
    ],
]

LLAMA2_TEMPLATE = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"

MISTRAL_V03_TEMPLATE = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if (message == user_messages[-1]) and system_message is defined %}
            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

LLAMA3_TEMPLATE = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

QWEN25_TEMPLATE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

LLAMA3_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

byte_tokens = ["<0x%02X>" % b for b in range(256)]


def sentencepiece_bpe(normalizer, pre_tokenizer, extra_special):
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    specials = ["<unk>", "<s>", "</s>"] + extra_special
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=900, special_tokens=specials + byte_tokens, show_progress=False))
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))])
    return tokenizer


def byte_level_bpe(split, specials, ignore_merges, normalizer=None):
    tokenizer = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=900, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    return tokenizer


def families():
    llama2 = sentencepiece_bpe(normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]), None, [])
    yield "llama2-legacy", llama2, {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False, "legacy": True, "chat_template": LLAMA2_TEMPLATE}

    mistral = sentencepiece_bpe(None, pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False), ["[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]"])
    yield "mistral-v0.3", mistral, {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False, "legacy": False, "chat_template": MISTRAL_V03_TEMPLATE}

    llama3 = byte_level_bpe(LLAMA3_SPLIT, ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], ignore_merges=True)
    llama3.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B", special_tokens=[("<|begin_of_text|>", llama3.token_to_id("<|begin_of_text|>"))]),
    ])
    yield "llama3", llama3, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": LLAMA3_TEMPLATE}

    qwen = byte_level_bpe(QWEN_SPLIT, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], ignore_merges=False, normalizer=normalizers.NFC())
    qwen.post_processor = processors.ByteLevel(trim_offsets=False)
    qwen.add_tokens([AddedToken("<tool_call>", special=False, normalized=False), AddedToken("</tool_call>", special=False, normalized=False)])
    yield "qwen2.5", qwen, {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "chat_template": QWEN25_TEMPLATE}

    # Metaspace `always` with split (T5-style conversions), and added tokens with every option.
    always = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    always.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    always.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    always.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=800, special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens, show_progress=False))
    always.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True), AddedToken("[SEP]", rstrip=True, special=True)])
    always.add_tokens([AddedToken("growth", single_word=True, normalized=True), AddedToken("Straßen", normalized=True)])
    always.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    yield "metaspace-always", always, {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


# A long text: with Metaspace and no split (Mistral v0.3) all of it is one word of BPE.
words = " ".join(corpus[:9]).split()
long_sample = " ".join(words[(index * 7) % len(words)] for index in range(400))

extra_samples = [long_sample, "a <mask> b [SEP]   c", "growth regrowth growth_ 5growth Straßen", "<s>text</s> and [INST] inside [/INST]", "<|im_start|>user\nhi<|im_end|> <tool_call>x</tool_call>"]

for name, tokenizer, config in families():
    folder = os.path.join(here, name)
    os.makedirs(folder, exist_ok=True)
    tokenizer.save(os.path.join(folder, "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 4096, "clean_up_tokenization_spaces": False, **config}
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as handle:
        json.dump(config, handle, ensure_ascii=False, indent=2)
    loaded = AutoTokenizer.from_pretrained(folder)
    expected = {"encodings": [], "chats": []}
    for text in samples + extra_samples:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        expected["encodings"].append({
            "text": text,
            "ids": ids,
            "ids_with_special_tokens": loaded(text)["input_ids"],
            "decoded": tokenizer.decode(ids, skip_special_tokens=False),
            "decoded_without_special_tokens": tokenizer.decode(ids, skip_special_tokens=True),
        })
    # TRL's SFTTrainer (trl/trainer/sft_trainer.py, _prepare_dataset): EOS appended to a
    # text or a completion that lacks it, `tokenizer(text=...)` with its special tokens,
    # and a completion mask after the prompt's own tokens; a conversational prompt is
    # rendered with the generation prompt, prompt + completion without.
    eos = loaded.eos_token
    def with_eos(text):
        return text if text.endswith(eos) else text + eos
    expected["trl"] = []
    text = "The board approved the plan. Café 東京"
    expected["trl"].append({"line": {"text": text}, "ids": loaded(text=with_eos(text))["input_ids"], "first_learned": 0})
    prompt, completion = "Question: what grew?", " Revenue, by 8.5%."
    prompt_ids = loaded(text=prompt)["input_ids"]
    expected["trl"].append({"line": {"prompt": prompt, "completion": completion},
                            "ids": loaded(text=prompt + with_eos(completion))["input_ids"], "first_learned": len(prompt_ids)})
    if config.get("chat_template"):
        chat_prompt = [{"role": "user", "content": "What grew in 2025?"}]
        chat_completion = [{"role": "assistant", "content": "Revenue, by 8.5%."}]
        prompt_ids = loaded.apply_chat_template(chat_prompt, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
        full = loaded.apply_chat_template(chat_prompt + chat_completion, tokenize=True, return_dict=True)["input_ids"]
        expected["trl"].append({"line": {"prompt": chat_prompt, "completion": chat_completion}, "ids": full, "first_learned": len(prompt_ids)})
    if config.get("chat_template"):
        for messages in chats:
            entry = {"messages": messages}
            for prompt in (False, True):
                key = "with_generation_prompt" if prompt else "without_generation_prompt"
                try:
                    text = loaded.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
                    entry[key] = {"text": text, "ids": tokenizer.encode(text, add_special_tokens=False).ids}
                except Exception as error:  # the template's own raise_exception
                    entry[key] = {"error": str(error)}
            expected["chats"].append(entry)
    with open(os.path.join(folder, "expected.json"), "w") as handle:
        json.dump(expected, handle, ensure_ascii=False, indent=1)
    print(name, "ok")
