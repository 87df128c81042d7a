"""The scale benchmark still works: its populations are what the cache sees, and its quick mode starts the
real webhook in cluster mode against the loopback API server and reports every figure.

Timings and memory are not asserted (this machine is shared); the structure and the answers are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench import scale
from webhook.state.kinds import DYNAKUBES, NAMESPACES

ROOT = Path(__file__).resolve().parents[2]


def test_populations_have_unique_names_and_namespaces_map_to_dynakubes() -> None:
    scenario = scale.Scenario({NAMESPACES: 300, DYNAKUBES: 7, "replicasets": 50, "jobs": 5, "secrets": 3})
    api = scale.fake_cluster(scenario)
    for resource, count in scenario.counts.items():
        path = scale.POPULATIONS[resource].path
        assert sum(1 for p in api.objects if p.rsplit("/", 1)[0] == path) == count, resource
    ns = api.objects["/api/v1/namespaces/shop-0299"]
    assert ns["metadata"]["labels"]["dynakube.internal.dynatrace.com/instance"] == "dynakube-005"
    assert ns["metadata"]["annotations"] and ns["metadata"]["managedFields"]
    assert f"{scale.DK_PATH}/dynakube-005" in api.objects


def test_per_object_cost_counts_only_what_the_cache_keeps() -> None:
    costs = scale.per_object_bytes(scale.Scenario({NAMESPACES: 500, DYNAKUBES: 10}), sample=500)
    assert set(costs) == {NAMESPACES, DYNAKUBES, "secrets"}
    # a whole bench namespace is over 1.5 KB of JSON and several KB as Python objects; the cache keeps its
    # metadata's essentials (about 0.8 KB); a DynaKube keeps its spec but not its managedFields
    assert 0 < costs[NAMESPACES] < 1200
    assert 0 < costs[DYNAKUBES] < 8000
    assert 0 < costs["secrets"] < 1000


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--quick", "--json", str(out)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| scenario | code | ready s |" in proc.stdout
    result = json.loads(out.read_text())
    [entry] = result["scenarios"]
    [run] = entry["runs"]
    assert run["code"] == "this"
    assert run["ready_s"] > 0 and 0 < run["sync_s"] <= run["ready_s"]
    assert run["peak_rss_mib"] >= run["rss_after_sync_mib"] > 0
    assert run["last_namespace"]["status"] == 200
    assert run["last_namespace"]["outcome"] == run["last_namespace"]["expected"] == "skipped"
    [m_inject] = run["m_inject"]
    assert m_inject["rps"] > 0 and m_inject["errors"] == 0
    overload = entry["overload"]
    assert overload["offered_rps"] >= 3 * overload["capacity_rps"] * 0.99
    assert set(overload["statuses"]) <= {"200", "503"}
    assert overload["overload_peak_rss_mib"] > 0


def test_admission_ab_compares_two_codes_in_process() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.admission_ab",
            "--reference",
            "HEAD",
            "--namespaces",
            "200",
            "--dynakubes",
            "4",
            "--rounds",
            "2",
            "--batches",
            "2",
            "--per-batch",
            "20",
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| this |" in proc.stdout and "| HEAD |" in proc.stdout
    assert "this / HEAD: best x" in proc.stdout
