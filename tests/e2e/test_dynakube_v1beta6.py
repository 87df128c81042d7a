"""Against a real API server: a DynaKube as Dynatrace Operator v1.10.2 stores it. The CRD stores v1beta6 (as the
operator's has since v1.8); the status, written through the status subresource the way the operator updates it,
is the fixture ``tests/fixtures/dynakube/v1.10.2-v1beta6.yaml``: OneAgent ``endpoints`` and no
``communicationHosts``. The webhook watches the group's preferred version (no ``--dynakube-api-version``).

A pod in a namespace mapped to it is injected; once the status says the tenant returned no endpoints (the
fixture ``v1.10.2-v1beta6-no-endpoints.yaml``), the next pod is admitted with ``EmptyConnectionInfo``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import load_dynakube
from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    CRD,
    INJECTED,
    INSTANCE_LABEL,
    REASON,
    annotations_of,
    create_operator_init_secrets,
    dry_run_create,
    init_containers,
    labels,
    pod_body,
    pod_hook,
    wait,
)

VERSION = "v1beta6"


def test_a_v1_10_2_status_stored_as_v1beta6_injects_until_its_endpoints_go(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    crd = kube.get(f"{CRD}/dynakubes.dynatrace.com")
    stored_as = [v["name"] for v in crd["spec"]["versions"] if v.get("storage")]
    if stored_as != [VERSION]:
        pytest.skip(f"the cluster's DynaKube CRD stores {stored_as}, not {VERSION} (an existing CRD is kept)")
    assert kube.get("/apis/dynatrace.com")["preferredVersion"]["version"] == VERSION

    ready, pending = load_dynakube("v1.10.2-v1beta6"), load_dynakube("v1.10.2-v1beta6-no-endpoints")
    assert "communicationHosts" not in ready["status"]["oneAgent"]["connectionInfoStatus"]
    name = f"dk-{run_id}"
    dynakubes = f"/apis/dynatrace.com/{VERSION}/namespaces/{webhook_namespace}/dynakubes"
    body = {
        "apiVersion": ready["apiVersion"],
        "kind": "DynaKube",
        "metadata": {"name": name, "namespace": webhook_namespace, "labels": labels(run_id)},
        "spec": ready["spec"],
    }
    assert cleanup.create(dynakubes, body)["apiVersion"] == "dynatrace.com/v1beta6"

    def write_status(status: dict[str, Any]) -> None:
        """As the operator's ``UpdateStatus``: a PUT of the whole object on the status subresource."""
        current = kube.get(f"{dynakubes}/{name}")
        kube.replace(f"{dynakubes}/{name}/status", {**current, "status": status})

    write_status(ready["status"])
    app = f"app-{run_id}"
    create_namespace(kube, cleanup, app, run_id, **{INSTANCE_LABEL: name, "monitoring": "dynatrace"})
    create_operator_init_secrets(cleanup, app, run_id)
    webhook = start_webhook("--dynakube-api-version", "")  # "": the group's preferred version
    register_webhook("MutatingWebhookConfiguration", "dynatrace-webhook-e2e", [pod_hook(webhook, run_id)])
    pods = f"/api/v1/namespaces/{app}/pods"

    def probe() -> dict[str, str]:
        return annotations_of(dry_run_create(kube, pods, pod_body("probe", run_id)))

    wait(lambda: probe().get(INJECTED) == "true", what="the API server calling /inject, the pod injected")
    pod = kube.create(pods, pod_body("injected", run_id))
    annotations = annotations_of(pod)
    assert annotations[INJECTED] == "true" and REASON not in annotations
    assert init_containers(pod) == ["dynatrace-operator"]

    write_status(pending["status"])
    stored = kube.get(f"{dynakubes}/{name}")["status"]["oneAgent"]["connectionInfoStatus"]
    assert stored == {"tenantUUID": "abc12345"}  # the update replaced the status: no endpoints left
    wait(
        lambda: probe().get(REASON) == "EmptyConnectionInfo",
        what="the webhook seeing the status without endpoints",
    )
    pod = kube.create(pods, pod_body("skipped", run_id))
    annotations = annotations_of(pod)
    assert (annotations[INJECTED], annotations[REASON]) == ("false", "EmptyConnectionInfo")
    assert init_containers(pod) == []
