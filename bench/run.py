"""The admission-path benchmark: ``python -m bench`` (full, a few minutes) or ``python -m bench --quick``.

The server under test runs pinned to core 0 (``taskset -c 0``); this process and its load generators run on
core 1. Every figure of the webhook is also given as a ratio to the baseline: the same process, listeners,
uvicorn settings and TLS answering a fixed AdmissionReview without parsing the body (``bench.baseline``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import load, reviews, wrk
from bench.proc import Server

HOST = "127.0.0.1"
MIB = 1024.0


@dataclass(frozen=True)
class Case:
    name: str
    size: str
    scenarios: tuple[str, ...]  # more than one: the bodies rotate (a mix)
    open_loop: bool = True


FULL_CASES = (
    Case("S-inject", "S", ("inject",)),
    Case("M-inject", "M", ("inject",)),
    Case("M-skip", "M", ("skip",)),
    Case("M-reinvoke", "M", ("reinvoke",)),
    Case("M-mix", "M", ("inject", "skip", "reinvoke")),
    Case("L-inject", "L", ("inject",)),
    Case("X-inject", "X", ("inject",)),
    Case("X-skip", "X", ("skip",), open_loop=False),
)
QUICK_CASES = (Case("S-inject", "S", ("inject",)), Case("M-mix", "M", ("inject", "skip", "reinvoke")))


@dataclass(frozen=True)
class Plan:
    quick: bool
    cases: tuple[Case, ...]
    dynakubes: int
    namespaces: int
    closed_seconds: float
    closed_connections: int
    rates: tuple[int, ...]
    open_seconds: float
    sequential: int
    overload_seconds: float
    limit_concurrency: int
    use_wrk: bool

    @classmethod
    def make(cls, quick: bool, use_wrk: bool) -> Plan:
        if quick:
            return cls(True, QUICK_CASES, 10, 100, 0.5, 4, (200,), 0.5, 50, 0.5, 16, False)
        return cls(False, FULL_CASES, 100, 5000, 5.0, 8, (500, 1000, 2000), 5.0, 1000, 8.0, 64, use_wrk)


def machine() -> dict[str, Any]:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), ""
        )
    except OSError:
        pass
    return {
        "cpu_model": model or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": shutil.which("wrk") is not None,
        "pinned": (os.cpu_count() or 1) > 1 and shutil.which("taskset") is not None,
    }


def check_load(note: list[str]) -> list[float]:
    avg = [round(x, 2) for x in os.getloadavg()]
    if avg[0] > 0.5 * (os.cpu_count() or 1):
        message = (
            f"load average {avg[0]} on {os.cpu_count()} cores: other work shares this machine, "
            "figures are pessimistic and noisy"
        )
        print(f"WARNING: {message}", file=sys.stderr)
        note.append(message)
    return avg


class Bench:
    def __init__(self, plan: Plan, work: Path) -> None:
        self.plan = plan
        self.work = work
        self.state = work / "state.yaml"
        self.bodies: dict[tuple[str, str], Path] = {}

    def prepare(self) -> None:
        self.state.write_text(reviews.state_yaml(self.plan.dynakubes, self.plan.namespaces))
        for case in self.plan.cases:
            for scenario in case.scenarios:
                self.body(case.size, scenario)
        for scenario in ("inject", "skip"):
            self.body("M", scenario)

    def body(self, size: str, scenario: str) -> Path:
        key = (size, scenario)
        if key not in self.bodies:
            path = self.work / f"review-{size}-{scenario}.json"
            path.write_bytes(reviews.body(size, scenario))
            self.bodies[key] = path
        return self.bodies[key]

    def case_bodies(self, case: Case) -> list[Path]:
        return [self.body(case.size, s) for s in case.scenarios]

    def server(self, **kw: Any) -> Server:
        return Server(self.state, self.work, **kw)

    # --- measurements against a running server ---
    def closed(self, server: Server, bodies: list[Path]) -> dict[str, Any]:
        p = self.plan
        # warm up: connections, caches, the allocator
        self._python_closed(server, bodies, p.closed_connections, min(1.0, p.closed_seconds))
        cpu0 = server.cpu()
        if p.use_wrk:
            result = wrk.run(
                f"https://{HOST}:{server.port}",
                "/inject",
                bodies,
                connections=p.closed_connections,
                duration=p.closed_seconds,
                script_dir=self.work,
            )
        else:
            result = self._python_closed(server, bodies, p.closed_connections, p.closed_seconds)
        cpu = server.cpu() - cpu0
        requests = result.get("requests") or 0
        result["cpu_us_per_request"] = round(cpu / requests * 1e6, 1) if requests else float("nan")
        result["server_cpu_busy"] = round(cpu / p.closed_seconds, 3)
        return result

    def _python_closed(
        self, server: Server, bodies: list[Path], conns: int, seconds: float
    ) -> dict[str, Any]:
        data = [b.read_bytes() for b in bodies]
        return asyncio.run(load.closed_loop(HOST, server.port, "/inject", data, conns, seconds))

    def open(
        self, server: Server, bodies: list[Path], rate: float, seconds: float, **kw: Any
    ) -> dict[str, Any]:
        data = [b.read_bytes() for b in bodies]
        cpu0 = server.cpu()
        result = asyncio.run(load.open_loop(HOST, server.port, "/inject", data, rate, seconds, **kw)).report()
        cpu = server.cpu() - cpu0
        done = result["completed"]
        result["cpu_us_per_request"] = round(cpu / done * 1e6, 1) if done else float("nan")
        return result

    def sequential(self, server: Server, body: Path) -> dict[str, Any]:
        cpu0 = server.cpu()
        result = asyncio.run(
            load.sequential(HOST, server.port, "/inject", body.read_bytes(), self.plan.sequential)
        )
        result["cpu_us_per_request"] = round((server.cpu() - cpu0) / (self.plan.sequential + 50) * 1e6, 1)
        return result

    def profile(self, server: Server, bodies: list[Path], open_loop: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"closed_loop": self.closed(server, bodies)}
        if open_loop:
            out["open_loop"] = {
                str(rate): self.open(server, bodies, rate, self.plan.open_seconds) for rate in self.plan.rates
            }
        return out

    # --- the whole run ---
    def run(self) -> dict[str, Any]:
        p = self.plan
        notes: list[str] = []
        result: dict[str, Any] = {"machine": machine(), "notes": notes}
        result["machine"]["load_before"] = check_load(notes)
        result["plan"] = {
            "quick": p.quick,
            "dynakubes": p.dynakubes,
            "namespaces": p.namespaces,
            "closed_loop": {
                "tool": "wrk" if p.use_wrk else "python",
                "connections": p.closed_connections,
                "seconds": p.closed_seconds,
            },
            "open_loop": {
                "tool": "bench.load (asyncio, scheduled sends)",
                "rates": list(p.rates),
                "seconds": p.open_seconds,
            },
            "sequential_requests": p.sequential,
        }
        self.prepare()
        result["body_bytes"] = {
            f"{s}-{sc}": path.stat().st_size for (s, sc), path in sorted(self.bodies.items())
        }
        startup: dict[str, Any] = {}
        memory: dict[str, Any] = {}

        with self.server(baseline=True) as base:
            startup["baseline_s"] = round(base.startup_seconds, 3)
            memory["baseline_idle_rss_mib"] = round(base.memory()["VmRSS"] / MIB, 1)
            baseline = self.profile(base, [self.body("M", "inject")], open_loop=True)
            baseline["sequential"] = self.sequential(base, self.body("M", "inject"))
            memory["baseline_peak_rss_mib"] = round(base.memory()["VmHWM"] / MIB, 1)
        result["baseline"] = baseline

        with self.server() as hook:
            startup["webhook_s"] = round(hook.startup_seconds, 3)
            time.sleep(0.5)
            memory["idle_rss_mib"] = round(hook.memory()["VmRSS"] / MIB, 1)
            cases = []
            for case in p.cases:
                print(f"  {case.name} ...", file=sys.stderr, flush=True)
                entry: dict[str, Any] = {
                    "name": case.name,
                    "size": case.size,
                    "scenarios": list(case.scenarios),
                    "body_bytes": [b.stat().st_size for b in self.case_bodies(case)],
                }
                entry.update(self.profile(hook, self.case_bodies(case), case.open_loop))
                cases.append(entry)
            result["cases"] = cases
            result["sequential"] = {
                "skip": self.sequential(hook, self.body("M", "skip")),
                "inject": self.sequential(hook, self.body("M", "inject")),
                "baseline": baseline["sequential"],
            }
            memory["peak_rss_mib"] = round(hook.memory()["VmHWM"] / MIB, 1)

        # the cost of one JSON log line per admission: the same load with admissions logged and not
        with self.server(log_level="warning") as quiet:
            startup["webhook_warning_s"] = round(quiet.startup_seconds, 3)
            m_inject = next((c for c in result["cases"] if c["name"] == "M-inject"), result["cases"][0])
            result["logging"] = {
                "case": m_inject["name"],
                "info": m_inject["closed_loop"],
                "warning": self.closed(
                    quiet, self.case_bodies(next(c for c in p.cases if c.name == m_inject["name"]))
                ),
            }

        memory["overload"] = self.overload(result)
        result["startup"] = startup
        result["memory"] = memory
        result["machine"]["load_after"] = check_load(notes)
        ratios(result)
        result["targets"] = targets(result)
        return result

    def overload(self, result: dict[str, Any]) -> dict[str, Any]:
        """3x the measured M-mix capacity, open loop, with and without --limit-concurrency."""
        p = self.plan
        case = (
            next(c for c in p.cases if c.name == "M-mix")
            if any(c.name == "M-mix" for c in p.cases)
            else p.cases[0]
        )
        capacity = next(c for c in result["cases"] if c["name"] == case.name)["closed_loop"]["rps"]
        rate = max(50.0, 3 * capacity)
        out: dict[str, Any] = {"case": case.name, "capacity_rps": capacity, "offered_rps": round(rate, 1)}
        for label, limit in (("limited", p.limit_concurrency), ("unlimited", None)):
            with self.server(limit_concurrency=limit) as hook:
                run = self.open(
                    hook,
                    self.case_bodies(case),
                    rate,
                    p.overload_seconds,
                    initial_connections=8,
                    max_connections=3 * p.limit_concurrency,
                    drain=5.0,
                )
                run["limit_concurrency"] = limit
                run["peak_rss_mib"] = round(hook.memory()["VmHWM"] / MIB, 1)
                out[label] = run
        return out


def _ratio(value: Any, base: Any) -> float | None:
    if isinstance(value, (int, float)) and isinstance(base, (int, float)) and base and not math.isnan(base):
        return round(value / base, 3)
    return None


def ratios(result: dict[str, Any]) -> None:
    base = result["baseline"]
    for case in result["cases"]:
        cl, bcl = case["closed_loop"], base["closed_loop"]
        cl["ratio_rps"] = _ratio(cl["rps"], bcl["rps"])
        cl["ratio_cpu"] = _ratio(cl["cpu_us_per_request"], bcl["cpu_us_per_request"])
        for rate, run in case.get("open_loop", {}).items():
            b = base["open_loop"].get(rate, {})
            for key in ("p50_ms", "p99_ms", "p99_9_ms", "max_ms", "cpu_us_per_request"):
                run[f"ratio_{key}"] = _ratio(run.get(key), b.get(key))
    for kind in ("skip", "inject"):
        seq = result["sequential"][kind]
        seq["ratio_median"] = _ratio(seq["median_ms"], base["sequential"]["median_ms"])
        seq["ratio_p99"] = _ratio(seq["p99_ms"], base["sequential"]["p99_ms"])
    mem = result["memory"]
    mem["ratio_idle_rss"] = _ratio(mem["idle_rss_mib"], mem["baseline_idle_rss_mib"])
    result["startup"]["ratio"] = _ratio(result["startup"]["webhook_s"], result["startup"]["baseline_s"])


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    cases = {c["name"]: c for c in result["cases"]}
    out = []

    def target(name: str, value: Any, limit: float, at_least: bool = False) -> None:
        ok = (
            None
            if value is None or (isinstance(value, float) and math.isnan(value))
            else (value >= limit if at_least else value <= limit)
        )
        out.append({"target": name, "value": value, "limit": limit, "met": ok})

    m = cases.get("M-inject")
    if m:
        target("M-inject throughput / baseline", m["closed_loop"].get("ratio_rps"), 0.8, at_least=True)
        ol = m.get("open_loop", {})
        if "1000" in ol:
            target("M-inject p99 at 1000 req/s (ms)", ol["1000"]["p99_ms"], 3.0)
        if "2000" in ol:
            target("M-inject p99 at 2000 req/s (ms)", ol["2000"]["p99_ms"], 10.0)
    x = cases.get("X-inject")
    if x:
        target(
            "X-inject (1000 env) server CPU per admission (ms)",
            round(x["closed_loop"]["cpu_us_per_request"] / 1000, 3),
            2.0,
        )
    mem = result["memory"]
    target("idle RSS (MiB)", mem["idle_rss_mib"], 80)
    target(
        "peak RSS under 3x overload with --limit-concurrency (MiB)",
        mem["overload"]["limited"]["peak_rss_mib"],
        128,
    )
    target("start-up to ready (s)", result["startup"]["webhook_s"], 1.0)
    return out


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def table(result: dict[str, Any]) -> str:
    rates = result["plan"]["open_loop"]["rates"]
    head = ["case", "bytes", "req/s", "x base", "CPU µs/req", "x base"]
    for r in rates:
        head += [f"{r}/s p50", "p99", "p99.9", "max"]
    rows = []
    entries = [{"name": "baseline", "body_bytes": ["-"], **result["baseline"]}, *result["cases"]]
    for c in entries:
        cl = c["closed_loop"]
        row = [
            c["name"],
            "/".join(str(b) for b in c["body_bytes"]),
            _f(cl["rps"], 0),
            _f(cl.get("ratio_rps")),
            _f(cl["cpu_us_per_request"], 0),
            _f(cl.get("ratio_cpu")),
        ]
        for r in rates:
            run = c.get("open_loop", {}).get(str(r))
            row += [_f(run[k]) if run else "-" for k in ("p50_ms", "p99_ms", "p99_9_ms", "max_ms")]
        rows.append(row)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    seq = result["sequential"]
    mem = result["memory"]
    st = result["startup"]
    lg = result["logging"]
    ov = mem["overload"]
    lines += [
        "",
        "Open-loop latencies in ms, measured from each request's scheduled send time.",
        "",
        "| sequential (one keep-alive TLS connection) | median ms | p99 ms | max ms |",
        "|---|---|---|---|",
    ]
    for kind in ("baseline", "skip", "inject"):
        lines.append(
            f"| {kind} | {_f(seq[kind]['median_ms'], 3)} | {_f(seq[kind]['p99_ms'], 3)} | {_f(seq[kind]['max_ms'], 3)} |"
        )
    lines += [
        "",
        f"- start-up to /readyz 200: webhook {st['webhook_s']} s, baseline {st['baseline_s']} s",
        f"- RSS idle ({result['plan']['dynakubes']} DynaKubes, {result['plan']['namespaces']} namespaces): "
        f"{mem['idle_rss_mib']} MiB (baseline {mem['baseline_idle_rss_mib']} MiB); peak after the run: {mem['peak_rss_mib']} MiB",
        f"- logging ({lg['case']}): INFO {_f(lg['info']['rps'], 0)} req/s, {_f(lg['info']['cpu_us_per_request'], 0)} µs/req; "
        f"WARNING {_f(lg['warning']['rps'], 0)} req/s, {_f(lg['warning']['cpu_us_per_request'], 0)} µs/req",
    ]
    for label in ("limited", "unlimited"):
        run = ov[label]
        lines.append(
            f"- overload {label} (limit {run['limit_concurrency']}): offered {ov['offered_rps']} req/s "
            f"(3x {ov['capacity_rps']}), sent {run['sent']}, statuses {run['statuses']}, errors {run['errors']}, "
            f"unfinished {run['unfinished']}, p99 {run['p99_ms']} ms, peak RSS {run['peak_rss_mib']} MiB"
        )
    lines += ["", "| target | value | limit | met |", "|---|---|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {_f(t['value'], 3)} | {t['limit']} | {t['met']} |")
    if result["notes"]:
        lines += ["", *(f"Note: {n}" for n in result["notes"])]
    return "\n".join(lines)


def arguments(prog: str, description: str | None, quick: str) -> argparse.ArgumentParser:
    """The options every bench command has: ``--quick`` (``quick`` says what it does), ``--json``, ``--work-dir``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")
    parser.add_argument("--work-dir", type=Path, help="keep generated files and server logs here")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = arguments("python -m bench", __doc__, "a few seconds, no external load tools")
    parser.add_argument("--no-wrk", action="store_true", help="closed loop with the Python client, not wrk")
    args = parser.parse_args(argv)
    use_wrk = not args.quick and not args.no_wrk
    if use_wrk and not wrk.available():
        print(
            "wrk is not installed (apt-get install -y wrk); closed loop uses the Python client",
            file=sys.stderr,
        )
        use_wrk = False
    if (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})  # the load generators; the server gets core 0
    plan = Plan.make(args.quick, use_wrk)
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = Bench(plan, work).run()
    print(table(result))
    text = json.dumps(result, indent=2, default=str)
    print("\nJSON:")
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0
