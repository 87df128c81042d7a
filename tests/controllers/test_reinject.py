"""Automatic reinjection against the in-memory API: transitions, owners, rate limit, leadership, opt-outs."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.conftest import SETTINGS, load_dynakube
from tests.controllers.test_leader import Clock
from tests.support.events import collection, events_in
from tests.support.fakeapi import FakeApi
from webhook.controllers.events import rfc3339 as _rfc3339
from webhook.controllers.leader import LeaderElector, lease_path
from webhook.controllers.loop import TokenBucket
from webhook.controllers.reinject.controller import Reinjector
from webhook.controllers.reinject.scan import mapped_since
from webhook.controllers.reinject.verdict import (
    ANNOTATION_OPT_OUT,
    ANNOTATION_RESTARTED_AT,
    ANNOTATION_RESTARTS,
    FEATURE_AUTOMATIC_REINJECTION,
    Config,
    Work,
    restart_verdict,
    restarts,
    waiting_reasons,
)
from webhook.kube.api import ApiError
from webhook.manager import LEASE_NAME, Manager
from webhook.mutation import pod as pods
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

WEBHOOK_NS = "dynatrace"
DK = "dynakube"
APPS = "/apis/apps/v1/namespaces"
CREATED = "2023-11-01T10:00:00Z"  # before every clock in these tests
LEASE = lease_path(WEBHOOK_NS, LEASE_NAME)


def dynakube(*, complete: bool, opted_in: bool = True, name: str = DK) -> dict:
    annotations = {FEATURE_AUTOMATIC_REINJECTION: "true"} if opted_in else {}
    status: dict[str, Any] = {
        "oneAgent": {"connectionInfoStatus": {"tenantUUID": "abc12345", "communicationHosts": []}},
        "codeModules": {"version": "1.299.50.20240930-123456"},
    }
    if complete:
        status["oneAgent"]["connectionInfoStatus"]["communicationHosts"] = [
            {"protocol": "https", "host": "10.96.12.34", "port": 443}
        ]
    return {
        "apiVersion": "dynatrace.com/v1beta2",
        "kind": "DynaKube",
        "metadata": {"name": name, "namespace": WEBHOOK_NS, "annotations": annotations},
        "spec": {"networkZone": "eu-west-zone-a", "oneAgent": {"cloudNativeFullStack": {}}},
        "status": status,
    }


def namespace(name: str, dynakube_name: str = DK) -> dict:
    labels = {"dynakube.internal.dynatrace.com/instance": dynakube_name} if dynakube_name else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def owner(kind: str, name: str, api_version: str = "apps/v1") -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": f"uid-{name}", "controller": True}


def pod(
    ns: str,
    name: str,
    owners: list[dict] | None = None,
    *,
    reason: str = "EmptyConnectionInfo",
    injected: str | None = "false",
    created: str = CREATED,
    **extra: Any,
) -> dict:
    annotations = {} if injected is None else {"oneagent.dynatrace.com/injected": injected}
    if reason and injected is not None:
        annotations["oneagent.dynatrace.com/reason"] = reason
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "uid": f"uid-{name}",
        "annotations": annotations,
        "creationTimestamp": created,
        "ownerReferences": owners or [],
    }
    meta.update(extra.pop("metadata", {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": {"phase": "Running"}, **extra}


def workload(
    kind: str, ns: str, name: str, *, annotations: dict | None = None, template: dict | None = None
) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "annotations": annotations or {}},
        "spec": {"template": {"metadata": {"annotations": template or {}}}},
    }


PLURAL = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}


def path(kind: str, ns: str, name: str) -> str:
    return f"{APPS}/{ns}/{PLURAL[kind]}/{name}"


def seed_deployment(
    api: FakeApi, ns: str, name: str, pods: int = 2, pod_kw: dict | None = None, **kw: Any
) -> str:
    spec_extra = kw.pop("spec", {})
    deployment = workload("Deployment", ns, name, **kw)
    deployment["spec"].update(spec_extra)
    api.seed(f"{APPS}/{ns}/deployments", deployment)
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{name}-5d4f8",
            "namespace": ns,
            "ownerReferences": [owner("Deployment", name)],
        },
    }
    api.seed(f"{APPS}/{ns}/replicasets", rs)
    for i in range(pods):
        api.seed(
            f"/api/v1/namespaces/{ns}/pods",
            pod(ns, f"{name}-5d4f8-{i}", [owner("ReplicaSet", f"{name}-5d4f8")], **(pod_kw or {})),
        )
    return path("Deployment", ns, name)


def seed_set(api: FakeApi, kind: str, ns: str, name: str, **kw: Any) -> str:
    api.seed(f"{APPS}/{ns}/{PLURAL[kind]}", workload(kind, ns, name, **kw))
    api.seed(f"/api/v1/namespaces/{ns}/pods", pod(ns, f"{name}-0", [owner(kind, name)]))
    return path(kind, ns, name)


NS_CREATED = "2023-11-01T09:00:00Z"  # every test namespace was mapped at creation, before the pods


def seed_namespaces(api: FakeApi, namespaces: list[dict]) -> None:
    for ns in namespaces:
        if ("/api/v1/namespaces/" + ns["metadata"]["name"]) not in api.objects:
            body = {**ns, "metadata": {**ns["metadata"], "creationTimestamp": NS_CREATED}}
            api.seed("/api/v1/namespaces", body)


class ByHand:
    """The harness's reinjector as a leader-only Runnable whose loop the test drives (no thread)."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    def start(self) -> None:
        self.harness.reinjector.start(thread=False)

    def stop(self) -> None:
        self.harness.reinjector.stop()


