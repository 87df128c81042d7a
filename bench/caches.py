"""Memory and start-up of the owner and init-Secret caches at scale.

    .venv/bin/python -m bench.caches            # 50 000 ReplicaSets, 5 000 Jobs, 5 000 namespaces
    .venv/bin/python -m bench.caches --json out.json

The lists are written, page by page as the API server's JSON, to a file first; the measurement then runs in
a fresh interpreter (RSS is per process, and that one never held the test data): the Store is filled with
what the webhook holds today (100 DynaKubes, 5 000 namespaces); its RSS is the baseline. Then the new caches
are fed exactly as in a cluster: ``SliceReflector`` lists in pages of 500, each page read from the file and
parsed with orjson like ``KubeApi`` does: ReplicaSets and Jobs metadata-only
(``PartialObjectMetadata`` with labels, annotations, ownerReferences and managedFields), both init Secrets
in every namespace in full (data included, as a field-selected list returns them). Figures: RSS growth (after
a garbage collection) and the peak growth while listing, and the time from the start of the lists to ``Store.synced`` (what
``/readyz`` waits for: DynaKubes, namespaces, init Secrets) and to the owner caches being complete (which
readiness does not wait for: a pod whose ReplicaSet is not cached yet is resolved from its
``pod-template-hash`` label).
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import orjson

from webhook.state import owners
from webhook.state import secrets as secret_cache
from webhook.state.slices import PAGE_SIZE, SliceReflector
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

LIMIT_MIB = 30.0
READY_LIMIT_S = 1.0


def rss_kib() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux: ``5`` to ``/proc/self/clear_refs``), so the peak is the lists'."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def managed_fields(manager: str) -> list[dict[str, Any]]:
    return [
        {
            "manager": manager,
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": "2026-11-30T09:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}}}},
        }
    ]


def replicaset(i: int, namespaces: int) -> dict[str, Any]:
    app = f"service-{i:05d}"
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": {
            "name": f"{app}-{i * 7919 % 10**10:010d}",
            "namespace": f"team-{i % namespaces:04d}",
            "uid": f"6f1c{i:08d}-1b2c-4d5e-8f90-a1b2c3d4e5f6",
            "resourceVersion": str(1_000_000 + i),
            "generation": 3,
            "creationTimestamp": "2026-11-30T09:00:00Z",
            "labels": {"app": app, "pod-template-hash": f"{i * 7919 % 10**10:010d}"},
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": "2",
                "deployment.kubernetes.io/max-replicas": "3",
                "deployment.kubernetes.io/revision": "4",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": app,
                    "uid": f"0a1b{i:08d}-1b2c-4d5e-8f90-a1b2c3d4e5f6",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": managed_fields("kube-controller-manager"),
        },
    }


def job(i: int, namespaces: int) -> dict[str, Any]:
    cron = f"nightly-{i:04d}"
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": {
            "name": f"{cron}-{29_000_000 + i}",
            "namespace": f"team-{i % namespaces:04d}",
            "uid": f"7a2d{i:08d}-1b2c-4d5e-8f90-a1b2c3d4e5f6",
            "resourceVersion": str(2_000_000 + i),
            "creationTimestamp": "2026-11-30T09:00:00Z",
            "labels": {"batch.kubernetes.io/job-name": f"{cron}-{29_000_000 + i}"},
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "CronJob", "name": cron, "uid": "u", "controller": True}
            ],
            "managedFields": managed_fields("kube-controller-manager"),
        },
    }


CONFIG = base64.b64encode(
    json.dumps(
        {
            "monitoringNodes": {f"node-{n}": "abc12345" for n in range(20)},
            "apiUrl": "https://abc12345.live.dynatrace.com/api",
            "apiToken": "dt0c01." + "A" * 88,
            "paasToken": "dt0c01." + "B" * 88,
            "proxy": "",
            "tenantUUID": "abc12345",
        }
    ).encode()
).decode()


def init_secret(name: str, namespace: str, i: int) -> dict[str, Any]:
    data = {"config": CONFIG, "proxy": "", "agcerts": "", "trustedcas": ""}
    if name != "dynatrace-dynakube-config":
        data = {
            "endpoint.properties": base64.b64encode(b"DT_METRICS_INGEST_URL=https://x/api\n" * 2).decode()
        }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"9c3e{i:08d}-1b2c-4d5e-8f90-a1b2c3d4e5f6",
            "resourceVersion": str(3_000_000 + i),
            "labels": {
                "app.kubernetes.io/name": "dynatrace-operator",
                "app.kubernetes.io/created-by": f"dk-{i % 100:03d}",
                "app.kubernetes.io/component": "webhook",
                "app.kubernetes.io/managed-by": "dynatrace-webhook",
            },
            "annotations": {"internal.operator.dynatrace.com/template-hash": str(1234567890 + i)},
            "managedFields": managed_fields("dynatrace-webhook"),
        },
        "data": data,
    }


class PagedFile:
    """``reflector.Client`` over pages of the API server's JSON kept in a file (so the measured process never held
    the test data): each ``list_page`` reads one page and parses it with orjson, as ``KubeApi`` does."""

    def __init__(self, path: str, index: dict[str, list[tuple[int, int]]]) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.index = index

    def close(self) -> None:
        self.file.close()

    def list_page(
        self,
        path: str,
        *,
        limit: int = 0,
        continue_token: str = "",
        label_selector: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
        resource_version: str = "",
    ) -> tuple[list[dict[str, Any]], str, str]:
        pages = self.index[f"{path}?{field_selector}"]
        number = int(continue_token or 0)
        offset, size = pages[number]
        self.file.seek(offset)
        document = orjson.loads(self.file.read(size))
        token = str(number + 1) if number + 1 < len(pages) else ""
        return document["items"], document["metadata"]["resourceVersion"], token

    def watch(self, *args: Any, **kw: Any) -> Iterator[dict[str, Any]]:
        return iter(())


def pages(items: list[dict[str, Any]]) -> list[bytes]:
    out = []
    for start in range(0, max(len(items), 1), PAGE_SIZE):
        chunk = items[start : start + PAGE_SIZE]
        out.append(orjson.dumps({"kind": "List", "metadata": {"resourceVersion": "5000000"}, "items": chunk}))
    return out


def write_pages(path: str, replicasets: int, jobs: int, namespaces: int) -> dict[str, list[tuple[int, int]]]:
    """The lists as the API server would send them, page by page, into ``path``; returns the page index."""
    names = [f"team-{i:04d}" for i in range(namespaces)]

    def lists() -> Iterator[tuple[str, list[dict[str, Any]]]]:
        yield "/apis/apps/v1/replicasets?", [replicaset(i, namespaces) for i in range(replicasets)]
        yield "/apis/batch/v1/jobs?", [job(i, namespaces) for i in range(jobs)]
        yield "/api/v1/replicationcontrollers?", []
        for secret in secret_cache.INIT_RESOURCES.values():
            yield (
                f"/api/v1/secrets?metadata.name={secret}",
                [init_secret(secret, ns, i) for i, ns in enumerate(names)],
            )

    index: dict[str, list[tuple[int, int]]] = {}
    with open(path, "wb") as f:
        for key, items in lists():
            for page in pages(items):
                index.setdefault(key, []).append((f.tell(), len(page)))
                f.write(page)
    return index


def measure(pages_file: str, index: dict[str, list[tuple[int, int]]], namespaces: int) -> dict[str, Any]:
    """One run in this process (a fresh interpreter: RSS is per process)."""
    from bench.reviews import state_documents  # the state the main bench runs with

    store = Store("dynatrace")
    documents = state_documents(dynakubes=100, namespaces=namespaces)
    store.replace(DYNAKUBES, [d for d in documents if d["kind"] == "DynaKube"])
    store.replace(NAMESPACES, [d for d in documents if d["kind"] == "Namespace"])
    del documents
    gc.collect()
    client = PagedFile(pages_file, index)
    reset_peak()
    before = rss_kib()
    store.init_secret_cache.track()
    start, cpu = time.perf_counter(), time.process_time()
    for resource, secret in secret_cache.INIT_RESOURCES.items():
        reflector = SliceReflector(
            client, store, resource, "/api/v1/secrets", field_selector=f"metadata.name={secret}"
        )
        reflector.run(max_cycles=1)
    ready, ready_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert store.synced
    for resource, (_, path) in owners.RESOURCES.items():
        SliceReflector(client, store, resource, path, metadata_only=True).run(max_cycles=1)
    complete, complete_cpu = time.perf_counter() - start, time.process_time() - cpu
    gc.collect()
    after = rss_kib()
    client.close()
    return {
        "replicasets": store.owners.count(owners.REPLICASETS),
        "jobs": store.owners.count(owners.JOBS),
        "namespaces": namespaces,
        "init_secrets": store.init_secret_cache.count(),
        "rss_before_mib": round(before["VmRSS"] / 1024, 1),
        "rss_after_mib": round(after["VmRSS"] / 1024, 1),
        "rss_growth_mib": round((after["VmRSS"] - before["VmRSS"]) / 1024, 1),
        "peak_growth_mib": round((after["VmHWM"] - before["VmRSS"]) / 1024, 1),
        "init_secrets_listed_s": round(ready, 3),
        "owners_listed_s": round(complete - ready, 3),
        "init_secrets_listed_cpu_s": round(ready_cpu, 3),
        "owners_listed_cpu_s": round(complete_cpu - ready_cpu, 3),
        "load_average": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicasets", type=int, default=50_000)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--namespaces", type=int, default=5_000)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        with open(args.child) as f:
            job_spec = json.load(f)
        print(json.dumps(measure(job_spec["pages"], job_spec["index"], args.namespaces)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        pages_file = os.path.join(tmp, "pages.bin")
        index = write_pages(pages_file, args.replicasets, args.jobs, args.namespaces)
        spec = os.path.join(tmp, "spec.json")
        with open(spec, "w") as f:
            json.dump({"pages": pages_file, "index": index}, f)
        command = [
            sys.executable,
            "-m",
            "bench.caches",
            "--child",
            spec,
            "--namespaces",
            str(args.namespaces),
        ]
        figures = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    figures["limits"] = {"rss_growth_mib": LIMIT_MIB, "init_secrets_listed_s": READY_LIMIT_S}
    ok = figures["rss_growth_mib"] <= LIMIT_MIB and figures["init_secrets_listed_cpu_s"] <= READY_LIMIT_S
    print(
        f"caches: {figures['replicasets']} ReplicaSets, {figures['jobs']} Jobs, {figures['init_secrets']} init "
        f"Secrets in {figures['namespaces']} namespaces\n"
        f"  RSS {figures['rss_before_mib']} -> {figures['rss_after_mib']} MiB: +{figures['rss_growth_mib']} MiB "
        f"(limit +{LIMIT_MIB:g}), at most +{figures['peak_growth_mib']} MiB while listing\n"
        f"  init Secrets listed (readiness waits for them): {figures['init_secrets_listed_s'] * 1000:.0f} ms "
        f"({figures['init_secrets_listed_cpu_s'] * 1000:.0f} ms CPU)\n"
        f"  owners listed (readiness does not wait): {figures['owners_listed_s'] * 1000:.0f} ms "
        f"({figures['owners_listed_cpu_s'] * 1000:.0f} ms CPU)\n"
        f"  load average {figures['load_average']:.1f} on {figures['cpus']} CPUs"
        f"{' (busy machine: wall times are inflated, CPU times are not)' if figures['load_average'] > 1 else ''}\n"
        f"  {'within' if ok else 'OVER'} the limits"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
