"""Soak: keep answering, lose nothing, never block the cluster. ``python -m bench.soak [--requests N]``.

Starts the real webhook (local state file, real TLS), drives mixed admissions over keep-alive TLS connections
while the state file changes underneath, and checks:

- zero 5xx, zero dropped or reset connections;
- every answer right for the state at the time: DynaKube ``dynakube-001``'s communicationHosts are toggled
  every ``--toggle-every`` seconds (atomic rename, as kubelet swaps a ConfigMap), so a pod in its namespace is
  injected or skipped (EmptyConnectionInfo) depending on when it is asked. A request whose window
  [sent - settle, answered] holds a toggle may get either answer; any other answer that contradicts the
  state is counted;
- RSS growth under 10 % from the end of warm-up to the end, no file-descriptor growth (``/proc/<pid>/fd``).

Mix: inject (ready DynaKube), toggled (inject or skip), label-ns, validate, malformed (answered 400).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench import reviews as rv
from bench.load import Connection, ProtocolError
from bench.proc import Server, memory_kib

HOST = "127.0.0.1"
INSTANCE_LABEL = rv.INSTANCE_LABEL
UID = rv.review({}, "")["request"]["uid"].encode()
TOGGLED = "dynakube-001"
TOGGLED_NAMESPACE = rv.PENDING_NAMESPACE  # shop-0001, mapped to dynakube-001
DYNAKUBES, NAMESPACES = 4, 40
SETTLE = 1.5  # state poll (1 s) + load + slack: how long after a toggle either answer is accepted
MIX = (("inject", 40), ("toggled", 30), ("label-ns", 10), ("validate", 10), ("malformed", 10))


def state_text(ready: bool) -> str:
    docs = rv.state_documents(DYNAKUBES, NAMESPACES)
    docs[1] = rv.dynakube(1, ready=ready)
    return yaml.safe_dump_all(docs, sort_keys=False)


def write_state(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def bodies() -> dict[str, tuple[str, bytes]]:
    """Scenario -> (path, body with the bench uid, replaced per request)."""
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "new-ns", "labels": {"monitoring": "dynakube-000"}},
    }
    label = rv.review(ns, "")
    label["request"].update(
        kind={"group": "", "version": "v1", "kind": "Namespace"},
        resource={"group": "", "version": "v1", "resource": "namespaces"},
        name="new-ns",
    )
    # an applicationMonitoring DynaKube: a cloudNativeFullStack one without nodeSelector conflicts with the other
    # host agents of the state (upstream's node-selector check), and the soak validates an admissible update
    dk = rv.dynakube(1, ready=True)
    validate = rv.review(dk, rv.NAMESPACE)
    validate["request"].update(
        kind={"group": "dynatrace.com", "version": "v1beta2", "kind": "DynaKube"},
        resource={"group": "dynatrace.com", "version": "v1beta2", "resource": "dynakubes"},
        operation="UPDATE",
        oldObject=dk,
        name="dynakube-001",
    )
    return {
        "inject": ("/inject", rv.body("S", "inject")),
        "toggled": ("/inject", orjson.dumps(rv.review(rv.pod("S", TOGGLED_NAMESPACE), TOGGLED_NAMESPACE))),
        "label-ns": ("/label-ns", orjson.dumps(label)),
        "validate": ("/validate", orjson.dumps(validate)),
        "malformed": (
            "/inject",
            b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"uid": "',
        ),
    }


@dataclass
class Tally:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    scenarios: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)  # answers wrong whatever the state
    contradicting: list[str] = field(default_factory=list)  # toggled answers contradicting the state
    ambiguous: int = 0  # toggled answers inside a toggle's window (either accepted)
    injected_seen: Counter[bool] = field(default_factory=Counter)
    dropped: list[str] = field(default_factory=list)  # connection errors: reset, EOF, protocol error
    reconnects: int = 0


class Toggles:
    """The state's history: (monotonic time the file was replaced, dynakube-001 ready)."""

    def __init__(self, ready: bool) -> None:
        self.history: list[tuple[float, bool]] = [(0.0, ready)]

    def state_at(self, t: float) -> bool:
        state = self.history[0][1]
        for when, ready in self.history:
            if when > t:
                break
            state = ready
        return state

    def acceptable(self, sent: float, answered: float) -> set[bool]:
        """Answers the server may give for a request in flight over [sent, answered]."""
        states = {self.state_at(sent - SETTLE)}
        states.update(ready for when, ready in self.history[1:] if sent - SETTLE <= when <= answered)
        return states


