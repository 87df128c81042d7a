"""A small asyncio HTTP/1.1 client over keep-alive TLS: sequential latency and open-loop (scheduled) load.

Open loop: request *i* is due at ``t0 + i / rate`` whatever happened before; its latency is measured from
that scheduled time, not from when it was actually written, so a stalled server (or a stalled client) cannot
hide its tail behind requests that were never sent (no coordinated omission). A request that finds every
connection busy opens another one (up to ``max_connections``), as kube-apiserver's connection pool does; past
that it waits, and the wait counts as latency.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the dev certificate's CA is not what is measured here
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class ProtocolError(Exception):
    pass


class Connection:
    """One keep-alive TLS connection; ``post`` sends one request and reads the whole response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int, ctx: ssl.SSLContext | None = None) -> Connection:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ctx or client_context(), server_hostname="localhost"
        )
        return cls(reader, writer)

    @staticmethod
    def request_bytes(host: str, path: str, body: bytes) -> bytes:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise ProtocolError(f"bad status line {lines[0]!r}") from None
        length = 0
        chunked = False
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            lower = key.strip().lower()
            if lower == b"content-length":
                length = int(value)
            elif lower == b"transfer-encoding":
                chunked = value.strip().lower() == b"chunked"
            elif lower == b"connection" and value.strip().lower() == b"close":
                self.closed = True
        if chunked:
            return status, await self._chunks()
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    async def _chunks(self) -> bytes:
        parts: list[bytes] = []
        while True:
            line = await self.reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {line!r}") from None
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers are sent
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size + 2))
            parts[-1] = parts[-1][:-2]

    def close(self) -> None:
        self.closed = True
        self.writer.close()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(
        len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values) - 1e-9) - 1)
    )  # nearest rank
    return sorted_values[index]


def summary_ms(latencies: Sequence[float]) -> dict[str, float]:
    values = sorted(latencies)
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
        "p99_9_ms": round(percentile(values, 99.9) * 1000, 3),
        "max_ms": round(values[-1] * 1000, 3) if values else float("nan"),
    }


async def sequential(host: str, port: int, path: str, body: bytes, count: int, warmup: int = 50) -> dict:
    """``count`` requests one after the other on one keep-alive connection."""
    conn = await Connection.open(host, port)
    request = Connection.request_bytes(host, path, body)
    latencies = []
    errors = 0
    try:
        for i in range(warmup + count):
            start = time.perf_counter()
            status, _ = await conn.send(request)
            elapsed = time.perf_counter() - start
            if status != 200:
                errors += 1
            if i >= warmup:
                latencies.append(elapsed)
    finally:
        conn.close()
    values = sorted(latencies)
    return {
        "requests": count,
        "errors": errors,
        "median_ms": round(percentile(values, 50) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
        "max_ms": round(values[-1] * 1000, 3),
    }


@dataclass
class OpenLoopResult:
    rate: float
    duration: float
    sent: int = 0
    completed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    unfinished: int = 0
    connections: int = 0
    latencies: list[float] = field(default_factory=list)
    send_lag: list[float] = field(default_factory=list)
    latencies_by_status: dict[int, list[float]] = field(default_factory=dict)

    def report(self) -> dict:
        out: dict = {
            "rate": self.rate,
            "duration_s": self.duration,
            "sent": self.sent,
            "completed": self.completed,
            "achieved_rps": round(self.completed / self.duration, 1) if self.duration else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "unfinished": self.unfinished,
            "connections": self.connections,
            **summary_ms(self.latencies),
        }
        lag = sorted(self.send_lag)
        out["send_lag_p50_ms"] = round(percentile(lag, 50) * 1000, 3)
        out["send_lag_p99_ms"] = round(percentile(lag, 99) * 1000, 3)
        if len(self.latencies_by_status) > 1 or 503 in self.latencies_by_status:
            out["by_status"] = {str(k): summary_ms(v) for k, v in sorted(self.latencies_by_status.items())}
        return out


async def open_loop(
    host: str,
    port: int,
    path: str,
    bodies: Sequence[bytes],
    rate: float,
    duration: float,
    *,
    initial_connections: int = 8,
    max_connections: int = 256,
    drain: float = 5.0,
) -> OpenLoopResult:
    """Send ``rate`` requests per second for ``duration`` seconds, cycling through ``bodies``."""
    ctx = client_context()
    requests = [Connection.request_bytes(host, path, b) for b in bodies]
    result = OpenLoopResult(rate, duration)
    idle: list[Connection] = []
    opened = 0
    for _ in range(initial_connections):
        idle.append(await Connection.open(host, port, ctx))
        opened += 1
    waiters: asyncio.Queue[None] = asyncio.Queue()
    pending: set[asyncio.Task[None]] = set()

    async def one(request: bytes, due: float) -> None:
        nonlocal opened
        conn = None
        try:
            while conn is None:
                if idle:
                    conn = idle.pop()
                elif opened < max_connections:
                    opened += 1
                    conn = await Connection.open(host, port, ctx)
                else:
                    await waiters.get()
            result.send_lag.append(time.perf_counter() - due)
            status, _ = await conn.send(request)
            elapsed = time.perf_counter() - due
            result.completed += 1
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.latencies.append(elapsed)
            result.latencies_by_status.setdefault(status, []).append(elapsed)
            if conn.closed:
                conn.close()
                opened -= 1
            else:
                idle.append(conn)
            conn = None
        except (OSError, asyncio.IncompleteReadError, ProtocolError, ssl.SSLError):
            result.errors += 1
            if conn is not None:
                conn.close()
                opened -= 1
        finally:
            waiters.put_nowait(None)

    loop = asyncio.get_running_loop()
    start = time.perf_counter() + 0.01
    total = int(rate * duration)
    interval = 1.0 / rate
    i = 0
    while i < total:
        now = time.perf_counter()
        # send everything that is due; sleep until the next one
        while i < total and start + i * interval <= now:
            task = loop.create_task(one(requests[i % len(requests)], start + i * interval))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        result.sent = i
        if i < total:
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
    if pending:
        _, still = await asyncio.wait(set(pending), timeout=drain)
        result.unfinished = len(still)
        for task in still:
            task.cancel()
        await asyncio.gather(*still, return_exceptions=True)
    result.connections = opened
    for conn in idle:
        conn.close()
    return result


async def closed_loop(
    host: str, port: int, path: str, bodies: Sequence[bytes], connections: int, duration: float
) -> dict:
    """Closed loop in Python (the quick mode's stand-in for wrk): each connection sends back to back."""
    ctx = client_context()
    requests = [Connection.request_bytes(host, path, b) for b in bodies]
    conns = [await Connection.open(host, port, ctx) for _ in range(connections)]
    counts = {"requests": 0, "errors": 0}
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker(k: int, conn: Connection) -> None:
        n = k
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            status, _ = await conn.send(requests[n % len(requests)])
            latencies.append(time.perf_counter() - t)
            n += 1
            counts["requests"] += 1
            if status != 200:
                counts["errors"] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(k, c) for k, c in enumerate(conns)))
    elapsed = time.perf_counter() - start
    for conn in conns:
        conn.close()
    return {
        "tool": "python",
        "connections": connections,
        "duration_s": round(elapsed, 3),
        "requests": counts["requests"],
        "errors": counts["errors"],
        "rps": round(counts["requests"] / elapsed, 1),
        **summary_ms(latencies),
    }
