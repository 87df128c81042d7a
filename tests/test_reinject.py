"""Automatic reinjection against the in-memory API: transitions, owners, rate limit, leadership, opt-outs."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fakeapi import FakeApi
from tests.test_leader import Clock
from webhook.controllers.leader import lease_path
from webhook.controllers.loop import TokenBucket
from webhook.controllers.reinject import Reinjector
from webhook.controllers.workloads import (
    ANNOTATION_OPT_OUT,
    ANNOTATION_RESTARTED_AT,
    DEFAULT_LEASE_NAME,
    FEATURE_AUTOMATIC_REINJECTION,
    Config,
    Work,
    _rfc3339,
    restart_verdict,
    waiting_reasons,
)
from webhook.kubeapi import ApiError
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

WEBHOOK_NS = "dynatrace"
DK = "dynakube"
APPS = "/apis/apps/v1/namespaces"
CREATED = "2023-11-01T10:00:00Z"  # before every clock in these tests
LEASE = lease_path(WEBHOOK_NS, DEFAULT_LEASE_NAME)


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
    injected: str = "false",
    created: str = CREATED,
    **extra: Any,
) -> dict:
    annotations = {"oneagent.dynatrace.com/injected": injected}
    if reason:
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


def seed_deployment(api: FakeApi, ns: str, name: str, pods: int = 2, **kw: Any) -> str:
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
            pod(ns, f"{name}-5d4f8-{i}", [owner("ReplicaSet", f"{name}-5d4f8")]),
        )
    return path("Deployment", ns, name)


def seed_set(api: FakeApi, kind: str, ns: str, name: str, **kw: Any) -> str:
    api.seed(f"{APPS}/{ns}/{PLURAL[kind]}", workload(kind, ns, name, **kw))
    api.seed(f"/api/v1/namespaces/{ns}/pods", pod(ns, f"{name}-0", [owner(kind, name)]))
    return path(kind, ns, name)


class Harness:
    def __init__(self, api: FakeApi | None = None, clock: Clock | None = None, **config: Any) -> None:
        self.api = api or FakeApi()
        self.clock = clock or Clock()
        self.store = Store(WEBHOOK_NS)
        self.namespaces = [namespace("shop"), namespace("other", "another-dynakube"), namespace("plain", "")]
        self.store.replace(NAMESPACES, self.namespaces)
        self.counted: list[tuple[str, str]] = []
        settings = {"enabled": True, **config}
        self.reinjector = Reinjector(
            self.api,
            self.store,
            Config(**settings),
            clock=self.clock,
            identity=f"replica-{id(self)}",
            on_count=lambda outcome, reason: self.counted.append((outcome, reason)),
        )

    def dynakube(self, **kw: Any) -> None:
        self.store.replace(DYNAKUBES, [dynakube(**kw)])

    def tick(self, advance: float = 1.0) -> None:
        self.reinjector.tick()
        self.clock.advance(advance)

    def transition(self, **kw: Any) -> None:
        self.dynakube(complete=False, **kw)
        self.tick()
        self.dynakube(complete=True, **kw)
        self.tick()

    def patches(self) -> list[str]:
        return [p for method, p in self.api.calls if method == "PATCH"]

    def events(self, ns: str = "shop") -> list[dict]:
        prefix = f"/api/v1/namespaces/{ns}/events/"
        return [o for p, o in sorted(self.api.objects.items()) if p.startswith(prefix)]


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


# --- transitions ------------------------------------------------------------------------------------------


def test_transition_restarts_each_workload_once(h, caplog):
    caplog.set_level("INFO", logger="webhook.controllers.reinject")
    deployment = seed_deployment(h.api, "shop", "web", pods=2)
    statefulset = seed_set(h.api, "StatefulSet", "shop", "db")
    daemonset = seed_set(h.api, "DaemonSet", "shop", "agent")
    seed_deployment(h.api, "other", "elsewhere")  # mapped to another DynaKube
    seed_deployment(h.api, "plain", "unmapped")  # mapped to none

    h.dynakube(complete=False)
    h.tick()
    assert h.patches() == []
    h.dynakube(complete=True)
    restarted_at = _rfc3339(h.clock.now)
    h.tick()

    assert sorted(h.patches()) == sorted([deployment, statefulset, daemonset])
    for target in (deployment, statefulset, daemonset):
        template = h.api.objects[target]["spec"]["template"]["metadata"]["annotations"]
        assert template == {ANNOTATION_RESTARTED_AT: restarted_at}
    assert ("LIST", "/api/v1/namespaces/other/pods") not in h.api.calls
    assert ("LIST", "/api/v1/namespaces/plain/pods") not in h.api.calls
    assert h.reinjector.restarted == 3
    assert h.counted == [("restarted", "RolloutRestart")] * 3
    assert h.reinjector.pending() == []

    events = {e["involvedObject"]["name"]: e for e in h.events()}
    assert set(events) == {"web", "db", "agent"}
    web = events["web"]
    assert web["reason"] == "OneAgentReinjection"
    assert web["type"] == "Normal"
    assert web["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "namespace": "shop",
        "uid": "uid-web",
    }
    assert "web-5d4f8-0, web-5d4f8-1" in web["message"]
    assert "EmptyConnectionInfo" in web["message"]

    restarts = [r for r in caplog.records if getattr(r, "outcome", "") == "restarted"]
    assert sorted(r.workload for r in restarts) == ["DaemonSet/agent", "Deployment/web", "StatefulSet/db"]
    assert {(r.dynakube, r.namespace, r.reason) for r in restarts} == {(DK, "shop", "RolloutRestart")}
    assert "Restarted Deployment web" in next(
        r.getMessage() for r in restarts if r.workload == "Deployment/web"
    )

    for _ in range(5):
        h.tick(10)
    assert len(h.patches()) == 3


def test_no_transition_no_restart(h):
    seed_deployment(h.api, "shop", "web")
    h.dynakube(complete=False)
    for _ in range(5):
        h.tick(30)
    assert h.patches() == []
    assert not [c for c in h.api.calls if c[0] == "LIST" and c[1].endswith("/pods")]
    assert h.reinjector.counts == {}


def test_dynakube_complete_from_the_start_restarts_nothing(h):
    seed_deployment(h.api, "shop", "web")
    h.dynakube(complete=True)
    for _ in range(5):
        h.tick(30)
    assert h.patches() == []
    assert not [c for c in h.api.calls if c[0] == "LIST" and c[1].endswith("/pods")]


def test_nothing_before_the_store_has_synced():
    h = Harness()
    h.store = Store(WEBHOOK_NS)  # never synced
    h.reinjector.store = h.store
    seed_deployment(h.api, "shop", "web")
    h.reinjector.tick()
    h.store.upsert(DYNAKUBES, dynakube(complete=True))  # not a full list: still unsynced
    h.reinjector.tick()
    assert h.patches() == []


def test_each_transition_restarts_again_but_not_a_rollout_already_under_way(h):
    deployment = seed_deployment(h.api, "shop", "web")
    h.transition()
    assert h.patches() == [deployment]

    # incomplete again, then complete: the old pods predate the restart, the rollout replaces them
    h.tick(60)
    h.transition()
    assert h.patches() == [deployment]
    assert h.reinjector.skipped == {"RolloutInProgress": 1}
    assert sorted(e["reason"] for e in h.events()) == ["OneAgentReinjection", "OneAgentReinjectionSkipped"]

    # a pod created (uninjected) after that restart: the next transition restarts the workload again
    h.api.seed(
        "/api/v1/namespaces/shop/pods",
        pod("shop", "web-77aa1-0", [owner("ReplicaSet", "web-5d4f8")], created=_rfc3339(h.clock.now)),
    )
    h.tick(60)
    h.transition()
    assert h.patches() == [deployment, deployment]


def test_losing_connection_info_cancels_queued_restarts():
    h = Harness(rate_per_minute=1)
    seed_deployment(h.api, "shop", "a")
    seed_deployment(h.api, "shop", "b")
    h.transition()
    assert len(h.patches()) == 1
    assert [p["owner"] for p in h.reinjector.pending()] == ["Deployment/b", "Deployment/b"]
    h.dynakube(complete=False)
    h.tick(120)
    h.tick()
    assert len(h.patches()) == 1
    assert h.reinjector.pending() == []


# --- opting in and out ------------------------------------------------------------------------------------


def test_dynakube_without_the_annotation_is_left_alone(h):
    seed_deployment(h.api, "shop", "web")
    h.transition(opted_in=False)
    for _ in range(3):
        h.tick(30)
    assert h.patches() == []
    assert not [c for c in h.api.calls if c[0] == "LIST" and c[1].endswith("/pods")]


def test_installation_flag_off_does_nothing_at_all():
    h = Harness(enabled=False)
    seed_deployment(h.api, "shop", "web")
    calls = len(h.api.calls)
    h.transition()
    h.reinjector.start()
    h.reinjector.stop()
    assert h.api.calls[calls:] == []
    assert h.reinjector.loop.thread is None


@pytest.mark.parametrize(
    "where",
    [{"annotations": {ANNOTATION_OPT_OUT: "false"}}, {"template": {ANNOTATION_OPT_OUT: "False"}}],
    ids=["workload", "pod-template"],
)
def test_opted_out_workload_is_reported_not_touched(h, where):
    seed_deployment(h.api, "shop", "web", **where)
    h.transition()
    h.tick(60)
    assert h.patches() == []
    assert h.reinjector.skipped == {"OptOut": 1}
    (event,) = h.events()
    assert event["reason"] == "OneAgentReinjectionSkipped"
    assert event["involvedObject"]["kind"] == "Deployment"
    assert ANNOTATION_OPT_OUT in event["message"]
    assert [(p["pod"], p["state"], p["detail"]) for p in h.reinjector.pending()] == [
        ("web-5d4f8-0", "manual", "OptOut"),
        ("web-5d4f8-1", "manual", "OptOut"),
    ]


def test_paused_deployment_is_reported_not_touched(h):
    seed_deployment(h.api, "shop", "web", spec={"paused": True})
    h.transition()
    assert h.patches() == []
    assert h.reinjector.skipped == {"Paused": 1}
    assert "paused" in h.events()[0]["message"]


def test_dry_run_changes_nothing_but_reports():
    h = Harness(dry_run=True)
    seed_deployment(h.api, "shop", "web")
    seed_set(h.api, "StatefulSet", "shop", "db")
    h.transition()
    for _ in range(3):
        h.tick(60)
    assert [c for c in h.api.calls if c[0] in ("PATCH", "PUT") and "/leases/" not in c[1]] == []
    assert (
        h.api.objects[path("Deployment", "shop", "web")]["spec"]["template"]["metadata"]["annotations"] == {}
    )
    assert h.reinjector.skipped == {"DryRun": 2}
    assert h.reinjector.restarted == 0
    assert {
        e["involvedObject"]["name"]: e["message"].startswith("Dry run: would restart") for e in h.events()
    } == {
        "web": True,
        "db": True,
    }
    assert {p["state"] for p in h.reinjector.pending()} == {"dry-run"}


# --- owners that are not restarted ------------------------------------------------------------------------


def test_job_bare_and_unsupported_owners_are_reported_not_touched(h):
    ns = "/api/v1/namespaces/shop/pods"
    h.api.seed(ns, pod("shop", "migrate-x1", [owner("Job", "migrate", "batch/v1")]))
    h.api.seed(ns, pod("shop", "debug"))
    h.api.seed(f"{APPS}/shop/replicasets", {"metadata": {"name": "lonely", "namespace": "shop"}})
    h.api.seed(ns, pod("shop", "lonely-1", [owner("ReplicaSet", "lonely")]))
    h.api.seed(ns, pod("shop", "gone-1", [owner("ReplicaSet", "gone")]))  # its ReplicaSet no longer exists
    h.api.seed(ns, pod("shop", "canary-1", [owner("Rollout", "canary", "argoproj.io/v1alpha1")]))
    h.api.seed(ns, pod("shop", "not-controlled", [{**owner("Job", "x", "batch/v1"), "controller": False}]))
    h.transition()
    h.tick(60)

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
    assert {e["reason"] for e in h.events()} == {"OneAgentReinjectionSkipped"}
    job_event = next(e for e in h.events() if e["involvedObject"]["kind"] == "Job")
    assert job_event["involvedObject"]["apiVersion"] == "batch/v1"
    assert "re-create the Job" in job_event["message"]
    pending = {p["pod"]: (p["owner"], p["state"], p["detail"]) for p in h.reinjector.pending()}
    assert pending["migrate-x1"] == ("Job/migrate", "manual", "JobPod")
    assert pending["debug"] == ("Pod/debug", "manual", "BarePod")
    assert len(pending) == 6


# --- rate limit -------------------------------------------------------------------------------------------


def test_rate_limit_spreads_restarts_over_time():
    h = Harness(rate_per_minute=2)
    for name in "abcde":
        seed_deployment(h.api, "shop", name, pods=1)
    h.transition()  # the second tick of the transition restarts a and b at once (a full bucket)
    assert len(h.patches()) == 2
    assert [p["owner"] for p in h.reinjector.pending()] == ["Deployment/c", "Deployment/d", "Deployment/e"]
    for _ in range(29):  # ticks up to 29 s after the burst: no token yet
        h.tick()
    assert len(h.patches()) == 2
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
    clock.advance(3600)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    slow = TokenBucket(0.5, clock)  # one every two minutes, still one at once
    assert [slow.take(), slow.take()] == [True, False]
    clock.advance(120)
    assert slow.take() is True


@pytest.mark.parametrize("rate", [0, -1])
def test_rate_must_be_positive(rate):
    with pytest.raises(ValueError, match="--reinject-rate must be a positive number"):
        Config(enabled=True, rate_per_minute=rate)


# --- leadership -------------------------------------------------------------------------------------------


def test_only_the_leader_acts_and_a_follower_finishes_after_it_dies():
    api, clock = FakeApi(), Clock()
    a = Harness(api, clock, rate_per_minute=1)
    b = Harness(api, clock, rate_per_minute=1)
    first = seed_deployment(api, "shop", "first")
    second = seed_deployment(api, "shop", "second")

    def both(advance: float = 1.0) -> None:
        a.reinjector.tick()
        b.reinjector.tick()
        clock.advance(advance)

    for h in (a, b):
        h.dynakube(complete=False)
    both()
    for h in (a, b):
        h.dynakube(complete=True)
    both()
    assert a.reinjector.leader and not b.reinjector.leader
    assert api.objects[LEASE]["spec"]["holderIdentity"] == a.reinjector.elector.identity
    assert a.patches() == [first]  # one token a minute
    assert api.calls.count(("LIST", "/api/v1/namespaces/shop/pods")) == 1  # only a scanned

    # a dies without releasing the lease; b takes over once the lease has expired on its clock
    for _ in range(8):
        b.reinjector.tick()
        clock.advance(2)
    assert b.reinjector.leader
    b.tick(60)
    # b restarts the workload a had not reached, and leaves the one a restarted alone (already rolling)
    assert a.patches() == [first, second]  # every PATCH on the shared API, by either replica
    assert b.reinjector.restarted == 1
    assert b.reinjector.skipped == {"RolloutInProgress": 1}
    assert api.objects[LEASE]["spec"]["leaseTransitions"] == 1


def test_follower_does_not_touch_the_api_beyond_the_lease():
    api, clock = FakeApi(), Clock()
    a, b = Harness(api, clock), Harness(api, clock)
    a.tick()  # a leads
    seed_deployment(api, "shop", "web")
    calls = len(api.calls)
    b.transition()
    assert {p for _, p in api.calls[calls:]} == {LEASE}


def test_thread_start_stop_releases_the_lease():
    h = Harness(interval=0.01)
    h.reinjector.clock = h.reinjector.elector.clock = h.reinjector.bucket.clock = time.time
    h.dynakube(complete=True)
    h.reinjector.start()
    deadline = time.monotonic() + 5
    while not h.reinjector.leader and time.monotonic() < deadline:
        time.sleep(0.01)
    assert h.reinjector.leader
    h.reinjector.stop()
    assert not h.reinjector.loop.thread.is_alive()
    assert h.api.objects[LEASE]["spec"]["holderIdentity"] == ""


# --- failures ---------------------------------------------------------------------------------------------


def test_failed_restart_is_retried_then_given_up():
    h = Harness(max_attempts=2, retry_delay=30)
    web = seed_deployment(h.api, "shop", "web")
    h.api.script("PATCH", web, ApiError(500, "etcd timeout"))
    h.transition()
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
    h2.transition()
    h2.tick(30)
    h2.tick(300)
    assert h2.reinjector.failed == 2
    assert h2.reinjector.restarted == 0
    (event,) = h2.events()
    assert (event["type"], event["reason"]) == ("Warning", "OneAgentReinjectionFailed")
    assert "kubectl rollout restart" in event["message"]
    assert {p["state"] for p in h2.reinjector.pending()} == {"manual"}
    assert len(h2.patches()) == 2


def test_failed_pod_list_is_retried_later():
    h = Harness(retry_delay=30)
    web = seed_deployment(h.api, "shop", "web")
    h.api.script("LIST", "/api/v1/namespaces/shop/pods", ApiError(503, "unavailable"))
    h.transition()
    assert h.patches() == []
    assert h.counted == [("failed", "ListPods")]
    h.tick(30)
    h.tick()
    assert h.patches() == [web]


def test_failed_event_does_not_stop_the_restart(h):
    web = seed_deployment(h.api, "shop", "web")
    h.api.script("POST", "/api/v1/namespaces/shop/events", ApiError(403, "forbidden"))
    h.transition()
    assert h.patches() == [web]
    assert h.reinjector.restarted == 1


def test_status_for_a_debug_endpoint():
    h = Harness(rate_per_minute=1)
    seed_deployment(h.api, "shop", "a", pods=1)
    seed_deployment(h.api, "shop", "b", pods=1)
    h.transition()
    status = h.reinjector.status()
    assert status["enabled"] and status["leader"] and not status["dry_run"]
    assert status["connection_info_complete"] == {DK: True}
    assert status["transitions"] == [
        {"dynakube": DK, "since": _rfc3339(h.clock.now - 1), "namespaces_to_scan": []}
    ]
    assert status["counts"] == {"restarted/RolloutRestart": 1}
    assert status["pending"] == [
        {
            "dynakube": DK,
            "namespace": "shop",
            "pod": "b-5d4f8-0",
            "reasons": ["EmptyConnectionInfo"],
            "owner": "Deployment/b",
            "state": "queued",
            "detail": "",
        }
    ]


def waiting_work(*created: str, kind: str = "Deployment") -> Work:
    work = Work(DK, 1, "shop", kind, "web", "apps/v1")
    for i, at in enumerate(created):
        work.pods[f"web-{i}"] = {"reasons": ["EmptyConnectionInfo"], "created": at}
    return work


@pytest.mark.parametrize(
    ("obj", "created", "verdict"),
    [
        (workload("Deployment", "shop", "web"), [CREATED], None),
        (
            workload("Deployment", "shop", "web", annotations={ANNOTATION_OPT_OUT: "false"}),
            [CREATED],
            "OptOut",
        ),
        (
            workload("Deployment", "shop", "web", template={ANNOTATION_OPT_OUT: " False "}),
            [CREATED],
            "OptOut",
        ),
        (workload("Deployment", "shop", "web", annotations={ANNOTATION_OPT_OUT: "true"}), [CREATED], None),
        ({**workload("Deployment", "shop", "web"), "spec": {"paused": True}}, [CREATED], "Paused"),
        # restarted after every waiting pod was created: that rollout replaces them
        (
            workload("Deployment", "shop", "web", template={ANNOTATION_RESTARTED_AT: "2023-11-01T10:05:00Z"}),
            [CREATED, "2023-11-01T10:04:59Z"],
            "RolloutInProgress",
        ),
        # one pod created after the restart: it still waits
        (
            workload("Deployment", "shop", "web", template={ANNOTATION_RESTARTED_AT: "2023-11-01T10:05:00Z"}),
            [CREATED, "2023-11-01T10:06:00Z"],
            None,
        ),
        # an unreadable creation time never counts as replaced
        (
            workload("Deployment", "shop", "web", template={ANNOTATION_RESTARTED_AT: "2023-11-01T10:05:00Z"}),
            ["yesterday"],
            None,
        ),
        ({"metadata": "garbage", "spec": ["garbage"]}, [CREATED], None),
    ],
)
def test_restart_verdict(obj, created, verdict):
    result = restart_verdict(waiting_work(*created), obj)
    assert (result[0] if result else None) == verdict
