"""Kubernetes label selectors (``metav1.LabelSelector``) on plain dicts.

One matching engine for ``/inject``, ``/label-ns`` and ``/validate``: ``Selector`` reads a selector tolerantly
(a field of the wrong type reads as empty, as ``tolerant`` does) and matches label maps. ``validate`` says
whether Kubernetes would accept the selector; matching never raises, also for selectors nobody validated
(a cached DynaKube the CRD schema let through with ``matchLabels: 1.0`` selects as if it had none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.tolerant import as_list, as_map, as_str


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


class Selector:
    """A label selector, read once. Absent or empty selects everything."""

    __slots__ = ("expressions", "pairs")

    def __init__(self, selector: Any) -> None:
        selector = as_map(selector)
        self.pairs = tuple(as_map(selector.get("matchLabels")).items())
        self.expressions = tuple(
            (as_str(e.get("key")), e.get("operator"), tuple(as_list(e.get("values"))))
            for e in map(as_map, as_list(selector.get("matchExpressions")))
        )

    def matches(self, labels: Mapping[str, Any]) -> bool:
        """True when ``labels`` (a map) satisfy every matchLabels pair and every matchExpressions entry."""
        for key, value in self.pairs:
            if labels.get(key) != value:
                return False
        for key, operator, values in self.expressions:
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


def matches(selector: Any, labels: Mapping[str, Any] | None) -> bool:
    """True when ``labels`` satisfy ``selector``. An absent or empty selector matches everything.

    Raises InvalidSelector for a selector Kubernetes would reject; callers decide whether that means
    "matches nothing" and how to report it.
    """
    validate(selector)
    return matches_valid(selector, labels)


def matches_valid(selector: Any, labels: Mapping[str, Any] | None) -> bool:
    """``matches`` without the validation: ``Selector(selector).matches(labels)``, labels that are not a map
    read as none. Where one selector meets many label maps, keep the ``Selector``."""
    return Selector(selector).matches(labels if isinstance(labels, Mapping) else {})
