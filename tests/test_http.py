"""The admission HTTP surface: status codes, review versions, error answers (no TLS here; see test_server)."""

from __future__ import annotations

import base64
import json

import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import make_pod, make_review
from webhook.admission.app import AdmissionApp, Route, admission_fallback, health_app, metrics_app
from webhook.admission.review import MAX_BODY_BYTES
from webhook.metrics import Metrics


def post(client, path, body, content_type="application/json"):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(path, content=data, headers={"Content-Type": content_type})


def patch_of(response) -> list:
    r = response.json()["response"]
    return json.loads(base64.b64decode(r["patch"])) if "patch" in r else []


@pytest.mark.parametrize("version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
def test_answers_in_the_version_asked_and_echoes_the_uid(client, version):
    response = post(client, "/inject?timeout=10s", make_review(make_pod(), api_version=version, uid="u-42"))
    assert response.status_code == 200
    body = response.json()
    assert body["apiVersion"] == version and body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == "u-42" and body["response"]["allowed"] is True
    assert body["response"]["patchType"] == "JSONPatch"
    assert any(op["path"] == "/spec/initContainers" for op in patch_of(response))


def test_empty_connection_info_skip_over_http(client):
    response = post(client, "/inject", make_review(make_pod(namespace="payments"), namespace="payments"))
    assert patch_of(response) == [
        {
            "op": "add",
            "path": "/metadata/annotations",
            "value": {
                "oneagent.dynatrace.com/injected": "false",
                "oneagent.dynatrace.com/reason": "EmptyConnectionInfo",
            },
        }
    ]
    assert "EmptyConnectionInfo" in response.json()["response"]["status"]["message"]


def test_dry_run_is_answered_the_same_way(client):
    wet = post(client, "/inject", make_review(make_pod()))
    dry = post(client, "/inject", make_review(make_pod(), dryRun=True))
    assert patch_of(wet) == patch_of(dry) != []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (b"", "application/json", 400, "empty"),
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"[1, 2]", "application/json", 400, "not a JSON object"),
        (b'"review"', "application/json", 400, "not a JSON object"),
        (
            b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}',
            "application/json",
            400,
            "no request",
        ),
        (
            b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}}',
            "application/json",
            400,
            "no uid",
        ),
        (
            b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"uid": ""}}',
            "application/json",
            400,
            "no uid",
        ),
        (
            b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v2", "request": {"uid": "u"}}',
            "application/json",
            400,
            "apiVersion",
        ),
        (
            b'{"kind": "Pod", "apiVersion": "admission.k8s.io/v1", "request": {"uid": "u"}}',
            "application/json",
            400,
            "kind is 'Pod'",
        ),
        (b"\xff\xfe\x00", "application/json", 400, "not valid JSON"),
        (b'{"kind": "AdmissionReview"}', "text/plain", 400, "Content-Type"),
        (b'{"kind": "AdmissionReview"}', "", 400, "Content-Type"),
    ],
)
def test_undecodable_requests_get_400_with_a_reason(client, body, content_type, status, reason):
    response = post(client, "/inject", body, content_type)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert reason in response.json()["error"]


def test_charset_parameter_is_accepted(client):
    assert (
        post(client, "/inject", make_review(make_pod()), "application/json; charset=utf-8").status_code == 200
    )


def test_oversized_body_is_413(client):
    big = b'{"pad": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    response = post(client, "/inject", big)
    assert response.status_code == 413
    assert "exceeds" in response.json()["error"]


def test_declared_length_over_the_limit_is_refused_before_reading(client):
    app = client.app
    received = []

    async def receive():
        received.append(1)
        return {"type": "http.request", "body": b"{}", "more_body": False}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/inject",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(MAX_BODY_BYTES + 1).encode()),
        ],
    }
    import asyncio

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413 and received == []


def test_chunked_body_over_the_limit_is_413_without_reading_it_all():
    chunk = b"x" * (1024 * 1024)
    calls = []

    async def receive():
        calls.append(1)
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent = []

    async def send(message):
        sent.append(message)

    app = AdmissionApp({"/inject": Route("inject", lambda r: None)}, Metrics(), admission_fallback())  # type: ignore[arg-type]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/inject",
        "headers": [(b"content-type", b"application/json")],
    }
    import asyncio

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert len(calls) == 8  # stopped right after crossing 7 MiB


def test_get_is_405(client):
    response = client.get("/inject")
    assert response.status_code == 405


def test_unknown_path_is_404(client):
    assert client.post("/nope", content=b"{}").status_code == 404


@pytest.mark.parametrize("path", ["/label-ns", "/validate", "/validate-dynatrace-com-v1beta3-dynakube"])
def test_other_webhooks_answer(client, path):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "new"}}
    response = post(client, path, make_review(ns, kind="Namespace"))
    assert response.status_code == 200
    assert response.json()["response"]["uid"] == "uid-1"


@pytest.mark.parametrize(
    ("review_changes", "reason"),
    [
        ({"operation": "DELETE"}, "operation DELETE"),
        ({"operation": "UPDATE"}, "operation UPDATE"),
        ({"object": None}, "not a Pod"),
        ({"object": "pod"}, "not a Pod"),
        ({"object": {"kind": "Secret", "metadata": {"name": "s"}}}, "not a Pod"),
    ],
)
def test_requests_inject_does_not_handle_are_allowed_unchanged(client, review_changes, reason):
    review = make_review(make_pod())
    review["request"].update(review_changes)
    response = post(client, "/inject", review)
    assert response.status_code == 200
    body = response.json()["response"]
    assert body["allowed"] is True and "patch" not in body
    assert reason in body["status"]["message"]


def test_unexpected_error_admits_unchanged_with_a_message(client, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr("webhook.mutation.pod.decide", boom)
    response = post(client, "/inject", make_review(make_pod(name="web-0")))
    body = response.json()["response"]
    assert response.status_code == 200 and body["allowed"] is True and "patch" not in body
    assert body["status"]["message"] == "Failed to inject into pod: web-0 because kaboom"


def test_metrics_count_requests_and_outcomes(client, metrics):
    post(client, "/inject", make_review(make_pod()))
    post(client, "/inject", make_review(make_pod(namespace="payments"), namespace="payments"))
    post(client, "/inject", b"nope")
    r = metrics.registry
    assert r.get_sample_value("dynatrace_webhook_requests_total", {"path": "inject", "code": "200"}) == 2
    assert r.get_sample_value("dynatrace_webhook_requests_total", {"path": "inject", "code": "400"}) == 1
    assert (
        r.get_sample_value("dynatrace_webhook_injections_total", {"outcome": "injected", "reason": ""}) == 1
    )
    assert (
        r.get_sample_value(
            "dynatrace_webhook_injections_total", {"outcome": "skipped", "reason": "EmptyConnectionInfo"}
        )
        == 1
    )
    assert r.get_sample_value("dynatrace_webhook_request_duration_seconds_count", {"path": "inject"}) == 3
    assert r.get_sample_value("dynatrace_webhook_requests_in_flight") == 0


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
