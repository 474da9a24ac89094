"""Checks `flow ml serve` with the official `openai` Python client, as any application would
call it. Run by ModelServingTests.swift, which starts the server first. Arguments come from
the environment:
  SERVE_URL   the server's /v1 address
  BASE        the base model's name
  ADAPTER     an adapter's name
Prints one JSON object of what the Swift side compares; every check that fails raises.
"""
import json
import os

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["SERVE_URL"], api_key="not-needed", max_retries=0)
base = os.environ["BASE"]
adapter = os.environ["ADAPTER"]
messages = [{"role": "system", "content": "You summarise."}, {"role": "user", "content": "The report says the numbers rose."}]
report = {}

# /v1/models lists the base and the adapter over it.
listed = {model.id: model for model in client.models.list().data}
assert set(listed) == {base, adapter}, listed
assert listed[base].object == "model" and listed[base].owned_by == "antifragileflow"

# A chat answer, greedy: the same twice, with usage.
first = client.chat.completions.create(model=adapter, messages=messages, max_tokens=12, temperature=0)
second = client.chat.completions.create(model=adapter, messages=messages, max_tokens=12, temperature=0)
assert first.object == "chat.completion" and first.id.startswith("chatcmpl-"), first
choice = first.choices[0]
assert choice.index == 0 and choice.message.role == "assistant" and choice.finish_reason in ("stop", "length"), choice
assert choice.message.content == second.choices[0].message.content, "greedy answers differ"
usage = first.usage
assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage
report["greedy"] = choice.message.content
report["greedy_tokens"] = usage.completion_tokens

# The same streamed: a role first, the same text in pieces, a finish, the usage last.
chunks = list(client.chat.completions.create(model=adapter, messages=messages, max_tokens=12, temperature=0, stream=True, stream_options={"include_usage": True}))
assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
assert chunks[0].choices[0].delta.role == "assistant"
streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
assert streamed == choice.message.content, (streamed, choice.message.content)
finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
assert finishes == [choice.finish_reason], finishes
assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == usage.completion_tokens, chunks[-1]

# Sampled with a seed: what `flow ml generate` prints with the same seed.
sampled = client.chat.completions.create(model=adapter, messages=messages, max_tokens=12, temperature=0.8, seed=7)
report["sampled"] = sampled.choices[0].message.content

# A stop sequence cuts the answer before it, and says so.
text = choice.message.content
clean = [index for index in range(2, len(text) - 2) if "\ufffd" not in text[: index + 2]]
if clean:
    stop = text[clean[0] : clean[0] + 2]
    cut = client.chat.completions.create(model=adapter, messages=messages, max_tokens=12, temperature=0, stop=[stop])
    assert cut.choices[0].message.content == text[: text.index(stop)], (cut.choices[0].message.content, text, stop)
    assert cut.choices[0].finish_reason == "stop"
    report["stopped"] = True

# The base answers differently from the adapter (it learned something).
plain = client.chat.completions.create(model=base, messages=messages, max_tokens=12, temperature=0)
report["base"] = plain.choices[0].message.content

# The legacy completions endpoint.
completion = client.completions.create(model=base, prompt="The report", max_tokens=5, temperature=0)
assert completion.object == "text_completion" and isinstance(completion.choices[0].text, str), completion
assert completion.usage.completion_tokens <= 5

# Errors in the API's shapes, as the client raises them.
def refused(kind, call, status, code=None, param=None):
    try:
        call()
    except kind as error:
        assert error.status_code == status, (error.status_code, error)
        body = error.body or {}
        if code is not None:
            assert body.get("code") == code, body
        if param is not None:
            assert body.get("param") == param, body
        return body.get("message", "")
    raise AssertionError("no %s from %s" % (kind.__name__, call))

# Structured output: the answer follows the schema, whatever the model knows, and a
# budget too short for its own wandering still ends in whole JSON.
schema = json.load(open(os.environ["ANALYSIS_SCHEMA"]))
for budget in (None, 120):
    structured = client.chat.completions.create(
        model=adapter, messages=messages, temperature=0.9, seed=3, max_tokens=budget,
        response_format={"type": "json_schema", "json_schema": {"name": "document_analysis", "strict": True, "schema": schema}},
    )
    answer = json.loads(structured.choices[0].message.content)
    assert list(answer) == ["summary", "themes", "risks", "decisions", "open_questions"], answer
    assert isinstance(answer["summary"], str) and all(isinstance(theme, str) for theme in answer["themes"]), answer
    assert all(set(risk) == {"description", "severity"} and risk["severity"] in ("low", "medium", "high") for risk in answer["risks"]), answer
    assert structured.choices[0].finish_reason == "stop", structured.choices[0]
    if budget:
        assert structured.usage.completion_tokens <= budget, structured.usage
report["structured"] = True
loose = client.chat.completions.create(model=base, messages=messages, max_tokens=200, response_format={"type": "json_object"})
assert isinstance(json.loads(loose.choices[0].message.content), dict)
refused(openai.BadRequestError, lambda: client.chat.completions.create(
    model=base, messages=messages, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"anyOf": []}}}}}
), 400, None, "response_format")

report["unknown_model"] = refused(openai.NotFoundError, lambda: client.chat.completions.create(model="nobody", messages=messages), 404, "model_not_found", "model")
refused(openai.BadRequestError, lambda: client.chat.completions.create(model=base, messages=messages, n=2), 400, None, "n")
refused(openai.BadRequestError, lambda: client.chat.completions.create(model=base, messages=messages, max_tokens=1_000_000), 400, "context_length_exceeded")
refused(openai.BadRequestError, lambda: client.chat.completions.create(model=base, messages=messages, temperature=3), 400, None, "temperature")
print(json.dumps(report))
