"""Against a real cluster: kube-apiserver calls the webhook, which decides from its watched cache."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from webhook.certs import generate_ca, generate_serving
from webhook.kubeapi import ApiError

HERE = Path(__file__).parent
CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def wait(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError, httpx.HTTPError):
            if predicate():
                return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def dynakube(name: str, namespace: str, hosts: list) -> tuple[dict, dict]:
    body = {
        "apiVersion": "dynatrace.com/v1beta2",
        "kind": "DynaKube",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "apiUrl": "https://abc12345.live.dynatrace.com/api",
            "networkZone": f"zone-{name}",
            "oneAgent": {"cloudNativeFullStack": {}},
        },
    }
    status = {
        "status": {
            "kubeSystemUUID": "5a0c6c1e-3f7a-4d43-9a3e-2f0f1b7f9e11",
            "oneAgent": {"connectionInfoStatus": {"tenantUUID": "abc12345", "communicationHosts": hosts}},
            "codeModules": {"version": "1.299.50.20240930-123456"},
        }
    }
    return body, status


@pytest.fixture()
def cluster_run(kube, tmp_path):
    host = os.environ.get("E2E_WEBHOOK_HOST")
    if not host:
        pytest.skip("set E2E_WEBHOOK_HOST to an address of this machine the cluster can reach")
    run = uuid.uuid4().hex[:6]
    ns = f"e2e-dynatrace-{run}"
    created_crd = False
    try:
        kube.get(f"{CRD}/dynakubes.dynatrace.com")
    except ApiError:
        kube.create(CRD, yaml.safe_load((HERE / "dynakube-crd.yaml").read_text()))
        created_crd = True
        wait(lambda: kube.get("/apis/dynatrace.com/v1beta2"), what="DynaKube CRD served")
    ca = generate_ca()
    leaf = generate_serving(ca, [host])
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "tls.crt").write_bytes(leaf.cert_pem)
    (certs / "tls.key").write_bytes(leaf.key_pem)
    port, health = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webhook",
            "--namespace",
            ns,
            "--webhook-port",
            str(port),
            "--certs-dir",
            str(certs),
            "--health-probe-bind-address",
            f"127.0.0.1:{health}",
            "--metrics-bind-address",
            "0",
            "--dynakube-api-version",
            "v1beta2",
        ],
        stdout=(tmp_path / "webhook.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    names = {"ns": ns, "ready": f"ready-{run}", "pending": f"pending-{run}", "run": run}
    try:
        kube.create("/api/v1/namespaces", {"metadata": {"name": ns}})
        for key, hosts in (
            ("ready", [{"protocol": "https", "host": "10.96.12.34", "port": 443}]),
            ("pending", []),
        ):
            body, status = dynakube(names[key], ns, hosts)
            kube.create(f"/apis/dynatrace.com/v1beta2/namespaces/{ns}/dynakubes", body)
            kube.patch(f"/apis/dynatrace.com/v1beta2/namespaces/{ns}/dynakubes/{names[key]}/status", status)
            kube.create(
                "/api/v1/namespaces",
                {
                    "metadata": {
                        "name": f"app-{key}-{run}",
                        "labels": {"dynakube.internal.dynatrace.com/instance": names[key], "e2e-run": run},
                    }
                },
            )
        kube.create(
            MWC,
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": f"dynatrace-webhook-e2e-{run}"},
                "webhooks": [
                    {
                        "name": "webhook.pod.dynatrace.com",
                        "admissionReviewVersions": ["v1", "v1beta1"],
                        "clientConfig": {
                            "url": f"https://{host}:{port}/inject",
                            "caBundle": base64.b64encode(ca.cert_pem).decode(),
                        },
                        "rules": [
                            {
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "operations": ["CREATE"],
                                "resources": ["pods"],
                                "scope": "Namespaced",
                            }
                        ],
                        "namespaceSelector": {"matchLabels": {"e2e-run": run}},
                        "failurePolicy": "Ignore",
                        "sideEffects": "None",
                        "timeoutSeconds": 10,
                        "reinvocationPolicy": "IfNeeded",
                    }
                ],
            },
        )
        wait(lambda: httpx.get(f"http://127.0.0.1:{health}/readyz").status_code == 200, what="webhook ready")
        yield kube, names
    finally:
        proc.send_signal(signal.SIGTERM)
        exit_code = proc.wait(timeout=30)
        for path in (
            f"{MWC}/dynatrace-webhook-e2e-{run}",
            f"/api/v1/namespaces/app-ready-{run}",
            f"/api/v1/namespaces/app-pending-{run}",
            f"/api/v1/namespaces/{ns}",
        ):
            with contextlib.suppress(ApiError):
                kube.delete(path)
        if created_crd:
            with contextlib.suppress(ApiError):
                kube.delete(f"{CRD}/dynakubes.dynatrace.com")
        assert exit_code == 0, (tmp_path / "webhook.log").read_text()


def pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
    }


def test_api_server_gets_injection_and_empty_connection_info_skip(cluster_run):
    kube, names = cluster_run
    run = names["run"]
    ready = kube.create(f"/api/v1/namespaces/app-ready-{run}/pods", pod("injected"))
    annotations = ready["metadata"].get("annotations", {})
    assert annotations.get("oneagent.dynatrace.com/injected") == "true", annotations
    assert [c["name"] for c in ready["spec"]["initContainers"]] == ["install-oneagent"]
    assert any(e["name"] == "DT_NETWORK_ZONE" for e in ready["spec"]["containers"][0]["env"])

    skipped = kube.create(f"/api/v1/namespaces/app-pending-{run}/pods", pod("skipped"))
    annotations = skipped["metadata"]["annotations"]
    assert annotations["oneagent.dynatrace.com/injected"] == "false"
    assert annotations["oneagent.dynatrace.com/reason"] == "EmptyConnectionInfo"
    assert "initContainers" not in skipped["spec"]

    # communication hosts appear: the next pod is injected, read from the watched cache
    kube.patch(
        f"/apis/dynatrace.com/v1beta2/namespaces/{names['ns']}/dynakubes/{names['pending']}/status",
        {
            "status": {
                "oneAgent": {
                    "connectionInfoStatus": {
                        "communicationHosts": [{"protocol": "https", "host": "10.96.12.35", "port": 443}]
                    }
                }
            }
        },
    )

    def injected_now() -> bool:
        name = f"later-{uuid.uuid4().hex[:4]}"
        created = kube.create(f"/api/v1/namespaces/app-pending-{run}/pods", pod(name))
        return created["metadata"]["annotations"].get("oneagent.dynatrace.com/injected") == "true"

    wait(injected_now, timeout=30, what="injection after communication hosts appeared")
