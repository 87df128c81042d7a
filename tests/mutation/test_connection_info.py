"""Is a DynaKube's connection info complete? The status as each Dynatrace Operator release writes it
(``tests/fixtures/dynakube/``), and every reader that asks: ``/inject``, reinjection's verdict, ``explain``, the
``connection_info_complete`` metric, the cache's transform and the init Secret.

Operators v1.4 to v1.8 write ``communicationHosts`` beside ``endpoints`` (both from one connection-info answer);
from v1.9 the stored DynaKube (v1beta6) has ``endpoints`` only, and for a read at v1beta4/v1beta5 the conversion
sets an empty ``communicationHosts`` list, which ``omitempty`` leaves out of the answer (both shapes are tested).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jsonpatch
import pytest

from tests.conftest import SETTINGS, load_dynakube, make_namespace, make_pod
from webhook import dynakube as dk
from webhook.controllers.reinject.verdict import complete
from webhook.explain import explain, render_text
from webhook.mutation import initsecrets as gen
from webhook.mutation import pod as pods
from webhook.state.kinds import dynakube_transform
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

V1_4 = "v1.4.2-v1beta3"
V1_10 = "v1.10.2-v1beta6"
V1_10_AS_V1BETA5 = "v1.10.2-read-as-v1beta5"
V1_10_NO_ENDPOINTS = "v1.10.2-v1beta6-no-endpoints"
EMPTY = "EmptyConnectionInfo"
NO_TENANT = "EmptyTenantUUID"


def info(dynakube: dict[str, Any], component: str = "oneAgent") -> dict[str, Any]:
    connection_info: dict[str, Any] = dynakube["status"][component]["connectionInfoStatus"]
    return connection_info


def variant(
    name: str, *, drop: tuple[str, ...] = (), api_version: str = "", **values: Any
) -> Callable[[], Any]:
    """The fixture ``name`` with OneAgent connection-info keys dropped or set."""

    def build() -> dict[str, Any]:
        dynakube = load_dynakube(name)
        for key in drop:
            info(dynakube).pop(key, None)
        info(dynakube).update(values)
        if api_version:
            dynakube["apiVersion"] = f"dynatrace.com/{api_version}"
        return dynakube

    return build


def without_tenant(name: str, *, drop: tuple[str, ...] = ()) -> Callable[[], Any]:
    def build() -> dict[str, Any]:
        dynakube = variant(name, drop=("tenantUUID", *drop))()
        info(dynakube, "activeGate").pop("tenantUUID")
        return dynakube

    return build


# (case, DynaKube, connection_info_reasons)
CASES: list[tuple[str, Callable[[], Any], list[str]]] = [
    ("v1.4.2 (v1beta3): communication hosts and endpoints", variant(V1_4), []),
    ("v1.4.2 hosts without endpoints: the hosts decide", variant(V1_4, drop=("endpoints",)), []),
    (
        "v1.4.2, zone without an ActiveGate: neither hosts nor endpoints (omitempty)",
        variant(V1_4, drop=("endpoints", "communicationHosts")),
        [EMPTY],
    ),
    (
        "v1.4.2 with an empty host list and empty endpoints",
        variant(V1_4, communicationHosts=[], endpoints=""),
        [EMPTY],
    ),
    (
        "hosts listed but none usable: the hosts decide, not the endpoints",
        variant(V1_4, communicationHosts=[{"protocol": "https", "port": 443}]),
        [EMPTY],
    ),
    ("v1.10.2 stored as v1beta6: no communicationHosts key, endpoints", variant(V1_10), []),
    ("v1.10.2 read as v1beta5: the conversion's empty host list", variant(V1_10_AS_V1BETA5), []),
    (
        "v1.10.2 read as v1beta5, the empty list left out by omitempty",
        variant(V1_10_AS_V1BETA5, drop=("communicationHosts",)),
        [],
    ),
    (
        "v1.10.2 read as v1beta4",
        variant(V1_10_AS_V1BETA5, api_version="v1beta4"),
        [],
    ),
    ("v1.10.2, zone without an ActiveGate: no endpoints", variant(V1_10_NO_ENDPOINTS), [EMPTY]),
    (
        "v1.10.2 without endpoints read as v1beta5",
        variant(V1_10_NO_ENDPOINTS, api_version="v1beta5", communicationHosts=[]),
        [EMPTY],
    ),
    ("v1.10.2 with endpoints empty", variant(V1_10, endpoints=""), [EMPTY]),
    ("v1.10.2 with endpoints blank", variant(V1_10, endpoints="  "), [EMPTY]),
    ("endpoints that are not a string", variant(V1_10, endpoints=["https://10.96.12.34:443"]), [EMPTY]),
    ("v1.10.2 without any tenantUUID", without_tenant(V1_10), [NO_TENANT]),
    (
        "v1.10.2 without tenantUUID and endpoints",
        without_tenant(V1_10, drop=("endpoints",)),
        [NO_TENANT, EMPTY],
    ),
    ("v1.10.2, tenantUUID from the ActiveGate only", variant(V1_10, drop=("tenantUUID",)), []),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("build", "expected"), [c[1:] for c in CASES], ids=IDS)
def test_connection_info_reasons(build, expected):
    dynakube = build()
    assert pods.connection_info_reasons(dynakube) == expected
    assert dk.has_communication_endpoints(dynakube) is (EMPTY not in expected)
    assert complete(dynakube) is (expected == [])  # reinjection's "a pod created now gets OneAgent"


@pytest.mark.parametrize(("build", "expected"), [c[1:] for c in CASES], ids=IDS)
def test_the_cached_dynakube_is_judged_the_same(build, expected):
    """The cache's transform keeps what the rule reads (``endpoints`` too)."""
    whole = build()
    kept = dynakube_transform(whole)
    assert pods.connection_info_reasons(kept) == expected
    assert dk.oneagent_endpoints(kept) == dk.oneagent_endpoints(whole)
    assert dk.communication_hosts(kept) == dk.communication_hosts(whole)


