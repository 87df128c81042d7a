"""The admission path in process, this code against a reference revision: ``python -m bench.admission_ab``.

Each round runs one subprocess per code (alternating A B B A): it fills a Store with N namespaces and M
DynaKubes through that code's own ``Store.replace`` (so through this code's transform), freezes the collector
before (as the server does at start-up, so the cache stays in the collector's generations), and times
``handlers.inject`` (decode, decide, encode) on the bench's M pod in CPU time. No HTTP and no other process
competes for the GIL, so this isolates what the cache's objects cost the decision from the machine's noise.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.scale import ROOT, git_tree

CHILD = """
import gc, sys, time
sys.path.insert(0, {source!r})
sys.path.insert(1, {bench!r})
import webhook
assert webhook.__file__.startswith({source!r}), webhook.__file__
from bench import reviews
from webhook.admission import handlers
from webhook.admission.review import decode
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

gc.collect()
gc.freeze()
store = Store(reviews.NAMESPACE)
store.replace(DYNAKUBES, [reviews.dynakube(i, ready=i % 2 == 0) for i in range({dynakubes})])
objs = [reviews.namespace(i, {dynakubes}) for i in range({namespaces})]
for i, o in enumerate(objs):
    o["metadata"]["resourceVersion"] = str(10**6 + i)
    o["metadata"]["annotations"] = {{"metadata.dynatrace.com/cost-center": f"cc-{{i % 200}}"}}
store.replace(NAMESPACES, objs)
del objs
body = reviews.body("M", "inject")
times = []
for _ in range({batches}):
    t = time.process_time()
    for _ in range({per_batch}):
        answer = handlers.inject(decode(body), store, reviews.SETTINGS)
    times.append((time.process_time() - t) / {per_batch} * 1e6)
assert answer.outcome == "injected", answer.outcome
print(min(times), sorted(times)[len(times) // 2])
"""


def one(source: Path, args: argparse.Namespace) -> tuple[float, float]:
    code = CHILD.format(
        source=str(source),
        bench=str(ROOT),
        namespaces=args.namespaces,
        dynakubes=args.dynakubes,
        batches=args.batches,
        per_batch=args.per_batch,
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    low, mid = (float(x) for x in out.split())
    return low, mid


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.admission_ab", description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", default="main")
    p.add_argument("--namespaces", type=int, default=20000)
    p.add_argument("--dynakubes", type=int, default=50)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--batches", type=int, default=15)
    p.add_argument("--per-batch", type=int, default=500)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        codes = {"this": ROOT, args.reference: git_tree(args.reference, Path(tmp) / "reference")}
        results: dict[str, list[tuple[float, float]]] = {label: [] for label in codes}
        order = list(codes)
        for round_ in range(args.rounds):
            for label in order if round_ % 2 == 0 else order[::-1]:
                results[label].append(one(codes[label], args))
                print(
                    f"  {label}: {results[label][-1][0]:.1f} µs (min), {results[label][-1][1]:.1f} µs (median)"
                )
    print("| code | M injection, CPU µs: best of rounds (min per round) | median of round medians |")
    print("|---|---|---|")
    for label, runs in results.items():
        lows = ", ".join(f"{low:.0f}" for low, _ in runs)
        print(
            f"| {label} | {min(low for low, _ in runs):.1f} ({lows}) | {statistics.median(m for _, m in runs):.1f} |"
        )
    this, ref = results["this"], results[args.reference]
    ratio_min = min(low for low, _ in this) / min(low for low, _ in ref)
    ratio_med = statistics.median(m for _, m in this) / statistics.median(m for _, m in ref)
    print(f"\nthis / {args.reference}: best x{ratio_min:.3f}, median x{ratio_med:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
