"""/label-ns: the namespace mapping decision, the handler, and golden AdmissionReview -> JSON Patch fixtures.

Golden files: ``tests/fixtures/namespace/<case>.review.json`` is what kube-apiserver sends,
``<case>.patch.json`` the JSON Patch the webhook answers with (``[]``: no patch). Regenerate the patch files
with ``UPDATE_GOLDEN=1 pytest tests/mutation/test_namespace.py`` and review the diff.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
from pathlib import Path
from typing import Any

import jsonpatch
import orjson
import pytest

from webhook import dynakube as dk
from webhook.admission import handlers
from webhook.admission.review import decode, encode
from webhook.mutation import namespace as ns
from webhook.state.local import parse
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

FIXTURES = Path(__file__).parents[1] / "fixtures" / "namespace"
LABEL = dk.INSTANCE_LABEL
WEBHOOK_NS = "dynatrace"


def fixture_store() -> Store:
    store = Store(WEBHOOK_NS)
    dynakubes, namespaces = parse((FIXTURES / "state.yaml").read_text(), WEBHOOK_NS)
    store.replace(DYNAKUBES, dynakubes)
    store.replace(NAMESPACES, namespaces)
    return store


def answer_for(review_json: dict[str, Any], store: Store) -> dict[str, Any]:
    review = decode(orjson.dumps(review_json))
    return orjson.loads(encode(review, handlers.label_namespace(review, store)))["response"]


# case -> (allowed, instance label after the patch (None: absent), outcome)
GOLDEN = {
    "create-selected": (True, "dk-app", ns.LABELED),
    "create-no-match": (True, None, ns.UNCHANGED),
    "create-v1beta1-selector": (True, "dk-legacy", ns.LABELED),
    "create-metadata-enrichment": (True, "dk-enrich", ns.LABELED),
    "create-match-expressions": (True, "dk-custom", ns.LABELED),
    "create-does-not-exist-excludes": (True, None, ns.UNCHANGED),
    "create-ignored-by-annotation": (True, None, ns.UNCHANGED),
    "create-ignored-anywhere-in-name": (True, None, ns.UNCHANGED),
    "create-ignored-by-default": (True, None, ns.UNCHANGED),
    "create-webhook-namespace": (True, None, ns.SKIPPED),
    "create-conflict": (False, None, ns.DENIED),
    "update-keeps-label": (True, "dk-app", ns.UNCHANGED),
    "update-selected-later": (True, "dk-app", ns.LABELED),
    "update-unselected": (True, None, ns.UNLABELED),
    "update-moves-to-other-dynakube": (True, "dk-legacy", ns.LABELED),
    "update-stale-label-of-deleted-dynakube": (True, None, ns.UNLABELED),
    "update-now-ignored": (True, None, ns.UNLABELED),
    "delete": (True, None, ns.SKIPPED),
}


def test_every_fixture_has_a_golden_entry():
    reviews = {p.name.removesuffix(".review.json") for p in FIXTURES.glob("*.review.json")}
    assert reviews == set(GOLDEN)


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden(case):
    allowed, instance, outcome = GOLDEN[case]
    review_json = json.loads((FIXTURES / f"{case}.review.json").read_text())
    store = fixture_store()
    response = answer_for(review_json, store)
    ops = json.loads(base64.b64decode(response["patch"])) if "patch" in response else []

    golden = FIXTURES / f"{case}.patch.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(ops, indent=2) + "\n")
    assert ops == json.loads(golden.read_text()), f"stale golden file {golden.name}"

    assert response["allowed"] is allowed
    review = decode(orjson.dumps(review_json))
    assert handlers.label_namespace(review, store).outcome == outcome
    if not allowed:
        assert response["status"]["code"] == 400
        assert ns.CONFLICT_MESSAGE in response["status"]["message"]
        return
    obj = review_json["request"]["object"]
    if obj is None:  # DELETE
        assert ops == []
        return
    result = jsonpatch.apply_patch(obj, ops)
    labels = result["metadata"].get("labels") or {}
    assert labels.get(LABEL) == instance
    # nothing else changes
    rest = {k: v for k, v in labels.items() if k != LABEL}
    assert rest == {k: v for k, v in (obj["metadata"].get("labels") or {}).items() if k != LABEL}
    assert {k: v for k, v in result.items() if k != "metadata"} == {
        k: v for k, v in obj.items() if k != "metadata"
    }
    # the patch is the minimal diff, and a second pass over the result changes nothing
    assert jsonpatch.apply_patch(obj, jsonpatch.make_patch(obj, result).patch) == result
    second = copy.deepcopy(review_json)
    second["request"]["object"] = result
    assert "patch" not in answer_for(second, store)


def test_conflict_names_every_matching_dynakube():
    review_json = json.loads((FIXTURES / "create-conflict.review.json").read_text())
    response = answer_for(review_json, fixture_store())
    assert response["status"]["message"].startswith(ns.CONFLICT_MESSAGE)
    assert "dk-app, dk-legacy" in response["status"]["message"]
    assert response["status"]["reason"] == "BadRequest"


# --- the decision, table-driven ---


def make_dk(name: str = "dk", *, version: str = "v1beta2", annotations=None, **spec) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": WEBHOOK_NS}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": f"dynatrace.com/{version}", "kind": "DynaKube", "metadata": meta, "spec": spec}


def cloud_native(selector=None) -> dict[str, Any]:
    mode: dict[str, Any] = {}
    if selector is not None:
        mode["namespaceSelector"] = selector
    return {"cloudNativeFullStack": mode}


def make_ns(name: str, labels=None, *, labels_key: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels_key:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


DECIDE_CASES = [
    # (id, dynakubes, namespace, outcome, ops)
    (
        "empty selector selects every namespace, labels map missing: add the whole map",
        [make_dk(oneAgent=cloud_native())],
        make_ns("shop", labels_key=False),
        ns.LABELED,
        [{"op": "add", "path": "/metadata/labels", "value": {LABEL: "dk"}}],
    ),
    (
        "labels null: add the whole map",
        [make_dk(oneAgent=cloud_native({}))],
        make_ns("shop", None),
        ns.LABELED,
        [{"op": "add", "path": "/metadata/labels", "value": {LABEL: "dk"}}],
    ),
    (
        "no metadata at all: add metadata with the label",
        [make_dk(oneAgent=cloud_native())],
        {"apiVersion": "v1", "kind": "Namespace"},
        ns.LABELED,
        [{"op": "add", "path": "/metadata", "value": {"labels": {LABEL: "dk"}}}],
    ),
    (
        "label key is escaped in the pointer",
        [make_dk(oneAgent=cloud_native())],
        make_ns("shop", {"a": "b"}),
        ns.LABELED,
        [{"op": "add", "path": "/metadata/labels/dynakube.internal.dynatrace.com~1instance", "value": "dk"}],
    ),
    (
        "matchExpressions NotIn keeps a namespace without the key",
        [
            make_dk(
                oneAgent=cloud_native(
                    {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}
                )
            )
        ],
        make_ns("shop", {}),
        ns.LABELED,
        [{"op": "add", "path": "/metadata/labels/dynakube.internal.dynatrace.com~1instance", "value": "dk"}],
    ),
    (
        "matchExpressions NotIn excludes",
        [
            make_dk(
                oneAgent=cloud_native(
                    {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}
                )
            )
        ],
        make_ns("shop", {"env": "dev"}),
        ns.UNCHANGED,
        [],
    ),
    (
        "matchExpressions Exists",
        [make_dk(oneAgent=cloud_native({"matchExpressions": [{"key": "monitor", "operator": "Exists"}]}))],
        make_ns("shop", {"monitor": ""}),
        ns.LABELED,
        [{"op": "add", "path": "/metadata/labels/dynakube.internal.dynatrace.com~1instance", "value": "dk"}],
    ),
    (
        "invalid selector matches nothing",
        [
            make_dk(
                oneAgent=cloud_native({"matchExpressions": [{"key": "x", "operator": "Gt", "values": ["1"]}]})
            )
        ],
        make_ns("shop", {"x": "2"}),
        ns.UNCHANGED,
        [],
    ),
    (
        "invalid selector: an existing label of that DynaKube is removed",
        [make_dk(oneAgent=cloud_native({"matchLabels": "not-a-map"}))],
        make_ns("shop", {LABEL: "dk"}),
        ns.UNLABELED,
        [{"op": "remove", "path": "/metadata/labels/dynakube.internal.dynatrace.com~1instance"}],
    ),
    (
        "classicFullStack maps nothing; its stale label goes",
        [make_dk(oneAgent={"classicFullStack": {}})],
        make_ns("shop", {LABEL: "dk"}),
        ns.UNLABELED,
        [{"op": "remove", "path": "/metadata/labels/dynakube.internal.dynatrace.com~1instance"}],
    ),
    (
        "metadata enrichment disabled: its selector is not used",
        [make_dk(oneAgent={"hostMonitoring": {}}, metadataEnrichment={"enabled": False})],
        make_ns("shop", {}),
        ns.UNCHANGED,
        [],
    ),
    (
        "metadata enrichment enabled without selector selects all",
        [make_dk(oneAgent={"hostMonitoring": {}}, metadataEnrichment={"enabled": True})],
        make_ns("shop", {}),
        ns.LABELED,
        [{"op": "add", "path": "/metadata/labels/dynakube.internal.dynatrace.com~1instance", "value": "dk"}],
    ),
    (
        "injection or enrichment of one DynaKube is one match, not a conflict",
        [make_dk(oneAgent=cloud_native(), metadataEnrichment={"enabled": True})],
        make_ns("shop", {}),
        ns.LABELED,
        [{"op": "add", "path": "/metadata/labels/dynakube.internal.dynatrace.com~1instance", "value": "dk"}],
    ),
    (
        "v1beta1 top-level selector",
        [
            make_dk(
                version="v1beta1",
                namespaceSelector={"matchLabels": {"a": "1"}},
                oneAgent={"applicationMonitoring": {}},
            )
        ],
        make_ns("shop", {"a": "2"}),
        ns.UNCHANGED,
        [],
    ),
    (
        "default ignored list uses the DynaKube's namespace",
        [make_dk(oneAgent=cloud_native())],
        make_ns("openshift-monitoring", {}),
        ns.SKIPPED,
        [],
    ),
    (
        "unparsable ignored-namespaces falls back to the default",
        [make_dk(annotations={dk.FEATURE_IGNORED_NAMESPACES: "[not json"}, oneAgent=cloud_native())],
        make_ns("kube-node-lease", {}),
        ns.SKIPPED,
        [],
    ),
    (
        "a JSON string instead of a list falls back to the default",
        [make_dk(annotations={dk.FEATURE_IGNORED_NAMESPACES: '"^shop$"'}, oneAgent=cloud_native())],
        make_ns("shop", {}),
        ns.LABELED,
        [{"op": "add", "path": "/metadata/labels/dynakube.internal.dynatrace.com~1instance", "value": "dk"}],
    ),
    (
        "an empty list ignores nothing, not even kube-*",
        [make_dk(annotations={dk.FEATURE_IGNORED_NAMESPACES: "[]"}, oneAgent=cloud_native())],
        make_ns("kube-public", {}),
        ns.LABELED,
        [{"op": "add", "path": "/metadata/labels/dynakube.internal.dynatrace.com~1instance", "value": "dk"}],
    ),
    (
        "an invalid regex is skipped, the others still apply",
        [make_dk(annotations={dk.FEATURE_IGNORED_NAMESPACES: '["(", "^shop$"]'}, oneAgent=cloud_native())],
        make_ns("shop", {}),
        ns.SKIPPED,
        [],
    ),
    (
        "ignored by one DynaKube, selected by another",
        [
            make_dk("a", annotations={dk.FEATURE_IGNORED_NAMESPACES: '["shop"]'}, oneAgent=cloud_native()),
            make_dk("b", oneAgent=cloud_native({"matchLabels": {"x": "1"}})),
        ],
        make_ns("shop", {"x": "1"}),
        ns.LABELED,
        [{"op": "add", "path": "/metadata/labels/dynakube.internal.dynatrace.com~1instance", "value": "b"}],
    ),
    (
        "two empty selectors conflict",
        [make_dk("a", oneAgent=cloud_native()), make_dk("b", oneAgent={"applicationMonitoring": {}})],
        make_ns("shop", {}),
        ns.DENIED,
        [],
    ),
    (
        "the webhook's own namespace keeps even a stale label",
        [make_dk(oneAgent=cloud_native())],
        make_ns(WEBHOOK_NS, {LABEL: "gone"}),
        ns.SKIPPED,
        [],
    ),
    (
        "no DynaKube at all: stale label removed",
        [],
        make_ns("shop", {LABEL: "gone"}),
        ns.UNLABELED,
        [{"op": "remove", "path": "/metadata/labels/dynakube.internal.dynatrace.com~1instance"}],
    ),
    (
        "malformed labels (a list) count as none",
        [make_dk(oneAgent=cloud_native({"matchLabels": {"a": "1"}}))],
        make_ns("shop", ["a"]),
        ns.UNCHANGED,
        [],
    ),
    (
        "malformed DynaKube (spec a string) maps nothing",
        [{"apiVersion": "dynatrace.com/v1beta2", "metadata": {"name": "x"}, "spec": "oops"}],
        make_ns("shop", {}),
        ns.UNCHANGED,
        [],
    ),
]


@pytest.mark.parametrize(
    ("dynakubes", "namespace", "outcome", "ops"),
    [c[1:] for c in DECIDE_CASES],
    ids=[c[0] for c in DECIDE_CASES],
)
def test_decide(dynakubes, namespace, outcome, ops):
    before = copy.deepcopy(namespace)
    decision = ns.decide(namespace, dynakubes, webhook_namespace=WEBHOOK_NS, namespace_name="shop")
    assert decision.outcome == outcome
    assert decision.ops == ops
    assert decision.allowed is (outcome != ns.DENIED)
    assert namespace == before  # never edits the request
    if ops:
        jsonpatch.apply_patch(namespace, ops)  # applies cleanly


@pytest.mark.parametrize(
    ("annotation", "name", "ignored"),
    [
        (None, "dynatrace", True),
        (None, "kube-system", True),
        (None, "openshift", True),
        (None, "openshift-ingress", True),
        (None, "my-kube-app", False),  # the defaults are anchored
        (None, "dynatrace-extra", False),
        ('["scratch"]', "my-scratch-ns", True),  # searched anywhere, like Go's regexp.MatchString
        ('["^scratch$"]', "my-scratch-ns", False),
        ('["^a", "^b"]', "bee", True),
        ("[1, 2]", "kube-system", True),  # not a list of strings: default
        ("", "kube-system", True),  # empty value: default
    ],
)
def test_is_ignored(annotation, name, ignored):
    annotations = {dk.FEATURE_IGNORED_NAMESPACES: annotation} if annotation is not None else None
    assert ns.is_ignored(make_dk(annotations=annotations, oneAgent=cloud_native()), name) is ignored


def test_broken_dynakube_is_logged_once(caplog):
    broken = make_dk(
        "broken-once", oneAgent=cloud_native({"matchExpressions": [{"key": "x", "operator": "Nope"}]})
    )
    with caplog.at_level(logging.WARNING, logger="webhook.mutation.namespace"):
        for _ in range(3):
            ns.decide(make_ns("shop", {}), [broken], webhook_namespace=WEBHOOK_NS)
    messages = [r.getMessage() for r in caplog.records if "broken-once" in r.getMessage()]
    assert len(messages) == 1
    assert "Nope" in messages[0]


# --- the handler ---


def review_of(operation: str, obj: Any, kind: str = "Namespace") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "operation": operation,
            "name": "shop",
            "namespace": "shop",
            "object": obj,
        },
    }


@pytest.mark.parametrize(
    ("operation", "obj", "kind", "reason"),
    [
        ("DELETE", None, "Namespace", ns.REASON_UNSUPPORTED_OPERATION),
        ("CONNECT", make_ns("shop", {}), "Namespace", ns.REASON_UNSUPPORTED_OPERATION),
        ("", make_ns("shop", {}), "Namespace", ns.REASON_UNSUPPORTED_OPERATION),
        ("CREATE", {"kind": "Pod", "metadata": {"name": "p"}}, "Pod", ns.REASON_NOT_A_NAMESPACE),
        ("CREATE", "not an object", "Namespace", ns.REASON_NOT_A_NAMESPACE),
        ("CREATE", None, "Namespace", ns.REASON_NOT_A_NAMESPACE),
    ],
)
def test_handler_skips(operation, obj, kind, reason):
    store = fixture_store()
    review = decode(orjson.dumps(review_of(operation, obj, kind)))
    answer = handlers.label_namespace(review, store)
    assert answer.allowed
    assert not answer.ops
    assert answer.outcome == ns.SKIPPED
    assert answer.reasons == (reason,)


def test_handler_changes_nothing_before_the_dynakubes_are_loaded():
    store = Store(WEBHOOK_NS)  # nothing synced yet
    review = decode(orjson.dumps(review_of("UPDATE", make_ns("shop", {LABEL: "dk-app"}))))
    answer = handlers.label_namespace(review, store)
    assert answer.allowed and not answer.ops
    assert answer.reasons == (ns.REASON_CACHE_NOT_SYNCED,)


def test_handler_uses_request_name_when_object_has_none():
    store = Store(WEBHOOK_NS)
    store.replace(DYNAKUBES, [make_dk(oneAgent=cloud_native())])
    obj = {"kind": "Namespace", "metadata": {"labels": {}}}
    review_json = review_of("CREATE", obj)
    review_json["request"]["name"] = WEBHOOK_NS
    answer = handlers.label_namespace(decode(orjson.dumps(review_json)), store)
    assert answer.reasons == (ns.REASON_WEBHOOK_NAMESPACE,)


def test_handler_survives_a_bug(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ns, "decide", boom)
    review = decode(orjson.dumps(review_of("CREATE", make_ns("shop", {}))))
    answer = handlers.label_namespace(review, fixture_store())
    assert answer.allowed and not answer.ops
    assert "boom" in answer.message


# --- over HTTP, through the admission app ---


@pytest.mark.parametrize("api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
def test_over_http(api_version):
    from starlette.testclient import TestClient

    from webhook.admission.app import Route, admission_app
    from webhook.metrics import Metrics

    store = fixture_store()
    metrics = Metrics()
    app = admission_app(
        {"/label-ns": Route("label-ns", lambda r: handlers.label_namespace(r, store))}, metrics
    )
    client = TestClient(app)
    for case, outcome in (("create-selected", ns.LABELED), ("create-conflict", ns.DENIED)):
        review_json = json.loads((FIXTURES / f"{case}.review.json").read_text())
        review_json["apiVersion"] = api_version
        response = client.post(
            "/label-ns?timeout=10s",
            content=orjson.dumps(review_json),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200
        body = response.json()
        assert body["apiVersion"] == api_version
        assert body["response"]["uid"] == review_json["request"]["uid"]
        expected = json.loads((FIXTURES / f"{case}.patch.json").read_text())
        got = json.loads(base64.b64decode(body["response"]["patch"])) if "patch" in body["response"] else []
        assert got == expected
        assert metrics.admissions.labels("label-ns", outcome)._value.get() == 1


# --- the operator's own changes (upstream v1.10) ---

OPERATOR = f"system:serviceaccount:{WEBHOOK_NS}:dynatrace-operator"


def _with_user(review_json: dict[str, Any], username: Any) -> dict[str, Any]:
    review_json["request"]["userInfo"] = {"username": username, "groups": ["system:serviceaccounts"]}
    return review_json


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_operator_changes_are_left_alone(operation):
    store = fixture_store()
    review_json = _with_user(review_of(operation, make_ns("shop", {"inject": "me"})), OPERATOR)
    answer = handlers.label_namespace(decode(orjson.dumps(review_json)), store)
    assert answer.allowed and not answer.ops
    assert answer.reasons == (ns.REASON_OPERATOR,)
    # the same namespace from anyone else is mapped as before
    other = handlers.label_namespace(decode(orjson.dumps(review_of(operation, make_ns("shop", {})))), store)
    assert other.reasons != (ns.REASON_OPERATOR,)


def test_operator_change_even_of_a_conflicting_namespace_is_allowed():
    review_json = json.loads((FIXTURES / "create-conflict.review.json").read_text())
    assert not answer_for(review_json, fixture_store())["allowed"]
    response = answer_for(_with_user(review_json, OPERATOR), fixture_store())
    assert response["allowed"] and "patch" not in response


@pytest.mark.parametrize(
    "username",
    [
        "system:serviceaccount:other:dynatrace-operator",  # the operator's name, another namespace
        f"system:serviceaccount:{WEBHOOK_NS}:dynatrace-webhook",
        f"system:serviceaccount:{WEBHOOK_NS}:Dynatrace-Operator",  # exact match only
        f"system:serviceaccount:{WEBHOOK_NS}:dynatrace-operator ",
        "dynatrace-operator",
        "kubernetes-admin",
        None,
        42,
    ],
)
def test_other_users_are_mapped(username):
    review_json = json.loads((FIXTURES / "create-selected.review.json").read_text())
    response = answer_for(_with_user(review_json, username), fixture_store())
    assert response["allowed"] and "patch" in response


def test_operator_service_account_is_configurable():
    store = fixture_store()
    mine = f"system:serviceaccount:{WEBHOOK_NS}:my-operator"
    review_json = _with_user(review_of("CREATE", make_ns("shop", {})), mine)
    review = decode(orjson.dumps(review_json))
    assert handlers.label_namespace(review, store, "my-operator").reasons == (ns.REASON_OPERATOR,)
    assert handlers.label_namespace(review, store).reasons != (ns.REASON_OPERATOR,)
    # empty: nobody is the operator
    operator = decode(orjson.dumps(_with_user(review_of("CREATE", make_ns("shop", {})), OPERATOR)))
    assert handlers.label_namespace(operator, store, "").reasons != (ns.REASON_OPERATOR,)


def test_webhook_namespace_reason_comes_first():
    store = fixture_store()
    review_json = _with_user(review_of("CREATE", make_ns(WEBHOOK_NS, {})), OPERATOR)
    answer = handlers.label_namespace(decode(orjson.dumps(review_json)), store)
    assert answer.reasons == (ns.REASON_WEBHOOK_NAMESPACE,)


def test_operator_username():
    assert ns.operator_username("dynatrace", "dynatrace-operator") == OPERATOR
    assert ns.from_operator(OPERATOR, "dynatrace", "dynatrace-operator")
    assert not ns.from_operator(OPERATOR, "dynatrace", "")