def check(
    scenario: str,
    status: int,
    payload: bytes,
    uid: str,
    tally: Tally,
    toggles: Toggles,
    sent: float,
    answered: float,
) -> None:
    tally.statuses[status] += 1
    tally.scenarios[scenario] += 1
    if scenario == "malformed":
        ok = status == 400 and bool(orjson.loads(payload).get("error"))
        if not ok:
            tally.wrong.append(f"malformed: {status} {payload[:120]!r}")
        return
    if status != 200:
        tally.wrong.append(f"{scenario}: {status} {payload[:120]!r}")
        return
    answer = orjson.loads(payload)["response"]
    if answer.get("uid") != uid or answer.get("allowed") is not True:
        tally.wrong.append(f"{scenario}: uid/allowed {answer.get('uid')!r} {answer.get('allowed')!r}")
        return
    ops = json.loads(base64.b64decode(answer["patch"])) if "patch" in answer else []
    if scenario == "label-ns":
        if not any(op.get("value") == "dynakube-000" and "instance" in op.get("path", "") for op in ops):
            tally.wrong.append(f"label-ns: no instance label in {ops}")
        return
    if scenario == "validate":
        return
    injected = any(op["path"] == "/spec/initContainers" for op in ops)
    if scenario == "inject":
        if not injected:
            tally.wrong.append("inject: not injected")
        return
    skipped = any(
        (op["path"].endswith("oneagent.dynatrace.com~1reason") and op["value"] == "EmptyConnectionInfo")
        or (
            op["path"] == "/metadata/annotations"
            and isinstance(op["value"], dict)
            and op["value"].get("oneagent.dynatrace.com/reason") == "EmptyConnectionInfo"
        )
        for op in ops
    )
    if injected == skipped:
        tally.wrong.append(f"toggled: neither injected nor skipped for EmptyConnectionInfo: {ops}")
        return
    tally.injected_seen[injected] += 1
    acceptable = toggles.acceptable(sent, answered)
    if len(acceptable) > 1:
        tally.ambiguous += 1
    elif injected not in acceptable:
        tally.contradicting.append(f"injected={injected} at {answered:.2f}s, state ready={acceptable}")


