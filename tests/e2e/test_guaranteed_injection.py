"""Guaranteed injection (issue 14) against a real API server with the controller manager (``K8S_E2E_KCM=1``):

1. a webhook restarted after the DynaKube's communication hosts appeared restarts, once, the Deployment whose
   pod an earlier webhook had skipped with ``EmptyConnectionInfo``;
2. a Deployment whose pod was created while no webhook answered is found by the webhook started later (two
   replicas, one Lease), restarted once, and its new pod injected; a bare pod created then is reported, never
   touched.

No kubelet runs: pods are stored, never started. The tests read the stored pods, ReplicaSets and Events.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    CONFIG_PATHS,
    HOSTS,
    INJECTED,
    INSTANCE_LABEL,
    PAUSE_IMAGE,
    REASON,
    RUN_LABEL,
    annotations_of,
    dry_run_create,
    dynakube_body,
    dynakube_status,
    dynakubes_path,
    is_injected,
    pod_body,
    pod_hook,
    wait,
    webhook_events,
)
from tests.e2e.tokens import create_tokens
from webhook.kube.api import list_items

WORKLOAD = "e2e.dynatrace.com/workload"
RESTARTS = "reinjection.dynatrace.com/restarts"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
OPT_IN = {"feature.dynatrace.com/automatic-reinjection": "true"}
RESYNC = "3"  # seconds: several full scans happen while the tests watch for a second restart


def deployment(name: str, run: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {RUN_LABEL: run}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {WORKLOAD: name}},
            "template": {
                "metadata": {"labels": {RUN_LABEL: run, WORKLOAD: name}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "app", "image": PAUSE_IMAGE}],
                },
            },
        },
    }


class App:
    """A mapped namespace with one Deployment, and what the tests read of it."""

    def __init__(self, kube, cleanup, run_id: str, dynakube: str) -> None:
        self.kube = kube
        self.ns = f"app-{run_id}"
        self.name = f"web-{run_id}"
        create_namespace(kube, cleanup, self.ns, run_id, **{INSTANCE_LABEL: dynakube})
        self.pods_path = f"/api/v1/namespaces/{self.ns}/pods"
        self.deployments = f"/apis/apps/v1/namespaces/{self.ns}/deployments"

    def pods(self) -> list[dict]:
        items = list_items(self.kube, self.pods_path, label_selector=f"{WORKLOAD}={self.name}")
        return items

    def replica_sets(self) -> list[dict]:
        items = list_items(
            self.kube,
            f"/apis/apps/v1/namespaces/{self.ns}/replicasets",
            label_selector=f"{WORKLOAD}={self.name}",
        )
        return items

    def workload(self) -> dict:
        return self.kube.get(f"{self.deployments}/{self.name}")

    def record(self) -> dict:
        return json.loads(annotations_of(self.workload()).get(RESTARTS) or "{}")

    def events(self) -> list[dict]:
        return webhook_events(self.kube, self.ns)

    def events_of(self, reason: str) -> list[dict]:
        """The webhook's Events with this reason (written off the path that caused them: wait for them)."""
        return [e for e in self.events() if e.get("reason") == reason]

    def events_on(self, name: str) -> list[dict]:
        return [e for e in self.events() if (e.get("regarding") or {}).get("name") == name]


def wait_for_hook(kube, app: App, run_id: str, reason: str | None) -> None:
    """Until the API server calls the (newly registered) webhook: a dry-run pod gets its answer."""

    def answered() -> bool:
        got = annotations_of(dry_run_create(kube, app.pods_path, pod_body("probe", run_id)))
        return got.get(REASON) == reason if reason else got.get(INJECTED) == "true"

    wait(answered, what="the API server calling /inject")