class Harness:
    def __init__(
        self,
        api: FakeApi | None = None,
        clock: Clock | None = None,
        store: Store | None = None,
        **config: Any,
    ) -> None:
        self.api = api or FakeApi()
        self.clock = clock or Clock()
        self.store = store or Store(WEBHOOK_NS)
        self.namespaces = [namespace("shop"), namespace("other", "another-dynakube"), namespace("plain", "")]
        self.store.replace(NAMESPACES, self.namespaces)
        seed_namespaces(self.api, self.namespaces)
        self.counted: list[tuple[str, str]] = []
        settings = {"enabled": True, **config}
        # this replica's Manager: the one Lease, stepped by hand; winning it starts ``self.reinjector``
        identity = f"replica-{id(self)}"
        self.elector = LeaderElector(self.api, WEBHOOK_NS, LEASE_NAME, identity=identity, clock=self.clock)
        self.manager = Manager(self.elector)
        self.manager.add(ByHand(self), leader=True)
        self.reinjector = Reinjector(
            self.api,
            self.store,
            Config(**settings),
            clock=self.clock,
            leading=self.manager.leading,
            identity=identity,
            on_count=lambda outcome, reason: self.counted.append((outcome, reason)),
        )

    def dynakube(self, **kw: Any) -> None:
        self.store.replace(DYNAKUBES, [dynakube(**kw)])
        self.reinjector.on_event(DYNAKUBES, "MODIFIED")

    def tick(self, advance: float = 1.0) -> None:
        """One election round, then what is due on the reinjection loop; then the clock moves."""
        self.manager.step()
        self.reinjector.loop.process()
        self.reinjector.recorder.process(final=True)  # the Events it recorded, written
        self.clock.advance(advance)

    def patches(self) -> list[str]:
        return [p for method, p in self.api.calls if method == "PATCH"]

    def pod_lists(self, ns: str = "shop") -> int:
        return self.api.calls.count(("LISTMETA", f"/api/v1/namespaces/{ns}/pods"))

    def events(self, ns: str = "shop") -> list[dict]:
        return events_in(self.api, ns)


@pytest.fixture()
def h() -> Harness:
    return Harness()


# --- which pods wait --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod_", "expected"),
    [
        (pod("shop", "a"), ["EmptyConnectionInfo"]),
        (
            pod("shop", "a", reason="EmptyTenantUUID, UnknownCodeModule"),
            ["EmptyTenantUUID", "UnknownCodeModule"],
        ),
        (pod("shop", "a", reason="EmptyConnectionInfo,SomethingElse"), ["EmptyConnectionInfo"]),
        (pod("shop", "a", reason="MissingInitSecret"), ["MissingInitSecret"]),
        (
            pod("shop", "a", reason="MountPathTaken"),
            [],
        ),  # a restart changes nothing: the pod spec is the cause
        (pod("shop", "a", injected=None), []),
        (pod("shop", "a", reason="SomethingElse"), []),
        (pod("shop", "a", reason=""), []),
        (pod("shop", "a", injected="true"), []),
        (pod("shop", "a", metadata={"deletionTimestamp": CREATED}), []),
        (pod("shop", "a", status={"phase": "Succeeded"}), []),
        (pod("shop", "a", status={"phase": "Failed"}), []),
        ({"metadata": None}, []),
        ({}, []),
    ],
)
def test_waiting_reasons(pod_, expected):
    assert waiting_reasons(pod_) == expected


# --- level-triggered restarts -----------------------------------------------------------------------------


def record_of(api: FakeApi, target: str) -> dict:
    return json.loads(api.objects[target]["metadata"]["annotations"][ANNOTATION_RESTARTS])


def test_complete_from_the_start_restarts_each_skipped_workload_once(h, caplog):
    """Scenario 1: the webhook (re)starts after the connection info became complete; the pods it skipped
    earlier are found and their workloads restarted, each once."""
    caplog.set_level("INFO", logger="webhook.controllers.reinject")
    deployment = seed_deployment(h.api, "shop", "web", pods=2)
    statefulset = seed_set(h.api, "StatefulSet", "shop", "db")
    daemonset = seed_set(h.api, "DaemonSet", "shop", "agent")
    seed_deployment(h.api, "other", "elsewhere")  # mapped to another DynaKube (absent)
    seed_deployment(h.api, "plain", "unmapped")  # mapped to none
    h.dynakube(complete=True)
    restarted_at = _rfc3339(h.clock.now)
    h.tick()

    assert sorted(h.patches()) == sorted([deployment, statefulset, daemonset])
    for target in (deployment, statefulset, daemonset):
        template = h.api.objects[target]["spec"]["template"]["metadata"]["annotations"]
        assert template == {ANNOTATION_RESTARTED_AT: restarted_at}
        assert record_of(h.api, target) == {"EmptyConnectionInfo": restarted_at}
    assert h.pod_lists("other") == 0 and h.pod_lists("plain") == 0
    assert h.reinjector.restarted == 3
    assert h.counted == [("restarted", "RolloutRestart")] * 3
    assert h.reinjector.pending() == []

    events = {e["involvedObject"]["name"]: e for e in h.events()}
    assert set(events) == {"web", "db", "agent"}
    web = events["web"]
    assert (web["reason"], web["type"]) == ("OneAgentReinjection", "Normal")
    assert web["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "namespace": "shop",
        "uid": "uid-web",
    }
    assert "web-5d4f8-0, web-5d4f8-1" in web["message"]
    assert "EmptyConnectionInfo" in web["message"]
    restarts_logged = [r for r in caplog.records if getattr(r, "outcome", "") == "restarted"]
    assert sorted(r.workload for r in restarts_logged) == [
        "DaemonSet/agent",
        "Deployment/web",
        "StatefulSet/db",
    ]

    # the old pods are still there (no kubelet here): resyncs and events find them, and restart nothing again
    for _ in range(3):
        h.dynakube(complete=True)
        h.tick(700)
    assert len(h.patches()) == 3
    assert h.pod_lists() >= 3
    assert len(h.events()) == 3  # "already restarted" is not reported again and again


def test_incomplete_then_complete(h):
    deployment = seed_deployment(h.api, "shop", "web")
    h.dynakube(complete=False)
    for _ in range(3):
        h.tick(30)
    assert h.patches() == []
    h.dynakube(complete=True)  # the watch event queues a sync: the namespace's view changed
    h.tick()
    assert h.patches() == [deployment]


