"""spec.activeGate and spec.kspm: E12 invalid and E13 duplicate capabilities, W1 memory limit, E27-E29 KSPM."""

from __future__ import annotations

import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import make_dk, run
from webhook.validation import activegate, kspm

VALID = "Valid capabilities: routing, kubernetes-monitoring, metrics-ingest, dynatrace-api."


@pytest.mark.parametrize(
    ("spec", "invalid", "duplicate"),
    [
        ({"activeGate": {"capabilities": ["routing", "kubernetes-monitoring"]}}, None, None),
        ({"activeGate": {"capabilities": ["routing", "data-ingest", "nope"]}}, "data-ingest", None),
        ({"activeGate": {"capabilities": ["Routing"]}}, "Routing", None),
        ({"activeGate": {"capabilities": ["routing", "dynatrace-api", "routing"]}}, None, "routing"),
        ({"activeGate": {"capabilities": ["x", "y", "y", "x"]}}, "x", "y"),  # the first value seen twice
        ({"activeGate": {"capabilities": []}}, None, None),
        # the ActiveGate is enabled by extensions alone, capabilities are still checked (there are none)
        ({"extensions": {}}, None, None),
        ({"activeGate": {}}, None, None),
    ],
)
def test_capabilities(spec, invalid, duplicate):
    dk = make_dk(**spec)
    assert run(activegate.invalid_capability, dk) == (None if invalid is None else up.E12 % invalid + VALID)
    assert run(activegate.duplicate_capability, dk) == (None if duplicate is None else up.E13 % duplicate)


@pytest.mark.parametrize(
    ("spec", "warning"),
    [
        ({"activeGate": {"capabilities": ["routing"]}}, up.W1),
        ({"activeGate": {"capabilities": ["routing"], "resources": {}}}, up.W1),
        ({"activeGate": {"capabilities": ["routing"], "resources": {"limits": None}}}, up.W1),
        ({"activeGate": {"capabilities": ["routing"], "resources": {"limits": {}}}}, None),
        ({"activeGate": {"capabilities": ["routing"], "resources": {"limits": {"cpu": "1"}}}}, None),
        ({"activeGate": {"capabilities": ["routing"], "resources": {"limits": {"memory": "1Gi"}}}}, None),
        ({"extensions": {}}, up.W1),
        ({"activeGate": {"capabilities": []}}, None),
        ({"kspm": {}}, None),
    ],
)
def test_memory_limit(spec, warning):
    assert run(activegate.missing_memory_limit, make_dk(**spec)) == warning


IMAGE = {"imageRef": {"repository": "r.io/kspm", "tag": "1"}}


@pytest.mark.parametrize(
    ("spec", "replicas", "monitoring", "image"),
    [
        (
            {
                "kspm": {},
                "activeGate": {"capabilities": ["kubernetes-monitoring"]},
                "templates": {"kspmNodeConfigurationCollector": IMAGE},
            },
            None,
            None,
            None,
        ),
        ({"kspm": {}, "activeGate": {"replicas": 2, "capabilities": ["routing"]}}, up.E27, up.E28, up.E29),
        (
            {"kspm": {}, "activeGate": {"replicas": 1, "capabilities": ["kubernetes-monitoring"]}},
            None,
            None,
            up.E29,
        ),
        ({"kspm": {}, "activeGate": {"replicas": None}}, None, up.E28, up.E29),  # absent counts as 1
        (
            {"kspm": {}, "templates": {"kspmNodeConfigurationCollector": {"imageRef": {"repository": "r"}}}},
            None,
            up.E28,
            up.E29,
        ),
        (
            {"kspm": {}, "templates": {"kspmNodeConfigurationCollector": {"imageRef": {"tag": "1"}}}},
            None,
            up.E28,
            up.E29,
        ),
        ({"activeGate": {"replicas": 3}}, None, None, None),  # no KSPM
        ({"kspm": None, "activeGate": {"replicas": 3}}, None, None, None),
    ],
)
def test_kspm(spec, replicas, monitoring, image):
    dk = make_dk(**spec)
    assert run(kspm.too_many_activegate_replicas, dk) == replicas
    assert run(kspm.missing_kubernetes_monitoring, dk) == monitoring
    assert run(kspm.missing_node_collector_image, dk) == image
