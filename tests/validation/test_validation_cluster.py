"""/validate in cluster mode against a loopback API server: the proxy Secret comes from the watched cache,
Istio's API from background discovery, and no request reaches the API on the admission path."""

from __future__ import annotations

import base64
import json

from tests.process.test_server import Running
from tests.validation import upstream_messages as up
from tests.validation.validation_support import make_dk, review_of

SECRETS = "/api/v1/namespaces/dynatrace/secrets"


def validate(client, dk) -> dict:
    response = client.post(
        "/validate-dynatrace-com-v1beta3-dynakube",
        content=json.dumps(review_of("CREATE", dk)),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    return response.json()["response"]


def secret(proxy: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "proxy", "namespace": "dynatrace"},
        "data": {"proxy": base64.b64encode(proxy.encode()).decode(), "other": "eA=="},
    }


def test_proxy_secret_and_istio_from_the_cache(cluster, tmp_path):
    api, server, kubeconfig = cluster
    api.seed(SECRETS, secret("http://u:p&s@proxy:3128"))
    running = Running(tmp_path, "--cert-mode", "dev", kubeconfig=kubeconfig)
    try:
        running.wait_ready()
        with running.tls_client() as client:
            denied = validate(client, make_dk("px", proxy={"valueFrom": "proxy"}))
            assert denied["status"]["message"] == f"\n1 error(s) found in the DynaKube\n 1. {up.M14b}"
            api.replace(
                f"{SECRETS}/proxy",
                {**secret("http://proxy:3128"), "metadata": api.get(f"{SECRETS}/proxy")["metadata"]},
            )
            running.wait(lambda: validate(client, make_dk("px", proxy={"valueFrom": "proxy"}))["allowed"])
            # the loopback server serves no networking.istio.io: discovery says "not served"
            running.wait(lambda: not validate(client, make_dk("istio", enableIstio=True))["allowed"])
            before = len(server.requests)
            for _ in range(5):
                validate(client, make_dk("px", proxy={"valueFrom": "proxy"}, enableIstio=True))
            during = [r for r in server.requests[before:] if "watch=true" not in r[1]]
            assert not [r for r in during if "secrets" in r[1] or "istio" in r[1]], during
    finally:
        assert running.stop() == 0
