"""Connection-level bounds on slow clients, which uvicorn does not have.

What uvicorn (httptools protocol) bounds on its own, read from its code (0.55):

- ``timeout_keep_alive`` is armed only when a response completes and cancelled by any byte received. It
  bounds idle time *between* requests, nothing else: a connection that never sends a first request, or sends
  a request's headers one byte every few seconds, stays open forever.
- the TLS handshake: asyncio's and uvloop's ``ssl_handshake_timeout`` (60 s by default); uvicorn passes none
  and has no setting for it.
- header size: httptools (llhttp) has no header size limit of its own; uvicorn adds none.

So a handful of clients that connect and trickle bytes (slowloris) hold file descriptors and, with
``--limit-concurrency``, the connection budget, indefinitely. This module adds the missing bounds:

- ``guarded_protocol(header_timeout)``: an ``HttpToolsProtocol`` whose connections must complete a request's
  headers within ``header_timeout`` seconds of the connection being made (after TLS) and of each request's
  first byte; otherwise the connection is closed. Idle time between requests stays governed by keep-alive.
  It goes in through uvicorn's supported extension point, ``uvicorn.Config(http=<protocol class>)``, and
  overrides only the asyncio protocol methods (``connection_made``, ``connection_lost``) and two httptools
  parser callbacks (``on_message_begin``, ``on_headers_complete``), each calling its parent first or last.
  Its writes go through ``webhook.admission.wire.CoalescingTransport``: one write per answer.
- ``handshake_timeout(loop, seconds)``: a TLS handshake bound for servers created while it is in effect. This
  is the one part without a supported hook: the bound exists only as ``loop.create_server``'s
  ``ssl_handshake_timeout`` argument, uvicorn creates the server without it, and the application protocol
  is only told of a connection once its handshake has completed. So, for the duration of one server's
  start-up, the running loop's ``create_server`` is shadowed on the loop instance to add that argument;
  nothing of uvicorn is patched.

The request *body* is bounded by the admission endpoints (``admission_app(read_timeout=...)``, answered 408).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from webhook.admission.wire import CoalescingTransport

log = logging.getLogger(__name__)


def guarded_protocol(
    header_timeout: float, on_timeout: Callable[[], None] | None = None
) -> type[HttpToolsProtocol]:
    """The httptools protocol with a request-header deadline; ``on_timeout`` is called per closed connection."""
    notify = on_timeout or (lambda: None)

    class GuardedProtocol(HttpToolsProtocol):
        _guarded: asyncio.Transport | None = None
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._guarded = transport
            # answers go out in one write (see webhook.admission.wire); flow control keeps the transport
            self.transport = CoalescingTransport(transport, asyncio.get_running_loop())  # type: ignore[assignment]
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
            loop = asyncio.get_running_loop()
            self._header_timer = loop.call_later(header_timeout, self._header_timeout)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            transport = self._guarded
            if transport is None or transport.is_closing():
                return
            peer = transport.get_extra_info("peername")
            client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "client"
            log.info(
                "closing connection from %s: no complete request headers within %.0fs", client, header_timeout
            )
            notify()
            transport.abort()  # a slow peer gets no graceful TLS close to stall on either

    return GuardedProtocol


@contextlib.contextmanager
def handshake_timeout(loop: asyncio.AbstractEventLoop, seconds: float) -> Iterator[None]:
    """While in effect, TLS servers created on ``loop`` get ``ssl_handshake_timeout=seconds``.

    uvicorn calls ``loop.create_server(..., ssl=...)`` without a handshake timeout and has no setting for
    it; this shadows the loop's method on the instance for the duration of a server's start-up (plain-HTTP
    servers created meanwhile are untouched: the argument is only valid with ``ssl``).
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