def test_v1beta6_endpoints_arriving_restart_the_skipped_workload(h):
    """A DynaKube as operator v1.10.2 stores it (v1beta6: endpoints, no communicationHosts): the workload of a
    pod skipped with EmptyConnectionInfo is restarted once the endpoints are written, not before."""
    shop = namespace("shop")
    shop["metadata"]["labels"]["monitoring"] = "dynatrace"  # the fixture's namespaceSelector
    h.store.replace(NAMESPACES, [shop, *h.namespaces[1:]])
    deployment = seed_deployment(h.api, "shop", "web")
    opt_in = {FEATURE_AUTOMATIC_REINJECTION: "true"}

    def status_written(name: str) -> None:
        dynakube = load_dynakube(name)
        dynakube["metadata"]["annotations"] = opt_in
        h.store.replace(DYNAKUBES, [dynakube])
        h.reinjector.on_event(DYNAKUBES, "MODIFIED")

    status_written("v1.10.2-v1beta6-no-endpoints")
    for _ in range(3):
        h.tick(30)
    assert h.patches() == []
    restarted_at = _rfc3339(h.clock.now)
    status_written("v1.10.2-v1beta6")
    h.tick()
    assert h.patches() == [deployment]
    assert record_of(h.api, deployment) == {"EmptyConnectionInfo": restarted_at}


def test_resync_finds_what_no_event_announced(h):
    h.dynakube(complete=True)
    h.tick()
    assert h.pod_lists() == 1
    deployment = seed_deployment(h.api, "shop", "web")  # appears without any Store event
    h.tick(598)
    h.tick()
    assert h.patches() == []
    h.tick()  # 600 s after the first scan: the resync
    assert h.patches() == [deployment]
    assert h.pod_lists() == 2


def test_not_opted_in_restarts_nothing(h):
    seed_deployment(h.api, "shop", "web")
    h.dynakube(complete=True, opted_in=False)
    for _ in range(3):
        h.tick(30)
    assert h.patches() == []
    assert h.reinjector.pending() == []  # skipped pods are the admission's Events' business
    assert h.events() == []


def test_nothing_before_the_store_has_synced():
    h = Harness(store=Store(WEBHOOK_NS))
    h.store._synced[NAMESPACES] = False
    seed_deployment(h.api, "shop", "web")
    h.store.upsert(DYNAKUBES, dynakube(complete=True))  # not a full list: still unsynced
    h.tick()
    h.tick()
    assert h.patches() == [] and h.pod_lists() == 0
    h.store.replace(NAMESPACES, h.namespaces)
    h.store.replace(DYNAKUBES, [dynakube(complete=True)])
    h.tick()
    assert len(h.patches()) == 1


def test_restart_record_survives_a_webhook_restart():
    api, clock = FakeApi(), Clock()
    first = Harness(api, clock)
    deployment = seed_deployment(api, "shop", "web")
    first.dynakube(complete=True)
    first.tick()
    assert first.patches() == [deployment]
    first.manager.stop()  # releases the Lease

    second = Harness(api, clock)  # a new process: nothing in memory
    second.dynakube(complete=True)
    second.tick()
    second.tick(700)
    assert second.manager.leader
    assert api.calls.count(("PATCH", deployment)) == 1
    assert second.reinjector.skipped == {"AlreadyRestarted": 1}


def test_a_new_outage_restarts_again_but_not_within_the_cooldown(h):
    deployment = seed_deployment(h.api, "shop", "web")
    h.dynakube(complete=True)
    h.tick()
    assert h.patches() == [deployment]
    first = h.clock.now - 1

    # a pod admitted without OneAgent after that restart: a new cause, but within the cooldown
    h.api.seed(
        "/api/v1/namespaces/shop/pods",
        pod("shop", "web-77aa1-0", [owner("ReplicaSet", "web-5d4f8")], created=_rfc3339(h.clock.now)),
    )
    h.tick(60)
    h.dynakube(complete=True)
    h.reinjector.loop.add("resync")
    h.tick()
    assert h.patches() == [deployment]
    assert h.reinjector.skipped == {"Cooldown": 1}
    assert h.reinjector.pending()[0]["state"] == "queued"
    h.clock.now = first + 600
    h.tick()
    assert h.patches() == [deployment, deployment]
    assert record_of(h.api, deployment) == {"EmptyConnectionInfo": _rfc3339(first + 600)}


def test_losing_connection_info_stops_queued_restarts():
    h = Harness(rate_per_minute=1)
    seed_deployment(h.api, "shop", "a")
    seed_deployment(h.api, "shop", "b")
    h.dynakube(complete=True)
    h.tick()
    assert len(h.patches()) == 1
    assert [p["owner"] for p in h.reinjector.pending()] == ["Deployment/b", "Deployment/b"]
    h.dynakube(complete=False)
    h.tick(120)
    h.tick()
    assert len(h.patches()) == 1
    assert h.reinjector.pending() == []  # the rescan finds nothing restartable while incomplete


# --- init Secrets -----------------------------------------------------------------------------------------


class SecretStore(Store):
    """A Store that tracks init Secrets, as the webhook's does once it watches them."""

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.present: dict[str, set[str]] = {}
        self.last_event.update(
            dict.fromkeys(("init-config-secrets", "init-endpoint-secrets", "replicasets"), 0.0)
        )

    def init_secrets(self, namespace: str) -> frozenset[str]:
        return frozenset(self.present.get(namespace, set()))


def test_missing_init_secret_restarts_once_the_secret_is_there():
    store = SecretStore(WEBHOOK_NS)
    h = Harness(store=store)
    triggers = {
        DYNAKUBES,
        NAMESPACES,
        "init-config-secrets",
        "init-endpoint-secrets",
        "bootstrapper-config-secrets",  # the v1.10 contract's
        "bootstrapper-certs-secrets",
        "otlp-exporter-config-secrets",  # the OTLP exporter's
        "otlp-exporter-certs-secrets",
    }
    assert Reinjector(h.api, store, Config()).triggers == triggers
    # the Store keeps the init Secrets itself: they trigger, its other caches (owners, inputs, Secrets) do not
    assert Reinjector(h.api, Store(WEBHOOK_NS), Config()).triggers == triggers
    reinjector = Reinjector(h.api, store, Config(enabled=True), clock=h.clock)
    h.reinjector = reinjector
    deployment = seed_deployment(h.api, "shop", "web", pod_kw={"reason": "MissingInitSecret"})
    h.dynakube(complete=True)
    h.tick()
    assert h.patches() == []
    store.present["shop"] = {"dynatrace-dynakube-config"}
    reinjector.on_event("replicasets", "ADDED")  # not a trigger: nothing happens
    h.tick()
    assert h.patches() == []
    reinjector.on_event("init-config-secrets", "ADDED")
    h.tick()
    assert h.patches() == [deployment]
    assert record_of(h.api, deployment) == {"MissingInitSecret": _rfc3339(h.clock.now - 1)}


