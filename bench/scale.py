"""The cache at scale: ``python -m bench.scale`` (a few minutes) or ``python -m bench.scale --quick``.

The real webhook process starts in cluster mode against the loopback API server (``tests/support/apiserver.py``,
served from this process on core 1; the webhook is pinned to core 0) holding N namespaces (four labels, one
annotation, managedFields, as ``kubectl create`` leaves them) and M DynaKubes, plus any of the ``POPULATIONS``
asked for with ``--objects kind=count``. Per scenario it reports time to ready, peak RSS during start-up (the
kernel's high-water mark, VmHWM), RSS after sync, and the answer for the last namespace; per cached kind the
bytes one object costs in the cache (tracemalloc of the transformed objects, in this process). With
``--reference REV`` (default ``main``) the same scenarios run on that revision's code in the same run, and the
M-inject admission figure of ``bench`` is measured on both, alternating, against the largest-but-one scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import load, reviews
from bench.proc import Server
from bench.run import check_load, machine
from tests.support.apiserver import ApiServer
from tests.support.fakeapi import FakeApi
from webhook.state.kinds import DYNAKUBES, NAMESPACES
from webhook.state.store import Store

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024.0
HOST = "127.0.0.1"
DK_PATH = f"/apis/dynatrace.com/v1beta2/namespaces/{reviews.NAMESPACE}/dynakubes"


def _managed(labels: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-11-30T09:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, **{f"f:{k}": {} for k in labels}}}},
        }
    ]


def namespace(i: int, dynakubes: int) -> dict[str, Any]:
    obj = reviews.namespace(i, max(dynakubes, 1))
    meta = obj["metadata"]
    meta["creationTimestamp"] = "2026-11-30T09:00:00Z"
    meta["annotations"] = {"metadata.dynatrace.com/cost-center": f"cc-{i % 200:03d}"}
    meta["managedFields"] = _managed(list(meta["labels"]))
    obj["spec"] = {"finalizers": ["kubernetes"]}
    obj["status"] = {"phase": "Active"}
    return obj


def dynakube(i: int, _: int) -> dict[str, Any]:
    obj = reviews.dynakube(i, ready=i % 2 == 0)
    obj["metadata"]["uid"] = str(uuid.UUID(int=10**6 + i))
    obj["metadata"]["managedFields"] = _managed(["app"])
    return obj


def replicaset(i: int, namespaces: int) -> dict[str, Any]:
    ns = f"shop-{i % max(namespaces, 1):04d}"
    name = f"checkout-{i:06d}-785cb95b9f"
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": str(uuid.UUID(int=2 * 10**6 + i)),
            "labels": {"app": "checkout", "pod-template-hash": "785cb95b9f"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": f"checkout-{i:06d}",
                    "controller": True,
                }
            ],
            "managedFields": _managed(["app", "pod-template-hash"]),
        },
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "c", "image": "registry/c:1"}]}},
        },
    }


def job(i: int, namespaces: int) -> dict[str, Any]:
    obj = replicaset(i, namespaces)
    obj.update(apiVersion="batch/v1", kind="Job")
    obj["metadata"]["name"] = f"report-{i:06d}"
    obj["metadata"]["ownerReferences"][0].update(
        apiVersion="batch/v1", kind="CronJob", name=f"report-{i:06d}"
    )
    return obj


def secret(i: int, _: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"dynakube-{i:03d}", "namespace": reviews.NAMESPACE},
        "data": {"apiToken": "ZHQwYzAxLmFiYzEyMzQ1" * 4, "dataIngestToken": "ZHQwYzAxLmRlZjY3ODkw" * 4},
    }


@dataclass(frozen=True)
class Population:
    """Objects of one kind in the fake cluster: the Store resource they feed, where they live, a factory
    ``make(index, namespaces)``. Kinds the webhook does not cache yet are served but cost it nothing."""

    resource: str
    path: str
    make: Callable[[int, int], dict[str, Any]]


POPULATIONS = {
    NAMESPACES: Population(NAMESPACES, "/api/v1/namespaces", namespace),
    DYNAKUBES: Population(DYNAKUBES, DK_PATH, dynakube),
    "replicasets": Population("replicasets", "/apis/apps/v1/replicasets", replicaset),
    "jobs": Population("jobs", "/apis/batch/v1/jobs", job),
    "secrets": Population("secrets", f"/api/v1/namespaces/{reviews.NAMESPACE}/secrets", secret),
}


@dataclass(frozen=True)
class Scenario:
    counts: dict[str, int]

    @property
    def name(self) -> str:
        return ", ".join(f"{n} {r}" for r, n in self.counts.items() if n)

    def make(self, resource: str, i: int) -> dict[str, Any]:
        population = POPULATIONS[resource]
        if resource == NAMESPACES:
            return population.make(i, self.counts.get(DYNAKUBES, 0))
        return population.make(i, self.counts.get(NAMESPACES, 0))


def fake_cluster(scenario: Scenario) -> FakeApi:
    api = FakeApi()
    for resource, count in scenario.counts.items():
        population = POPULATIONS[resource]
        api.bulk_seed(population.path, [scenario.make(resource, i) for i in range(count)])
    return api


def per_object_bytes(scenario: Scenario, sample: int = 5000) -> dict[str, float]:
    """Bytes one cached object costs, per kind the Store caches: tracemalloc of ``sample`` objects parsed from
    JSON and transformed one at a time (only what the cache keeps survives), the Store's map included."""
    out = {}
    store = Store(reviews.NAMESPACE)
    for resource in store.resources:
        count = min(sample, scenario.counts.get(resource, 0)) or sample
        raw = [orjson.dumps(scenario.make(resource, i)) for i in range(count)]
        gc.collect()
        tracemalloc.start()
        kept = {}
        for data in raw:
            key, value = store.transform(resource, orjson.loads(data))
            kept[key] = value
        gc.collect()
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        out[resource] = round(size / count, 1)
        del kept, raw
    return out