@pytest.mark.parametrize(("build", "expected"), [c[1:] for c in CASES], ids=IDS)
def test_inject_decision(build, expected):
    dynakube = build()
    pod = make_pod()
    namespace = make_namespace(dynakube=dk.name(dynakube), monitoring="dynatrace")
    result = pods.decide(pod, namespace, dynakube, SETTINGS, namespace_name="shop")
    annotations = jsonpatch.apply_patch(copy.deepcopy(pod), result.ops)["metadata"]["annotations"]
    if expected:
        assert (result.outcome, result.reasons) == ("skipped", tuple(expected))
        assert annotations == {
            "oneagent.dynatrace.com/injected": "false",
            "oneagent.dynatrace.com/reason": ", ".join(expected),
        }
    else:
        assert (result.outcome, result.reasons) == ("injected", ())
        assert annotations["oneagent.dynatrace.com/injected"] == "true"


def test_the_v1beta5_fixture_is_the_v1beta6_one_as_the_conversion_answers():
    stored, read = load_dynakube(V1_10), load_dynakube(V1_10_AS_V1BETA5)
    assert (stored["apiVersion"], read["apiVersion"]) == ("dynatrace.com/v1beta6", "dynatrace.com/v1beta5")
    assert "communicationHosts" not in info(stored) and info(read).pop("communicationHosts") == []
    del stored["status"]["apiToken"]  # v1beta5 has no status.apiToken
    assert {**read, "apiVersion": stored["apiVersion"]} == stored


def test_a_skipped_pod_is_injected_once_the_v1beta6_endpoints_arrive():
    namespace = make_namespace(dynakube="dynakube", monitoring="dynatrace")
    result = pods.decide(make_pod(), namespace, load_dynakube(V1_10_NO_ENDPOINTS), SETTINGS)
    skipped = jsonpatch.apply_patch(make_pod(), result.ops)
    assert skipped["metadata"]["annotations"]["oneagent.dynatrace.com/reason"] == EMPTY
    result = pods.decide(skipped, namespace, load_dynakube(V1_10), SETTINGS)
    injected = jsonpatch.apply_patch(skipped, result.ops)
    assert result.outcome == "injected"
    assert injected["metadata"]["annotations"]["oneagent.dynatrace.com/injected"] == "true"
    assert "oneagent.dynatrace.com/reason" not in injected["metadata"]["annotations"]


def store_with(*dynakubes: dict[str, Any]) -> Store:
    store = Store("dynatrace")
    store.replace(DYNAKUBES, list(dynakubes))
    store.replace(NAMESPACES, [make_namespace(dynakube="dynakube", monitoring="dynatrace")])
    return store


@pytest.mark.parametrize(
    ("name", "outcome", "missing", "endpoints"),
    [
        (
            V1_10,
            "injected",
            [],
            "https://10.96.12.34:443/communication;https://abc12345.live.dynatrace.com:443",
        ),
        (V1_10_NO_ENDPOINTS, "skipped", [EMPTY], None),
    ],
)
def test_explain_reads_the_endpoints(name, outcome, missing, endpoints):
    report = explain(make_pod(), store_with(load_dynakube(name)), SETTINGS)
    assert report["outcome"] == outcome
    assert report["connectionInfo"]["missing"] == missing
    assert report["connectionInfo"]["communicationHosts"] == 0
    assert report["connectionInfo"]["endpoints"] == endpoints
    assert f"endpoints {endpoints or '-'}" in render_text(report)


def test_the_metric_follows_the_endpoints(tmp_path):
    from webhook.config import Settings
    from webhook.server import Webhook

    pending = load_dynakube(V1_10_NO_ENDPOINTS)
    pending["metadata"]["name"] = "pending"
    webhook = Webhook(Settings(certs_dir=tmp_path))
    webhook.store.replace(DYNAKUBES, [load_dynakube(V1_10), pending, load_dynakube(V1_4)])
    webhook.refresh_metrics()
    text = webhook.metrics.exposition().decode()
    gauge = "dynatrace_webhook_dynakube_connection_info_complete"
    assert f'{gauge}{{dynakube="dynakube",network_zone="eu-west-zone-a"}} 1.0' in text
    assert f'{gauge}{{dynakube="pending",network_zone="eu-west-zone-a"}} 0.0' in text


def test_the_init_secret_of_a_v1beta6_status_is_that_of_a_v1_4_status():
    """Nothing in ``dynatrace-dynakube-config`` comes from ``communicationHosts`` (the v1.4 ``init`` fetches the
    process module config itself): a status without them gives the same Secret, tenant and nodes included."""
    tokens = {"dynakube": {"apiToken": "dt0c01.api", "paasToken": "dt0c01.paas"}}
    secrets = {
        name: gen.config_data(gen.Inputs(dynakube=dynakube_transform(load_dynakube(name)), secrets=tokens))
        for name in (V1_4, V1_10, V1_10_AS_V1BETA5)
    }
    assert secrets[V1_10] == secrets[V1_4] == secrets[V1_10_AS_V1BETA5]
    config = json.loads(secrets[V1_10]["config"])
    assert config["tenantUUID"] == "abc12345"
    assert config["monitoringNodes"] == {"worker-1": "abc12345", "worker-2": "abc12345"}
    assert not any("communication" in key.lower() or "endpoint" in key.lower() for key in config)
