"""One write per answer: what is written in one turn of the event loop reaches the transport as one write."""

from __future__ import annotations

import asyncio

from webhook.admission.wire import CoalescingTransport


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


async def next_turn() -> None:
    await asyncio.sleep(0)


def test_writes_of_one_turn_are_one_write() -> None:
    asyncio.run(writes_of_one_turn())


def test_close_writes_what_is_pending_first_abort_drops_it() -> None:
    asyncio.run(close_and_abort())


async def writes_of_one_turn() -> None:
    real = Recording()
    wire = CoalescingTransport(real, asyncio.get_running_loop())
    wire.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    wire.write(b"{}")
    assert real.calls == []  # nothing before the turn ends
    await next_turn()
    assert real.calls == [("write", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")]
    wire.write(b"next")
    await next_turn()
    assert real.calls[-1] == ("write", b"next") and len(real.calls) == 2


async def close_and_abort() -> None:
    real = Recording()
    wire = CoalescingTransport(real, asyncio.get_running_loop())
    wire.write(b"head")
    wire.write(b"body")
    wire.close()
    await next_turn()  # the scheduled flush finds nothing more to write
    assert real.calls == [("write", b"headbody"), ("close", b"")]

    other = Recording()
    wire = CoalescingTransport(other, asyncio.get_running_loop())
    wire.write(b"lost")
    wire.abort()
    await next_turn()
    assert other.calls == [("abort", b"")]
    assert wire.is_closing() and wire.get_extra_info("peername") == ("127.0.0.1", 5)
