"""Against a real cluster: kube-apiserver calls ``/inject``, which decides from its watched cache."""

from __future__ import annotations

from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    HOSTS,
    INIT_CONTAINER,
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
from tests.e2e.tokens import create_tokens


def test_api_server_gets_injection_and_empty_connection_info_skip(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    ns = webhook_namespace
    names = {"ready": f"ready-{run_id}", "pending": f"pending-{run_id}"}
    for key, hosts in (("ready", HOSTS), ("pending", [])):
        create_tokens(cleanup, ns, names[key], run_id)  # the init Secret is generated from it
        cleanup.create(dynakubes_path(ns), dynakube_body(names[key], ns, run_id))
        kube.patch(f"{dynakubes_path(ns)}/{names[key]}/status", dynakube_status(hosts))
        create_namespace(kube, cleanup, f"app-{key}-{run_id}", run_id, **{INSTANCE_LABEL: names[key]})
    webhook = start_webhook()
    register_webhook("MutatingWebhookConfiguration", "dynatrace-webhook-e2e", [pod_hook(webhook, run_id)])
    ready_pods = f"/api/v1/namespaces/app-ready-{run_id}/pods"
    # the API server adds a new configuration to its admission chain shortly after the create
    # ... and the namespace's init Secret exists (until then pods are admitted with reason MissingInitSecret)
    wait(
        lambda: (
            annotations_of(dry_run_create(kube, ready_pods, pod_body("probe", run_id))).get(INJECTED)
            == "true"
        ),
        what="the API server calling /inject, with dynatrace-dynakube-config in place",
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


def test_v1beta1_admission_reviews_get_the_same_injection(
    kube, run_id, cleanup, namespace, dynakube, start_webhook, register_webhook
):
    """A configuration that accepts only ``admission.k8s.io/v1beta1`` reviews: the API server sends v1beta1
    and applies the answer (same version, JSON Patch) just the same."""
    name = dynakube("beta", selector={"matchLabels": {"e2e.dynatrace.com/app": "beta"}}, hosts=HOSTS)
    app = namespace("beta", **{INSTANCE_LABEL: name["metadata"]["name"], "e2e.dynatrace.com/app": "beta"})
    webhook = start_webhook()
    entry = pod_hook(webhook, run_id)
    entry["admissionReviewVersions"] = ["v1beta1"]
    register_webhook("MutatingWebhookConfiguration", "dynatrace-webhook-e2e-v1beta1", [entry])
    pods = f"/api/v1/namespaces/{app}/pods"
    wait(
        lambda: annotations_of(dry_run_create(kube, pods, pod_body("probe", run_id))).get(INJECTED),
        what="the API server calling /inject with v1beta1 reviews",
    )
    pod = kube.create(pods, pod_body("injected", run_id))
    assert annotations_of(pod).get(INJECTED) == "true", annotations_of(pod)
    assert init_containers(pod) == [INIT_CONTAINER]