def git_tree(rev: str, into: Path) -> Path:
    """The files of ``rev`` (``git archive``, no checkout or worktree) under ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


async def _one(port: int, body: bytes) -> dict[str, Any]:
    conn = await load.Connection.open(HOST, port, load.client_context())
    try:
        status, data = await conn.send(load.Connection.request_bytes(HOST, "/inject", body))
    finally:
        conn.close()
    response = json.loads(data).get("response") or {} if status == 200 else {}
    ops = json.loads(base64.b64decode(response["patch"])) if response.get("patch") else []
    injected = any(op["path"].startswith("/spec/initContainers") for op in ops)
    return {"status": status, "outcome": "injected" if injected else "skipped" if ops else "unchanged"}


def last_namespace_answer(server: Server, scenario: Scenario) -> dict[str, Any]:
    """An M pod in the last namespace: injected when its DynaKube (every other one) has connection info,
    else skipped with the EmptyConnectionInfo annotations."""
    last = scenario.counts.get(NAMESPACES, 0) - 1
    name = f"shop-{last:04d}"
    body = json.dumps(reviews.review(reviews.pod("M", name), name)).encode()
    answer = asyncio.run(_one(server.port, body))
    dynakubes = scenario.counts.get(DYNAKUBES, 0)
    answer["namespace"] = name
    answer["expected"] = (
        "unchanged" if not dynakubes else "injected" if last % dynakubes % 2 == 0 else "skipped"
    )
    return answer


def start(
    work: Path, apiserver: ApiServer, source: Path | None, label: str, **kw: Any
) -> tuple[Server, dict[str, Any]]:
    kubeconfig = apiserver.kubeconfig(work / "kubeconfig")
    server = Server(None, work, kubeconfig=kubeconfig, source_root=source, log_level="warning", **kw)
    began = time.monotonic()
    server.start(timeout=120)
    ready_at = began + server.startup_seconds
    at_ready = server.memory()
    first_request = min((t for t, _, _ in list(apiserver.times) if t >= began), default=ready_at)
    time.sleep(2.0)  # gc.freeze, watches settled
    settled = server.memory()
    return server, {
        "code": label,
        "ready_s": round(server.startup_seconds, 3),
        # from the first request to the API server (discovery, then the lists) to ready: what the cache costs
        "sync_s": round(ready_at - first_request, 3),
        "peak_rss_mib": round(max(at_ready["VmHWM"], settled["VmHWM"]) / MIB, 1),
        "rss_at_ready_mib": round(at_ready["VmRSS"] / MIB, 1),
        "rss_after_sync_mib": round(settled["VmRSS"] / MIB, 1),
    }


def m_inject(server: Server, seconds: float) -> dict[str, Any]:
    body = reviews.body("M", "inject")
    asyncio.run(load.closed_loop(HOST, server.port, "/inject", [body], 4, min(1.0, seconds)))  # warm-up
    cpu0 = server.cpu()
    closed = asyncio.run(load.closed_loop(HOST, server.port, "/inject", [body], 4, seconds))
    cpu = server.cpu() - cpu0
    seq = asyncio.run(load.sequential(HOST, server.port, "/inject", body, 500))
    return {
        "rps": closed["rps"],
        "errors": closed["errors"],
        "cpu_us_per_request": round(cpu / closed["requests"] * 1e6, 1) if closed["requests"] else None,
        "sequential_median_ms": seq["median_ms"],
        "sequential_p99_ms": seq["p99_ms"],
    }


def overload(
    work: Path, apiserver: ApiServer, source: Path | None, label: str, seconds: float
) -> dict[str, Any]:
    """3x the measured M-mix capacity, open loop, with ``--limit-concurrency 64`` (the chart's advice for
    large clusters): the memory a full cache plus an overload needs."""
    bodies = [reviews.body("M", s) for s in ("inject", "skip", "reinvoke")]
    server, figures = start(work, apiserver, source, label, limit_concurrency=64)
    try:
        capacity = asyncio.run(load.closed_loop(HOST, server.port, "/inject", bodies, 4, 2.0))["rps"]
        rate = max(50.0, 3 * capacity)
        result = asyncio.run(
            load.open_loop(
                HOST, server.port, "/inject", bodies, rate, seconds, max_connections=192, drain=5.0
            )
        ).report()
        figures.update(
            capacity_rps=capacity,
            offered_rps=round(rate, 1),
            statuses=result.get("statuses"),
            overload_peak_rss_mib=round(server.memory()["VmHWM"] / MIB, 1),
        )
    finally:
        server.stop()
    return figures


def run(args: argparse.Namespace) -> dict[str, Any]:
    notes: list[str] = []
    result: dict[str, Any] = {"machine": machine(), "notes": notes, "scenarios": []}
    result["machine"]["load_before"] = check_load(notes)
    extra = dict(item.split("=", 1) for item in args.objects)
    scenarios = [
        Scenario({NAMESPACES: n, DYNAKUBES: d, **{k: int(v) for k, v in extra.items()}})
        for n, d in zip(args.namespaces, args.dynakubes, strict=True)
    ]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        reference = git_tree(args.reference, work / "reference") if args.reference else None
        codes: list[tuple[str, Path | None]] = [("this", None)]
        if reference is not None:
            codes.append((args.reference, reference))
        for index, scenario in enumerate(scenarios):
            print(f"  {scenario.name} ...", file=sys.stderr, flush=True)
            api = fake_cluster(scenario)
            apiserver = ApiServer(api)
            entry: dict[str, Any] = {"counts": scenario.counts, "runs": [], "per_object_bytes": {}}
            try:
                # the codes alternate (A B B A ...), so a change in the machine's load hits both alike
                for repeat in range(args.repeat):
                    for label, source in codes if repeat % 2 == 0 else codes[::-1]:
                        server, figures = start(work, apiserver, source, label)
                        try:
                            if scenario.counts.get(NAMESPACES):
                                figures["last_namespace"] = last_namespace_answer(server, scenario)
                            if index == args.admission_scenario and args.admission_seconds:
                                figures["m_inject"] = [m_inject(server, args.admission_seconds)]
                        finally:
                            server.stop()
                        entry["runs"].append(figures)
                if index == len(scenarios) - 1 and args.overload_seconds:
                    entry["overload"] = overload(work, apiserver, None, "this", args.overload_seconds)
            finally:
                apiserver.close()
            del api
            gc.collect()
            entry["per_object_bytes"] = per_object_bytes(scenario)
            result["scenarios"].append(entry)
            print(f"    {json.dumps(entry)}", file=sys.stderr, flush=True)
    result["machine"]["load_after"] = check_load(notes)
    return result


def admission_ratios(result: dict[str, Any]) -> dict[str, str]:
    """Median M-inject throughput and CPU per request of this code over each reference, from the same run."""
    by_code: dict[str, list[dict[str, Any]]] = {}
    for entry in result["scenarios"]:
        for run in entry["runs"]:
            by_code.setdefault(run["code"], []).extend(run.get("m_inject", []))
    this = by_code.pop("this", [])
    out = {}
    for label, runs in by_code.items():
        if this and runs:
            parts = []
            for how, rps_of, cpu_of in (
                ("medians", statistics.median, statistics.median),
                ("least disturbed run (best throughput, lowest CPU)", max, min),
            ):
                rps = rps_of(m["rps"] for m in this) / rps_of(m["rps"] for m in runs)
                cpu = cpu_of(m["cpu_us_per_request"] for m in this) / cpu_of(
                    m["cpu_us_per_request"] for m in runs
                )
                parts.append(f"{how}: throughput x{rps:.3f}, CPU per request x{cpu:.3f}")
            out[label] = "; ".join(parts)
    return out


def rss_per_namespace(result: dict[str, Any]) -> list[str]:
    """Per scenario and code: (median RSS after sync - the same code's median with an empty cluster) / namespaces."""
    empty: dict[str, list[float]] = {}
    for entry in result["scenarios"]:
        if not entry["counts"].get(NAMESPACES):
            for run in entry["runs"]:
                empty.setdefault(run["code"], []).append(run["rss_after_sync_mib"])
    out = []
    for entry in result["scenarios"]:
        count = entry["counts"].get(NAMESPACES, 0)
        cells = []
        for code in dict.fromkeys(r["code"] for r in entry["runs"]):
            rss = [r["rss_after_sync_mib"] for r in entry["runs"] if r["code"] == code]
            if count and empty.get(code):
                per = (statistics.median(rss) - statistics.median(empty[code])) * 1024 * 1024 / count
                cells.append(f"{code} {per:.0f} B")
        out.append(", ".join(cells) or "-")
    return out


def table(result: dict[str, Any]) -> str:
    """The figures as Markdown: one row per start, then the per-object costs and the M-inject comparison."""
    lines = [
        "| scenario | code | ready s | cache sync s | peak RSS MiB | RSS after sync MiB | last namespace |",
        "|---|---|---|---|---|---|---|",
    ]
    costs, admission, overloads = [], [], []
    for entry in result["scenarios"]:
        name = Scenario(entry["counts"]).name or "empty cluster"
        for run in entry["runs"]:
            last = run.get("last_namespace")
            answer = f"{last['outcome']} (expected {last['expected']})" if last else "-"
            lines.append(
                f"| {name} | {run['code']} | {run['ready_s']} | {run['sync_s']} | {run['peak_rss_mib']} "
                f"| {run['rss_after_sync_mib']} | {answer} |"
            )
            for m in run.get("m_inject", []):
                admission.append(
                    f"| {name} | {run['code']} | {m['rps']} | {m['cpu_us_per_request']} "
                    f"| {m['sequential_median_ms']} | {m['sequential_p99_ms']} |"
                )
        costs.append(
            f"| {name} | " + ", ".join(f"{k} {v:.0f} B" for k, v in entry["per_object_bytes"].items()) + " |"
        )
        if "overload" in entry:
            o = entry["overload"]
            overloads.append(
                f"| {name} | {o['capacity_rps']} | {o['offered_rps']} | {o['statuses']} | {o['overload_peak_rss_mib']} |"
            )
    lines += [
        "",
        "| scenario | bytes per cached object (tracemalloc) | RSS per namespace over the empty cluster |",
    ]
    lines += [
        "|---|---|---|",
        *[f"{row} {rss} |" for row, rss in zip(costs, rss_per_namespace(result), strict=True)],
    ]
    if admission:
        lines += [
            "",
            "| scenario | code | M-inject req/s | CPU µs/req | sequential median ms | p99 ms |",
            "|---|---|---|---|---|---|",
            *admission,
        ]
        for label, ratio in admission_ratios(result).items():
            lines.append(f"\nM-inject, this code against {label}, alternating runs: {ratio}")
    if overloads:
        lines += [
            "",
            "| scenario | M-mix capacity req/s | offered (3x) | statuses | peak RSS MiB |",
            "|---|---|---|---|---|",
            *overloads,
        ]
    lines += [
        "",
        f"load average before {result['machine']['load_before']}, after {result['machine']['load_after']}",
    ]
    lines += [f"Note: {n}" for n in result["notes"]]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--namespaces", type=int, nargs="+", default=[0, 20000, 50000])
    p.add_argument("--dynakubes", type=int, nargs="+", default=[0, 50, 100])
    p.add_argument(
        "--objects",
        nargs="*",
        default=[],
        metavar="KIND=COUNT",
        help=f"more objects in every scenario, kinds: {', '.join(k for k in POPULATIONS if k not in (NAMESPACES, DYNAKUBES))}",
    )
    p.add_argument("--reference", default="main", help="also run this git revision's code ('' for none)")
    p.add_argument("--repeat", type=int, default=1, help="starts per scenario and code")
    p.add_argument("--admission-scenario", type=int, default=1, help="index of the scenario for M-inject")
    p.add_argument("--admission-seconds", type=float, default=5.0)
    p.add_argument("--overload-seconds", type=float, default=8.0, help="3x overload on the last scenario")
    p.add_argument("--quick", action="store_true", help="2 000 namespaces, no reference, 1 s of M-inject")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if args.quick:
        args.namespaces, args.dynakubes, args.reference, args.admission_seconds = [2000], [20], "", 1.0
        args.admission_scenario, args.overload_seconds = 0, 1.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    result = run(args)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
