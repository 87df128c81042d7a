"""The scan benchmark runs end to end at a small size (the 20 000-pod figures are in bench/SCAN.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_scan_bench_small():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.scan",
            "--pods",
            "400",
            "--namespaces",
            "2",
            "--page-size",
            "50",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    # 200 pods a namespace in Deployments of 50: block 1 skipped, block 3 never seen -> 2 workloads each
    assert figures["scans"] == 2
    assert figures["missed_pods"] == 100
    assert figures["workloads_found"] == 4 and figures["restarted"] == 4
    assert figures["rss_added_mib"] < 20
