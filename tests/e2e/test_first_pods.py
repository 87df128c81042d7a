"""A new app's first pods get OneAgent, through the real API server with the controller manager.

The most common way pods meet the webhook: a Namespace and its Deployment (and maybe a bare Pod) applied back
to back, the way ``kubectl apply -f``, Helm or Argo CD send a manifest. The namespace's init Secret does not
exist yet when its first pods are admitted: the admission creates it on first need (one create per namespace
and Secret, counted in the audit log), and every first pod is injected. A create the API server refuses
(a quota) admits the pod with ``MissingInitSecret``; once the Secret exists, its Deployment is restarted
without anyone's help, and the new pods are injected.
"""

from __future__ import annotations

import collections
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.e2e.audit import describe, resource
from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    INSTANCE_LABEL,
    NAMESPACES,
    REASON,
    RUN_LABEL,
    annotations_of,
    deployment_body,
    dry_run_create,
    exists,
    is_injected,
    namespace_body,
    pod_body,
    pod_hook,
    wait,
)
from tests.e2e.tokens import dynakube_with_tokens
from webhook.kube.api import ApiError, list_items

CONFIG = "dynatrace-dynakube-config"
WORKLOAD = "e2e.dynatrace.com/workload"
ROUNDS = 15  # namespace + 2-replica Deployment + bare Pod, each round: 45 first pods
BULK = 100  # namespaces, each with a Deployment, sent as fast as a client can


def started_webhook(kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook, *args: str):
    """A DynaKube with tokens, the webhook with the chart's defaults (init Secrets on), its pod hook in use."""
    name = f"first-{run_id}"
    dynakube_with_tokens(kube, cleanup, webhook_namespace, name, run_id)
    webhook = start_webhook(*args)
    register_webhook(
        "MutatingWebhookConfiguration", "dynatrace-webhook-e2e-first", [pod_hook(webhook, run_id)]
    )
    probe = f"probe-{run_id}"
    create_namespace(kube, cleanup, probe, run_id, **{INSTANCE_LABEL: name})
    wait(
        lambda: annotations_of(dry_run_create(kube, f"{NAMESPACES}/{probe}/pods", pod_body("probe", run_id))),
        what="the API server calling /inject",
    )
    return name, webhook


