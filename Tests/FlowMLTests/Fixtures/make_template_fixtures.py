#!/usr/bin/env python3
"""Renders small templates with Jinja configured as Transformers' apply_chat_template
configures it (an immutable sandbox, trim_blocks, lstrip_blocks, loop controls, its
tojson and raise_exception) and records the output, or the error, for the Swift renderer.

    python3 -m pip install jinja2
    python3 Tests/FlowMLTests/Fixtures/make_template_fixtures.py
"""
import json
import os

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # Transformers' own tojson filter (chat_template_utils.py).
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
environment.filters["tojson"] = tojson
environment.globals["raise_exception"] = raise_exception

messages = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "  Hi, Café 東京  ", "name": "ana"},
    {"role": "assistant", "content": "Hello!", "tool_calls": [{"function": {"name": "f", "arguments": {"b": 2, "a": [1, 2.5, None, True]}}}]},
    {"role": "user", "content": "Thanks"},
]

cases = {
    "scoping": "{% set x = 1 %}{% for m in messages %}{% set x = x + 1 %}{% endfor %}{{ x }}",
    "namespace": "{% set ns = namespace(count=0, last='') %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% set ns.last = m.role %}{% endfor %}{{ ns.count }} {{ ns.last }}",
    "loop": "{% for m in messages %}{{ loop.index }}/{{ loop.length }} {{ loop.first }} {{ loop.last }} {{ loop.revindex0 }}|{% endfor %}",
    "loop_filter_else": "{% for m in messages if m.role == 'tool' %}{{ m }}{% else %}none{% endfor %}",
    "break_continue": "{% for m in messages %}{% if loop.index0 == 1 %}{% continue %}{% endif %}{% if m.role == 'user' %}{% break %}{% endif %}{{ m.role }} {% endfor %}",
    "whitespace": "start\n  {% for m in messages %}\n    {{ m.role }}\n  {% endfor %}\nend {%- if true %}  x  {% endif -%}  y\n",
    "tojson": "{{ messages[2].tool_calls[0].function.arguments | tojson }} {{ {'k': 'é\"\\n'} | tojson }} {{ messages[2].tool_calls[0].function | tojson(indent=2) }}",
    "filters": "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | map('trim') | join(', ') }}|{{ messages | rejectattr('role', 'eq', 'user') | list | length }}|{{ messages[1].content | trim | upper }}|{{ undefined_thing | default('fallback') }}|{{ '' | default('empty', true) }}|{{ [3, 1, 2] | first }}{{ [3, 1, 2] | last }}",
    "strings": "{{ messages[1].content.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ 'x y  z'.split() }}|{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith('bc') }}|{{ 'Hello'.replace('l', 'L') }}|{{ '--x--'.lstrip('-') }}{{ '--x--'.rstrip('-') }}|{{ 'hello world'.title() }}",
    "slices": "{{ messages[1:] | length }} {{ messages[-1].content }} {{ 'abcdef'[1:4] }} {{ 'abcdef'[::-1] }} {{ [1, 2, 3, 4][::2] }}",
    "tests": "{{ messages[0] is mapping }} {{ messages is iterable }} {{ 'x' is string }} {{ 3 is number }} {{ none is none }} {{ x is defined }} {{ messages[0].name is defined }} {{ messages[1].name is not none }} {{ 4 is even }} {{ 3 is odd }} {{ 7 is divisibleby 7 }}",
    "operators": "{{ 7 // 2 }} {{ 7 / 2 }} {{ 7 % 3 }} {{ -7 // 2 }} {{ 2 * 3 + 1 }} {{ 'ab' * 2 }} {{ 'a' ~ 1 ~ none }} {{ 1 == 1.0 }} {{ 'ss' in 'class' }} {{ 'user' in messages | map(attribute='role') | list }} {{ 2 > 1 and not false or 0 }} {{ 'yes' if messages else 'no' }}",
    "items": "{% for key, value in messages[2].tool_calls[0].function.arguments.items() %}{{ key }}={{ value }};{% endfor %}{{ messages[1].get('name') }} {{ messages[0].get('name', 'nobody') }}",
    "dict_equality": "{{ messages[3] == {'role': 'user', 'content': 'Thanks'} }} {{ messages[1] == messages[3] }}",
    "set_block": "{% set greeting %}Hello {{ messages[1].name }}{% endset %}{{ greeting | upper }}",
    "print_values": "{{ none }} {{ true }} {{ 1.0 }} {{ 2.50 }} {{ [1, 'a', none] }} {{ {'a': 1} }}",
    "raise": "{% if messages[0].role == 'system' %}{{ raise_exception('System messages are not supported here.') }}{% endif %}",
    "undefined_attribute": "{{ nothing.at_all }}",
    "comments": "a{# a comment #}b\n  {#- trimmed -#}\n  c",
    "code_points": "{% set s = 'e\u0301t\u00e9' %}{{ s | length }} {{ s[1] == '\u0301' }} {{ s[:2] | length }} {% for c in s %}[{{ c }}]{% endfor %} {{ s | reverse | length }}",
    "ranges": "{% for i in range(3) %}{{ i }}{% endfor %} {% for i in range(1, 7, 2) %}{{ i }}{% endfor %}",
}

os.makedirs(here, exist_ok=True)
expected = []
for name, source in cases.items():
    entry = {"name": name, "template": source}
    try:
        entry["output"] = environment.from_string(source).render(messages=messages, add_generation_prompt=True, bos_token="<s>")
    except Exception as error:
        entry["error"] = str(error)
    expected.append(entry)
with open(os.path.join(here, "expected.json"), "w") as handle:
    json.dump({"messages": messages, "cases": expected}, handle, ensure_ascii=False, indent=1)
for entry in expected:
    print(entry["name"], repr(entry.get("output", entry.get("error")))[:100])
