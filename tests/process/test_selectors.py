from __future__ import annotations

import pytest

from webhook.selectors import InvalidSelector, Selector, matches, matches_valid

LABELS = {"team": "shop", "env": "prod", "tier": "web"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, True),
        ({}, True),
        ({"matchLabels": {}}, True),
        ({"matchLabels": {"team": "shop"}}, True),
        ({"matchLabels": {"team": "shop", "env": "dev"}}, False),
        ({"matchLabels": {"missing": "x"}}, False),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]}]}, True),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "In", "values": ["x"]}]}, False),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}, True),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "NotIn", "values": ["x"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "missing", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "missing", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, False),
        (
            {
                "matchLabels": {"team": "shop"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod"]},
                    {"key": "tier", "operator": "Exists"},
                ],
            },
            True,
        ),
    ],
)
def test_matches(selector, expected):
    assert matches(selector, LABELS) is expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("not a map", True),
        ({"matchLabels": 1.0}, True),
        ({"matchLabels": {"team": 1}}, False),
        ({"matchExpressions": "env"}, True),
        ({"matchExpressions": [None, {"key": "env", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": "prod"}]}, False),
        ({"matchExpressions": [{"operator": "DoesNotExist"}]}, True),
    ],
)
def test_selectors_nobody_validated_are_read_tolerantly(selector, expected):
    """/validate matches cached selectors that were never validated: wrong types read as empty."""
    assert matches_valid(selector, LABELS) is expected
    assert Selector(selector).matches(LABELS) is expected


def test_no_labels_matches_only_empty_or_negative_selectors():
    assert matches({}, None)
    assert matches({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, None)
    assert not matches({"matchLabels": {"a": "b"}}, {})


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("not a map", "must be an object"),
        ({"matchLabels": {"a": 1}}, "string values"),
        ({"matchExpressions": {"key": "a"}}, "must be a list"),
        ({"matchExpressions": [{"operator": "Exists"}]}, "needs a key"),
        ({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]}, "'Equals'"),
        ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "at least one value"),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "takes no values"),
    ],
)
def test_invalid_selectors_raise_with_a_reason(selector, message):
    with pytest.raises(InvalidSelector, match=message):
        matches(selector, LABELS)