def create_pod(kube, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """A bare pod right after its namespace: until the ServiceAccount controller made the namespace's
    ``default`` ServiceAccount the API server refuses it (kubectl would fail the same way; we retry)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return kube.create(f"{NAMESPACES}/{namespace}/pods", body)
        except ApiError as err:
            if time.monotonic() > deadline or err.status not in (403, 404, 409, 500):
                raise
            time.sleep(0.02)


def workload_pods(kube, namespace: str, name: str) -> list[dict[str, Any]]:
    items = list_items(kube, f"{NAMESPACES}/{namespace}/pods", label_selector=f"{WORKLOAD}={name}")
    return items


def secret_creates(audit_log, start: int, end: int) -> dict[str, list[str]]:
    """The webhook identity's creates of Secrets in the window, by namespace (``verb URI -> code``)."""
    creates: dict[str, list[str]] = collections.defaultdict(list)
    for event in audit_log.requests_of_webhook(start, end):
        if event.get("verb") == "create" and resource(event) == "secrets":
            namespace = str((event.get("objectRef") or {}).get("namespace") or "")
            creates[namespace].append(describe(event))
    return creates


def admission_durations(log_text: str) -> list[float]:
    return [float(m) for m in re.findall(r"path=/inject .*?duration_ms=([0-9.]+)", log_text)]


def test_a_new_apps_first_pods_are_injected(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook, audit_log
):
    name, webhook = started_webhook(kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook)
    start = audit_log.offset()
    apps = []
    for i in range(ROUNDS):
        app = f"app{i}-{run_id}"
        apps.append(app)
        # the manifest: namespace, Deployment, Pod, back to back
        cleanup.create(NAMESPACES, namespace_body(app, run_id, **{INSTANCE_LABEL: name}))
        kube.create(f"/apis/apps/v1/namespaces/{app}/deployments", deployment_body("web", run_id, replicas=2))
        create_pod(kube, app, pod_body("bare", run_id))
    first_pods = []
    for app in apps:
        pods = wait(
            lambda app=app: (p := workload_pods(kube, app, "web")) and len(p) == 2 and p,
            what=f"the Deployment's 2 pods in {app}",
        )
        first_pods += [*pods, kube.get(f"{NAMESPACES}/{app}/pods/bare")]
    missed = [
        f"{p['metadata']['namespace']}/{p['metadata']['name']}: {annotations_of(p).get(REASON, 'no reason')}"
        for p in first_pods
        if not is_injected(p)
    ]
    assert len(first_pods) == 3 * ROUNDS
    assert missed == [], (
        f"{len(missed)} of {len(first_pods)} first pods not injected: {missed} (log: {webhook.log})"
    )
    for app in apps:
        assert exists(kube, f"{NAMESPACES}/{app}/secrets/{CONFIG}")
    end = audit_log.mark(kube, start)
    creates = secret_creates(audit_log, start, end)
    assert {app: len(creates.get(app, [])) for app in apps} == dict.fromkeys(apps, 1), dict(creates)


def test_a_hundred_new_apps_at_once(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook, audit_log
):
    name, webhook = started_webhook(kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook)
    start = audit_log.offset()
    apps = [f"bulk{i}-{run_id}" for i in range(BULK)]

    def apply(app: str) -> None:
        cleanup.create(NAMESPACES, namespace_body(app, run_id, **{INSTANCE_LABEL: name}))
        kube.create(f"/apis/apps/v1/namespaces/{app}/deployments", deployment_body("web", run_id))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(apply, apps))
    pods = {}
    for app in apps:
        pods[app] = wait(
            lambda app=app: (p := workload_pods(kube, app, "web")) and p[0],
            timeout=120,
            what=f"the Deployment's pod in {app}",
        )
    missed = [
        f"{app}: {annotations_of(p).get(REASON, 'no reason')}"
        for app, p in pods.items()
        if not is_injected(p)
    ]
    assert missed == [], f"{len(missed)} of {BULK} first pods not injected: {missed}"
    end = audit_log.mark(kube, start)
    creates = secret_creates(audit_log, start, end)
    assert max(len(creates.get(app, [])) for app in apps) == 1, dict(creates)
    assert sum(len(creates.get(app, [])) for app in apps) == BULK
    durations = admission_durations(webhook.log.read_text())
    assert durations, "no admission logged"
    assert max(durations) < 10_000, max(durations)  # inside the hook's timeoutSeconds
    print(f"{BULK} first pods injected; slowest admission {max(durations):.1f} ms")


def test_a_refused_create_heals_by_itself(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    """A quota refuses the init Secret: the first pod says MissingInitSecret; once the quota is gone the
    Secret is created, and the Deployment is restarted by default (no DynaKube opt-in): its new pod is
    injected."""
    # the defaults: reinjection on, no DynaKube opt-in
    name, webhook = started_webhook(kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook)
    app = f"quota-{run_id}"
    create_namespace(kube, cleanup, app, run_id)  # mapped only once the quota is in force
    quota = f"{NAMESPACES}/{app}/resourcequotas"
    kube.create(
        quota,
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "no-secrets", "labels": {RUN_LABEL: run_id}},
            "spec": {"hard": {"count/secrets": "0"}},
        },
    )
    wait(  # the API server enforces the quota once it has a status
        lambda: (kube.get(f"{quota}/no-secrets").get("status") or {}).get("hard"),
        what="the quota's status",
    )
    kube.patch(f"{NAMESPACES}/{app}", {"metadata": {"labels": {INSTANCE_LABEL: name}}})
    kube.create(f"/apis/apps/v1/namespaces/{app}/deployments", deployment_body("web", run_id))
    first = wait(lambda: (p := workload_pods(kube, app, "web")) and p[0], what="the Deployment's first pod")
    assert not is_injected(first)
    assert annotations_of(first).get(REASON) == "MissingInitSecret", annotations_of(first)
    assert not exists(kube, f"{NAMESPACES}/{app}/secrets/{CONFIG}")

    kube.delete(f"{quota}/no-secrets")

    def restarted_and_injected() -> bool:
        return any(is_injected(p) for p in workload_pods(kube, app, "web"))

    wait(
        restarted_and_injected,
        timeout=90,
        what=f"the Deployment restarted with OneAgent (log: {webhook.log})",
    )
    deployment = kube.get(f"/apis/apps/v1/namespaces/{app}/deployments/web")
    restarts = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    assert "kubectl.kubernetes.io/restartedAt" in restarts