def stays_restarted_once(app: App, scans: int = 3) -> None:
    """No second restart while several resyncs run: one restart record, two ReplicaSets. The resyncs are
    counted where they happen, on the API server: the pod lists of the app's namespace (metadata-only pages)."""
    first = app.workload()["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    path = f"{app.pods_path}?"
    start = pod_lists(path)
    wait(lambda: pod_lists(path) >= start + scans, timeout=60, what=f"{scans} more scans of {app.ns}")
    assert app.workload()["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT] == first
    assert len(app.replica_sets()) == 2, [r["metadata"]["name"] for r in app.replica_sets()]


def pod_lists(prefix: str) -> int:
    """The lists of a namespace's pods the API server has logged so far (any identity but the tests' own read
    with the label selector, so only the webhook's metadata-only scans carry ``fieldSelector``)."""
    log = Path(os.environ["KUBECONFIG"].split(os.pathsep)[0]).parent / "logs" / "audit.log"
    if not log.is_file():
        pytest.skip(f"no audit log at {log} to count the webhook's scans")
    with log.open("rb") as f:
        return sum(
            1
            for line in f
            if prefix.encode() in line and b"fieldSelector=status.phase" in line and b'"verb":"list"' in line
        )


def test_webhook_restarted_after_hosts_appeared_restarts_the_skipped_deployment(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    ns = webhook_namespace
    dk = f"dk-{run_id}"
    create_tokens(cleanup, ns, dk, run_id)  # the init Secret is generated from it
    cleanup.create(dynakubes_path(ns), dynakube_body(dk, ns, run_id, annotations=OPT_IN))
    kube.patch(f"{dynakubes_path(ns)}/{dk}/status", dynakube_status([]))  # incomplete: no hosts
    app = App(kube, cleanup, run_id, dk)

    first = start_webhook("--no-reinject")  # it only admits (reinjection is on by default)
    first_hook = register_webhook(
        "MutatingWebhookConfiguration", "dynatrace-webhook-e2e-gi1", [pod_hook(first, run_id)]
    )
    wait_for_hook(kube, app, run_id, "EmptyConnectionInfo")
    cleanup.create(app.deployments, deployment(app.name, run_id))
    skipped = wait(
        lambda: [p for p in app.pods() if annotations_of(p).get(REASON) == "EmptyConnectionInfo"],
        what="the Deployment's pod, admitted without OneAgent",
    )

    # the webhook goes away; meanwhile the communication hosts appear
    kube.delete(f"{CONFIG_PATHS['MutatingWebhookConfiguration']}/{first_hook}")
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=30) == 0
    kube.patch(f"{dynakubes_path(ns)}/{dk}/status", dynakube_status(HOSTS))

    # a new webhook, with --reinject, that never saw the DynaKube incomplete
    second = start_webhook("--reinject", "--reinject-resync", RESYNC)
    register_webhook("MutatingWebhookConfiguration", "dynatrace-webhook-e2e-gi1b", [pod_hook(second, run_id)])
    injected = wait(
        lambda: [p for p in app.pods() if is_injected(p)],
        timeout=120,
        what=f"a new, injected pod of Deployment {app.name} (webhook log: {second.log})",
    )
    assert injected[0]["metadata"]["name"] not in {p["metadata"]["name"] for p in skipped}
    assert set(app.record()) == {"EmptyConnectionInfo"}
    stays_restarted_once(app)
    restarts = wait(lambda: app.events_of("OneAgentReinjection"), what="the OneAgentReinjection Event")
    assert len(restarts) == 1 and restarts[0]["regarding"]["name"] == app.name
    assert "EmptyConnectionInfo" in restarts[0]["note"]


def test_pods_created_while_no_webhook_answered_are_found_and_restarted_once(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    ns = webhook_namespace
    dk = f"dk-{run_id}"
    create_tokens(cleanup, ns, dk, run_id)  # the init Secret is generated from it
    cleanup.create(dynakubes_path(ns), dynakube_body(dk, ns, run_id, annotations=OPT_IN))
    kube.patch(f"{dynakubes_path(ns)}/{dk}/status", dynakube_status(HOSTS))  # complete from the start
    app = App(kube, cleanup, run_id, dk)
    time.sleep(1.1)  # creation times have one-second resolution: the pods come after the mapping

    # no webhook registered: the API server admits the pods unchanged
    cleanup.create(app.deployments, deployment(app.name, run_id))
    cleanup.create(app.pods_path, {**pod_body(f"bare-{run_id}", run_id), "apiVersion": "v1"})
    missed = wait(app.pods, what="the Deployment's pod, admitted without any webhook")
    assert not any(annotations_of(p).get(INJECTED) for p in missed)

    # two replicas with --reinject: one holds the Lease and acts
    replicas = [start_webhook("--reinject", "--reinject-resync", RESYNC) for _ in range(2)]
    register_webhook(
        "MutatingWebhookConfiguration", "dynatrace-webhook-e2e-gi2", [pod_hook(replicas[0], run_id)]
    )
    injected = wait(
        lambda: [p for p in app.pods() if is_injected(p)],
        timeout=120,
        what=f"a new, injected pod of Deployment {app.name} (logs: {[str(r.log) for r in replicas]})",
    )
    assert injected[0]["metadata"]["name"] not in {p["metadata"]["name"] for p in missed}
    assert set(app.record()) == {"NotSeenByWebhook"}
    stays_restarted_once(app)

    restarts = wait(lambda: app.events_of("OneAgentReinjection"), what="the OneAgentReinjection Event")
    assert len(restarts) == 1 and "never seen by the webhook" in restarts[0]["note"]
    bare = wait(lambda: app.events_on(f"bare-{run_id}"), what=f"the Event on pod bare-{run_id}")
    events = app.events()
    assert [e["reason"] for e in bare] == ["OneAgentReinjectionSkipped"], [e.get("note") for e in events]
    assert kube.get(f"{app.pods_path}/bare-{run_id}")["metadata"].get("deletionTimestamp") is None
