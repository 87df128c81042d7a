"""The real process in cluster mode: a pod admitted without OneAgent leaves a Warning Event in the API."""

from __future__ import annotations

import json

from tests.conftest import make_pod, make_review
from tests.process.test_server import Running
from tests.support.events import events_in as events

OWNER = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "name": "checkout-785cb95b9f",
    "uid": "6f1c2d3e-0000-4000-8000-000000000001",
    "controller": True,
}


def post(client, pod) -> dict:
    body = json.dumps(make_review(pod))
    response = client.post("/inject", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    return response.json()["response"]


def test_skipped_pods_produce_events_on_owner_and_dynakube(cluster, tmp_path):
    api, _, kubeconfig = cluster
    running = Running(
        tmp_path,
        "--cert-mode",
        "dev",
        "--no-init-secrets",  # its Warning on the DynaKube (no tokens Secret here) is tested on its own
        env={"POD_NAME": "dynatrace-webhook-7d9f-abcde"},
        kubeconfig=kubeconfig,
    )
    try:
        running.wait_ready()
        owned = make_pod()
        owned["metadata"]["ownerReferences"] = [OWNER]
        with running.tls_client() as client:
            for _ in range(3):
                assert "EmptyConnectionInfo" in post(client, owned)["status"]["message"]
            post(client, make_pod(name="standalone", generate_name=None))
        running.wait(lambda: len(events(api, "shop")) == 1 and len(events(api, "dynatrace")) == 1)
        (on_owner,) = events(api, "shop")
        assert on_owner["involvedObject"] == {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "checkout-785cb95b9f",
            "uid": OWNER["uid"],
            "namespace": "shop",
        }
        assert on_owner["type"] == "Warning" and on_owner["reason"] == "OneAgentInjectionSkipped"
        assert "DynaKube 'dk'" in on_owner["message"] and "EmptyConnectionInfo" in on_owner["message"]
        assert "eu-west-zone-a" in on_owner["message"]
        # the pod's name, as controller-runtime names the instance: "<controller>-<host name>"
        assert on_owner["reportingInstance"] == "dynatrace-webhook-dynatrace-webhook-7d9f-abcde"
        assert on_owner["reportingComponent"] == "dynatrace-webhook"
        assert on_owner["action"] == "InjectOneAgent"
        (on_dynakube,) = events(api, "dynatrace")
        assert on_dynakube["involvedObject"]["kind"] == "DynaKube"
        assert on_dynakube["involvedObject"]["name"] == "dk"
        sent = 'dynatrace_webhook_events_total{result="sent"} 2.0'
        running.wait(lambda: sent in running.get(running.metrics, "/metrics").text)  # counted after the write
        metrics = running.get(running.metrics, "/metrics").text
        assert 'dynatrace_webhook_events_total{result="dropped"} 0.0' in metrics
        assert 'dynatrace_webhook_events_total{result="failed"} 0.0' in metrics
    finally:
        assert running.stop() == 0
    # on shutdown the pending count of the repeated event is written
    (on_owner,) = events(api, "shop")
    assert on_owner["count"] == 3


def test_no_events_flag(cluster, tmp_path):
    api, server, kubeconfig = cluster
    # no controller either (their Leases and writes are tested on their own): nothing but reads may remain
    running = Running(
        tmp_path,
        "--cert-mode",
        "dev",
        "--no-events",
        "--no-init-secrets",
        "--no-reinject",
        kubeconfig=kubeconfig,
    )
    try:
        running.wait_ready()
        with running.tls_client() as client:
            assert "EmptyConnectionInfo" in post(client, make_pod())["status"]["message"]
        assert "dynatrace_webhook_events_total{" not in running.get(running.metrics, "/metrics").text
    finally:
        assert running.stop() == 0
    assert events(api, "shop") == [] and events(api, "dynatrace") == []
    assert {method for method, _ in server.requests} == {"GET"}
