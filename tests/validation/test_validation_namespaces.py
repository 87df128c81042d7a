"""Namespace selectors: E23 (Kubernetes' label-selector validation, its exact texts), E17 (two DynaKubes
select one namespace, upstream's mapper over the cached namespaces), our extra warning for the enrichment
selector."""

from __future__ import annotations

import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import FF, NS, make_dk, make_ns, run
from webhook.validation import Context, namespaces

P = "spec.namespaceSelector"
NAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
PREFIX_RULE = (
    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def cnfs(selector):
    return {"cloudNativeFullStack": {"namespaceSelector": selector}}


@pytest.mark.parametrize(
    ("selector", "errors"),
    [
        (None, []),
        ({}, []),
        ({"matchLabels": {"monitoring": "dynatrace", "example.com/team": "a_b-1.c"}}, []),
        ({"matchLabels": {"a b": "x"}}, [f'{P}.matchLabels: Invalid value: "a b": name part {NAME_RULE}']),
        ({"matchLabels": {"k": "-x"}}, [f'{P}.matchLabels: Invalid value: "-x": {VALUE_RULE}']),
        (
            {"matchLabels": {"k": "a" * 64}},
            [f'{P}.matchLabels: Invalid value: "{"a" * 64}": must be no more than 63 characters'],
        ),
        ({"matchLabels": {"k": ""}}, []),
        (
            {"matchLabels": {"Example.com/x": "v"}},
            [f'{P}.matchLabels: Invalid value: "Example.com/x": {PREFIX_RULE}'],
        ),
        (
            {"matchLabels": {"/x": "v"}},
            [f'{P}.matchLabels: Invalid value: "/x": prefix part must be non-empty'],
        ),
        (
            {"matchLabels": {"": "v"}},
            [
                f'{P}.matchLabels: Invalid value: "": name part must be non-empty',
                f'{P}.matchLabels: Invalid value: "": name part {NAME_RULE}',
            ],
        ),
        (
            {"matchLabels": {"a/b/c": "v"}},
            [
                f'{P}.matchLabels: Invalid value: "a/b/c": a qualified name {NAME_RULE} with an optional DNS subdomain '
                "prefix and '/' (e.g. 'example.com/MyName')"
            ],
        ),
        (
            {
                "matchExpressions": [
                    {"key": "k", "operator": "In", "values": ["a"]},
                    {"key": "k", "operator": "Exists"},
                ]
            },
            [],
        ),
        (
            {"matchExpressions": [{"key": "k", "operator": "Foo"}]},
            [f'{P}.matchExpressions[0].operator: Invalid value: "Foo": not a valid selector operator'],
        ),
        (
            {
                "matchExpressions": [
                    {"key": "k", "operator": "Exists"},
                    {"key": "k", "operator": "NotIn", "values": []},
                ]
            },
            [
                f"{P}.matchExpressions[1].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
            ],
        ),
        (
            {"matchExpressions": [{"key": "k", "operator": "DoesNotExist", "values": ["a"]}]},
            [
                f"{P}.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            ],
        ),
        (
            {"matchExpressions": [{"key": "bad key", "operator": "In", "values": ["ok", "not ok"]}]},
            [
                f'{P}.matchExpressions[0].key: Invalid value: "bad key": name part {NAME_RULE}',
                f'{P}.matchExpressions[0].values[1]: Invalid value: "not ok": {VALUE_RULE}',
            ],
        ),
        (
            {"matchLabels": {"a b": "x"}, "matchExpressions": [{"key": "k", "operator": "Foo"}]},
            [
                f'{P}.matchLabels: Invalid value: "a b": name part {NAME_RULE}',
                f'{P}.matchExpressions[0].operator: Invalid value: "Foo": not a valid selector operator',
            ],
        ),
    ],
)
def test_invalid_namespace_selector(selector, errors):
    message = run(namespaces.invalid_namespace_selector, make_dk(oneAgent=cnfs(selector)))
    assert message == (f"{up.M23} ([{' '.join(errors)}])" if errors else None)


def test_invalid_selector_of_applicationmonitoring_and_precedence():
    bad = {"matchLabels": {"a b": "x"}}
    assert run(
        namespaces.invalid_namespace_selector,
        make_dk(oneAgent={"applicationMonitoring": {"namespaceSelector": bad}}),
    )
    # only the OneAgent selector is upstream's check; hostMonitoring has none
    assert (
        run(
            namespaces.invalid_namespace_selector,
            make_dk(oneAgent={"hostMonitoring": {"namespaceSelector": bad}}),
        )
        is None
    )
    assert (
        run(
            namespaces.invalid_namespace_selector,
            make_dk(metadataEnrichment={"enabled": True, "namespaceSelector": bad}),
        )
        is None
    )


def test_enrichment_selector_extra_warning():
    bad = make_dk(metadataEnrichment={"enabled": True, "namespaceSelector": {"matchLabels": {"a b": "x"}}})
    assert run(namespaces.invalid_enrichment_selector, bad) == (
        "spec.metadataEnrichment.namespaceSelector is not a valid label selector, so it selects no namespace: "
        f'spec.metadataEnrichment.namespaceSelector.matchLabels: Invalid value: "a b": name part {NAME_RULE}'
    )
    assert run(namespaces.invalid_enrichment_selector, make_dk(metadataEnrichment={"enabled": True})) is None


CLUSTER = [
    make_ns("shop", monitoring="app"),
    make_ns("payments", monitoring="app", team="pay"),
    make_ns("other"),
    make_ns(NS, monitoring="app"),
    make_ns("kube-system", monitoring="app"),
    make_ns("gke-managed", monitoring="app"),
]
APP = {"matchLabels": {"monitoring": "app"}}


def conflict(*names):
    return f"{up.M17}\nNamespaces selected by more than one DynaKube: {', '.join(names)}."


@pytest.mark.parametrize(
    ("obj", "others", "message"),
    [
        (make_dk("new", oneAgent=cnfs(APP)), [], None),
        (
            make_dk("new", oneAgent=cnfs(APP)),
            [make_dk("old", oneAgent=cnfs(APP))],
            conflict("payments", "shop"),
        ),
        (
            make_dk("new", oneAgent=cnfs({"matchLabels": {"team": "pay"}})),
            [make_dk("old", oneAgent=cnfs(APP))],
            conflict("payments"),
        ),
        (
            make_dk("new", oneAgent=cnfs({"matchLabels": {"team": "x"}})),
            [make_dk("old", oneAgent=cnfs(APP))],
            None,
        ),
        # an empty selector selects every namespace not ignored (the defaults ignore dynatrace, kube-*, gke-*)
        (
            make_dk("new", oneAgent=cnfs({})),
            [make_dk("old", oneAgent=cnfs({}))],
            conflict("other", "payments", "shop"),
        ),
        # an absent selector is the empty one
        (
            make_dk("new", oneAgent={"applicationMonitoring": {}}),
            [make_dk("old", oneAgent=cnfs(APP))],
            conflict("payments", "shop"),
        ),
        (
            make_dk("new", metadataEnrichment={"enabled": True}),
            [make_dk("old", oneAgent=cnfs(APP))],
            conflict("payments", "shop"),
        ),
        # a DynaKube that neither injects nor enriches takes no part
        (make_dk("new", oneAgent=cnfs(APP)), [make_dk("old", oneAgent={"hostMonitoring": {}})], None),
        (make_dk("new", oneAgent={"hostMonitoring": {}}), [make_dk("old", oneAgent=cnfs(APP))], None),
        # metadata enrichment matches with its own selector
        (
            make_dk("new", oneAgent=cnfs({"matchLabels": {"team": "pay"}})),
            [make_dk("old", metadataEnrichment={"enabled": True, "namespaceSelector": APP})],
            conflict("payments"),
        ),
        (
            make_dk("new", metadataEnrichment={"enabled": True}),
            [make_dk("old", metadataEnrichment={"enabled": False, "namespaceSelector": APP})],
            None,
        ),
        # the object replaces its cached self
        (
            make_dk("old", oneAgent=cnfs({"matchLabels": {"team": "x"}})),
            [make_dk("old", oneAgent=cnfs(APP))],
            None,
        ),
        # a conflict between two other DynaKubes is reported too (upstream's mapper sees every namespace)
        (
            make_dk("new", oneAgent=cnfs({"matchLabels": {"team": "x"}})),
            [make_dk("a", oneAgent=cnfs(APP)), make_dk("b", oneAgent=cnfs({"matchLabels": {"team": "pay"}}))],
            conflict("payments"),
        ),
        # an invalid selector anywhere aborts the scan: pass
        (
            make_dk("new", oneAgent=cnfs(APP)),
            [
                make_dk("a", oneAgent=cnfs(APP)),
                make_dk("b", oneAgent=cnfs({"matchLabels": {"bad key": "x"}})),
            ],
            None,
        ),
        # ignored namespaces: a pattern list replaces the defaults; null ignores nothing
        (
            make_dk("new", oneAgent=cnfs(APP), annotations={FF + "ignored-namespaces": '["^shop$"]'}),
            [make_dk("old", oneAgent=cnfs(APP))],
            conflict("payments"),
        ),
        (
            make_dk("new", oneAgent=cnfs(APP), annotations={FF + "ignored-namespaces": "null"}),
            [make_dk("old", oneAgent=cnfs(APP), annotations={FF + "ignored-namespaces": "null"})],
            conflict("dynatrace", "gke-managed", "kube-system", "payments", "shop"),
        ),
        (
            make_dk("new", oneAgent=cnfs(APP), annotations={FF + "ignored-namespaces": "not json"}),
            [make_dk("old", oneAgent=cnfs(APP), annotations={FF + "ignored-namespaces": '["(", "pay"]'})],
            conflict("shop"),  # "(" never matches, "pay" is searched anywhere in the name
        ),
    ],
)
def test_conflicting_namespace_selector(obj, others, message):
    ctx = Context(dynakubes=others, namespaces=CLUSTER, webhook_namespace=NS)
    assert run(namespaces.conflicting_namespace_selector, obj, ctx) == message


def test_conflict_list_is_bounded():
    cluster = [make_ns(f"ns-{i:02}") for i in range(8)]
    ctx = Context(dynakubes=[make_dk("old", oneAgent=cnfs({}))], namespaces=cluster)
    message = run(namespaces.conflicting_namespace_selector, make_dk("new", oneAgent=cnfs({})), ctx)
    assert message == conflict("ns-00", "ns-01", "ns-02", "ns-03", "ns-04").rstrip(".") + " and 3 more."


def test_cached_v1beta1_dynakubes_are_converted():
    old = make_dk("old", version="v1beta1", namespaceSelector=APP, oneAgent={"applicationMonitoring": {}})
    ctx = Context(dynakubes=[old], namespaces=CLUSTER)
    assert run(
        namespaces.conflicting_namespace_selector, make_dk("new", oneAgent=cnfs(APP)), ctx
    ) == conflict("payments", "shop")
