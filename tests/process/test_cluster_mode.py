"""The real process in cluster mode against a loopback API server (no kube-apiserver runs here):
state from list+watch, decisions follow DynaKube status changes, self-managed certificates, relabeling."""

from __future__ import annotations

import base64
import json

from tests.conftest import DK_PATH, make_pod, make_review
from tests.process.test_server import Running, ops

MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
VWC = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


def inject(client, body) -> list:
    response = client.post("/inject", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    return ops(response.json()["response"])


def test_state_from_the_api_and_status_changes_reach_the_next_admission(cluster, tmp_path):
    api, server, kubeconfig = cluster
    # the initsecrets controller (its Lease and Secret writes) and reinjection (its Lease, scans and restarts)
    # have tests of their own
    running = Running(
        tmp_path, "--cert-mode", "dev", "--no-init-secrets", "--no-reinject", kubeconfig=kubeconfig
    )
    try:
        running.wait_ready()
        review = make_review(make_pod())
        with running.tls_client() as client:
            assert (
                inject(client, review)[0]["value"]["oneagent.dynatrace.com/reason"] == "EmptyConnectionInfo"
            )
            api.patch(
                f"{DK_PATH}/dk",
                {
                    "status": {
                        "oneAgent": {
                            "connectionInfoStatus": {
                                "communicationHosts": [{"protocol": "https", "host": "10.0.0.9", "port": 443}]
                            }
                        }
                    }
                },
            )
            running.wait(lambda: any(op["path"] == "/spec/initContainers" for op in inject(client, review)))
        metrics = running.get(running.metrics, "/metrics").text
        for resource in ("namespaces", "dynakubes", "init-config-secrets", "replicasets"):
            running.wait(
                lambda r=resource: (
                    f'dynatrace_webhook_cache_synced{{resource="{r}"}} 1.0'
                    in running.get(running.metrics, "/metrics").text
                )
            )
        assert 'dynatrace_webhook_cache_objects{resource="namespaces"} 2.0' in metrics
    finally:
        assert running.stop() == 0
    # the cache only reads (discovery, list, watch) and resumes watches rather than relisting; the only
    # writes are the Event about the skipped pods (on the DynaKube: the pod has no owner)
    writes = {(method, path.rsplit("/", 1)[0]) for method, path in server.requests if method != "GET"}
    assert writes <= {
        ("POST", "/apis/events.k8s.io/v1/namespaces/dynatrace"),
        ("PATCH", "/apis/events.k8s.io/v1/namespaces/dynatrace/events"),
    }, writes
    assert ("POST", "/apis/events.k8s.io/v1/namespaces/dynatrace") in writes
    lists = [
        path
        for method, path in server.requests
        if method == "GET"
        and "watch=true" not in path
        and path not in ("/apis/dynatrace.com", "/apis/networking.istio.io/v1beta1", "/version")
    ]
    # one paginated list per kind; namespaces as metadata only (PartialObjectMetadataList)
    secrets = "/api/v1/namespaces/dynatrace/secrets?limit=500"
    kinds = ["/api/v1/namespaces?limit=500", secrets, f"{DK_PATH}?limit=500"]
    assert sorted(p for p in lists if p in kinds) == sorted(kinds)
    accepts = dict(server.accepts)
    assert "as=PartialObjectMetadataList;" in accepts["/api/v1/namespaces?limit=500"]
    assert "as=PartialObject" not in accepts[f"{DK_PATH}?limit=500"]
    assert "as=PartialObject" not in accepts[secrets]
    # the init-Secret caches (one per name: two of the v1.4 contract, four of the v1.10 contract: the
    # bootstrapper's and the OTLP exporter's) and the owner caches list once each, in pages too; the owners as
    # metadata only
    others = [p for p in lists if p not in kinds]
    assert len(others) == 9 and all("limit=500" in p for p in others), others
    assert "as=PartialObjectMetadataList;" in accepts["/apis/apps/v1/replicasets?limit=500"]


def test_self_managed_certificates_are_created_and_trusted_by_the_bundle(cluster, tmp_path):
    api, _, kubeconfig = cluster
    for path, kind in ((MWC, "MutatingWebhookConfiguration"), (VWC, "ValidatingWebhookConfiguration")):
        api.seed(
            path,
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": "dynatrace-webhook"},
                "webhooks": [{"name": "webhook.pod.dynatrace.com", "clientConfig": {"url": "https://x"}}],
            },
        )
    running = Running(
        tmp_path,
        "--cert-mode",
        "self-managed",
        "--cert-extra-san",
        "localhost",
        "--mutating-webhook-config",
        "dynatrace-webhook",
        "--validating-webhook-config",
        "dynatrace-webhook",
        "--ca-bundle-propagation-delay",
        "1s",
        kubeconfig=kubeconfig,
    )
    try:
        running.wait_ready()
        secret = api.get("/api/v1/namespaces/dynatrace/secrets/dynatrace-webhook-certs")
        assert {"ca.crt", "ca.key", "tls.crt", "tls.key"} <= set(secret["data"])
        bundle = base64.b64decode(
            api.get(f"{MWC}/dynatrace-webhook")["webhooks"][0]["clientConfig"]["caBundle"]
        )
        assert bundle.startswith(base64.b64decode(secret["data"]["ca.crt"]))
        ca = tmp_path / "bundle.pem"
        ca.write_bytes(bundle)
        with running.tls_client(ca) as client:  # a client that trusts only the bundle
            assert inject(client, make_review(make_pod()))
    finally:
        assert running.stop() == 0