@pytest.mark.parametrize(
    ("reason", "restarted"),
    [
        ("MissingInitSecret", True),  # the webhook's own cause: restarted without the DynaKube's opt-in
        ("EmptyConnectionInfo", False),  # the network zone's: the opt-in decides
        ("MissingInitSecret, EmptyConnectionInfo", False),  # not the webhook's alone
    ],
)
def test_a_cause_the_webhook_owns_is_restarted_without_the_opt_in(reason, restarted):
    store = SecretStore(WEBHOOK_NS)
    h = Harness(store=store)
    deployment = seed_deployment(h.api, "shop", "web", pod_kw={"reason": reason})
    h.dynakube(complete=True, opted_in=False)
    h.tick()
    assert h.patches() == []  # the init Secret is not there yet
    store.present["shop"] = {"dynatrace-dynakube-config"}
    h.reinjector.on_event("init-config-secrets", "ADDED")
    h.tick()
    h.tick()
    assert h.patches() == ([deployment] if restarted else [])
    if restarted:
        assert list(record_of(h.api, deployment)) == ["MissingInitSecret"]


# --- pods never seen by the webhook -----------------------------------------------------------------------


def test_missed_pods_are_reported_and_their_workloads_restarted(h):
    """Scenario 2: pods created while no webhook answered carry no injection annotation."""
    deployment = seed_deployment(h.api, "shop", "web", pods=2, pod_kw={"injected": None})
    ns = "/api/v1/namespaces/shop/pods"
    h.api.seed(ns, pod("shop", "batch-x1", [owner("Job", "batch", "batch/v1")], injected=None))
    h.api.seed(ns, pod("shop", "lonely", injected=None))
    h.api.seed(
        ns,
        pod("shop", "opted-out", injected=None, metadata={"annotations": {"dynatrace.com/inject": "false"}}),
    )
    h.api.seed(ns, pod("shop", "old", injected=None, created="2023-11-01T08:00:00Z"))  # before the mapping
    h.api.seed(ns, pod("shop", "done", injected=None, status={"phase": "Succeeded"}))
    h.dynakube(complete=True)
    h.tick()

    assert h.reinjector.missed() == {("shop", DK): 4}
    assert h.patches() == [deployment]
    assert record_of(h.api, deployment) == {"NotSeenByWebhook": _rfc3339(h.clock.now - 1)}
    by_name = {e["involvedObject"]["name"]: e for e in h.events()}
    assert set(by_name) == {"web", "batch", "lonely"}
    assert by_name["web"]["reason"] == "OneAgentReinjection"
    assert "never seen by the webhook" in by_name["web"]["message"]
    for name in ("batch", "lonely"):
        assert (by_name[name]["reason"], by_name[name]["type"]) == ("OneAgentReinjectionSkipped", "Normal")
    assert by_name["batch"]["involvedObject"]["kind"] == "Job"
    assert ("reported", "NotSeenByWebhook") not in h.counted  # restarted, not only reported
    assert ("skipped", "JobPod") in h.counted and ("skipped", "BarePod") in h.counted
    pending = {p["pod"]: (p["owner"], p["state"], p["causes"]) for p in h.reinjector.pending()}
    assert pending == {
        "batch-x1": ("Job/batch", "manual", ["NotSeenByWebhook"]),
        "lonely": ("Pod/lonely", "manual", ["NotSeenByWebhook"]),
    }


def test_missed_pods_without_opt_in_are_reported_only():
    h = Harness()
    seed_deployment(h.api, "shop", "web", pods=3, pod_kw={"injected": None})
    h.dynakube(complete=True, opted_in=False)
    h.tick()
    h.tick(700)
    assert h.patches() == []
    assert h.reinjector.missed() == {("shop", DK): 3}
    assert h.reinjector.pending_count() == 3
    (event,) = h.events()
    assert (event["reason"], event["type"]) == ("PodsNotSeenByWebhook", "Warning")
    assert (
        "created after namespace shop was mapped to DynaKube dynakube (at 2023-11-01T09:00:00Z)"
        in event["message"]
    )
    assert "feature.dynatrace.com/automatic-reinjection=true" in event["message"]
    assert h.counted == [("reported", "NotSeenByWebhook")]


def test_missed_pods_wait_for_connection_info():
    h = Harness()
    deployment = seed_deployment(h.api, "shop", "web", pods=1, pod_kw={"injected": None})
    h.dynakube(complete=False)
    h.tick()
    assert h.patches() == []
    assert h.reinjector.pending()[0]["state"] == "waiting"
    assert "once DynaKube dynakube's connection info is complete" in h.events()[0]["message"]
    h.dynakube(complete=True)
    h.tick()
    assert h.patches() == [deployment]


def test_missed_pods_of_an_unselected_namespace_or_a_mode_without_injection_are_not_reported(h):
    seed_deployment(h.api, "shop", "web", pods=1, pod_kw={"injected": None})
    obj = dynakube(complete=True)
    obj["spec"]["oneAgent"] = {"cloudNativeFullStack": {"namespaceSelector": {"matchLabels": {"x": "y"}}}}
    h.store.replace(DYNAKUBES, [obj])
    h.tick()
    assert h.reinjector.missed() == {} and h.events() == []
    obj["spec"]["oneAgent"] = {"classicFullStack": {}}
    h.store.replace(DYNAKUBES, [obj])
    h.reinjector.on_event(DYNAKUBES, "MODIFIED")
    h.tick()
    assert h.reinjector.missed() == {} and h.patches() == []


def mount_path_taken_annotations(enrichment: bool) -> dict[str, str]:
    """What /inject writes on a pod whose every container already mounts something else at a path the
    injection needs (the decision itself, not a copy of its output)."""
    obj = dynakube(complete=True)
    if enrichment:
        obj["spec"]["metadataEnrichment"] = {"enabled": True}
    taken = {"name": "mine", "mountPath": "/etc/ld.so.preload"}
    spec = {"containers": [{"name": "app", "image": "a", "volumeMounts": [taken]}]}
    result = pods.decide(
        {"metadata": {"namespace": "shop"}, "spec": spec},
        namespace("shop"),
        obj,
        SETTINGS,
        namespace_name="shop",
    )
    assert result.reasons == ("MountPathTaken",)
    (op,) = result.ops
    return op["value"]


