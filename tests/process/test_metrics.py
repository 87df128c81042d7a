"""Counters after a scripted sequence of admissions through the admission app: every request counted once,
under exactly the labels its answer deserves, and nothing else."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import jsonpatch
import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import SETTINGS, make_dynakube, make_namespace, make_pod, make_review, make_store
from webhook.admission import handlers
from webhook.admission.app import Route, admission_app
from webhook.admission.review import decode
from webhook.metrics import Metrics

FF = "feature.dynatrace.com/"
INSTANCE = "dynakube.internal.dynatrace.com/instance"


def selecting(name: str, team: str, **kw: Any) -> dict[str, Any]:
    return make_dynakube(name, selector={"matchLabels": {"team": team}}, **kw)


DYNAKUBES = [
    selecting("dk", "shop"),
    selecting("pending", "payments", hosts=[]),
    selecting("notenant", "notenant", tenant=""),
    selecting("nocode", "nocode", version=""),
    selecting("allbad", "allbad", hosts=[], tenant="", version=""),
    selecting("classic", "classic", mode="classicFullStack"),
    make_dynakube("badsel", selector={"matchExpressions": [{"key": "a", "operator": "Near"}]}),
    selecting("noauto", "noauto", annotations={FF + "automatic-injection": "false"}),
    make_dynakube(
        "twin", selector={"matchLabels": {"tier": "gold"}}
    ),  # with dk, both select tier=gold,team=shop
]
NAMESPACES = [
    make_namespace("shop", "dk", team="shop"),
    make_namespace("payments", "pending", team="payments"),
    make_namespace("notenant", "notenant", team="notenant"),
    make_namespace("nocode", "nocode", team="nocode"),
    make_namespace("allbad", "allbad", team="allbad"),
    make_namespace("classic", "classic", team="classic"),
    make_namespace("badsel", "badsel"),
    make_namespace("noauto", "noauto", team="noauto"),
    make_namespace("unselected", "dk", team="other"),
    make_namespace("ghost", "gone"),
    make_namespace("plain", None),
]


@pytest.fixture()
def app() -> tuple[TestClient, Metrics]:
    store = make_store(DYNAKUBES, NAMESPACES)
    metrics = Metrics()
    routes = {
        "/inject": Route("inject", lambda r: handlers.inject(r, store, SETTINGS)),
        "/label-ns": Route("label-ns", lambda r: handlers.label_namespace(r, store)),
        "/validate": Route("validate", lambda r: handlers.validate_dynakube(r, store)),
    }
    return TestClient(admission_app(routes, metrics)), metrics


def pod_in(namespace: str, **kw: Any) -> dict[str, Any]:
    return make_review(make_pod(namespace=namespace, **kw), namespace=namespace)


def injected_pod() -> dict[str, Any]:
    """A pod as it looks after /inject patched it (for reinvocations)."""
    pod = make_pod()
    review = decode(orjson.dumps(make_review(pod)))
    answer = handlers.inject(review, make_store(DYNAKUBES, NAMESPACES), SETTINGS)
    return jsonpatch.apply_patch(copy.deepcopy(pod), list(answer.ops))


def with_new_container(pod: dict[str, Any]) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["spec"]["containers"].append({"name": "sidecar", "image": "registry.example.com/sidecar:1"})
    return pod


def namespace_review(name: str, operation: str = "CREATE", **labels: str) -> dict[str, Any]:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    return make_review(ns, kind="Namespace", namespace="", operation=operation, name=name)


def dynakube_review(dynakube: dict[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    return make_review(dynakube, kind="DynaKube", namespace="dynatrace", operation=operation, name="x")


def without_api_url(dynakube: dict[str, Any]) -> dict[str, Any]:
    del dynakube["spec"]["apiUrl"]
    return dynakube


# (path, request body: a review dict, raw bytes, or None for a GET; HTTP code, outcome, injection reason)
# the injection reason is None for answers that are not /inject AdmissionReviews
SCRIPT: list[tuple[str, Any, int, str, str | None]] = [
    # /inject
    ("/inject", pod_in("shop"), 200, "injected", ""),
    ("/inject", pod_in("shop"), 200, "injected", ""),
    ("/inject", make_review(injected_pod()), 200, "reinvoked", "NothingNew"),
    ("/inject", make_review(with_new_container(injected_pod())), 200, "reinvoked", ""),
    ("/inject", pod_in("payments"), 200, "skipped", "EmptyConnectionInfo"),
    ("/inject", pod_in("payments"), 200, "skipped", "EmptyConnectionInfo"),
    ("/inject", pod_in("notenant"), 200, "skipped", "EmptyTenantUUID"),
    ("/inject", pod_in("nocode"), 200, "skipped", "UnknownCodeModule"),
    ("/inject", pod_in("allbad"), 200, "skipped", "EmptyTenantUUID, EmptyConnectionInfo, UnknownCodeModule"),
    ("/inject", pod_in("classic"), 200, "skipped", "ModeWithoutInjection"),
    ("/inject", pod_in("badsel"), 200, "skipped", "InvalidNamespaceSelector"),
    ("/inject", pod_in("noauto"), 200, "skipped", "OneAgentOptOut"),
    ("/inject", pod_in("unselected"), 200, "skipped", "NamespaceNotSelected"),
    ("/inject", pod_in("ghost"), 200, "skipped", "MissingDynakube"),
    ("/inject", pod_in("plain"), 200, "skipped", "NamespaceNotMapped"),
    ("/inject", pod_in("nowhere"), 200, "skipped", "NamespaceUnknown"),
    ("/inject", pod_in("shop", annotations={"dynatrace.com/inject": "false"}), 200, "skipped", "PodOptOut"),
    (
        "/inject",
        pod_in(
            "shop",
            annotations={
                "debug.openshift.io/source-container": "checkout",
                "debug.openshift.io/source-resource": "/v1, Resource=pods/checkout",
            },
        ),
        200,
        "skipped",
        "OpenShiftDebugPod",
    ),
    (
        "/inject",
        pod_in("shop", annotations={"container.inject.dynatrace.com/checkout": "false"}),
        200,
        "skipped",
        "AllContainersExcluded",
    ),
    ("/inject", make_review(make_pod(), operation="DELETE"), 200, "skipped", "UnsupportedOperation"),
    ("/inject", make_review(make_pod(), kind="Deployment"), 200, "skipped", "NotAPod"),
    ("/inject", b"{not json", 400, "error", None),
    ("/inject", None, 405, "error", None),
    # /label-ns
    ("/label-ns", namespace_review("shop-2", team="shop"), 200, "labeled", None),
    (
        "/label-ns",
        namespace_review("shop", "UPDATE", team="shop", **{INSTANCE: "dk"}),
        200,
        "unchanged",
        None,
    ),
    (
        "/label-ns",
        namespace_review("moved", "UPDATE", team="other", **{INSTANCE: "dk"}),
        200,
        "unlabeled",
        None,
    ),
    ("/label-ns", namespace_review("clash", team="shop", tier="gold"), 200, "denied", None),
    ("/label-ns", namespace_review("clash", "DELETE"), 200, "skipped", None),
    # /validate (applicationMonitoring: a new host agent would conflict with "classic", which has no nodeSelector)
    (
        "/validate",
        dynakube_review(selecting("fresh", "fresh", mode="applicationMonitoring")),
        200,
        "allowed",
        None,
    ),
    (
        "/validate",
        dynakube_review(
            selecting("flagged", "flagged", mode="applicationMonitoring", annotations={FF + "nope": "1"})
        ),
        200,
        "warned",
        None,
    ),
    ("/validate", dynakube_review(without_api_url(selecting("broken", "broken"))), 200, "denied", None),
    ("/validate", b"[]", 400, "error", None),
]


def send(client: TestClient, path: str, body: Any) -> int:
    if body is None:
        return client.get(path).status_code
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(path, content=data, headers={"Content-Type": "application/json"}).status_code


def samples(metrics: Metrics, name: str) -> dict[tuple[str, ...], float]:
    """{label values: value} of every ``name`` sample (counters: the _total samples)."""
    out = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sample.labels.values())] = sample.value
    return out


WEBHOOK = {"/inject": "inject", "/label-ns": "label-ns", "/validate": "validate"}


def test_counters_after_a_scripted_sequence(app) -> None:
    client, metrics = app
    for path, body, code, outcome, _ in SCRIPT:
        assert send(client, path, body) == code, (path, outcome)
    p = "dynatrace_webhook_"
    requests = Counter((WEBHOOK[path], str(code)) for path, _, code, _, _ in SCRIPT)
    assert samples(metrics, p + "requests_total") == requests
    assert requests == {
        ("inject", "200"): 21,
        ("inject", "400"): 1,
        ("inject", "405"): 1,
        ("label-ns", "200"): 5,
        ("validate", "200"): 3,
        ("validate", "400"): 1,
    }
    admissions = Counter((WEBHOOK[path], outcome) for path, _, _, outcome, _ in SCRIPT)
    assert samples(metrics, p + "admissions_total") == admissions
    injections = Counter((outcome, reason) for _, _, _, outcome, reason in SCRIPT if reason is not None)
    assert samples(metrics, p + "injections_total") == injections
    assert injections[("injected", "")] == 2 and injections[("skipped", "EmptyConnectionInfo")] == 2
    assert sum(injections.values()) == 21  # every /inject AdmissionReview, none of the HTTP errors
    # the latency histogram saw every request once, by webhook
    count = samples(metrics, p + "request_duration_seconds_count")
    assert count == {(w,): float(n) for w, n in Counter(WEBHOOK[s[0]] for s in SCRIPT).items()}
    assert samples(metrics, p + "requests_in_flight") == {(): 0.0}


def test_counters_start_empty(app) -> None:
    _, metrics = app
    for name in ("requests_total", "admissions_total", "injections_total"):
        assert samples(metrics, "dynatrace_webhook_" + name) == {}
