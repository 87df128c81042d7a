"""The benchmark still works: its quick mode starts real servers, drives them, and reports every section.

Timings are not asserted (this machine is shared); the structure and the sanity of the counts are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bench import load, reviews, wrk
from webhook.admission.review import decode
from webhook.mutation import pod as pods

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("size", "low", "high"),
    [("S", 3_000, 5_000), ("M", 9_000, 13_000), ("L", 20_000, 30_000), ("X", 55_000, 70_000)],
)
def test_review_sizes(size: str, low: int, high: int) -> None:
    body = reviews.body(size, "inject")
    assert low <= len(body) <= high
    assert decode(body).operation == "CREATE"


@pytest.mark.parametrize(
    ("scenario", "outcome", "reasons"),
    [
        ("inject", pods.INJECTED, ()),
        ("skip", pods.SKIPPED, (pods.REASON_EMPTY_CONNECTION_INFO,)),
        ("reinvoke", pods.REINVOKED, (pods.SKIP_NOTHING_NEW,)),
    ],
)
def test_scenarios_decide_as_named(scenario: str, outcome: str, reasons: tuple[str, ...]) -> None:
    docs = reviews.state_documents(4, 8)
    dynakubes = {d["metadata"]["name"]: d for d in docs if d["kind"] == "DynaKube"}
    namespaces = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Namespace"}
    request = orjson.loads(reviews.body("M", scenario))["request"]
    ns = namespaces[request["namespace"]]
    dk = dynakubes[ns["metadata"]["labels"][reviews.INSTANCE_LABEL]]
    result = pods.decide(request["object"], ns, dk, reviews.SETTINGS, namespace_name=request["namespace"])
    assert (result.outcome, result.reasons) == (outcome, reasons)


def test_state_file_counts() -> None:
    docs = reviews.state_documents(100, 5000)
    kinds = [d["kind"] for d in docs]
    assert kinds.count("DynaKube") == 100
    assert kinds.count("Namespace") == 5000


def test_percentiles() -> None:
    values = [i / 1000 for i in range(1, 1001)]
    summary = load.summary_ms(values)
    assert summary == {"p50_ms": 500.0, "p99_ms": 990.0, "p99_9_ms": 999.0, "max_ms": 1000.0}


def test_wrk_output_parsing() -> None:
    output = """Running 5s test @ https://127.0.0.1:8443
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  300.00us   9.00ms   90.00%
  Latency Distribution
     50%    1.10ms
     75%    1.30ms
     90%    1.50ms
     99%    2.50ms
  26000 requests in 5.00s, 10.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   5200.00
Transfer/sec:      2.00MB
"""
    parsed = wrk.parse(output)
    assert parsed["requests"] == 26000
    assert parsed["rps"] == 5200.0
    assert (parsed["p50_ms"], parsed["p99_ms"]) == (1.1, 2.5)
    assert parsed["non_2xx"] == 3


@pytest.mark.timeout(180)
def test_quick_run_reports_every_section(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| case |" in proc.stdout
    result = json.loads(out.read_text())
    assert set(result) >= {
        "machine",
        "plan",
        "baseline",
        "cases",
        "sequential",
        "logging",
        "startup",
        "memory",
        "targets",
        "notes",
    }
    assert len(result["machine"]["load_before"]) == 3
    assert [c["name"] for c in result["cases"]] == ["S-inject", "M-mix"]
    for entry in [result["baseline"], *result["cases"]]:
        closed = entry["closed_loop"]
        assert closed["requests"] > 0
        assert closed["errors"] == 0
        assert closed["cpu_us_per_request"] > 0
        run = entry["open_loop"]["200"]
        assert run["completed"] == run["sent"] > 0
        assert run["statuses"] == {"200": run["completed"]}
        assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["p99_9_ms"] <= run["max_ms"]
    for case in result["cases"]:
        assert case["closed_loop"]["ratio_rps"] > 0
        assert "ratio_p99_ms" in case["open_loop"]["200"]
    for kind in ("baseline", "skip", "inject"):
        seq = result["sequential"][kind]
        assert seq["requests"] == 50
        assert seq["errors"] == 0
        assert 0 < seq["median_ms"] <= seq["p99_ms"] <= seq["max_ms"]
    assert result["startup"]["webhook_s"] > 0
    memory = result["memory"]
    assert memory["idle_rss_mib"] > 0
    assert memory["peak_rss_mib"] >= memory["idle_rss_mib"]
    overload = memory["overload"]
    assert overload["limited"]["limit_concurrency"] == 16
    assert overload["unlimited"]["limit_concurrency"] is None
    for label in ("limited", "unlimited"):
        statuses = overload[label]["statuses"]
        assert set(statuses) <= {"200", "503"}
        assert sum(statuses.values()) + overload[label]["errors"] + overload[label]["unfinished"] > 0
    assert {t["target"] for t in result["targets"]} >= {"idle RSS (MiB)", "start-up to ready (s)"}


def test_inprocess_bench_measures_every_case(capsys):
    from bench import inprocess

    assert inprocess.main(["--batches", "1", "--per-batch", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) == set(inprocess.CASES)
    assert all(value > 0 for value in figures.values())


def test_inprocess_bench_through_the_admission_app(capsys):
    from bench import inprocess

    assert inprocess.main(["--app", "--batches", "1", "--per-batch", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) == set(inprocess.CASES)
    assert all(value > 0 for value in figures.values())


def test_idle_bench_reports_every_server_and_pause() -> None:
    from bench import idle

    rows = idle.run(quick=True, per_round=3)
    assert [(r["gap_ms"], r["server"]) for r in rows] == [
        (gap * 1000, server) for gap in idle.GAPS for server in ("ours", "route", "parse")
    ]
    for row in rows:
        assert row["n"] == 6 and 0 < row["wall_p50_ms"] <= row["wall_p90_ms"]
        # ours logs its own time per admission: one line per request of the pause's rounds
        assert ("handler_p50_ms" in row) == (row["server"] == "ours")
        if row["server"] == "ours":
            assert 0 < row["handler_p50_ms"] <= row["handler_p90_ms"]
