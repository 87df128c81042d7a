"""The real process against the loopback API: the initsecrets controller creates the Secret of a mapped
namespace, and admissions make no API request at all (they answer from the caches)."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlsplit

from tests.conftest import DK_PATH, make_dynakube, make_namespace, make_pod, make_review
from tests.process.test_server import Running
from tests.support.apiserver import ApiServer
from tests.support.fakeapi import FakeApi

SECRET = "/api/v1/namespaces/shop/secrets/dynatrace-dynakube-config"


def test_controller_creates_the_secret_and_admissions_make_no_api_request(tmp_path) -> None:
    api = FakeApi()
    api.seed(DK_PATH, make_dynakube("dk"))
    api.seed("/api/v1/namespaces", make_namespace("shop", "dk"))
    api.seed("/api/v1/namespaces", make_namespace("dynatrace", None))
    tokens = {"apiToken": base64.b64encode(b"api-token").decode()}
    api.seed(
        "/api/v1/namespaces/dynatrace/secrets",
        {"metadata": {"name": "dk", "namespace": "dynatrace"}, "data": tokens},
    )
    api.seed(  # a ReplicaSet for the owner cache, seen metadata-only
        "/apis/apps/v1/namespaces/shop/replicasets",
        {"metadata": {"name": "checkout-785cb95b9f", "namespace": "shop"}, "spec": {"replicas": 1}},
    )
    server = ApiServer(api)
    running = Running(tmp_path, "--cert-mode", "dev", kubeconfig=server.kubeconfig(tmp_path / "kubeconfig"))
    try:
        running.wait_ready()
        running.wait(lambda: SECRET in api.objects, timeout=20)
        secret = api.objects[SECRET]
        assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "dynatrace-webhook"
        config = json.loads(base64.b64decode(secret["data"]["config"]))
        assert (config["apiToken"], config["tenantUUID"]) == ("api-token", "abc12345")
        # the caches list Secrets by name and owners metadata-only
        gets = [p for m, p in server.requests if m == "GET"]
        assert any("fieldSelector=metadata.name%3Ddynatrace-dynakube-config" in p for p in gets)
        assert any(urlsplit(p).path == "/apis/apps/v1/replicasets" for p in gets)

        running.wait(
            lambda: "dynatrace_webhook_init_secrets_total{" in running.get(running.metrics, "/metrics").text
        )
        metrics = running.get(running.metrics, "/metrics").text
        assert (
            'dynatrace_webhook_init_secrets_total{action="created",secret="dynatrace-dynakube-config"} 1.0'
            in metrics
        )
        assert "dynatrace_webhook_init_secrets_leader 1.0" in metrics
        assert 'dynatrace_webhook_cache_objects{resource="replicasets"} 1.0' in metrics

        time.sleep(0.5)  # let the controller settle: from here on only watches and Lease renewals may run
        start = time.monotonic()
        with running.tls_client() as client:
            for i in range(50):
                review = make_review(make_pod(), uid=f"uid-{i}")
                response = client.post(
                    "/inject", content=json.dumps(review), headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 200 and response.json()["response"]["allowed"] is True
        end = time.monotonic()
        during = [
            (m, p)
            for t, m, p in list(server.times)
            if start <= t <= end
            and "watch=true" not in p  # the caches' watch streams, resumed as the fake API server ends them
            and "/leases/" not in p  # leader election renewals
            and not urlsplit(p).path.endswith("/events")  # the Events recorder's writes (its own thread)
        ]
        assert during == [], during
    finally:
        assert running.stop() == 0
        server.close()
