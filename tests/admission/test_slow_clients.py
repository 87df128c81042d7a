"""Slow clients against the real process: slow or missing headers, a trickled body, a stalled TLS handshake,
idle connections. Bounds under test: --header-timeout 1 (headers and handshake), --read-timeout 1 (body)."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import time
from collections.abc import Iterator

import pytest

from tests.process.test_server import ROOT, Running, review

BOUND = 1.0  # --header-timeout and --read-timeout below
SLACK = 1.5  # the timer fires on a loaded 2-core machine within this much after the bound


def start(tmp, *extra: str) -> Running:
    state = tmp / "state.yaml"
    shutil.copy(ROOT / "examples" / "local-state.yaml", state)
    running = Running(
        tmp,
        "--state-file",
        str(state),
        "--cert-mode",
        "dev",
        "--header-timeout",
        str(BOUND),
        "--read-timeout",
        str(BOUND),
        "--log-level",
        "warning",
        *extra,
    )
    running.wait_ready()
    return running


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Running]:
    running = start(tmp_path_factory.mktemp("slow"))
    yield running
    assert running.stop() == 0


def tls(running: Running) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(running.certs / "ca.crt"))
    return ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", running.port), timeout=5), server_hostname="localhost"
    )


def is_closed(sock: socket.socket, wait: float) -> bool:
    """True when the peer closed (EOF, reset, TLS error) within ``wait`` seconds; False when still open."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except (OSError, ssl.SSLError):
        return True


def read_to_end(sock: socket.socket, wait: float) -> bytes:
    """Everything the server sends until it closes; fails when it does not close within ``wait``."""
    data = b""
    sock.settimeout(wait)
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError("the server kept the connection open") from None
        except (OSError, ssl.SSLError):
            return data
        if not chunk:
            return data
        data += chunk


def trickle(sock: socket.socket, data: bytes, every: float, limit: float) -> tuple[float, bytes]:
    """Send ``data`` a byte at a time; returns (seconds until the server closed or answered, what it sent)."""
    start = time.monotonic()
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return time.monotonic() - start, b""
        sock.settimeout(every)
        try:
            got = sock.recv(65536)
            return time.monotonic() - start, got
        except TimeoutError:
            pass
        except OSError:
            return time.monotonic() - start, b""
        assert time.monotonic() - start < limit, "server still waiting past the bound"
    raise AssertionError("the whole request was sent before the server reacted")


def test_partial_headers_sent_slowly_are_cut_off(server):
    headers = (
        b"POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nX-Pad: " + b"a" * 200
    )
    with tls(server) as sock:
        elapsed, answer = trickle(sock, headers, every=0.1, limit=BOUND + SLACK)
    assert answer == b"", "closed without an answer: there was no request to answer"
    assert BOUND - 0.1 <= elapsed <= BOUND + SLACK  # data kept arriving; the deadline still held


def test_connection_without_a_request_is_closed(server):
    with tls(server) as sock:
        start = time.monotonic()
        assert is_closed(sock, BOUND + SLACK)
        assert time.monotonic() - start >= BOUND - 0.1


def test_stalled_tls_handshake_is_closed(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        start = time.monotonic()
        assert is_closed(raw, BOUND + SLACK)
        assert time.monotonic() - start >= BOUND - 0.1


def test_body_trickled_slowly_is_answered_408_and_the_connection_closed(server):
    body = review("inject")
    head = (
        f"POST /inject HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with tls(server) as sock:
        sock.sendall(head)
        elapsed, answer = trickle(sock, body, every=0.1, limit=BOUND + SLACK)
        answer += read_to_end(sock, BOUND + SLACK)
    assert BOUND - 0.1 <= elapsed <= BOUND + SLACK
    status, _, tail = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 408")
    headers, _, payload = tail.partition(b"\r\n\r\n")
    assert b"connection: close" in headers.lower()
    reason = json.loads(payload.split(b"\r\n")[1])  # one chunk (the response is chunked)
    assert reason["code"] == 408 and "--read-timeout" in reason["error"]


def test_keep_alive_connection_serves_requests_past_the_header_bound(server):
    """The header deadline is per request: a connection that keeps sending requests is not cut."""
    with server.tls_client() as client:
        for _ in range(3):
            response = client.post(
                "/inject", content=review("inject"), headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 200
            time.sleep(BOUND * 0.6)


def test_idle_connections_do_not_keep_a_normal_client_out(server):
    idle = [tls(server) for _ in range(100)]
    try:
        start = time.monotonic()
        with server.tls_client() as client:
            response = client.post(
                "/inject", content=review("inject"), headers={"Content-Type": "application/json"}
            )
        assert response.status_code == 200
        assert time.monotonic() - start < BOUND  # served at once, not after the idle ones were reaped
    finally:
        for sock in idle:
            sock.close()
    assert "dynatrace_webhook_header_timeouts_total" in server.get(server.metrics, "/metrics").text


def test_idle_connections_filling_limit_concurrency_are_reaped(tmp_path):
    """With --limit-concurrency, idle connections count against the limit (uvicorn counts connections):
    without the header bound they would keep every request at 503 for as long as they stay open."""
    running = start(tmp_path, "--limit-concurrency", "20")
    try:
        idle = [tls(running) for _ in range(25)]
        with running.tls_client() as client:

            def status() -> int:
                return client.post(
                    "/inject", content=review("inject"), headers={"Content-Type": "application/json"}
                ).status_code

            assert status() == 503  # the limit is full of idle connections
            time.sleep(BOUND + SLACK)
            assert status() == 200  # they were closed; the service is back without any client action
        assert all(is_closed(sock, 0.5) for sock in idle)
        for sock in idle:
            sock.close()
        metrics = running.get(running.metrics, "/metrics").text
        line = next(
            x
            for x in metrics.splitlines()
            if x.startswith('dynatrace_webhook_header_timeouts_total{listener="admission"}')
        )
        assert float(line.split()[-1]) >= 25
    finally:
        assert running.stop() == 0
