"""``make bench``: every goal of the bench in one run, each beside its baseline, checked against the kept figures.

``python -m bench.gate [--quick] [--only KEY ...] [--json FILE] [--reference FILE] [--write-reference]``

Each part returns ``bench.rows.Row``s: the request path here (``/inject`` throughput of an M pod against a
FastAPI route answering fixed bytes, both served by the same process set-up, alternating rounds), the pod
CREATE through a real kube-apiserver (``bench.create``), start-up and memory at scale (``bench.startup``).
The table printed gives each row's value, its baseline from the same run, the figure the goal applies to, the
goal, and the figure kept in ``bench/reference.json``. The run fails (exit 1) when any figure is more than
20 % worse than the kept one; a goal that is not met is printed, and fails nothing by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import reviews, wrk
from bench.baseline import answer_template
from bench.proc import Server
from bench.rows import Row

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference.json"
TOLERANCE = 0.2


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (5 min {five:.2f}) on {os.cpu_count()} cores"


def throughput_rows(quick: bool) -> list[Row]:
    """M-inject through the real server over TLS (wrk, 8 keep-alive connections, the server on core 0 and wrk
    on core 1) against the same server set-up whose admission routes are FastAPI path operations answering
    fixed bytes (``bench.baseline``, kind ``route``). Rounds alternate the order (A B, B A, ...). Two rows:
    req/s (medians of the rounds, figure their ratio) and the server's CPU per request (the same ratio from
    the CPU each answer took: what the throughputs would be on a core of their own, the figure that holds
    when other work shares the core)."""
    if not wrk.available():
        raise RuntimeError("wrk is not installed (Debian package wrk): the throughput rows need it")
    rounds, seconds = (2, 2.0) if quick else (6, 4.0)
    note = load_note()
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as tmp:
        work = Path(tmp)
        state = work / "state.yaml"
        state.write_text(reviews.state_yaml(100, 5000))
        body = work / "review-M-inject.json"
        body.write_bytes(reviews.body("M", "inject"))
        answer = work / "answer-M-inject.json"
        servers = {
            "ours": Server(state, work, log_level="info"),
            "base": Server(state, work, baseline=True, baseline_kind="route", log_level="info"),
            # our answer's bytes after our parse: what is left of ours without the decision, its encoding, the
            # log line and the metrics (the ceiling of any handler that reads the pod)
            "parse": Server(
                state,
                work,
                baseline=True,
                baseline_kind="parse",
                log_level="info",
                env={"BENCH_ANSWER": str(answer)},
            ),
        }
        names = tuple(servers)
        rps: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        with servers["ours"], servers["base"]:
            answer.write_bytes(
                answer_template(servers["ours"].port, body.read_bytes(), work / "certs" / "ca.crt")
            )
            with servers["parse"]:
                for r in range(rounds):
                    shift = r % len(names)
                    for name in names[shift:] + names[:shift]:
                        got, us = _closed_loop(servers[name], body, seconds, work)
                        rps[name].append(got)
                        cpu[name].append(us)
    median = statistics.median
    rounds_note = f"{note}; {rounds} rounds of {seconds:g} s, the order rotating"
    parse_note = (
        f"; a route that only parses the review and answers our answer's bytes: {median(rps['parse']):.0f} "
        f"req/s ({median(rps['parse']) / median(rps['base']):.2f} of the fixed route), "
        f"{median(cpu['parse']):.0f} µs/req ({median(cpu['base']) / median(cpu['parse']):.2f})"
    )
    return [
        Row(
            key="inject_throughput",
            measure="/inject throughput, M pod (11 KB) injected, one core, TLS keep-alive, / FastAPI fixed-answer route",
            value=round(median(rps["ours"]), 1),
            unit="req/s",
            goal=0.8,
            better="higher",
            baseline_name="FastAPI route answering fixed bytes (same server set-up)",
            baseline_value=round(median(rps["base"]), 1),
            figure_of="ratio",
            note=f"{rounds_note}, round ratios "
            + ", ".join(f"{o / b:.2f}" for o, b in zip(rps["ours"], rps["base"], strict=True))
            + parse_note,
        ),
        Row(
            key="inject_cpu",
            measure="the same from server CPU per request: the FastAPI route's µs / ours (holds when the core is shared)",
            value=round(median(cpu["ours"]), 1),
            unit="µs/req",
            goal=0.8,
            better="higher",
            baseline_name="FastAPI route answering fixed bytes",
            baseline_value=round(median(cpu["base"]), 1),
            figure_of="inverse",
            note=f"{rounds_note}; µs per request, ours "
            + ", ".join(f"{x:.0f}" for x in cpu["ours"])
            + "; FastAPI route "
            + ", ".join(f"{x:.0f}" for x in cpu["base"])
            + "; parse-only route "
            + ", ".join(f"{x:.0f}" for x in cpu["parse"]),
        ),
    ]


def _closed_loop(server: Server, body: Path, seconds: float, work: Path) -> tuple[float, float]:
    """req/s and server CPU µs per request of one wrk run (after a one-second warm-up)."""
    url = f"https://127.0.0.1:{server.port}"
    wrk.run(url, "/inject", [body], connections=8, duration=1, script_dir=work)
    before = server.cpu()
    got = wrk.run(url, "/inject", [body], connections=8, duration=seconds, script_dir=work)
    used = server.cpu() - before
    if got.get("non_2xx") or got.get("socket_errors") or not got.get("requests"):
        raise RuntimeError(f"{url}: {got}")
    return got["rps"], used / got["requests"] * 1e6


def parts() -> dict[str, Callable[[bool], list[Row]]]:
    """The parts of the bench, by name (each returns its rows)."""
    from bench.create import create_rows
    from bench.startup import startup_rows

    return {"throughput": throughput_rows, "create": create_rows, "startup": startup_rows}


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"


def table(rows: list[Row], reference: dict[str, float]) -> str:
    lines = [
        "| measure | value | baseline (same run) | figure | goal | met | kept figure | regression |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        kept = reference.get(row.key)
        figure = f"{row.figure:.3f}" + ("" if row.figure_of == "value" else f" ({row.figure_of})")
        goal = ("<= " if row.better == "lower" else ">= ") + f"{row.goal:g}"
        base = f"{fmt(row.baseline_value)} {row.unit} ({row.baseline_name})" if row.baseline_name else "-"
        regressed = kept is not None and row.regressed(kept, TOLERANCE)
        lines.append(
            f"| {row.measure} | {fmt(row.value)} {row.unit} | {base} | {figure} | {goal} | "
            f"{'yes' if row.met else 'NO'} | {fmt(kept)} | {'REGRESSED' if regressed else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gate", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer and shorter rounds (same sizes)")
    p.add_argument("--only", nargs="+", help="these parts only (throughput, create, startup)")
    p.add_argument("--json", type=Path, help="also write the rows here")
    p.add_argument("--reference", type=Path, default=REFERENCE)
    p.add_argument("--write-reference", action="store_true", help="keep this run's figures as the reference")
    args = p.parse_args(argv)
    reference = json.loads(args.reference.read_text()) if args.reference.is_file() else {}
    rows: list[Row] = []
    started = time.perf_counter()
    for name, part in parts().items():
        if args.only and name not in args.only:
            continue
        print(f"[bench] {name} ({load_note()})", file=sys.stderr, flush=True)
        rows += part(args.quick)
    print(table(rows, reference))
    for row in rows:
        if row.note:
            print(f"- {row.key}: {row.note}")
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in rows], indent=1) + "\n")
    if args.write_reference:
        kept = {**reference, **{r.key: round(r.figure, 4) for r in rows}}
        args.reference.write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n")
    regressed = [r.key for r in rows if r.key in reference and r.regressed(reference[r.key], TOLERANCE)]
    if regressed:
        print(f"bench: more than {TOLERANCE:.0%} worse than the kept figures: {', '.join(regressed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
