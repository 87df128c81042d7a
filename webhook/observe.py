"""The two listeners beside the admission port: health for kubelet, metrics for Prometheus (small FastAPI apps).

They read the process through the callables they are given (readiness checks, a metrics refresh, the debug
decision) and serve no admission.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from webhook.metrics import CONTENT_TYPE, Metrics


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
    """``/metrics``: ``refresh()`` (gauges read from the process), then the Prometheus text exposition."""
    app = FastAPI(title="dynatrace-webhook metrics", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/metrics")
    def scrape() -> Response:
        refresh()
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return app
