"""The baseline: the webhook's own process, listeners, uvicorn settings and TLS, with a trivial admission app.

``python -m bench.baseline <dynatrace-webhook arguments>`` runs ``webhook.cli.main`` with the admission app
replaced by one that reads the body, does not parse it, and answers a fixed AdmissionReview. Nothing is added
to the production routes: the replacement only exists in this process.
"""

from __future__ import annotations

from typing import Any

from bench.reviews import BASELINE_ANSWER

HEADERS = [(b"content-type", b"application/json")]


class FixedAnswer:
    """Reads the whole body (as the real app does), answers the same bytes every time."""

    def __init__(self, routes: Any, metrics: Any, fallback: Any, **_: Any) -> None:
        self.fallback = fallback

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BASELINE_ANSWER})


def main() -> int:
    import webhook.server
    from webhook.cli import main as webhook_main

    webhook.server.AdmissionApp = FixedAnswer  # type: ignore[misc,assignment]
    return webhook_main()


if __name__ == "__main__":
    raise SystemExit(main())
