"""The baseline: the webhook's own process, listeners, uvicorn settings and TLS, with a trivial admission app.

``python -m bench.baseline <dynatrace-webhook arguments>`` runs ``webhook.cli.main`` with the admission app's
endpoints replaced by one that reads the body, does not parse it, and answers a fixed AdmissionReview. The
app around them (FastAPI, its router and middleware) stays as served. Nothing is added to the production
routes: the replacement only exists in this process.

Two kinds (environment ``BENCH_BASELINE``): ``raw`` (default), an ASGI callable in place of each admission
endpoint, the cheapest answer the app can give; ``route``, a plain FastAPI path operation
(``await request.body()``, return a ``Response``): what a FastAPI application answering fixed bytes costs.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import Request, Response

from bench.reviews import BASELINE_ANSWER

HEADERS = [(b"content-type", b"application/json")]


class FixedAnswer:
    """Reads the whole body (as the real endpoint does), answers the same bytes every time."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BASELINE_ANSWER})


async def fixed_route(request: Request) -> Response:
    """A plain FastAPI path operation answering the fixed AdmissionReview."""
    await request.body()
    return Response(BASELINE_ANSWER, media_type="application/json")


def fixed_answers(build: Any, kind: str = "raw") -> Any:
    """``build`` (``admission_app``) with every admission endpoint answering fixed bytes: ``raw``, an ASGI
    callable in the endpoint's place; ``route``, the endpoint's route replaced by a FastAPI path operation."""
    from starlette import routing

    from webhook.admission.app import Endpoint

    def admission_app(*args: Any, **kw: Any) -> Any:
        app = build(*args, **kw)
        for route in list(app.router.routes):
            if isinstance(route, routing.Route) and isinstance(route.endpoint, Endpoint):
                if kind == "route":
                    app.router.routes.remove(route)
                    app.add_api_route(route.path, fixed_route, methods=["POST"])
                else:
                    route.app = FixedAnswer()
        return app

    return admission_app


def main() -> int:
    import webhook.server
    from webhook.cli import main as webhook_main

    kind = os.environ.get("BENCH_BASELINE", "raw")
    webhook.server.admission_app = fixed_answers(webhook.server.admission_app, kind)
    return webhook_main()


if __name__ == "__main__":
    raise SystemExit(main())
