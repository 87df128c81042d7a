"""How long one ``/validate`` decision takes against a large cache (``python -m bench.validate``).

The cross-object checks (node-selector and namespace-selector conflicts, extensions on the same apiUrl) read
every cached DynaKube and, for the namespace conflict, every cached namespace. This measures the decision
alone (no HTTP), for a DynaKube that selects a label and one that selects every namespace, and prints a
Markdown table; figures from a run are in bench/VALIDATE.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from webhook.validation import Context, validate

NAMESPACE = "dynatrace"
SIZES = ((1000, 10), (5000, 100), (20000, 200))


def dynakube(
    name: str, selector: dict[str, Any] | None, mode: str = "applicationMonitoring"
) -> dict[str, Any]:
    return {
        "apiVersion": "dynatrace.com/v1beta3",
        "kind": "DynaKube",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "apiUrl": "https://abc12345.live.dynatrace.com/api",
            "oneAgent": {mode: {} if selector is None else {"namespaceSelector": selector}},
            "activeGate": {"capabilities": ["routing"], "resources": {"limits": {"memory": "1Gi"}}},
        },
    }


def cache(namespaces: int, dynakubes: int) -> Context:
    dks = [dynakube(f"dk-{i}", {"matchLabels": {"team": f"t{i}"}}) for i in range(dynakubes)]
    nss = [
        {"metadata": {"name": f"ns-{i}", "labels": {"team": f"t{i % dynakubes}", "env": "prod"}}}
        for i in range(namespaces)
    ]
    return Context(dynakubes=dks, namespaces=nss, webhook_namespace=NAMESPACE)


def measure(ctx: Context, obj: dict[str, Any], repeat: int) -> tuple[float, float]:
    """(median, max) milliseconds of ``validate(obj, ctx)``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        validate(obj, ctx)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def run(sizes: tuple[tuple[int, int], ...] = SIZES, repeat: int = 20) -> list[dict[str, Any]]:
    rows = []
    for namespaces, dynakubes in sizes:
        ctx = cache(namespaces, dynakubes)
        for case, obj in (
            ("selects a label", dynakube("new", {"matchLabels": {"team": "none"}})),
            ("selects every namespace", dynakube("new", None)),
        ):
            median, worst = measure(ctx, obj, repeat)
            rows.append(
                {
                    "namespaces": namespaces,
                    "dynakubes": dynakubes,
                    "case": case,
                    "median_ms": median,
                    "max_ms": worst,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.validate", description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    print("| namespaces | DynaKubes | new DynaKube | median ms | max ms |")
    print("|---|---|---|---|---|")
    for row in run(repeat=args.repeat):
        print(
            f"| {row['namespaces']} | {row['dynakubes']} | {row['case']} | {row['median_ms']:.1f} | "
            f"{row['max_ms']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
