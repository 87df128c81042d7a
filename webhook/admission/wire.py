"""One write per response on the wire.

uvicorn's httptools protocol writes a response's head and its body with two ``transport.write`` calls; on a
TLS connection each becomes its own TLS record and its own ``send``. ``CoalescingTransport`` stands in for the
connection's transport in the protocol (``webhook.admission.guard``): writes made in one turn of the event
loop are joined and written once, at the end of that turn (the head and the body of an answer are sent in
the same turn: nothing is awaited between them). ``close`` writes what is pending first; ``abort`` drops it.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport:
    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        # everything else (get_extra_info, pause_reading, set_protocol, ...) is the transport's own
        return getattr(self._transport, name)
