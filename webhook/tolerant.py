"""Tolerant reads of JSON documents: a value of the wrong type reads as empty, never as an error.

Admission requests and cached objects come from outside; every field may be missing, null or of another type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def as_map(value: Any) -> Mapping[str, Any]:
    # JSON documents hold plain dicts: test for them before the (slower) abstract-class check
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""
