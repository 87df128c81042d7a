"""Start-up at scale: ``python -m bench.startup`` (about two minutes) or ``python -m bench.startup --quick``.

The real webhook process starts in cluster mode against the loopback API server (``bench.scale``'s machinery:
``tests/support/apiserver.py`` serving from this process on core 1, the webhook pinned to core 0) holding
20 000 namespaces and 50 DynaKubes, then 50 000 namespaces and 100 DynaKubes, and, as the baseline of the
same run, an empty cluster. ``startup_rows`` returns the figures as ``bench.rows.Row``s:

- ``ready_20k``, ``ready_50k``: seconds from process start to ``/readyz`` 200 (median of the starts), beside
  the same process's start to ready against the empty cluster;
- ``rss_20k``: RSS two seconds after ready with 20 000 namespaces (median), beside the empty cluster's.

The goals are absolute (``figure_of="value"``); the baseline says how much of the figure is the process
itself, and the note the machine's load average, which moves both.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import scale
from bench.rows import Row
from bench.run import check_load
from tests.support.apiserver import ApiServer
from webhook.state.kinds import DYNAKUBES, NAMESPACES


@dataclass(frozen=True)
class Size:
    key: str  # "20k", "50k", "" for the empty cluster
    namespaces: int
    dynakubes: int
    ready_goal: float  # seconds


EMPTY = Size("", 0, 0, 0.0)
SIZES = (Size("20k", 20_000, 50, 1.0), Size("50k", 50_000, 100, 2.5))
RSS_GOAL_MIB = 100.0


def measure(size: Size, repeats: int, work: Path) -> list[dict[str, Any]]:
    """``repeats`` starts of the webhook against a fake cluster of ``size``: ``bench.scale.start``'s figures."""
    api = scale.fake_cluster(scale.Scenario({NAMESPACES: size.namespaces, DYNAKUBES: size.dynakubes}))
    # the fake cluster lives as long as the run: the API server's collector need not walk it again and again
    gc.collect()
    gc.freeze()
    apiserver = ApiServer(api)
    runs = []
    try:
        for _ in range(repeats):
            server, figures = scale.start(work, apiserver, None, "this")
            server.stop()
            runs.append(figures)
    finally:
        apiserver.close()
        gc.unfreeze()
        del api
        gc.collect()
    return runs


@contextlib.contextmanager
def _on_core_1() -> Iterator[None]:
    """This process (the fake API server, the readiness polls) on core 1 while it measures, as
    ``bench.proc.Server`` pins the webhook to core 0; the caller's affinity afterwards."""
    if (os.cpu_count() or 1) < 2 or not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {1})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(run[key] for run in runs), 3)


def startup_rows(quick: bool) -> list[Row]:
    """Start to ready with 20 000 and 50 000 namespaces and RSS after sync with 20 000, each beside the same
    process against an empty cluster; ``quick`` starts each size twice instead of five times."""
    repeats = 2 if quick else 5
    notes: list[str] = []
    load_before = check_load(notes)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp, _on_core_1():
        work = Path(tmp)
        empty = measure(EMPTY, repeats, work)
        sized = {size.key: measure(size, repeats, work) for size in SIZES}
    load_after = check_load(notes)
    load = (
        f"load average {load_before[0]} before, {load_after[0]} after, on 2 cores; median of {repeats} starts"
    )
    rows = [
        Row(
            key=f"ready_{size.key}",
            measure=f"start to ready, {size.namespaces} namespaces + {size.dynakubes} DynaKubes (s)",
            value=_median(sized[size.key], "ready_s"),
            unit="s",
            goal=size.ready_goal,
            better="lower",
            baseline_name="start to ready, empty cluster",
            baseline_value=_median(empty, "ready_s"),
            figure_of="value",
            note=f"{load}; cache sync {_median(sized[size.key], 'sync_s')} s",
        )
        for size in SIZES
    ]
    first = SIZES[0]
    rows.append(
        Row(
            key=f"rss_{first.key}",
            measure=f"RSS after sync, {first.namespaces} namespaces + {first.dynakubes} DynaKubes (MiB)",
            value=_median(sized[first.key], "rss_after_sync_mib"),
            unit="MiB",
            goal=RSS_GOAL_MIB,
            better="lower",
            baseline_name="RSS after sync, empty cluster",
            baseline_value=_median(empty, "rss_after_sync_mib"),
            figure_of="value",
            note=f"{load}; peak {max(run['peak_rss_mib'] for run in sized[first.key])} MiB",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="two starts per size instead of five")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    rows = startup_rows(args.quick)
    print("| row | value | baseline | goal | met | note |\n|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.measure} | {row.value} {row.unit} | {row.baseline_value} | {row.goal} | {row.met} "
            f"| {row.note} |"
        )
    if args.json:
        args.json.write_text(json.dumps([row.as_dict() for row in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
