"""Kubernetes label selectors (``metav1.LabelSelector``) on plain dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class InvalidSelector(ValueError):
    """A selector that Kubernetes would reject; it selects nothing."""


_OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist"}


def validate(selector: Any) -> None:
    """Raise InvalidSelector with a message saying what is wrong; ``None`` and ``{}`` are valid."""
    if selector is None:
        return
    if not isinstance(selector, Mapping):
        raise InvalidSelector("a label selector must be an object with matchLabels and/or matchExpressions")
    labels = selector.get("matchLabels") or {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise InvalidSelector("matchLabels must map label keys to string values")
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise InvalidSelector("matchExpressions must be a list")
    for expr in expressions:
        if not isinstance(expr, Mapping) or not isinstance(expr.get("key"), str) or not expr.get("key"):
            raise InvalidSelector("every matchExpressions entry needs a key")
        operator = expr.get("operator")
        values = expr.get("values") or []
        if operator not in _OPERATORS:
            raise InvalidSelector(
                f"matchExpressions operator {operator!r} for key {expr['key']!r} is not one of "
                "In, NotIn, Exists, DoesNotExist"
            )
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidSelector(f"values for key {expr['key']!r} must be a list of strings")
        if operator in ("In", "NotIn") and not values:
            raise InvalidSelector(f"operator {operator} for key {expr['key']!r} needs at least one value")
        if operator in ("Exists", "DoesNotExist") and values:
            raise InvalidSelector(f"operator {operator} for key {expr['key']!r} takes no values")


def matches(selector: Any, labels: Mapping[str, Any] | None) -> bool:
    """True when ``labels`` satisfy ``selector``. An absent or empty selector matches everything.

    Raises InvalidSelector for a selector Kubernetes would reject; callers decide whether that means
    "matches nothing" and how to report it.
    """
    validate(selector)
    return matches_valid(selector, labels)


def matches_valid(selector: Any, labels: Mapping[str, Any] | None) -> bool:
    """``matches`` for a selector that ``validate`` already accepted (skips the validation)."""
    if not selector:
        return True
    labels = labels if isinstance(labels, Mapping) else {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, operator = expr["key"], expr["operator"]
        values = expr.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
