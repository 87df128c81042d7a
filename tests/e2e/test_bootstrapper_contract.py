"""Against a real API server: the v1.10 (bootstrapper) contract chosen by ``--contract auto``.

A DynaKube as Dynatrace Operator v1.10.2 stores it (v1beta6, status from ``tests/fixtures/dynakube/
v1.10.2-v1beta6.yaml``), the operator's ``<dynakube>-bootstrapper-config`` Secret in the webhook's namespace, a
mapped namespace without any Secret: the first pod created there gets ``dynatrace-bootstrapper-config``
replicated into its namespace on first need and is injected with the bootstrapper init container. With
``spec.otlpExporterConfiguration`` as well, the pod also gets the OTLP exporter's env and certificate volume, and
``dynatrace-otlp-exporter-config`` (and ``-certs``) replicated from the operator's sources.
"""

from __future__ import annotations

import base64
from typing import Any

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
BOOTSTRAPPER_DATA = {"ruxitagentproc.json": base64.b64encode(b"{}").decode()}
OTLP = "otlp-exporter-configuration.dynatrace.com/"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def v110_dynakube(kube, cleanup, namespace: str, run_id: str, **spec: Any) -> str:
    """The fixture's DynaKube (``spec`` added to its spec) with its status, and the operator's bootstrapper
    sources beside it (config and certs: the fixture's ActiveGate has a CA certificate); its name."""
    crd = kube.get(f"{CRD}/dynakubes.dynatrace.com")
    stored_as = [v["name"] for v in crd["spec"]["versions"] if v.get("storage")]
    if stored_as != [VERSION]:
        pytest.skip(f"the cluster's DynaKube CRD stores {stored_as}, not {VERSION} (an existing CRD is kept)")
    ready = load_dynakube("v1.10.2-v1beta6")
    name = f"dk-{run_id}"
    dynakubes = f"/apis/dynatrace.com/{VERSION}/namespaces/{namespace}/dynakubes"
    body = {
        "apiVersion": ready["apiVersion"],
        "kind": "DynaKube",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(run_id)},
        "spec": {**ready["spec"], **spec},
    }
    cleanup.create(dynakubes, body)
    current = kube.get(f"{dynakubes}/{name}")
    kube.replace(f"{dynakubes}/{name}/status", {**current, "status": ready["status"]})
    for suffix in ("config", "certs"):
        operator_secret(cleanup, namespace, run_id, f"{name}-bootstrapper-{suffix}", BOOTSTRAPPER_DATA)
    return name


def operator_secret(cleanup, namespace: str, run_id: str, name: str, data: dict[str, str]) -> None:
    source_labels = {**labels(run_id), "app.kubernetes.io/component": "injection"}
    cleanup.create(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": name, "labels": source_labels}, "data": data},
    )


def injecting_namespace(
    kube, cleanup, start_webhook, register_webhook, run_id: str, name: str, **more: str
) -> tuple[str, Any]:
    """A namespace mapped to DynaKube ``name`` and the webhook (``--contract auto``) deciding for it under the
    v1.10 contract: the namespace and the webhook."""
    app = f"boot-{run_id}"
    create_namespace(kube, cleanup, app, run_id, **{INSTANCE_LABEL: name, "monitoring": "dynatrace", **more})
    webhook = start_webhook("--dynakube-api-version", "", "--contract", "auto")
    register_webhook("MutatingWebhookConfiguration", "dynatrace-webhook-e2e", [pod_hook(webhook, run_id)])
    pods = f"/api/v1/namespaces/{app}/pods"

    def probe() -> dict[str, str]:
        return annotations_of(dry_run_create(kube, pods, pod_body("probe", run_id)))

    # a dry run never creates: the webhook says the namespace lacks the Secret, under the v1.10 contract
    wait(lambda: probe().get(DK_REASON) == "NoBootstrapperConfig", what="/inject deciding under v1.10")
    return app, webhook


def test_auto_injects_with_the_bootstrapper_and_replicates_its_config(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook, audit_log
):
    name = v110_dynakube(kube, cleanup, webhook_namespace, run_id)
    app, webhook = injecting_namespace(kube, cleanup, start_webhook, register_webhook, run_id, name)
    pods = f"/api/v1/namespaces/{app}/pods"
    data = BOOTSTRAPPER_DATA
    start = audit_log.offset()
    pod = kube.create(pods, pod_body("injected", run_id))
    # the init container carries the token mount the ServiceAccount plugin would add: one webhook call
    rounds = audit_log.webhook_rounds(
        start, audit_log.mark(kube, start), f"dynatrace-webhook-e2e-{run_id}", app, "injected"
    )
    assert rounds == ["0"]
    token = [m for m in pod["spec"]["initContainers"][0]["volumeMounts"] if m["mountPath"] == TOKEN_PATH]
    assert len(token) == 1 and token[0]["name"].startswith("kube-api-access-")
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


def test_otlp_exporter_env_and_its_secrets_replicated(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    otlp = {"signals": {"traces": {}, "metrics": {}}, "namespaceSelector": {"matchLabels": {"otlp": run_id}}}
    name = v110_dynakube(kube, cleanup, webhook_namespace, run_id, otlpExporterConfiguration=otlp)
    token = {"dataIngestToken": base64.b64encode(b"dt0c01.INGEST").decode()}
    cert = {"activegate-tls.crt": base64.b64encode(b"-----BEGIN CERTIFICATE-----").decode()}
    operator_secret(cleanup, webhook_namespace, run_id, f"{name}-otlp-exporter-config", token)
    operator_secret(cleanup, webhook_namespace, run_id, f"{name}-otlp-exporter-certs", cert)
    app, webhook = injecting_namespace(
        kube, cleanup, start_webhook, register_webhook, run_id, name, otlp=run_id
    )

    pod = kube.create(f"/api/v1/namespaces/{app}/pods", pod_body("otlp", run_id))
    annotations = annotations_of(pod)
    assert annotations.get(OTLP + "injected") == "true", webhook.log.read_text()[-3000:]
    assert annotations.get("dynakube.dynatrace.com/injected") == "true", annotations
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["DT_API_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "dynatrace-otlp-exporter-config", "key": "dataIngestToken"}
    }
    base = f"https://{name}-activegate.{webhook_namespace}/e/abc12345/api/v2/otlp"
    assert env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]["value"] == f"{base}/v1/traces"
    assert env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]["value"] == f"{base}/v1/metrics"
    assert env["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"]["value"] == "delta"
    assert env["OTEL_EXPORTER_OTLP_TRACES_HEADERS"]["value"] == "authorization=Api-Token $(DT_API_TOKEN)"
    assert env["OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"]["value"] == "/etc/dynatrace/ssl/activegate-tls.crt"
    assert "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT" not in env  # logs not among the signals
    assert "k8s.namespace.name=" + app in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
    (certs,) = [v for v in pod["spec"]["volumes"] if v["name"] == "otlp-dynatrace-certs"]
    assert certs["secret"]["secretName"] == "dynatrace-otlp-exporter-certs"
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["otlp-dynatrace-certs"]["mountPath"] == "/etc/dynatrace/ssl"
    # the Secrets the env and the volume name, replicated on first need with the source's data and labels
    replica = kube.get(f"/api/v1/namespaces/{app}/secrets/dynatrace-otlp-exporter-config")
    assert replica["data"] == token
    assert replica["metadata"]["labels"]["app.kubernetes.io/component"] == "injection"
    assert kube.get(f"/api/v1/namespaces/{app}/secrets/dynatrace-otlp-exporter-certs")["data"] == cert
