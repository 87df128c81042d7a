"""webhook.gojson: the bytes Go's encoding/json (json.Marshal) writes, for the values the webhook encodes.

Expected outputs follow Go's documentation of ``json.Marshal`` and ``encoding/json``'s encoder: HTML-safe
escaping of ``<``, ``>``, ``&``, U+2028, U+2029; ``\\n``, ``\\r``, ``\\t`` short, other control characters as
``\\u00XX`` in lowercase hex; sorted map keys; float64 via ``strconv.AppendFloat(f, 'f' or 'e', -1, 64)``.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.gojson import go_float, go_json

CASES = [
    # (value, what json.Marshal writes)
    (None, "null"),
    (True, "true"),
    (False, "false"),
    (0, "0"),
    (-42, "-42"),
    (2**63 - 1, "9223372036854775807"),
    ("", '""'),
    ("plain", '"plain"'),
    ("<a&b>", '"\\u003ca\\u0026b\\u003e"'),
    ("\u2028\u2029", '"\\u2028\\u2029"'),
    ("\b\f", '"\\u0008\\u000c"'),
    ("\n\r\t", '"\\n\\r\\t"'),
    ("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"'),
    ("\x7f", '"\x7f"'),  # DEL is not a control character to Go's encoder
    ('quote " backslash \\ slash /', '"quote \\" backslash \\\\ slash /"'),
    ("\\b \\f \\\\b", '"\\\\b \\\\f \\\\\\\\b"'),  # backslashes followed by b or f are no \b or \f
    ("é ü 日本 😀", '"é ü 日本 😀"'),  # UTF-8, unescaped
    ("\ufffd", '"\ufffd"'),
    ("\ud800x", '"\ufffdx"'),  # a lone surrogate: the replacement character
    ([], "[]"),
    ({}, "{}"),
    ([1, "a", None, [True]], '[1,"a",null,[true]]'),
    (("t", 1), '["t",1]'),
    ({"b": 1, "a": {"d": [], "c": "<"}}, '{"a":{"c":"\\u003c","d":[]},"b":1}'),
    # keys sorted by their bytes before escaping: "<" (0x3c) before "B" (0x42) before "a" before "é"
    ({"é": 3, "a": 2, "B": 1, "<k>": "v"}, '{"\\u003ck\\u003e":"v","B":1,"a":2,"é":3}'),
    (1.0, "1"),
    (-0.0, "-0"),
    (0.1, "0.1"),
    (100.0, "100"),
    (123456789.125, "123456789.125"),
    (1e16, "10000000000000000"),
    (1e20, "100000000000000000000"),
    (1e21, "1e+21"),
    (1.5e300, "1.5e+300"),
    (1e-6, "0.000001"),
    (1e-7, "1e-7"),
    (1.5e-7, "1.5e-7"),
    (1e-10, "1e-10"),
    (5e-324, "5e-324"),
    ([0.5, {"x": 2.0}], '[0.5,{"x":2}]'),
]


@pytest.mark.parametrize(("value", "expected"), CASES, ids=[repr(c[0])[:40] for c in CASES])
def test_go_json_writes_what_json_marshal_writes(value, expected):
    assert go_json(value) == expected


def test_struct_order_is_kept_without_sorting():
    # CONTAINER_INFO: []struct{Name, Image}, fields in their declared order
    value = [{"name": "app", "image": "registry/app:1<2>"}]
    assert go_json(value, sort_keys=False) == '[{"name":"app","image":"registry/app:1\\u003c2\\u003e"}]'
    assert go_json(value) == '[{"image":"registry/app:1\\u003c2\\u003e","name":"app"}]'


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_values_go_refuses_are_refused(value):
    with pytest.raises(ValueError, match="unsupported value"):
        go_json([value])


def test_non_string_keys_are_refused():
    with pytest.raises(TypeError, match="is not a string"):
        go_json({1: "a"})


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_read_back_the_same(value):
    text = go_float(value)
    assert float(text) == value and math.copysign(1, float(text)) == math.copysign(1, value)
    assert "e" not in text or not (1e-6 <= abs(value) < 1e21)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_any_document_reads_back_the_same_and_is_html_safe(value):
    text = go_json(value)
    assert json.loads(text) == _replace_surrogates(value)
    assert not any(c in text for c in "<>&\u2028\u2029\b\f")
    assert "\\b" not in text.replace("\\\\", "") and "\\f" not in text.replace("\\\\", "")


def _replace_surrogates(value):
    if isinstance(value, str):
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value