async def worker(
    port: int,
    jobs: list[str],
    payloads: dict[str, tuple[str, bytes]],
    counter: list[int],
    tally: Tally,
    toggles: Toggles,
    t0: float,
) -> None:
    conn: Connection | None = None
    while True:
        index = counter[0]
        if index >= len(jobs):
            break
        counter[0] += 1
        scenario = jobs[index]
        path, body = payloads[scenario]
        uid = f"soak-{index:08d}-0000-0000-000000000000"[:36]
        request = Connection.request_bytes(HOST, path, body.replace(UID, uid.encode()))
        if conn is None or conn.closed:
            if conn is not None:
                conn.close()
                tally.reconnects += 1
            conn = await Connection.open(HOST, port)
        sent = time.monotonic() - t0
        tally.sent += 1
        try:
            status, payload = await conn.send(request)
        except (OSError, asyncio.IncompleteReadError, ProtocolError, asyncio.LimitOverrunError) as err:
            tally.dropped.append(f"{scenario} #{index}: {err!r}")
            conn.close()
            conn = None
            continue
        check(scenario, status, payload, uid, tally, toggles, sent, time.monotonic() - t0)
    if conn is not None:
        conn.close()


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def drive(server: Server, state: Path, args: argparse.Namespace) -> dict[str, Any]:
    payloads = bodies()
    rng = random.Random(args.seed)
    names = [name for name, _ in MIX]
    jobs = rng.choices(names, weights=[w for _, w in MIX], k=args.requests)
    texts = {True: state_text(True), False: state_text(False)}
    toggles = Toggles(ready=False)
    tally = Tally()
    counter = [0]
    t0 = time.monotonic()
    samples: list[dict[str, float]] = []
    warm_at = max(1, args.requests // 10)
    warm: dict[str, float] = {}
    fds_before_load = fd_count(server.pid)

    async def toggler() -> None:
        ready = False
        while True:
            await asyncio.sleep(args.toggle_every)
            ready = not ready
            write_state(state, texts[ready])
            toggles.history.append((time.monotonic() - t0, ready))

    async def sampler() -> None:
        while True:
            sample = {
                "t": time.monotonic() - t0,
                "done": counter[0],
                "rss_kib": memory_kib(server.pid)["VmRSS"],
                "fds": fd_count(server.pid),
            }
            samples.append(sample)
            if not warm and counter[0] >= warm_at:
                warm.update(sample)
            await asyncio.sleep(0.5)

    background = [asyncio.create_task(toggler()), asyncio.create_task(sampler())]
    workers = [
        asyncio.create_task(worker(server.port, jobs, payloads, counter, tally, toggles, t0))
        for _ in range(args.connections)
    ]
    results = await asyncio.gather(*workers, return_exceptions=True)
    elapsed = time.monotonic() - t0
    end = {
        "t": elapsed,
        "done": counter[0],
        "rss_kib": memory_kib(server.pid)["VmRSS"],
        "fds": fd_count(server.pid),
    }
    for task in background:
        task.cancel()
    await asyncio.sleep(0.5)  # the server notices the closed connections
    fds_after_load = fd_count(server.pid)
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    warm = warm or dict(end)
    five_xx = sum(n for code, n in tally.statuses.items() if code >= 500)
    peak_fds = max([s["fds"] for s in samples if s["t"] >= warm.get("t", 0)] + [end["fds"]])
    rss_growth = (end["rss_kib"] - warm["rss_kib"]) / warm["rss_kib"] * 100
    checks = {
        "zero 5xx": five_xx == 0,
        "zero dropped connections": not tally.dropped and not failures,
        "every request answered": sum(tally.statuses.values()) == args.requests,
        "no wrong answers": not tally.wrong,
        "no answers contradicting the state": not tally.contradicting,
        "both states seen": len(tally.injected_seen) == 2 or elapsed < 2 * args.toggle_every,
        "RSS growth after warm-up < 10 %": rss_growth < 10.0,
        # during the load: one descriptor per connection, steady; after it: back to where it started
        "no fd growth": peak_fds <= warm["fds"] + 2 and fds_after_load <= fds_before_load,
    }
    return {
        "requests": args.requests,
        "connections": args.connections,
        "seconds": round(elapsed, 1),
        "rate_per_s": round(args.requests / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "scenarios": dict(tally.scenarios),
        "toggles": len(toggles.history) - 1,
        "toggled_injected": tally.injected_seen[True],
        "toggled_skipped": tally.injected_seen[False],
        "toggled_in_window": tally.ambiguous,
        "contradicting": len(tally.contradicting),
        "wrong": len(tally.wrong),
        "dropped": len(tally.dropped),
        "reconnects": tally.reconnects,
        "worker_failures": failures,
        "rss_kib": {
            "start": samples[0]["rss_kib"] if samples else end["rss_kib"],
            "warm": warm["rss_kib"],
            "end": end["rss_kib"],
            "peak": max([s["rss_kib"] for s in samples] + [end["rss_kib"]]),
        },
        "rss_growth_percent": round(rss_growth, 2),
        "fds": {
            "before_load": fds_before_load,
            "warm": warm["fds"],
            "peak_after_warm": peak_fds,
            "after_load": fds_after_load,
        },
        "examples": {
            "wrong": tally.wrong[:5],
            "contradicting": tally.contradicting[:5],
            "dropped": tally.dropped[:5],
        },
        "checks": checks,
        "ok": all(checks.values()),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(args.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        state = work / "state.yaml"
        write_state(state, state_text(False))
        server = Server(state, work, log_level=args.log_level)
        server.start()
        try:
            result = asyncio.run(drive(server, state, args))
        finally:
            code = server.stop()
        result["exit_code"] = code
        result["checks"]["clean exit"] = code == 0
        result["ok"] = all(result["checks"].values())
        return result


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="admissions to send (100000)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections (16)")
    parser.add_argument("--toggle-every", type=float, default=5.0, help="seconds between state changes (5)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work-dir", help="keep the state, certificates and server log here")
    parser.add_argument("--json", help="also write the result to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if not result["ok"]:
        print(
            "FAILED: " + ", ".join(name for name, ok in result["checks"].items() if not ok), file=sys.stderr
        )
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
