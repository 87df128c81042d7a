"""The baseline: the webhook's own process, listeners, uvicorn settings and TLS, with a trivial admission app.

``python -m bench.baseline <dynatrace-webhook arguments>`` runs ``webhook.cli.main`` with the admission app's
endpoints replaced by one that reads the body, does not parse it, and answers a fixed AdmissionReview. The
app around them (FastAPI, its router and middleware) stays as served. Nothing is added to the production
routes: the replacement only exists in this process.
"""

from __future__ import annotations

from typing import Any

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


def fixed_answers(build: Any) -> Any:
    """``build`` (``admission_app``) with every admission endpoint answering ``FixedAnswer``."""
    from starlette import routing

    from webhook.admission.app import Endpoint

    def admission_app(*args: Any, **kw: Any) -> Any:
        app = build(*args, **kw)
        for route in app.router.routes:
            if isinstance(route, routing.Route) and isinstance(route.endpoint, Endpoint):
                route.app = FixedAnswer()
        return app

    return admission_app


def main() -> int:
    from webhook.admission import app
    from webhook.cli import main as webhook_main

    app.admission_app = fixed_answers(app.admission_app)
    return webhook_main()


if __name__ == "__main__":
    raise SystemExit(main())
