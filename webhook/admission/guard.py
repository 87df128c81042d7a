"""Connection-level bounds on slow clients, which uvicorn does not have.

What uvicorn (httptools protocol) bounds on its own, read from its code:

- ``timeout_keep_alive`` is armed only when a response completes (``on_response_complete``) and cancelled by
  any byte received. It bounds idle time *between* requests, nothing else: a connection that never sends a
  first request, or sends a request's headers one byte every few seconds, stays open forever.
- the TLS handshake: asyncio's and uvloop's ``ssl_handshake_timeout`` (60 s by default); uvicorn does not
  pass one.
- header size: httptools (llhttp) has no header size limit of its own; uvicorn adds none.

So a handful of clients that connect and trickle bytes (slowloris) hold file descriptors and, with
``--limit-concurrency``, the connection budget, indefinitely. This module adds the missing bound:

- ``guarded_protocol(header_timeout)``: an ``HttpToolsProtocol`` whose connections must complete a request's
  headers within ``header_timeout`` seconds of the connection being made (after TLS) and of each request's
  first byte; otherwise the connection is closed. Idle time between requests stays governed by keep-alive.
- ``handshake_timeout(loop, seconds)``: a TLS handshake bound for servers created while it is in effect.

The request *body* is bounded by the admission app (``AdmissionApp(read_timeout=...)``, answered 408).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


def guarded_protocol(
    header_timeout: float, on_timeout: Callable[[], None] | None = None
) -> type[HttpToolsProtocol]:
    """The httptools protocol with a request-header deadline; ``on_timeout`` is called per closed connection."""
    notify = on_timeout or (lambda: None)

    class GuardedProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:
                self._arm_header_timer()

        def on_headers_complete(self) -> None:
            self._cancel_header_timer()
            super().on_headers_complete()

        def _arm_header_timer(self) -> None:
            self._header_timer = self.loop.call_later(header_timeout, self._header_timeout)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "client"
            log.info(
                "closing connection from %s: no complete request headers within %.0fs", client, header_timeout
            )
            notify()
            self.transport.abort()  # a slow peer gets no graceful TLS close to stall on either

    return GuardedProtocol


@contextlib.contextmanager
def handshake_timeout(loop: asyncio.AbstractEventLoop, seconds: float) -> Iterator[None]:
    """While in effect, TLS servers created on ``loop`` get ``ssl_handshake_timeout=seconds``.

    uvicorn calls ``loop.create_server(..., ssl=...)`` without a handshake timeout and has no setting for
    it; this shadows the loop's method for the duration of a server's start-up (plain-HTTP servers created
    meanwhile are untouched: the argument is only valid with ``ssl``).
    """
    create = loop.create_server

    def create_server(*args: Any, **kw: Any) -> Any:
        if kw.get("ssl") is not None:
            kw.setdefault("ssl_handshake_timeout", seconds)
        return create(*args, **kw)

    loop.create_server = create_server  # type: ignore[method-assign]
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError):
            del loop.create_server
