"""The health and metrics listeners' apps (no TLS here; see test_server)."""

from __future__ import annotations

from starlette.testclient import TestClient

from webhook.observe import health_app, metrics_app


def test_health_and_readiness():
    state = {"cache_synced": False, "certificate_valid": True}
    client = TestClient(health_app(lambda: dict(state)))
    assert client.get("/healthz").status_code == 200
    assert client.get("/livez").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["cache_synced"] is False
    state["cache_synced"] = True
    assert client.get("/readyz").status_code == 200


def test_metrics_exposition_is_prometheus_text(metrics):
    refreshed = []
    client = TestClient(metrics_app(metrics, lambda: refreshed.append(1)))
    response = client.get("/metrics")
    assert response.status_code == 200 and refreshed == [1]
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE dynatrace_webhook_requests_total counter" in response.text
    assert "process_resident_memory_bytes" in response.text
