"""The admission HTTP surface: status codes, review versions, error answers (no TLS here; see test_server)."""

from __future__ import annotations

import base64
import json

import orjson
import pytest
from starlette.testclient import TestClient

from tests.conftest import SETTINGS, make_dynakube, make_namespace, make_pod, make_review, make_store
from webhook.admission import handlers
from webhook.admission.app import Route, admission_app
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

    app = admission_app({"/inject": Route("inject", lambda r: None)}, Metrics())  # type: ignore[arg-type]
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


@pytest.mark.parametrize(
    "path", ["/inject", "/label-ns", "/validate", "/validate-dynatrace-com-v1beta6-dynakube"]
)
def test_another_method_is_the_routers_405_saying_what_is_allowed(client, path):
    response = client.get(path)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "method GET not allowed; allowed: POST", "code": 405}


@pytest.mark.parametrize("path", ["/nope", "/inject/", "/inject/x"])
def test_unknown_path_is_404(client, path):
    response = client.post(path, content=b"{}", follow_redirects=False)
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "code": 404}


def test_admission_paths_are_routes_of_the_app():
    """The routes of the FastAPI app's router: what instrumentation and route-aware middleware look at."""
    app = admission_app({"/inject": Route("inject", lambda r: None)}, Metrics())  # type: ignore[arg-type]
    paths = {getattr(route, "path", None): route for route in app.router.routes}
    assert paths["/inject"].methods == {"POST"}  # type: ignore[attr-defined]


def test_middleware_of_the_app_sees_admissions(metrics):
    """A middleware added to the app (as OpenTelemetry's FastAPI instrumentation adds one) wraps /inject."""
    seen = []

    async def handler(review):
        return handlers.inject(review, make_store([make_dynakube()], [make_namespace()]), SETTINGS)

    app = admission_app({"/inject": Route("inject", handler)}, metrics)

    @app.middleware("http")
    async def observe(request, call_next):
        response = await call_next(request)
        seen.append((request.method, request.url.path, response.status_code))
        return response

    client = TestClient(app)
    assert post(client, "/inject", make_review(make_pod())).status_code == 200
    assert client.get("/inject").status_code == 405
    assert seen == [("POST", "/inject", 200), ("GET", "/inject", 405)]


def test_a_handler_that_raises_is_500_without_a_traceback(metrics, caplog):
    def boom(review):
        raise RuntimeError("kaboom")

    client = TestClient(admission_app({"/inject": Route("inject", boom)}, metrics))
    response = post(client, "/inject", make_review(make_pod()))
    assert response.status_code == 500
    assert response.json() == {"error": "internal error", "code": 500}
    assert "kaboom" in caplog.text  # logged with its traceback, not answered with it
    r = metrics.registry
    assert r.get_sample_value("dynatrace_webhook_requests_total", {"path": "inject", "code": "500"}) == 1


def test_a_failure_outside_the_handlers_is_500_without_a_traceback(metrics):
    client = TestClient(admission_app({}, metrics), raise_server_exceptions=False)

    @client.app.get("/fails")  # type: ignore[attr-defined]
    def fails() -> None:
        raise RuntimeError("kaboom")

    response = client.get("/fails")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error", "code": 500}


def test_draining_answers_close_the_connection(metrics):
    client = TestClient(
        admission_app(
            {"/inject": Route("inject", lambda r: handlers.inject(r, make_store(), SETTINGS))},
            metrics,
            closing=lambda: True,
        )
    )
    assert post(client, "/inject", make_review(make_pod())).headers["connection"] == "close"
    assert client.get("/inject").headers["connection"] == "close"


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
