"""Automatic reinjection (``--reinject``) with the cluster's own controllers: a Deployment whose pods were
admitted without OneAgent (no communication hosts yet) is restarted by the webhook once the DynaKube's
connection info is complete, and its new pods are injected, with no step by hand.

The injected pods do not start here (no CSI driver, no init image): the test reads the stored pod objects,
not readiness, and a rollout that stalls on them is expected.
"""

from __future__ import annotations

from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    HOSTS,
    INJECTED,
    INSTANCE_LABEL,
    REASON,
    RUN_LABEL,
    annotations_of,
    deployment_body,
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
LEASE = "dynatrace-webhook"


def test_deployment_is_restarted_into_injection(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    ns = webhook_namespace
    name = f"reinject-{run_id}"
    create_tokens(cleanup, ns, name, run_id)  # the init Secret is generated from it
    cleanup.create(
        dynakubes_path(ns),
        dynakube_body(
            name,
            ns,
            run_id,
            selector={"matchLabels": {RUN_LABEL: run_id}},
            annotations={"feature.dynatrace.com/automatic-reinjection": "true"},
        ),
    )
    kube.patch(f"{dynakubes_path(ns)}/{name}/status", dynakube_status([]))  # incomplete: no hosts
    app = f"app-{run_id}"
    create_namespace(kube, cleanup, app, run_id, **{INSTANCE_LABEL: name})

    webhook = start_webhook("--reinject")
    register_webhook(
        "MutatingWebhookConfiguration", "dynatrace-webhook-e2e-reinject", [pod_hook(webhook, run_id)]
    )
    pods = f"/api/v1/namespaces/{app}/pods"
    wait(
        lambda: (
            annotations_of(dry_run_create(kube, pods, pod_body("probe", run_id))).get(REASON)
            == "EmptyConnectionInfo"
        ),
        what="the API server calling /inject",
    )

    workload = f"app-{run_id}"
    deployments = f"/apis/apps/v1/namespaces/{app}/deployments"
    cleanup.create(deployments, deployment_body(workload, run_id, label=WORKLOAD))

    def workload_pods() -> list[dict]:
        items = list_items(kube, pods, label_selector=f"{WORKLOAD}={workload}")
        return items

    skipped = wait(
        lambda: [p for p in workload_pods() if annotations_of(p).get(REASON) == "EmptyConnectionInfo"],
        what="the Deployment's pod, admitted without OneAgent",
    )
    assert all(annotations_of(p).get(INJECTED) == "false" for p in skipped)
    assert not any(is_injected(p) for p in workload_pods())

    # the reinjector acts as the Lease holder; the DynaKube's change starts a scan of its namespaces
    lease = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{LEASE}"
    wait(lambda: (kube.get(lease).get("spec") or {}).get("holderIdentity"), what="the reinjection Lease held")

    kube.patch(
        f"{dynakubes_path(ns)}/{name}/status",
        {"status": {"oneAgent": {"connectionInfoStatus": {"communicationHosts": HOSTS}}}},
    )
    injected = wait(
        lambda: [p for p in workload_pods() if is_injected(p)],
        timeout=120,
        what=f"a new, injected pod of Deployment {workload} (webhook log: {webhook.log})",
    )
    assert injected[0]["metadata"]["name"] not in {p["metadata"]["name"] for p in skipped}

    template = kube.get(f"{deployments}/{workload}")["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations_of(template)

    # the Event is written off the restart's path (the recorder's next tick): the new pod can come first
    def restart_events() -> list[dict]:
        return [
            e
            for e in webhook_events(kube, app)
            if e.get("reason") == "OneAgentReinjection" and (e.get("regarding") or {}).get("name") == workload
        ]

    wait(restart_events, what=f"the OneAgentReinjection Event on Deployment {workload}")
