"""Against a real API server: what a pod carries after ``/inject`` is the Dynatrace Operator v1.4 contract
(INJECTION-CONTRACT.md), and metadata enrichment names the Deployment of a ReplicaSet's pod without the webhook
calling the API on the admission path (the owner is not cached: the pod's ``pod-template-hash`` names it).

Pods are stored, not run (the control plane has no nodes): the test reads the stored objects.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    HOSTS,
    INJECTED,
    INSTANCE_LABEL,
    PAUSE_IMAGE,
    RUN_LABEL,
    annotations_of,
    create_operator_init_secrets,
    dry_run_create,
    dynakube_body,
    dynakube_status,
    dynakubes_path,
    init_containers,
    pod_body,
    pod_hook,
    wait,
)

OPERATOR_IMAGE = "public.ecr.aws/dynatrace/dynatrace-operator:v1.4.2"
WORKLOAD = "e2e.dynatrace.com/workload"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
CONFIGURATION = "dynatrace-webhook-e2e"


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def setup(kube, cleanup, ns: str, run_id: str, start_webhook, register_webhook, *, spec: dict | None = None):
    """A DynaKube with complete connection info, an app namespace mapped to it, the webhook registered."""
    name = f"dk-{run_id}"
    cleanup.create(dynakubes_path(ns), dynakube_body(name, ns, run_id, spec=spec))
    status = dynakube_status(HOSTS)
    status["status"]["kubernetesClusterName"] = "e2e"
    kube.patch(f"{dynakubes_path(ns)}/{name}/status", status)
    app = f"app-{run_id}"
    create_namespace(kube, cleanup, app, run_id, **{INSTANCE_LABEL: name})
    create_operator_init_secrets(cleanup, app, run_id)  # what a Dynatrace Operator beside it creates
    webhook = start_webhook()
    register_webhook("MutatingWebhookConfiguration", CONFIGURATION, [pod_hook(webhook, run_id)])
    pods = f"/api/v1/namespaces/{app}/pods"
    wait(
        lambda: annotations_of(dry_run_create(kube, pods, pod_body("probe", run_id))).get(INJECTED),
        what="the API server calling /inject",
    )
    return name, app


def test_a_stored_pod_carries_the_v1_4_injection(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    dynakube, app = setup(kube, cleanup, webhook_namespace, run_id, start_webhook, register_webhook)
    cluster_id = kube.get("/api/v1/namespaces/kube-system")["metadata"]["uid"]

    pod = kube.create(f"/api/v1/namespaces/{app}/pods", pod_body("injected", run_id))
    annotations = annotations_of(pod)
    assert annotations[INJECTED] == "true" and annotations["dynakube.dynatrace.com/injected"] == "true"
    assert init_containers(pod) == ["dynatrace-operator"]
    init = pod["spec"]["initContainers"][0]
    assert (init["image"], init["args"], init["imagePullPolicy"]) == (
        OPERATOR_IMAGE,
        ["init"],
        "IfNotPresent",
    )
    env = env_of(init)
    assert env["K8S_CLUSTER_ID"] == cluster_id  # the kube-system UID, from the webhook's namespace cache
    assert env["ONEAGENT_INJECTED"] == "true" and env["INSTALLPATH"] == "/opt/dynatrace/oneagent-paas"
    assert env["CONTAINER_INFO"] == f'[{{"name":"app","image":"{PAUSE_IMAGE}"}}]'
    # then the ServiceAccount admission plugin's token mount
    assert [m["mountPath"] for m in init["volumeMounts"]][:3] == ["/mnt/bin", "/mnt/share", "/mnt/config"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["injection-config"]["secret"]["secretName"] == "dynatrace-dynakube-config"
    assert volumes["oneagent-bin"]["csi"]["driver"] == "csi.oneagent.dynatrace.com"
    assert volumes["oneagent-bin"]["csi"]["volumeAttributes"] == {
        "mode": "app",
        "dynakube": dynakube,
        "retryTimeout": "10m0s",
    }
    app_container = pod["spec"]["containers"][0]
    app_env = env_of(app_container)
    assert app_env["LD_PRELOAD"] == "/opt/dynatrace/oneagent-paas/agent/lib64/liboneagentproc.so"
    assert app_env["DT_DEPLOYMENT_METADATA"].endswith(f"orchestrator_id={cluster_id}")
    mounts = {m["mountPath"]: m for m in app_container["volumeMounts"]}
    assert mounts["/etc/ld.so.preload"]["subPath"] == "ld.so.preload"
    assert (
        mounts["/var/lib/dynatrace/oneagent/agent/config/container.conf"]["subPath"] == "container_app.conf"
    )


def test_enrichment_names_the_deployment_of_a_replica_set_pod(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    spec = {"metadataEnrichment": {"enabled": True}}
    _, app = setup(kube, cleanup, webhook_namespace, run_id, start_webhook, register_webhook, spec=spec)
    name = f"shop-{run_id}"
    labels = {RUN_LABEL: run_id, WORKLOAD: name}
    cleanup.create(
        f"/apis/apps/v1/namespaces/{app}/deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": {RUN_LABEL: run_id}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {WORKLOAD: name}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": PAUSE_IMAGE}]},
                },
            },
        },
    )
    pods_path = f"/api/v1/namespaces/{app}/pods?labelSelector={WORKLOAD}%3D{name}"
    (pod,) = wait(lambda: kube.get(pods_path).get("items"), timeout=60, what="the Deployment's pod")
    annotations = annotations_of(pod)
    assert annotations["metadata-enrichment.dynatrace.com/injected"] == "true"
    assert annotations["metadata.dynatrace.com/k8s.workload.kind"] == "deployment"
    assert annotations["metadata.dynatrace.com/k8s.workload.name"] == name
    init = pod["spec"]["initContainers"][0]
    env = env_of(init)
    assert (env["DT_WORKLOAD_KIND"], env["DT_WORKLOAD_NAME"]) == ("deployment", name)
    assert env["METADATA_ENRICHMENT_INJECTED"] == "true" and env["DT_CLUSTER_NAME"] == "e2e"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["metadata-enrichment-endpoint"]["secret"]["secretName"] == (
        "dynatrace-metadata-enrichment-endpoint"
    )
    paths = [m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]]
    assert "/var/lib/dynatrace/enrichment/endpoint" in paths


def token_mounts(container: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in container.get("volumeMounts") or [] if m["mountPath"] == TOKEN_PATH]


def test_an_injected_pod_is_admitted_with_one_webhook_call(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook, audit_log
):
    """The init container carries the token mount the ServiceAccount plugin would add after the webhook, so the
    plugin adds nothing and the API server does not call the webhook again; where the webhook cannot know the
    plugin's mount (no token volume yet), the plugin adds it and the API server calls the webhook again, which
    has nothing new to add. Either way the stored init container has the token mount once, as the plugin
    writes it."""
    _, app = setup(kube, cleanup, webhook_namespace, run_id, start_webhook, register_webhook)
    pods = f"/api/v1/namespaces/{app}/pods"
    start = audit_log.offset()
    plain = kube.create(pods, pod_body("plain", run_id))
    opted_out = pod_body("no-token", run_id)
    opted_out["spec"]["automountServiceAccountToken"] = False
    opted_out = kube.create(pods, opted_out)
    # a mount of its own at the token path: the plugin creates no token volume, so its name is unknown here
    own = pod_body("own-token", run_id)
    own["spec"]["volumes"] = [{"name": "own", "emptyDir": {}}]
    own["spec"]["containers"][0]["volumeMounts"] = [{"name": "own", "mountPath": TOKEN_PATH}]
    own = kube.create(pods, own)
    end = audit_log.mark(kube, start)
    configuration = f"{CONFIGURATION}-{run_id}"  # as register_webhook names it

    for pod in (plain, opted_out, own):
        assert annotations_of(pod)[INJECTED] == "true", pod["metadata"]["name"]
    (init,) = plain["spec"]["initContainers"]
    volume = next(v["name"] for v in plain["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
    assert init["volumeMounts"][-1] == {"name": volume, "readOnly": True, "mountPath": TOKEN_PATH}
    assert token_mounts(init) == token_mounts(plain["spec"]["containers"][0])
    assert audit_log.webhook_rounds(start, end, configuration, app, "plain") == ["0"]

    assert token_mounts(opted_out["spec"]["initContainers"][0]) == []
    assert audit_log.webhook_rounds(start, end, configuration, app, "no-token") == ["0"]

    (own_init,) = own["spec"]["initContainers"]
    own_volume = next(v["name"] for v in own["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
    assert token_mounts(own_init) == [{"name": own_volume, "readOnly": True, "mountPath": TOKEN_PATH}]
    assert audit_log.webhook_rounds(start, end, configuration, app, "own-token") == ["0", "1"]
