"""CPU cost of one admission without HTTP or TLS: ``python -m bench.inprocess``.

Decodes the bench's AdmissionReviews (``bench.reviews``), answers them with the real handler against a Store
holding the bench state, and encodes the answer, in one process. Reports the fastest of many short batches
per case (µs per admission), the figure least disturbed by other work on a shared machine: run it for two
revisions back to back to compare them (the full ``python -m bench`` measures the server as kube-apiserver
sees it, but its figures move by 2x under load).

``--app``: the same admissions through the admission listener's app (``webhook.admission.app``: FastAPI, its
middleware and router, the endpoint with its metrics), driven as uvicorn drives it (an HTTP scope, the body in
one ``http.request`` message, the answer's messages discarded) on one event loop (uvloop when installed): what
the framework adds per admission, without sockets or TLS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from starlette.types import Message

from bench import reviews
from webhook.admission import handlers
from webhook.admission.app import Route, admission_app
from webhook.admission.review import decode, encode
from webhook.metrics import Metrics
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

CASES = ("S-inject", "M-inject", "M-skip", "M-reinvoke", "L-inject")


def store() -> Store:
    docs = reviews.state_documents(10, 100)
    s = Store(reviews.NAMESPACE)
    s.replace(DYNAKUBES, [d for d in docs if d["kind"] == "DynaKube"])
    s.replace(NAMESPACES, [d for d in docs if d["kind"] == "Namespace"])
    return s


def measure(case: str, state: Store, batches: int, per_batch: int) -> float:
    size, scenario = case.split("-")
    body = reviews.body(size, scenario)
    best = float("inf")
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(per_batch):
            review = decode(body, lean=True)
            encode(review, handlers.inject(review, state, reviews.SETTINGS))
        best = min(best, (time.perf_counter() - start) / per_batch)
    return best * 1e6


def scope(body: bytes, path: str = "/inject") -> dict[str, Any]:
    """An HTTP scope as uvicorn's httptools protocol builds it for kube-apiserver's request."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8443),
        "client": ("127.0.0.1", 50000),
        "scheme": "https",
        "root_path": "",
        "headers": [
            (b"host", b"dynatrace-webhook.dynatrace.svc:443"),
            (b"user-agent", b"kube-apiserver-admission"),
            (b"content-length", str(len(body)).encode()),
            (b"accept", b"application/json, */*"),
            (b"content-type", b"application/json"),
            (b"accept-encoding", b"gzip"),
        ],
        "state": {},
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"timeout=10s",
    }


def measure_app(case: str, state: Store, batches: int, per_batch: int) -> float:
    size, scenario = case.split("-")
    body = reviews.body(size, scenario)
    app = admission_app(
        {"/inject": Route("inject", lambda r: handlers.inject(r, state, reviews.SETTINGS), lean=True)},
        Metrics(),
    )
    base = scope(body)
    statuses = []
    request: Message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def batch() -> float:
        start = time.perf_counter()
        for _ in range(per_batch):
            await app(dict(base), receive, send)
        return (time.perf_counter() - start) / per_batch

    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover
        runner = asyncio.Runner()
    with runner:
        best = min(runner.run(batch()) for _ in range(batches))
    assert set(statuses) == {200}, set(statuses)
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--per-batch", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--app", action="store_true", help="through the admission listener's app (ASGI)")
    args = parser.parse_args(argv)
    state = store()
    how = measure_app if args.app else measure
    figures = {case: round(how(case, state, args.batches, args.per_batch), 1) for case in CASES}
    if args.json:
        print(json.dumps(figures))
    else:
        for case, micros in figures.items():
            print(f"{case:<12} {micros:8.1f} µs per admission (fastest batch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
