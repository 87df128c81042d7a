"""The three HTTP surfaces.

- Admission (TLS): a raw ASGI callable in front of a FastAPI app. The admission paths are answered right
  here, with one body read, one JSON parse and one JSON dump; every other path falls through to FastAPI.
  The request path does no framework validation and no API call.
- Health (kubelet) and metrics (Prometheus): small FastAPI apps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from webhook.admission.review import MAX_BODY_BYTES, Answer, Review, ReviewError, decode, encode
from webhook.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("webhook.admission.review")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]
# the body was not (fully) read: the connection cannot carry another request
CLOSE_HEADERS = [*JSON_HEADERS, (b"connection", b"close")]
VALIDATE_ALIASES = (
    *(f"/validate-dynatrace-com-v1beta{v}-dynakube" for v in range(1, 7)),
    "/validate-dynatrace-com-v1alpha1-edgeconnect",
    "/validate-dynatrace-com-v1alpha2-edgeconnect",
)


@dataclass(frozen=True)
class Route:
    webhook: str  # bounded label: inject, label-ns, validate
    # an Answer, or (rarely: /inject creating an init Secret on first need) an awaitable of one
    handler: Callable[[Review], Answer | Awaitable[Answer]]


class AdmissionApp:
    def __init__(
        self,
        routes: dict[str, Route],
        metrics: Metrics,
        fallback: ASGIApp,
        *,
        max_body: int = MAX_BODY_BYTES,
        read_timeout: float | None = None,
        closing: Callable[[], bool] | None = None,
    ) -> None:
        self.routes = routes
        self.metrics = metrics
        self.fallback = fallback
        self.max_body = max_body
        self.read_timeout = read_timeout  # seconds for the whole body; None: no bound (tests)
        self.closing = closing or (lambda: False)  # True while draining: answers tell clients to reconnect
        self._latency = {r.webhook: metrics.latency.labels(r.webhook) for r in routes.values()}
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: the label sets are few and ``labels()`` takes a lock."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None:
            await self.fallback(scope, receive, send)
            return
        start = time.perf_counter()
        self.metrics.in_flight.inc()
        status = 500
        try:
            status, body, review, answer = await self._handle(scope, receive, route)
            headers = CLOSE_HEADERS if status in (408, 413) or self.closing() else JSON_HEADERS
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.in_flight.dec()
            self._latency[route.webhook].observe(elapsed)
            self._child(self.metrics.requests, route.webhook, str(status)).inc()
        self._record(route, scope, status, review, answer, elapsed)

    async def _handle(
        self, scope: Scope, receive: Receive, route: Route
    ) -> tuple[int, bytes, Review | None, Answer | None]:
        try:
            if scope.get("method") != "POST":
                raise ReviewError(
                    405, f"method {scope.get('method')} not allowed; admission reviews are POSTed"
                )
            body = await self._read_body(scope, receive)
            review = decode(body)
        except ReviewError as err:
            return err.status, err.body(), None, Answer(outcome="error", reasons=(err.reason,))
        try:
            answer = route.handler(review)
            if not isinstance(answer, Answer):
                answer = await answer
            return 200, encode(review, answer), review, answer
        except Exception:
            # handlers are total; this is a bug, answered without a traceback and logged with one
            log.exception("handler for %s failed", route.webhook)
            return 500, orjson.dumps({"error": "internal error", "code": 500}), review, None

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        content_type = b""
        length = -1
        for key, value in scope.get("headers", ()):
            if key == b"content-type":
                content_type = value
            elif key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise ReviewError(400, "Content-Length is not a number") from None
        media_type = content_type.split(b";", 1)[0].strip().lower()
        if media_type != b"application/json":
            raise ReviewError(400, f"Content-Type {content_type.decode('latin-1')!r} is not application/json")
        if length > self.max_body:
            raise ReviewError(413, f"request body of {length} bytes exceeds the limit of {self.max_body}")
        try:
            async with asyncio.timeout(self.read_timeout):
                return await self._receive_body(receive)
        except TimeoutError:
            raise ReviewError(
                408, f"request body not received within {self.read_timeout:g}s (--read-timeout)"
            ) from None

    async def _receive_body(self, receive: Receive) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ReviewError(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise ReviewError(413, f"request body exceeds the limit of {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _record(
        self,
        route: Route,
        scope: Scope,
        status: int,
        review: Review | None,
        answer: Answer | None,
        elapsed: float,
    ) -> None:
        outcome = answer.outcome if answer else "error"
        reasons = tuple(answer.reasons) if answer else ()
        self._child(self.metrics.admissions, route.webhook, outcome).inc()
        if route.webhook == "inject" and review is not None:
            self._child(self.metrics.injections, outcome, ", ".join(reasons) if reasons else "").inc()
        if log.isEnabledFor(logging.INFO):
            obj = review.object if review else None
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            name = ""
            if isinstance(meta, dict):
                name = str(meta.get("name") or meta.get("generateName") or "")
            log.info(
                "admission",
                extra={
                    "uid": review.uid if review else "",
                    "path": scope.get("path"),
                    "code": status,
                    "namespace": review.namespace if review else "",
                    "object": name or (review.request.get("name", "") if review else ""),
                    "operation": review.operation if review else "",
                    "dry_run": review.dry_run if review else False,
                    # None: no AdmissionReview answer (HTTP error), the API server applies the failure policy
                    "allowed": answer.allowed if answer and status == 200 else None,
                    "decision": outcome,
                    "reasons": list(reasons),
                    "patch_ops": len(answer.ops) if answer else 0,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )


def admission_fallback() -> FastAPI:
    app = FastAPI(title="dynatrace-webhook", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/")
    def index() -> dict[str, Any]:
        return {"service": "dynatrace-webhook", "webhooks": ["/inject", "/label-ns", "/validate"]}

    return app


def health_app(
    checks: Callable[[], dict[str, bool]], debug: Callable[[Any, str], dict[str, Any]] | None = None
) -> FastAPI:
    """``/healthz`` and ``/livez``: the process serves. ``/readyz``: every check in ``checks()`` passes.

    With ``debug`` (off by default): ``POST /debug/decision[?namespace=ns]`` with a pod manifest (JSON or
    YAML) answers ``debug(pod, namespace)``: the decision explained from the live cache.
    """
    app = FastAPI(title="dynatrace-webhook health", docs_url=None, redoc_url=None, openapi_url=None)

    if debug is not None:

        @app.post("/debug/decision")
        async def decision(request: Request, namespace: str = "") -> JSONResponse:
            from webhook.explain import load_manifest

            try:
                pod = load_manifest((await request.body()).decode("utf-8", "replace"))
            except Exception as err:
                return JSONResponse({"error": f"not a pod manifest: {err}", "code": 400}, status_code=400)
            return JSONResponse(debug(pod, namespace))

    @app.get("/healthz")
    @app.get("/livez")
    def live() -> Response:
        return Response("ok\n", media_type="text/plain")

    @app.get("/readyz")
    def ready() -> JSONResponse:
        results = checks()
        ok = all(results.values())
        return JSONResponse({"ready": ok, "checks": results}, status_code=200 if ok else 503)

    return app


def metrics_app(metrics: Metrics, refresh: Callable[[], None]) -> FastAPI:
    app = FastAPI(title="dynatrace-webhook metrics", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/metrics")
    def scrape() -> Response:
        refresh()
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return app
