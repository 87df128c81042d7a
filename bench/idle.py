"""What one admission costs when the server was idle before it: ``python -m bench.idle [--quick]``.

kube-apiserver calls the webhook once per pod: between two pods the process waits, and on a VM the idle vCPU
comes back slower than a busy one (caches, frequency). This sends the M injection review one request at a
time over one keep-alive TLS connection, either back to back or with a pause before each (8 ms: about one pod
CREATE through the API server here), to three servers with the same set-up (pinned to core 0; run the client
on core 1): ours, the FastAPI route answering fixed bytes and the route that parses the review and answers our
answer's bytes (``bench.baseline`` kinds ``route`` and ``parse``). It prints each one's wall time per request
(p50, p90) and, for ours, the handler's own logged time (``duration_ms``). Rounds alternate the servers.
"""

from __future__ import annotations

import argparse
import http.client
import ssl
import tempfile
import time
from pathlib import Path

import orjson

from bench import reviews
from bench.baseline import answer_template
from bench.load import percentile
from bench.proc import Server

GAPS = (0.0, 0.008)


def handler_ms(log: Path, skip: int) -> list[float]:
    """The ``duration_ms`` of the /inject lines after the first ``skip`` lines of the log."""
    lines = log.read_text().splitlines()[skip:]
    return sorted(orjson.loads(line)["duration_ms"] for line in lines if '"path":"/inject"' in line)


def timed_requests(port: int, context: ssl.SSLContext, body: bytes, count: int, gap: float) -> list[float]:
    """Seconds per request of ``count`` POSTs of ``body`` to /inject over one keep-alive connection, each after
    a pause of ``gap`` seconds."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context)
    seconds = []
    try:
        for _ in range(count):
            if gap:
                time.sleep(gap)
            start = time.perf_counter()
            conn.request("POST", "/inject", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            seconds.append(time.perf_counter() - start)
            if response.status != 200:
                raise RuntimeError(f"port {port}: HTTP {response.status}")
    finally:
        conn.close()
    return seconds


def logged_handler_ms(log: Path, skip: int, count: int, timeout: float = 10.0) -> list[float]:
    """``handler_ms`` once the log holds the ``count`` lines of the requests sent (each is written right after
    its answer, so it may trail the client by a moment)."""
    deadline = time.monotonic() + timeout
    while len(found := handler_ms(log, skip)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{log}: {len(found)} /inject lines after {timeout:g} s, {count} sent")
        time.sleep(0.01)
    return found


def run(quick: bool, per_round: int | None = None) -> list[dict[str, object]]:
    """One row per pause and server (``per_round``: requests per server and round, else as ``quick`` says)."""
    rounds = 2 if quick else 4
    per_round = per_round or (60 if quick else 250)
    body = reviews.body("M", "inject")
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        work = Path(tmp)
        state = work / "state.yaml"
        state.write_text(reviews.state_yaml(100, 5000))
        answer = work / "answer-M-inject.json"
        servers = {
            "ours": Server(state, work, log_level="info"),
            "route": Server(state, work, baseline=True, baseline_kind="route"),
            "parse": Server(
                state, work, baseline=True, baseline_kind="parse", env={"BENCH_ANSWER": str(answer)}
            ),
        }
        ca = work / "certs" / "ca.crt"
        with servers["ours"], servers["route"]:
            answer.write_bytes(answer_template(servers["ours"].port, body, ca))
            log = servers["ours"].log_path
            assert log is not None
            with servers["parse"]:
                context = ssl.create_default_context(cafile=str(ca))
                for gap in GAPS:
                    walls: dict[str, list[float]] = {name: [] for name in servers}
                    skip = len(log.read_text().splitlines())
                    for r in range(rounds):
                        for name in list(servers) if r % 2 == 0 else list(reversed(servers)):
                            walls[name] += timed_requests(servers[name].port, context, body, per_round, gap)
                    handler = logged_handler_ms(log, skip, len(walls["ours"]))
                    for name, values in walls.items():
                        values.sort()
                        row: dict[str, object] = {
                            "gap_ms": gap * 1000,
                            "server": name,
                            "n": len(values),
                            "wall_p50_ms": round(percentile(values, 50) * 1000, 3),
                            "wall_p90_ms": round(percentile(values, 90) * 1000, 3),
                        }
                        if name == "ours":
                            row["handler_p50_ms"] = percentile(handler, 50)
                            row["handler_p90_ms"] = percentile(handler, 90)
                        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer requests")
    args = p.parse_args(argv)
    rows = run(args.quick)
    print(
        "| pause before each request | server | requests | wall p50 ms | wall p90 ms | ours' handler p50 (p90) ms |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        handler = f"{row['handler_p50_ms']} ({row['handler_p90_ms']})" if "handler_p50_ms" in row else "-"
        print(
            f"| {row['gap_ms']:g} ms | {row['server']} | {row['n']} | {row['wall_p50_ms']} | "
            f"{row['wall_p90_ms']} | {handler} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
