"""JSON as Go's ``encoding/json`` (``json.Marshal``) writes it, byte for byte.

What the Dynatrace Operator writes into env values, annotations and Secrets, and what its hashes are taken
over, comes from ``json.Marshal``: compact; ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\u003c``,
``\\u003e``, ``\\u0026``, ``\\u2028``, ``\\u2029`` (its default HTML-safe escaping); ``\\n``, ``\\r``, ``\\t``,
``\\"`` and ``\\\\`` as such, every other control character as ``\\u00XX`` (so ``\\b`` is ``\\u0008`` and ``\\f``
``\\u000c``); other text as UTF-8, unescaped; map keys sorted, struct fields in their declared order (a dict in
that order with ``sort_keys=False``); floats as Go formats a float64 (``1``, ``0.1``, ``1e+21``, ``1e-7``). A
lone surrogate, Python's counterpart of invalid UTF-8, becomes U+FFFD as Go replaces invalid bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

_HTML = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}
_SHORT = {"b": "\\u0008", "f": "\\u000c"}  # orjson's short escapes that Go does not use
_ESCAPE = re.compile(r"\\(.)")  # left to right: "\\\\b" is an escaped backslash, then the letter b
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHORT_EXPONENT = re.compile(r"e-0(\d)$")


def go_float(value: float) -> str:
    """A float64 as ``json.Marshal`` writes it: the shortest form that reads back the same, fixed-point for
    magnitudes from 1e-6 to below 1e21, else an exponent (``e-07`` shortened to ``e-7``)."""
    if not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {value!r}")  # Go's UnsupportedValueError
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    if 1e-6 <= abs(value) < 1e21:
        text = format(Decimal(repr(value)), "f")
        return text.removesuffix(".0")
    return _SHORT_EXPONENT.sub(r"e-\1", repr(value))  # Python writes e+21 and e-07, Go e+21 and e-7


def _go_values(value: Any, repair: bool) -> Any:
    """``value`` with floats in Go's format (and, when ``repair``, lone surrogates replaced)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if repair else value
    if isinstance(value, float):
        return orjson.Fragment(go_float(value))
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"json: map key {key!r} is not a string")
            out[_SURROGATE.sub("\ufffd", key) if repair else key] = _go_values(item, repair)
        return out
    if isinstance(value, list | tuple):
        return [_go_values(item, repair) for item in value]
    return value


def go_json(value: Any, *, sort_keys: bool = True) -> str:
    """``json.Marshal(value)``: dicts are maps (keys sorted) unless ``sort_keys=False``, when they stand for
    structs (their order kept); lists and tuples are arrays; None is ``null``."""
    option = orjson.OPT_SORT_KEYS if sort_keys else 0
    try:
        data = orjson.dumps(_go_values(value, repair=False), option=option)
    except orjson.JSONEncodeError:
        data = orjson.dumps(_go_values(value, repair=True), option=option)  # raises again if not surrogates
    text = data.decode()
    if "\\" in text:
        text = _ESCAPE.sub(lambda m: _SHORT.get(m.group(1), m.group(0)), text)
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        return text.translate(_HTML)
    return text