@pytest.mark.parametrize("enrichment", [False, True])
def test_pods_left_out_for_a_taken_mount_path_are_neither_missed_nor_restarted(h, enrichment):
    """Restarting changes nothing (the pod template is the cause), and the pod says why it was left out: not
    a pod the webhook never saw."""
    annotations = mount_path_taken_annotations(enrichment)
    assert annotations["oneagent.dynatrace.com/reason"] == "MountPathTaken"
    seed_deployment(
        h.api, "shop", "web", pods=2, pod_kw={"injected": None, "metadata": {"annotations": annotations}}
    )
    h.dynakube(complete=True)
    h.tick()
    h.tick(700)
    assert h.patches() == []
    assert h.reinjector.missed() == {} and h.reinjector.pending_count() == 0
    assert h.events() == [] and h.counted == []


@pytest.mark.parametrize(
    ("namespace_meta", "expected"),
    [
        ({"creationTimestamp": "2023-11-01T09:00:00Z"}, "2023-11-01T09:00:00+00:00"),
        (
            {
                "creationTimestamp": "2023-11-01T09:00:00Z",
                "managedFields": [
                    {"manager": "kubectl", "time": "2023-11-01T09:00:00Z", "fieldsV1": {"f:metadata": {}}},
                    {
                        "manager": "dynatrace-webhook",
                        "time": "2023-11-02T10:00:00Z",
                        "fieldsV1": {
                            "f:metadata": {"f:labels": {"f:dynakube.internal.dynatrace.com/instance": {}}}
                        },
                    },
                ],
            },
            "2023-11-02T10:00:00+00:00",
        ),
        ({"managedFields": "garbage"}, None),
        ({}, None),
    ],
)
def test_mapped_since(namespace_meta, expected):
    found = mapped_since({"metadata": namespace_meta})
    assert (found.isoformat() if found else None) == expected


def test_pod_created_before_a_later_mapping_is_not_missed():
    api = FakeApi()
    h = Harness(api)
    ns = api.objects["/api/v1/namespaces/shop"]
    ns["metadata"]["managedFields"] = [
        {
            "manager": "relabel",
            "time": "2023-11-01T11:00:00Z",  # after CREATED: the label came later than the pods
            "fieldsV1": {"f:metadata": {"f:labels": {"f:dynakube.internal.dynatrace.com/instance": {}}}},
        }
    ]
    seed_deployment(api, "shop", "web", pods=1, pod_kw={"injected": None})
    h.dynakube(complete=True)
    h.tick()
    assert h.reinjector.missed() == {} and h.patches() == []


# --- paging -----------------------------------------------------------------------------------------------


def test_scan_reads_metadata_pages_and_restarts_the_list_on_410():
    h = Harness(page_size=2)
    deployment = seed_deployment(h.api, "shop", "web", pods=5)
    original = h.api.list_metadata_page
    pages: list[int] = []

    def flaky(path, *, limit, continue_token="", field_selector=""):
        items, token = original(
            path, limit=limit, continue_token=continue_token, field_selector=field_selector
        )
        pages.append(len(items))
        assert all(set(i) == {"apiVersion", "kind", "metadata"} for i in items)
        if len(pages) == 2:
            h.api.compact()  # the first token is now too old: the next page is 410 Gone
        return items, token

    h.api.list_metadata_page = flaky  # type: ignore[method-assign]
    h.dynakube(complete=True)
    h.tick()
    assert pages == [2, 2, 2, 2, 1]  # two pages, 410, then three pages from the start
    assert h.patches() == [deployment]
    assert h.reinjector.pending_count() == 0
    events = h.events()
    assert "web-5d4f8-0, web-5d4f8-1, web-5d4f8-2, web-5d4f8-3, web-5d4f8-4" in events[0]["message"]


def test_failed_pod_list_is_retried_later():
    h = Harness(retry_delay=30)
    web = seed_deployment(h.api, "shop", "web")
    h.api.script("LISTMETA", "/api/v1/namespaces/shop/pods", ApiError(503, "unavailable"))
    h.dynakube(complete=True)
    h.tick()
    assert h.patches() == []
    assert h.counted == [("failed", "ListPods")]
    h.tick(29)
    assert h.patches() == []
    h.tick()
    assert h.patches() == [web]


# --- opting out, dry run, owners --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [{"annotations": {ANNOTATION_OPT_OUT: "false"}}, {"template": {ANNOTATION_OPT_OUT: "False"}}],
    ids=["workload", "pod-template"],
)
def test_opted_out_workload_is_reported_not_touched(h, where):
    seed_deployment(h.api, "shop", "web", **where)
    h.dynakube(complete=True)
    h.tick()
    h.tick(700)
    assert h.patches() == []
    assert h.reinjector.skipped == {"OptOut": 1}
    (event,) = h.events()
    assert event["reason"] == "OneAgentReinjectionSkipped"
    assert ANNOTATION_OPT_OUT in event["message"]
    assert [(p["pod"], p["state"], p["detail"]) for p in h.reinjector.pending()] == [
        ("web-5d4f8-0", "manual", "OptOut"),
        ("web-5d4f8-1", "manual", "OptOut"),
    ]


def test_paused_deployment_is_reported_not_touched(h):
    seed_deployment(h.api, "shop", "web", spec={"paused": True})
    h.dynakube(complete=True)
    h.tick()
    assert h.patches() == []
    assert h.reinjector.skipped == {"Paused": 1}
    assert "paused" in h.events()[0]["message"]


def test_installation_flag_off_does_nothing_at_all():
    h = Harness(enabled=False)
    seed_deployment(h.api, "shop", "web")
    calls = len(h.api.calls)
    h.dynakube(complete=True)
    h.reinjector.start()
    h.reinjector.tick()
    h.reinjector.stop()
    assert h.api.calls[calls:] == []
    assert h.reinjector.loop.thread is None