def test_relabeler_labels_existing_namespaces(cluster, tmp_path):
    api, _, kubeconfig = cluster
    api.patch(
        f"{DK_PATH}/dk",
        {
            "spec": {
                "oneAgent": {"cloudNativeFullStack": {"namespaceSelector": {"matchLabels": {"team": "shop"}}}}
            }
        },
    )
    api.seed(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "orders", "labels": {"team": "shop"}}},
    )
    running = Running(tmp_path, "--cert-mode", "dev", "--relabel-namespaces", kubeconfig=kubeconfig)
    try:
        running.wait_ready()
        running.wait(
            lambda: (
                api.get("/api/v1/namespaces/orders")["metadata"]["labels"].get(
                    "dynakube.internal.dynatrace.com/instance"
                )
                == "dk"
            )
        )
    finally:
        assert running.stop() == 0


def test_the_admission_path_makes_no_api_request(tmp_path):
    """Injection with enrichment, the cluster ID and the owner walk in cluster mode: every answer comes from
    the cache; the loopback API server sees no request while the admissions are answered."""
    import time

    from tests.conftest import make_dynakube, make_init_secret, make_namespace
    from tests.support.apiserver import ApiServer
    from tests.support.fakeapi import FakeApi

    api = FakeApi()
    dynakube = make_dynakube("dk")
    dynakube["spec"]["metadataEnrichment"] = {"enabled": True}
    api.seed(DK_PATH, dynakube)
    api.seed("/api/v1/namespaces", make_namespace("shop", "dk"))
    api.seed("/api/v1/namespaces", make_namespace("dynatrace", None))
    kube_system = make_namespace("kube-system", None)
    kube_system["metadata"]["uid"] = "cluster-uid-0001"
    api.seed("/api/v1/namespaces", kube_system)
    for secret in ("dynatrace-dynakube-config", "dynatrace-metadata-enrichment-endpoint"):
        api.seed("/api/v1/namespaces/shop/secrets", make_init_secret("shop", secret))
    server = ApiServer(api)
    # no controller writing meanwhile: every request in the window would be the admission path's
    running = Running(
        tmp_path,
        "--cert-mode",
        "dev",
        "--no-events",
        "--no-init-secrets",
        "--no-reinject",
        kubeconfig=server.kubeconfig(tmp_path / "kc"),
    )
    try:
        running.wait_ready()
        # readiness does not wait for the owner caches: wait until each holds its first list (their
        # HasSynced, as the webhook reports it), so that those lists are not taken for the admission path's
        for resource in ("replicasets", "jobs", "replicationcontrollers"):
            running.wait(
                lambda r=resource: (
                    f'dynatrace_webhook_cache_synced{{resource="{r}"}} 1.0'
                    in running.get(running.metrics, "/metrics").text
                )
            )
        pod = make_pod()
        pod["metadata"]["labels"]["pod-template-hash"] = "785cb95b9f"
        pod["metadata"]["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-785cb95b9f", "controller": True}
        ]
        with running.tls_client() as client:
            inject(client, make_review(pod))  # the connection is up before the window opens
            since = time.monotonic()
            answers = [inject(client, make_review(pod)) for _ in range(20)]
            until = time.monotonic()
        assert all(answers)
        init = next(op["value"] for op in answers[0] if op["path"] == "/spec/initContainers")[0]
        env = {e["name"]: e.get("value") for e in init["env"]}
        assert env["K8S_CLUSTER_ID"] == "cluster-uid-0001"
        assert (env["DT_WORKLOAD_KIND"], env["DT_WORKLOAD_NAME"]) == ("deployment", "checkout")
        # the cache's own watch streams may (re)start meanwhile; anything else would be the admission path's
        made = [(m, p) for t, m, p in list(server.times) if since <= t <= until and "watch=true" not in p]
        assert made == [], made
    finally:
        assert running.stop() == 0
        server.close()
