"""Cost of one full reinjection scan: ``python -m bench.scan [--pods 20000] [--namespaces 20]``.

The loopback API server (``tests/support/apiserver.py`` over ``tests/support/fakeapi.py``) runs in a child process, seeded
with ``--pods`` pods over ``--namespaces`` mapped namespaces (Deployments of 50 pods; most injected, some
admitted without OneAgent with ``EmptyConnectionInfo``, some never seen by the webhook; each with labels,
annotations, an owner reference and a managedFields entry, as the API server sends them). This process runs
the reinjection controller as in the webhook (``KubeApi`` over HTTP, metadata-only pages of ``--page-size``,
the Lease, the reconcile loop) for one full scan, pinned to one core, and prints:

- the scan's wall time and this process's CPU time for it;
- RSS before the scan, the peak during it (``VmHWM`` after resetting it) and the difference;
- pages read, workloads found, pods never seen, restarts made (the token bucket allows a burst of 10).

Targets (issue 14): at 20 000 pods, at most 20 MiB added and under 30 s on one core.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.proc import free_port, memory_kib

DK = "bench"
WEBHOOK_NS = "dynatrace"
PER_DEPLOYMENT = 50


def _pod(ns: str, deployment: str, i: int, kind: str) -> dict[str, Any]:
    annotations = {"kubectl.kubernetes.io/default-container": "app"}
    if kind == "injected":
        annotations.update(
            {"oneagent.dynatrace.com/injected": "true", "dynakube.dynatrace.com/injected": "true"}
        )
    elif kind == "skipped":
        annotations.update(
            {
                "oneagent.dynatrace.com/injected": "false",
                "oneagent.dynatrace.com/reason": "EmptyConnectionInfo",
            }
        )
    rs = f"{deployment}-7c9d8f6b5"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{rs}-{i:05d}",
            "namespace": ns,
            "uid": f"00000000-0000-4000-8000-{i:012d}",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": deployment, "pod-template-hash": "7c9d8f6b5", "team": "shop"},
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": rs,
                    "uid": f"rs-{deployment}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}, "f:team": {}},
                            "f:ownerReferences": {".": {}, f'k:{{"uid":"rs-{deployment}"}}': {}},
                        },
                        "f:spec": {"f:containers": {'k:{"name":"app"}': {".": {}, "f:image": {}}}},
                    },
                }
            ],
        },
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/shop/app:1.0"}]},
        "status": {"phase": "Running"},
    }


def serve(pods: int, namespaces: int, port: int) -> None:
    """The child: seed the fake API and serve it on ``port`` until stdin closes."""
    sys.path.insert(0, os.getcwd())
    from tests.support.apiserver import ApiServer
    from tests.support.fakeapi import FakeApi

    api = FakeApi()
    per_ns = pods // namespaces
    for n in range(namespaces):
        ns = f"shop-{n:02d}"
        api.seed(
            "/api/v1/namespaces",
            {
                "metadata": {
                    "name": ns,
                    "creationTimestamp": "2025-12-01T00:00:00Z",
                    "labels": {"dynakube.internal.dynatrace.com/instance": DK},
                }
            },
        )
        for i in range(per_ns):
            deployment = f"app-{i // PER_DEPLOYMENT:03d}"
            if i % PER_DEPLOYMENT == 0:
                api.seed(
                    f"/apis/apps/v1/namespaces/{ns}/deployments",
                    {"metadata": {"name": deployment, "namespace": ns, "uid": f"d-{deployment}"}, "spec": {}},
                )
                api.seed(
                    f"/apis/apps/v1/namespaces/{ns}/replicasets",
                    {
                        "metadata": {
                            "name": f"{deployment}-7c9d8f6b5",
                            "namespace": ns,
                            "ownerReferences": [
                                {
                                    "apiVersion": "apps/v1",
                                    "kind": "Deployment",
                                    "name": deployment,
                                    "uid": f"d-{deployment}",
                                    "controller": True,
                                }
                            ],
                        }
                    },
                )
            # 1 Deployment in 20 skipped (connection info), 1 in 40 never seen by the webhook
            block = i // PER_DEPLOYMENT
            kind = "skipped" if block % 20 == 1 else "missed" if block % 40 == 3 else "injected"
            api.seed(f"/api/v1/namespaces/{ns}/pods", _pod(ns, deployment, i, kind))
    api.changes.clear()  # the change log is for watches; a full copy of every object is not needed here
    server = ApiServer(api, port=port)
    print("ready", flush=True)
    sys.stdin.read()
    server.close()


def measure(pods: int, namespaces: int, page_size: int, port: int) -> dict[str, Any]:
    from kubernetes import client

    from webhook.controllers.reinject.controller import Reinjector
    from webhook.controllers.reinject.verdict import Config
    from webhook.kube.api import list_items
    from webhook.kube.client import KubeApi, api_client
    from webhook.state.store import DYNAKUBES, NAMESPACES, Store

    config = client.Configuration()
    config.host = f"http://127.0.0.1:{port}"
    api = KubeApi(api_client(config), request_timeout=60)
    store = Store(WEBHOOK_NS)
    store.replace(NAMESPACES, list_items(api, "/api/v1/namespaces"))
    dynakube = {
        "apiVersion": "dynatrace.com/v1beta2",
        "kind": "DynaKube",
        "metadata": {
            "name": DK,
            "namespace": WEBHOOK_NS,
            "annotations": {"feature.dynatrace.com/automatic-reinjection": "true"},
        },
        "spec": {"oneAgent": {"cloudNativeFullStack": {}}},
        "status": {
            "oneAgent": {
                "connectionInfoStatus": {
                    "tenantUUID": "abc12345",
                    "communicationHosts": [{"protocol": "https", "host": "10.0.0.1", "port": 443}],
                }
            },
            "codeModules": {"version": "1.299.50.20240930-123456"},
        },
    }
    store.replace(DYNAKUBES, [dynakube])
    reinjector = Reinjector(api, store, Config(enabled=True, page_size=page_size), identity="bench")
    api.get("/api/v1/namespaces/shop-00")  # warm the connection pool and the client
    gc.collect()
    before = memory_kib(os.getpid())["VmRSS"]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    cpu0, wall0 = time.process_time(), time.perf_counter()
    reinjector.tick()  # resync -> every namespace scan -> the restarts the bucket allows
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    peak = memory_kib(os.getpid())["VmHWM"]
    figures = {
        "pods": pods,
        "namespaces": namespaces,
        "page_size": page_size,
        "scans": reinjector.scans,
        "workloads_found": len({(p["namespace"], p["owner"]) for p in reinjector.pending()})
        + reinjector.restarted,
        "pods_needing_restart": reinjector.pending_count(),
        "missed_pods": sum(reinjector.missed().values()),
        "restarted": reinjector.restarted,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "rss_before_mib": round(before / 1024, 1),
        "rss_peak_mib": round(peak / 1024, 1),
        "rss_added_mib": round((peak - before) / 1024, 1),
    }
    reinjector.stop()  # forgets what it found (a stopped reinjector is no longer the one that reports)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=20000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)  # child mode: the port
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.pods, args.namespaces, args.serve)
        return 0
    port = free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.scan",
            "--serve",
            str(port),
            "--pods",
            str(args.pods),
            "--namespaces",
            str(args.namespaces),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready", (
            "the API server did not start"
        )
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[0]})  # the controller on one core
        if len(cpus) > 1:
            os.sched_setaffinity(child.pid, set(cpus[1:]))
        figures = measure(args.pods, args.namespaces, args.page_size, port)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=30)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:22} {value}")
        ok = figures["rss_added_mib"] <= 20 and figures["wall_seconds"] < 30
        print(f"targets (<= 20 MiB added, < 30 s): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
