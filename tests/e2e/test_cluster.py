"""Against a real cluster: kube-apiserver calls ``/inject``, which decides from its watched cache."""

from __future__ import annotations

from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    HOSTS,
    INJECTED,
    INSTANCE_LABEL,
    REASON,
    annotations_of,
    dry_run_create,
    dynakube_body,
    dynakube_status,
    dynakubes_path,
    init_containers,
    pod_body,
    pod_hook,
    short_id,
    wait,
)


def test_api_server_gets_injection_and_empty_connection_info_skip(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    ns = webhook_namespace
    names = {"ready": f"ready-{run_id}", "pending": f"pending-{run_id}"}
    for key, hosts in (("ready", HOSTS), ("pending", [])):
        cleanup.create(dynakubes_path(ns), dynakube_body(names[key], ns, run_id))
        kube.patch(f"{dynakubes_path(ns)}/{names[key]}/status", dynakube_status(hosts))
        create_namespace(kube, cleanup, f"app-{key}-{run_id}", run_id, **{INSTANCE_LABEL: names[key]})
    webhook = start_webhook()
    register_webhook("MutatingWebhookConfiguration", "dynatrace-webhook-e2e", [pod_hook(webhook, run_id)])
    ready_pods = f"/api/v1/namespaces/app-ready-{run_id}/pods"
    # the API server adds a new configuration to its admission chain shortly after the create
    wait(
        lambda: annotations_of(dry_run_create(kube, ready_pods, pod_body("probe", run_id))).get(INJECTED),
        what="the API server calling /inject",
    )

    ready = kube.create(ready_pods, pod_body("injected", run_id))
    assert annotations_of(ready).get(INJECTED) == "true", annotations_of(ready)
    assert init_containers(ready) == ["dynatrace-operator"]
    assert any(e["name"] == "DT_NETWORK_ZONE" for e in ready["spec"]["containers"][0]["env"])

    skipped = kube.create(f"/api/v1/namespaces/app-pending-{run_id}/pods", pod_body("skipped", run_id))
    annotations = annotations_of(skipped)
    assert annotations[INJECTED] == "false"
    assert annotations[REASON] == "EmptyConnectionInfo"
    assert "initContainers" not in skipped["spec"]

    # communication hosts appear: the next pod is injected, read from the watched cache
    kube.patch(
        f"{dynakubes_path(ns)}/{names['pending']}/status",
        {"status": {"oneAgent": {"connectionInfoStatus": {"communicationHosts": HOSTS}}}},
    )

    def injected_now() -> bool:
        pods = f"/api/v1/namespaces/app-pending-{run_id}/pods"
        created = dry_run_create(kube, pods, pod_body(f"later-{short_id()}", run_id))
        return annotations_of(created).get(INJECTED) == "true"

    wait(injected_now, timeout=30, what="injection after communication hosts appeared")