def test_dry_run_changes_nothing_but_reports():
    h = Harness(dry_run=True)
    seed_deployment(h.api, "shop", "web")
    seed_set(h.api, "StatefulSet", "shop", "db")
    h.dynakube(complete=True)
    for _ in range(3):
        h.tick(700)
    assert [c for c in h.api.calls if c[0] in ("PATCH", "PUT") and "/leases/" not in c[1]] == []
    assert h.reinjector.skipped == {"DryRun": 2}
    assert h.reinjector.restarted == 0
    assert {
        e["involvedObject"]["name"]: e["message"].startswith("Dry run: would restart") for e in h.events()
    } == {
        "web": True,
        "db": True,
    }
    assert {p["state"] for p in h.reinjector.pending()} == {"dry-run"}


def test_job_bare_and_unsupported_owners_are_reported_not_touched(h):
    ns = "/api/v1/namespaces/shop/pods"
    h.api.seed(ns, pod("shop", "migrate-x1", [owner("Job", "migrate", "batch/v1")]))
    h.api.seed(ns, pod("shop", "debug"))
    h.api.seed(f"{APPS}/shop/replicasets", {"metadata": {"name": "lonely", "namespace": "shop"}})
    h.api.seed(ns, pod("shop", "lonely-1", [owner("ReplicaSet", "lonely")]))
    h.api.seed(ns, pod("shop", "lonely-2", [owner("ReplicaSet", "lonely")]))
    h.api.seed(ns, pod("shop", "gone-1", [owner("ReplicaSet", "gone")]))  # its ReplicaSet no longer exists
    h.api.seed(ns, pod("shop", "canary-1", [owner("Rollout", "canary", "argoproj.io/v1alpha1")]))
    h.api.seed(ns, pod("shop", "not-controlled", [{**owner("Job", "x", "batch/v1"), "controller": False}]))
    h.dynakube(complete=True)
    h.tick()
    h.tick(700)

    assert h.patches() == []
    assert h.reinjector.skipped == {"JobPod": 1, "BarePod": 2, "UnsupportedOwner": 2, "OwnerNotFound": 1}
    involved = sorted((e["involvedObject"]["kind"], e["involvedObject"]["name"]) for e in h.events())
    assert involved == [
        ("Job", "migrate"),
        ("Pod", "debug"),
        ("Pod", "not-controlled"),
        ("ReplicaSet", "gone"),
        ("ReplicaSet", "lonely"),
        ("Rollout", "canary"),
    ]
    job_event = next(e for e in h.events() if e["involvedObject"]["kind"] == "Job")
    assert job_event["involvedObject"]["apiVersion"] == "batch/v1"
    assert "re-create the Job" in job_event["message"]
    assert h.api.calls.count(("GET", f"{APPS}/shop/replicasets/lonely")) == 1  # once per scan, two pods


# --- rate limit -------------------------------------------------------------------------------------------


def test_rate_limit_spreads_restarts_over_time():
    h = Harness(rate_per_minute=2)
    for name in "abcde":
        seed_deployment(h.api, "shop", name, pods=1)
    h.dynakube(complete=True)
    h.tick()  # a full bucket: a and b at once
    assert len(h.patches()) == 2
    assert [p["owner"] for p in h.reinjector.pending()] == ["Deployment/c", "Deployment/d", "Deployment/e"]
    for _ in range(28):  # up to 29 s after the burst: no token yet
        h.tick()
    assert len(h.patches()) == 2
    h.tick()
    h.tick()  # 30 s after the burst: one token
    assert len(h.patches()) == 3
    h.tick(60)
    h.tick()  # a minute later: two tokens (the bucket holds at most two)
    assert len(h.patches()) == 5
    assert sorted(p.rsplit("/", 1)[1] for p in h.patches()) == list("abcde")
    assert h.reinjector.pending() == []


