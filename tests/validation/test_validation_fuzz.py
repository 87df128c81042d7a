"""No /validate check raises, whatever the types in the object: every field may be missing, null or of
another type (a check that raised would be skipped and logged, silently passing)."""

from __future__ import annotations

import logging

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.validation.validation_support import make_dk, make_ec, make_ns
from webhook.validation import Context, Modules, SecretRead, validate, validate_edgeconnect

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "apiUrl", "oneAgent", "activeGate", "proxy", "extensions", "logMonitoring", "kspm", "templates",
        "metadataEnrichment", "enableIstio", "networkZone", "namespaceSelector",
    ]
)  # fmt: skip
MODES = st.sampled_from(
    ["cloudNativeFullStack", "applicationMonitoring", "classicFullStack", "hostMonitoring"]
)
MODE_FIELDS = st.sampled_from(
    ["version", "image", "env", "args", "nodeSelector", "namespaceSelector", "codeModulesImage"]
)


LABEL_KEYS = st.sampled_from(["team", "example.com/team", "a b", ""]) | st.text(max_size=6)
LABEL_VALUES = st.sampled_from(["shop", "", "-x"]) | st.text(max_size=4)
SELECTOR = st.fixed_dictionaries(
    {},
    optional={
        "matchLabels": st.dictionaries(LABEL_KEYS, LABEL_VALUES | JSON, max_size=3) | JSON,
        "matchExpressions": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "key": LABEL_KEYS | JSON,
                    "operator": st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Near"]) | JSON,
                    "values": st.lists(LABEL_VALUES | JSON, max_size=3) | JSON,
                },
            ),
            max_size=3,
        )
        | JSON,
    },
)


@settings(max_examples=300, deadline=None)
@example(mine={}, cached={"matchLabels": {"team": ["x"]}}, enrichment={}, labels={})  # a list as label value
@example(
    mine={"matchExpressions": [{"key": "team", "operator": "In", "values": [{}]}]},
    cached={},
    enrichment={},
    labels={},
)
@given(
    mine=SELECTOR,
    cached=SELECTOR,
    enrichment=SELECTOR,
    labels=st.dictionaries(st.text(max_size=6), JSON, max_size=3),
)
def test_selectors_of_any_shape(mine, cached, enrichment, labels):
    """Namespace selectors, cached or new, of any shape: the selector and conflict checks answer."""
    cache = [
        make_dk("a", oneAgent={"cloudNativeFullStack": {"namespaceSelector": cached}}),
        make_dk("b", metadataEnrichment={"enabled": True, "namespaceSelector": enrichment}),
    ]
    namespaces = [make_ns("n1"), {"metadata": {"name": "n2", "labels": labels}}]
    dk = make_dk("c", oneAgent={"applicationMonitoring": {"namespaceSelector": mine}})
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("webhook.validation.dynakube")
    logger.addHandler(handler)
    try:
        validate(dk, Context(dynakubes=cache, namespaces=namespaces))
    finally:
        logger.removeHandler(handler)
    assert not records, [r.getMessage() for r in records]


def _secret(name: str) -> SecretRead:
    return SecretRead(data={"proxy": name})  # not base64 for most names


@settings(max_examples=300, deadline=None)
@given(
    spec=st.dictionaries(KEYS, JSON, max_size=5),
    mode=MODES,
    mode_spec=st.dictionaries(MODE_FIELDS, JSON, max_size=4),
    annotations=st.dictionaries(
        st.sampled_from(
            [
                "feature.dynatrace.com/ignored-namespaces",
                "feature.dynatrace.com/x",
                "feature.dynatrace.com/oneagent-ignore-proxy",
            ]
        ),
        JSON,
        max_size=2,
    ),
    version=st.sampled_from(["v1beta1", "v1beta2", "v1beta3"]),
    labels=st.dictionaries(st.text(max_size=8), JSON, max_size=3),
)
def test_no_check_raises(spec, mode, mode_spec, annotations, version, labels):
    dk = make_dk(version=version, annotations=annotations, **spec)
    dk["spec"].setdefault("oneAgent", {})
    if isinstance(dk["spec"]["oneAgent"], dict):
        dk["spec"]["oneAgent"][mode] = mode_spec
    others = [dk, make_dk("other", version=version, **spec)]
    namespaces = [make_ns("a"), {"metadata": {"name": "b", "labels": labels}}]
    ctx = Context(
        old=make_dk(**spec),
        dynakubes=others,
        namespaces=namespaces,
        modules=Modules(csi_driver=False),
        secret=_secret,
        istio=False,
    )
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("webhook.validation.dynakube")
    logger.addHandler(handler)
    try:
        result = validate(dk, ctx)
        validate_edgeconnect(make_ec(**{k: v for k, v in spec.items() if k != "apiUrl"}), ctx)
        ec_result = validate_edgeconnect({"spec": spec, "metadata": labels}, ctx)
    finally:
        logger.removeHandler(handler)
    assert not records, [r.getMessage() for r in records]
    assert all(isinstance(m, str) and m for m in result.errors + result.warnings + ec_result.errors)
