"""The admission listener's app (TLS): a FastAPI app whose router serves the admission paths.

Each admission path (``/inject``, ``/label-ns``, ``/validate`` and upstream's ``/validate-…`` paths) is a route
of the app's router, ``POST`` only, whose endpoint is a raw ASGI callable (``Endpoint``): one body read, one
JSON parse, one JSON dump, no framework validation, no API call. Being routes of the app, they pass through
its middleware and exception handlers, and instrumentation of the app (OpenTelemetry's FastAPI
instrumentation, FastAPI's own telemetry) sees them with their route. Another method on an admission path is
the router's 405 with ``Allow: POST``, an unknown path its 404; every error of this listener has a JSON
``{"error", "code"}`` body.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette import routing
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from webhook import logs
from webhook.admission.review import MAX_BODY_BYTES, Answer, Review, ReviewError, decode, encode
from webhook.admission.routes import VALIDATE_ALIASES, Route
from webhook.metrics import Metrics

log = logging.getLogger("webhook.admission.review")

JSON_HEADERS = [(b"content-type", b"application/json")]
# the body was not (fully) read: the connection cannot carry another request
CLOSE_HEADERS = [*JSON_HEADERS, (b"connection", b"close")]
INTERNAL_ERROR = orjson.dumps({"error": "internal error", "code": 500})

__all__ = ["VALIDATE_ALIASES", "Endpoint", "Route", "admission_app"]


def admission_app(
    routes: Mapping[str, Route],
    metrics: Metrics,
    *,
    max_body: int = MAX_BODY_BYTES,
    read_timeout: float | None = None,
    closing: Callable[[], bool] | None = None,
) -> FastAPI:
    """The app of the admission listener: ``routes`` (path -> webhook) as POST routes of its router.

    ``read_timeout``: seconds for a whole request body (None: no bound, for tests). ``closing``: True while
    the process drains; every answer then tells the client to reconnect (``Connection: close``).
    """
    closing = closing or (lambda: False)
    # no redirect of /inject/ to /inject: an admission path is exact, anything else is 404
    app = FastAPI(
        title="dynatrace-webhook", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False
    )
    endpoints: dict[Route, Endpoint] = {}  # one per webhook: the upstream paths share /validate's
    for path, route in routes.items():
        endpoint = endpoints.get(route)
        if endpoint is None:
            endpoint = endpoints[route] = Endpoint(
                route, metrics, max_body=max_body, read_timeout=read_timeout, closing=closing
            )
        app.router.routes.append(
            routing.Route(path, endpoint, methods=["POST"], name=route.webhook, include_in_schema=False)
        )

    @app.get("/")
    def index() -> dict[str, Any]:
        return {"service": "dynatrace-webhook", "webhooks": ["/inject", "/label-ns", "/validate"]}

    async def http_error(request: Request, exc: Exception) -> Response:
        """The router's answers (404, 405 with ``Allow``) in this listener's error shape; a 405 on an
        admission path is counted and logged as that webhook's."""
        start = time.perf_counter()
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        allow = headers.get("Allow")
        reason = (
            f"method {request.method} not allowed; allowed: {allow}"
            if exc.status_code == 405 and allow
            else str(exc.detail)
        )
        if closing():
            headers["Connection"] = "close"
        response = Response(
            orjson.dumps({"error": reason, "code": exc.status_code}),
            status_code=exc.status_code,
            headers=headers,
            media_type="application/json",
        )
        endpoint = request.scope.get("endpoint")
        if isinstance(endpoint, Endpoint):
            endpoint.refused(request.scope, exc.status_code, reason, time.perf_counter() - start)
        return response

    async def internal_error(request: Request, exc: Exception) -> Response:
        """A failure outside the admission handlers (which answer their own): no traceback in the body."""
        return Response(INTERNAL_ERROR, status_code=500, media_type="application/json")

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
    return app


class Endpoint:
    """One webhook's ASGI endpoint: reads a POSTed AdmissionReview, answers it, counts it, logs it."""

    def __init__(
        self,
        route: Route,
        metrics: Metrics,
        *,
        max_body: int,
        read_timeout: float | None,
        closing: Callable[[], bool],
    ) -> None:
        self.route = route
        self.metrics = metrics
        self.max_body = max_body
        self.read_timeout = read_timeout
        self.closing = closing
        self._latency = metrics.latency.labels(route.webhook)
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: the label sets are few and ``labels()`` takes a lock."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        self.metrics.in_flight.inc()
        status = 500
        try:
            status, body, review, answer = await self._handle(scope, receive)
            headers = CLOSE_HEADERS if status in (408, 413) or self.closing() else JSON_HEADERS
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.in_flight.dec()
            self._latency.observe(elapsed)
            self._child(self.metrics.requests, self.route.webhook, str(status)).inc()
        self._record(scope, status, review, answer, elapsed)

    def refused(self, scope: Scope, status: int, reason: str, elapsed: float) -> None:
        """An answer the router gave on this webhook's path (405: another method than POST)."""
        self._latency.observe(elapsed)
        self._child(self.metrics.requests, self.route.webhook, str(status)).inc()
        self._record(scope, status, None, Answer(outcome="error", reasons=(reason,)), elapsed)

    async def _handle(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, Review | None, Answer | None]:
        try:
            body = await self._read_body(scope, receive)
            review = decode(body, lean=self.route.lean)
        except ReviewError as err:
            return err.status, err.body(), None, Answer(outcome="error", reasons=(err.reason,))
        try:
            answer = self.route.handler(review)
            if not isinstance(answer, Answer):
                answer = await answer
            return 200, encode(review, answer), review, answer
        except Exception:
            # handlers are total; this is a bug, answered without a traceback and logged with one
            log.exception("handler for %s failed", self.route.webhook)
            return 500, INTERNAL_ERROR, review, None

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
        scope: Scope,
        status: int,
        review: Review | None,
        answer: Answer | None,
        elapsed: float,
    ) -> None:
        webhook = self.route.webhook
        outcome = answer.outcome if answer else "error"
        reasons = tuple(answer.reasons) if answer else ()
        self._child(self.metrics.admissions, webhook, outcome).inc()
        if webhook == "inject" and review is not None:
            self._child(self.metrics.injections, outcome, ", ".join(reasons) if reasons else "").inc()
        if log.isEnabledFor(logging.INFO):
            obj = review.object if review else None
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            name = ""
            if isinstance(meta, dict):
                name = str(meta.get("name") or meta.get("generateName") or "")
            logs.info_fields(
                log,
                "admission",
                {
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
