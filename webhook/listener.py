"""The uvicorn server of each listener (admission over TLS, health, metrics): signals left to the ``Webhook``,
TLS handshakes bounded, one configuration for all three.

Imported by the server once the cache has begun to list: uvicorn and the apps load while the first pages are
on their way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn

from webhook.admission import guard
from webhook.config import Settings
from webhook.metrics import Metrics


class Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to the Webhook, which owns all three, and bounds TLS handshakes."""

    handshake_timeout: float | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: Any = None) -> None:
        if self.handshake_timeout is None:
            return await super().startup(sockets)
        with guard.handshake_timeout(asyncio.get_running_loop(), self.handshake_timeout):
            return await super().startup(sockets)


def config(
    settings: Settings, metrics: Metrics, listener: str, app: Any, host: str, port: int, **kw: Any
) -> uvicorn.Config:
    timeouts = metrics.header_timeouts.labels(listener)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        ws="none",  # no WebSocket route: the protocol implementation is never imported
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=False,
        proxy_headers=False,  # kube-apiserver, kubelet and Prometheus connect directly: no proxy to trust
        timeout_keep_alive=int(settings.keep_alive),
        timeout_graceful_shutdown=int(settings.graceful_timeout),
        http=guard.guarded_protocol(settings.header_timeout, timeouts.inc),
        **kw,
    )