def test_token_bucket():
    clock = Clock()
    bucket = TokenBucket(3, clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time() == pytest.approx(20)
    clock.advance(20)
    assert bucket.take() is True


@pytest.mark.parametrize(("field", "value"), [("rate_per_minute", 0), ("rate_per_minute", -1), ("resync", 0)])
def test_config_must_be_positive(field, value):
    with pytest.raises(ValueError, match="must be a positive number"):
        Config(enabled=True, **{field: value})


# --- leadership and races ---------------------------------------------------------------------------------


def test_only_the_leader_scans_and_a_follower_takes_over_without_restarting_twice():
    api, clock = FakeApi(), Clock()
    a = Harness(api, clock, rate_per_minute=1)
    b = Harness(api, clock, rate_per_minute=1)
    first = seed_deployment(api, "shop", "first")
    second = seed_deployment(api, "shop", "second")
    for h in (a, b):
        h.dynakube(complete=True)
    a.tick(0)
    b.tick()
    assert a.reinjector.leader and not b.reinjector.leader
    assert api.objects[LEASE]["spec"]["holderIdentity"] == a.elector.identity
    assert a.patches() == [first]  # one token a minute
    assert a.pod_lists() == 1  # only a scanned

    # a dies without releasing the Lease; b takes over once it has expired on b's clock
    for _ in range(10):
        b.tick(2)
    assert b.reinjector.leader
    a.tick(0)  # a comes back as a follower: what it found is the new leader's to report now
    assert not a.reinjector.leader and a.reinjector.pending() == [] and a.reinjector.missed() == {}
    b.tick(60)
    b.tick()
    assert a.patches() == [first, second]  # every PATCH on the shared API, by either replica
    assert b.reinjector.restarted == 1
    assert b.reinjector.skipped == {"AlreadyRestarted": 1}
    assert api.objects[LEASE]["spec"]["leaseTransitions"] == 1


def test_two_replicas_racing_restart_once():
    api, clock = FakeApi(), Clock()
    deployment = seed_deployment(api, "shop", "web")
    replicas = []
    for name in ("a", "b"):
        h = Harness(api, clock)
        # both believe they lead (a Lease handover seen late): only the write decides
        h.reinjector = Reinjector(api, h.store, Config(enabled=True), clock=clock, identity=name)
        h.dynakube(complete=True)
        replicas.append(h)
    a, b = replicas

    class Interleaved(FakeApi):
        """b reads the Deployment, then a restarts it before b writes."""

    raced = {"done": False}
    original_get = api.get

    def get(path: str) -> dict:
        obj = original_get(path)
        if path == deployment and not raced["done"]:
            raced["done"] = True
            a.reinjector.tick()  # a: GET, PATCH (its own GET is not interleaved again)
        return obj

    b.reinjector.api = api
    api.get = get  # type: ignore[method-assign]
    b.reinjector.tick()
    assert api.calls.count(("PATCH", deployment)) == 2  # a's lands, b's stale one is refused (409)
    assert a.reinjector.restarted == 1
    assert b.reinjector.restarted == 0
    assert b.reinjector.skipped == {"Conflict": 1, "AlreadyRestarted": 1}
    assert record_of(api, deployment) == {"EmptyConnectionInfo": _rfc3339(clock.now)}


def test_follower_does_not_touch_the_api_beyond_the_lease():
    api, clock = FakeApi(), Clock()
    a, b = Harness(api, clock), Harness(api, clock)
    a.tick(0)  # a leads
    seed_deployment(api, "shop", "web")
    calls = len(api.calls)
    b.dynakube(complete=True)
    for _ in range(3):
        b.tick()
    assert {p for _, p in api.calls[calls:]} == {LEASE}


def test_the_manager_starts_the_reinjector_on_winning_the_lease_and_releases_it_on_stop():
    h = Harness(interval=0.01)
    h.reinjector.clock = h.reinjector.loop.clock = time.time
    assert h.reinjector.loop.limiter is not None
    h.reinjector.loop.limiter.clock = time.time
    h.elector.clock = time.time
    h.manager = Manager(h.elector)
    h.manager.add(h.reinjector, leader=True)  # the real Runnable: its loop runs in a thread
    h.reinjector.leading = h.manager.leading
    h.dynakube(complete=True)
    h.manager.start()
    deadline = time.monotonic() + 5
    while not h.reinjector.leader and time.monotonic() < deadline:
        time.sleep(0.01)
    assert h.reinjector.leader
    h.manager.stop()
    assert not h.reinjector.leader and h.reinjector.loop.thread is None
    assert h.api.objects[LEASE]["spec"]["holderIdentity"] == ""


# --- failures ---------------------------------------------------------------------------------------------


def test_failed_restart_is_retried_then_given_up():
    h = Harness(max_attempts=2, retry_delay=30)
    web = seed_deployment(h.api, "shop", "web")
    h.api.script("PATCH", web, ApiError(500, "etcd timeout"))
    h.dynakube(complete=True)
    h.tick()
    assert h.reinjector.failed == 1
    assert h.reinjector.pending()[0]["state"] == "queued"
    assert "etcd timeout" in h.reinjector.pending()[0]["detail"]
    h.tick(29)
    h.tick()
    assert h.reinjector.restarted == 1
    assert h.counted == [("failed", "Patch"), ("restarted", "RolloutRestart")]

    h2 = Harness(max_attempts=2, retry_delay=30)
    web = seed_deployment(h2.api, "shop", "web")
    h2.api.script("PATCH", web, ApiError(500, "etcd timeout"), ApiError(403, "forbidden"))
    h2.dynakube(complete=True)
    h2.tick(30)
    h2.tick(300)
    assert h2.reinjector.failed == 2
    assert h2.reinjector.restarted == 0
    (event,) = h2.events()
    assert (event["type"], event["reason"]) == ("Warning", "OneAgentReinjectionFailed")
    assert "kubectl rollout restart" in event["message"]
    assert {p["state"] for p in h2.reinjector.pending()} == {"manual"}


def test_failed_event_does_not_stop_the_restart(h):
    web = seed_deployment(h.api, "shop", "web")
    h.api.script("POST", collection("shop"), ApiError(403, "forbidden"))
    h.dynakube(complete=True)
    h.tick()
    assert h.patches() == [web]
    assert h.reinjector.restarted == 1


# --- the verdict: should this workload be restarted, and was it already -----------------------------------

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def waiting_work(
    *created: str, kind: str = "Deployment", causes: tuple[str, ...] = ("EmptyConnectionInfo",)
) -> Work:
    work = Work(DK, "shop", kind, "web", "apps/v1")
    for i, at in enumerate(created):
        work.add_pod(f"web-{i}", list(causes), at)
    return work


def recorded(**causes: str) -> dict:
    return {ANNOTATION_RESTARTS: json.dumps(causes)}


@pytest.mark.parametrize(
    ("obj", "created", "causes", "verdict"),
    [
        (workload("Deployment", "shop", "web"), [CREATED], ("EmptyConnectionInfo",), None),
        (
            workload("Deployment", "shop", "web", annotations={ANNOTATION_OPT_OUT: "false"}),
            [CREATED],
            ("EmptyConnectionInfo",),
            "OptOut",
        ),
        (
            workload("Deployment", "shop", "web", template={ANNOTATION_OPT_OUT: " False "}),
            [CREATED],
            ("EmptyConnectionInfo",),
            "OptOut",
        ),
        (
            {**workload("Deployment", "shop", "web"), "spec": {"paused": True}},
            [CREATED],
            ("EmptyConnectionInfo",),
            "Paused",
        ),
        # restarted for this cause after the newest waiting pod was created: once is enough
        (
            workload(
                "Deployment", "shop", "web", annotations=recorded(EmptyConnectionInfo="2023-11-01T10:05:00Z")
            ),
            [CREATED, "2023-11-01T10:04:59Z"],
            ("EmptyConnectionInfo",),
            "AlreadyRestarted",
        ),
        # restarted for another cause only: this one is still due
        (
            workload(
                "Deployment", "shop", "web", annotations=recorded(NotSeenByWebhook="2023-11-01T10:05:00Z")
            ),
            [CREATED],
            ("EmptyConnectionInfo",),
            None,
        ),
        # a pod of this cause created after the recorded restart: a new outage, long enough ago
        (
            workload(
                "Deployment", "shop", "web", annotations=recorded(EmptyConnectionInfo="2023-11-01T10:05:00Z")
            ),
            [CREATED, "2023-11-01T10:06:00Z"],
            ("EmptyConnectionInfo",),
            None,
        ),
        # created in the second of the restart: maybe the rollout's own pod, so not covered by it
        (
            workload(
                "Deployment", "shop", "web", annotations=recorded(EmptyConnectionInfo="2023-11-01T10:05:00Z")
            ),
            ["2023-11-01T10:05:00Z"],
            ("EmptyConnectionInfo",),
            None,
        ),
        (
            workload("Deployment", "shop", "web", template={ANNOTATION_RESTARTED_AT: "2023-11-01T10:05:00Z"}),
            ["2023-11-01T10:05:00Z"],
            ("NotSeenByWebhook",),
            None,
        ),
        # ... but the last restart for it was less than the cooldown ago
        (
            workload(
                "Deployment", "shop", "web", annotations=recorded(EmptyConnectionInfo="2023-11-14T22:10:00Z")
            ),
            ["2023-11-14T22:11:00Z"],
            ("EmptyConnectionInfo",),
            "Cooldown",
        ),
        # restarted by anyone (kubectl rollout restart) after every waiting pod was created
        (
            workload("Deployment", "shop", "web", template={ANNOTATION_RESTARTED_AT: "2023-11-01T10:05:00Z"}),
            [CREATED, "2023-11-01T10:04:59Z"],
            ("NotSeenByWebhook",),
            "RolloutInProgress",
        ),
        (
            workload("Deployment", "shop", "web", template={ANNOTATION_RESTARTED_AT: "2023-11-01T10:05:00Z"}),
            [CREATED, "2023-11-01T10:06:00Z"],
            ("NotSeenByWebhook",),
            None,
        ),
        # unreadable times never count as handled
        (
            workload("Deployment", "shop", "web", template={ANNOTATION_RESTARTED_AT: "2023-11-01T10:05:00Z"}),
            ["yesterday"],
            ("EmptyConnectionInfo",),
            None,
        ),
        (
            workload("Deployment", "shop", "web", annotations={ANNOTATION_RESTARTS: "{not json"}),
            [CREATED],
            ("EmptyConnectionInfo",),
            None,
        ),
        ({"metadata": "garbage", "spec": ["garbage"]}, [CREATED], ("EmptyConnectionInfo",), None),
        (
            workload("StatefulSet", "shop", "web"),
            [CREATED],
            ("EmptyConnectionInfo", "NotSeenByWebhook"),
            None,
        ),
    ],
)
def test_restart_verdict(obj, created, causes, verdict):
    result = restart_verdict(waiting_work(*created, causes=causes), obj, NOW, cooldown=600)
    assert (result.reason if result else None) == verdict


def test_cooldown_says_when_the_restart_may_be_made():
    obj = workload(
        "Deployment", "shop", "web", annotations=recorded(EmptyConnectionInfo="2023-11-14T22:10:00Z")
    )
    result = restart_verdict(waiting_work("2023-11-14T22:11:00Z"), obj, NOW, cooldown=600)
    assert result is not None and result.retry_at == pytest.approx(1_699_999_800.0 + 600)
    assert restart_verdict(waiting_work("2023-11-14T22:11:00Z"), obj, NOW, cooldown=0) is None


def test_restart_record_reads_tolerantly():
    assert (
        restarts(
            workload("Deployment", "shop", "web", annotations=recorded(A="2023-11-01T10:00:00Z", B="x"))
        )["A"].isoformat()
        == "2023-11-01T10:00:00+00:00"
    )
    assert restarts({"metadata": {"annotations": {ANNOTATION_RESTARTS: "[1, 2]"}}}) == {}
    assert restarts({}) == {}


def test_nothing_is_scanned_before_the_webhook_has_served_for_the_grace():
    h = Harness()
    serving = {"now": False}
    h.reinjector = Reinjector(
        h.api, h.store, Config(enabled=True), clock=h.clock, ready=lambda: serving["now"]
    )
    deployment = seed_deployment(h.api, "shop", "web")
    h.dynakube(complete=True)
    for _ in range(5):
        h.tick()
    assert h.reinjector.leader and h.pod_lists() == 0
    serving["now"] = True
    for _ in range(9):
        h.tick()
    assert h.pod_lists() == 0  # serving for 9 s of the 10 s grace
    h.tick()
    h.tick()
    assert h.patches() == [deployment]


def test_a_namespace_event_rechecks_that_namespace_only(h):
    """Events map to the keys they affect: a namespace's event (or an init Secret's) re-checks that
    namespace's view, a DynaKube's event every namespace's (in memory)."""
    seed_deployment(h.api, "shop", "web")
    h.dynakube(complete=True, opted_in=False)
    h.tick()
    scans = h.reinjector.scans
    shop = namespace("shop")
    h.reinjector.on_event(NAMESPACES, "MODIFIED", shop)
    h.reinjector.on_event("init-config-secrets", "ADDED", {"metadata": {"name": "x", "namespace": "other"}})
    assert set(h.reinjector.loop.queued()) >= {("view", "shop"), ("view", "other")}
    assert "sync" not in h.reinjector.loop.queued()
    h.tick()
    assert h.reinjector.scans == scans  # the views did not change: nothing is read again
    shop["metadata"]["labels"]["team"] = "a"
    h.store.replace(NAMESPACES, [shop, *h.namespaces[1:]])
    h.reinjector.on_event(NAMESPACES, "MODIFIED", shop)
    h.tick()
    assert h.reinjector.scans == scans + 1
    h.reinjector.on_event(DYNAKUBES, "MODIFIED", {"metadata": {"name": DK}})
    assert "sync" in h.reinjector.loop.queued()


def test_no_bootstrapper_config_is_a_cause_the_webhook_owns():
    """v1.10 writes NoBootstrapperConfig on dynakube.dynatrace.com/*: the pod waits for a restart, without the
    DynaKube's opt-in, once the Secret (or its source) is there."""
    from webhook.controllers.reinject.scan import would_inject_now
    from webhook.controllers.reinject.verdict import may_restart, waiting_reasons

    pod = {
        "metadata": {
            "annotations": {
                "dynakube.dynatrace.com/injected": "false",
                "dynakube.dynatrace.com/reason": "NoBootstrapperConfig",
            }
        }
    }
    assert waiting_reasons(pod) == ["NoBootstrapperConfig"]
    dynakube = {
        "metadata": {"name": "dk"},
        "status": {
            "oneAgent": {"connectionInfoStatus": {"tenantUUID": "t", "endpoints": "https://e"}},
            "codeModules": {"version": "1"},
        },
    }
    assert may_restart(dynakube, ["NoBootstrapperConfig"])
    assert would_inject_now(dynakube, frozenset({"dynatrace-bootstrapper-config"}))
    assert not would_inject_now(dynakube, frozenset())
