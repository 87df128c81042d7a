"""CPU cost of one admission without HTTP or TLS: ``python -m bench.inprocess``.

Decodes the bench's AdmissionReviews (``bench.reviews``), answers them with the real handler against a Store
holding the bench state, and encodes the answer, in one process. Reports the fastest of many short batches
per case (µs per admission), the figure least disturbed by other work on a shared machine: run it for two
revisions back to back to compare them (the full ``python -m bench`` measures the server as kube-apiserver
sees it, but its figures move by 2x under load).
"""

from __future__ import annotations

import argparse
import json
import time

from bench import reviews
from webhook.admission import handlers
from webhook.admission.review import decode, encode
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
            review = decode(body)
            encode(review, handlers.inject(review, state, reviews.SETTINGS))
        best = min(best, (time.perf_counter() - start) / per_batch)
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--per-batch", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    state = store()
    figures = {case: round(measure(case, state, args.batches, args.per_batch), 1) for case in CASES}
    if args.json:
        print(json.dumps(figures))
    else:
        for case, micros in figures.items():
            print(f"{case:<12} {micros:8.1f} µs per admission (fastest batch)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
