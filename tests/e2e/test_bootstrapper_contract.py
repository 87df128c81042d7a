"""Against a real API server: the v1.10 (bootstrapper) contract chosen by ``--contract auto``.

A DynaKube as Dynatrace Operator v1.10.2 stores it (v1beta6, status from ``tests/fixtures/dynakube/
v1.10.2-v1beta6.yaml``), the operator's ``<dynakube>-bootstrapper-config`` Secret in the webhook's namespace, a
mapped namespace without any Secret: the first pod created there gets ``dynatrace-bootstrapper-config``
replicated into its namespace on first need and is injected with the bootstrapper init container.
"""

from __future__ import annotations

import base64

import pytest

from tests.conftest import load_dynakube
from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    CRD,
    INSTANCE_LABEL,
    annotations_of,
    dry_run_create,
    init_containers,
    labels,
    pod_body,
    pod_hook,
    wait,
)

VERSION = "v1beta6"
DK_REASON = "dynakube.dynatrace.com/reason"


def test_auto_injects_with_the_bootstrapper_and_replicates_its_config(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    crd = kube.get(f"{CRD}/dynakubes.dynatrace.com")
    stored_as = [v["name"] for v in crd["spec"]["versions"] if v.get("storage")]
    if stored_as != [VERSION]:
        pytest.skip(f"the cluster's DynaKube CRD stores {stored_as}, not {VERSION} (an existing CRD is kept)")
    ready = load_dynakube("v1.10.2-v1beta6")
    name = f"dk-{run_id}"
    dynakubes = f"/apis/dynatrace.com/{VERSION}/namespaces/{webhook_namespace}/dynakubes"
    body = {
        "apiVersion": ready["apiVersion"],
        "kind": "DynaKube",
        "metadata": {"name": name, "namespace": webhook_namespace, "labels": labels(run_id)},
        "spec": ready["spec"],
    }
    cleanup.create(dynakubes, body)
    current = kube.get(f"{dynakubes}/{name}")
    kube.replace(f"{dynakubes}/{name}/status", {**current, "status": ready["status"]})
    data = {"ruxitagentproc.json": base64.b64encode(b"{}").decode()}
    source_labels = {**labels(run_id), "app.kubernetes.io/component": "injection"}
    for suffix in ("config", "certs"):  # the fixture's ActiveGate has a CA certificate: certs are needed too
        cleanup.create(
            f"/api/v1/namespaces/{webhook_namespace}/secrets",
            {"metadata": {"name": f"{name}-bootstrapper-{suffix}", "labels": source_labels}, "data": data},
        )
    app = f"boot-{run_id}"
    create_namespace(kube, cleanup, app, run_id, **{INSTANCE_LABEL: name, "monitoring": "dynatrace"})
    webhook = start_webhook("--dynakube-api-version", "", "--contract", "auto")
    register_webhook("MutatingWebhookConfiguration", "dynatrace-webhook-e2e", [pod_hook(webhook, run_id)])
    pods = f"/api/v1/namespaces/{app}/pods"

    def probe() -> dict[str, str]:
        return annotations_of(dry_run_create(kube, pods, pod_body("probe", run_id)))

    # a dry run never creates: the webhook says the namespace lacks the Secret, under the v1.10 contract
    wait(lambda: probe().get(DK_REASON) == "NoBootstrapperConfig", what="/inject deciding under v1.10")
    pod = kube.create(pods, pod_body("injected", run_id))
    annotations = annotations_of(pod)
    assert annotations.get("dynakube.dynatrace.com/injected") == "true", webhook.log.read_text()[-3000:]
    assert init_containers(pod) == ["dynatrace-operator"]
    init = pod["spec"]["initContainers"][0]
    assert init["args"][:3] == ["bootstrap", "--config-directory=/mnt/config", "--input-directory=/mnt/input"]
    assert init["image"] == "public.ecr.aws/dynatrace/dynatrace-operator:v1.10.2"
    volumes = {v["name"] for v in pod["spec"]["volumes"]}
    assert {"dynatrace-input", "dynatrace-config"} <= volumes
    assert kube.get(f"/api/v1/namespaces/{app}/secrets/dynatrace-bootstrapper-certs")["data"] == data
    replica = kube.get(f"/api/v1/namespaces/{app}/secrets/dynatrace-bootstrapper-config")
    assert replica["data"] == data
    assert replica["metadata"]["labels"]["app.kubernetes.io/component"] == "injection"
