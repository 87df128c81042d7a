"""Pod CREATE through a real kube-apiserver: ``python -m bench.create`` (or ``--quick``, under 90 s).

A private control plane (``../shared/k8s/up.sh`` in ``/tmp/k8s-bench``, API server on 18443, no controller
manager) holds a DynaKube with complete connection info and its tokens Secret, and four namespaces mapped to
it (instance label, init Secrets written by the webhook). Each namespace has one mutating webhook, or none:

- ``none``: no webhook; the API server's own cost of a pod CREATE;
- ``floor``: the webhook's process and listeners (``bench.baseline``) answering the JSONPatch the webhook
  produces for that pod from a fixed string, only the request's uid spliced in;
- ``ours``: the webhook itself (``python -m webhook``, cluster mode, reading this control plane);
- ``upstream``: upstream's answer (ours without the init container's service-account token mount, so that the
  API server calls it a second time, as it calls upstream's webhook) from a fixed string, after the API
  requests upstream's webhook makes per pod (three GETs, an Event; ``bench.upstream``): upstream's requests
  and calls, not its Go runtime.

One client creates pods one after the other on one keep-alive connection (a real CREATE, stored in etcd, then
deleted: untimed), in rounds that visit the four namespaces in a rotating order, so that the machine's load
drifts over all of them alike. Percentiles are nearest-rank over every timed create of a namespace.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import orjson
import yaml

from bench import reviews
from bench.baseline import answer_template
from bench.load import percentile
from bench.proc import Server
from bench.rows import Row
from bench.run import arguments
from bench.upstream import DYNAKUBE_VERSION, INIT_SECRET, INSTANCE_LABEL, kube_tls
from tests.e2e.helpers import (
    CRD,
    INJECTED,
    MWC,
    NAMESPACES,
    POD_RULE,
    annotations_of,
    dry_run_create,
    exists,
    hook,
    namespace_body,
    wait,
)
from tests.e2e.tokens import dynakube_with_tokens
from webhook.kube.client import KubeApi, load_api_client
from webhook.mutation.podspec import TOKEN_MOUNT_PATH
from webhook.tls.certs import ensure_dev_certificates

ROOT = Path(__file__).resolve().parent.parent
K8S_DIR = ROOT.parent / "shared" / "k8s"
K8S_ENV = {
    "K8S_E2E_HOME": "/tmp/k8s-bench",
    "K8S_E2E_API_PORT": "18443",
    "K8S_E2E_ETCD_PORT": "26790",
    "K8S_E2E_ETCD_PEER_PORT": "26800",
    "K8S_E2E_KCM": "0",
}
KEYS = ("none", "floor", "ours", "upstream")
HOOKED = KEYS[1:]
WEBHOOK_LABEL = "bench.dynatrace.com/webhook"
MAPPED_LABEL = "bench.dynatrace.com/mapped"
DYNAKUBE_NAMESPACE = "dynatrace"
DYNAKUBE = "bench"
RUN = "bench"
UPSTREAM_NOTE = "upstream-style: upstream's API calls per pod (3 GETs, 1 Event) in Python, not its Go runtime"


@dataclass(frozen=True)
class Plan:
    creates: int  # timed creates per webhook
    batch: int  # creates per webhook in one round
    warmup: int  # untimed creates per webhook first

    @classmethod
    def make(cls, quick: bool) -> Plan:
        return cls(60, 10, 5) if quick else cls(400, 20, 20)

    @property
    def rounds(self) -> int:
        return -(-self.creates // self.batch)


def namespace_of(key: str) -> str:
    return f"bench-{key}"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def summary(seconds: list[float]) -> dict[str, float]:
    """p50 and p90 (nearest rank) in ms, and the count."""
    values = sorted(seconds)
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 3),
        "p90_ms": round(percentile(values, 90) * 1000, 3),
    }


def floor_share(stats: dict[str, dict[str, float]]) -> float:
    """What a webhook that does nothing costs, over what the upstream-style one costs (p50s, each over none):
    the lowest ``create_vs_upstream`` this stack can reach."""
    p50 = {key: stats[key]["p50_ms"] for key in KEYS}
    upstream = p50["upstream"] - p50["none"]
    return (p50["floor"] - p50["none"]) / upstream if upstream else float("nan")


def rows_of(stats: dict[str, dict[str, float]], load: str) -> list[Row]:
    """``create_overhead_ms`` (ours - floor) and ``create_vs_upstream`` ((ours - none) / (upstream - none))."""
    p50 = {key: stats[key]["p50_ms"] for key in KEYS}
    seen = ", ".join(f"{k} p50 {stats[k]['p50_ms']:.2f} p90 {stats[k]['p90_ms']:.2f}" for k in KEYS)
    note = f"load average {load}; {seen} ms; {stats['ours']['n']} creates each"
    floor_note = f"the floor alone (floor - none) / (upstream - none) = {floor_share(stats):.3f}"
    return [
        Row(
            key="create_overhead_ms",
            measure="pod CREATE p50 through kube-apiserver, ours - floor (ms)",
            value=p50["ours"],
            unit="ms",
            goal=0.3,
            better="lower",
            baseline_name="floor (same stack, fixed patch)",
            baseline_value=p50["floor"],
            figure_of="difference",
            note=note,
        ),
        Row(
            key="create_vs_upstream",
            measure="pod CREATE p50 over no webhook, ours / upstream-style",
            value=round(p50["ours"] - p50["none"], 3),
            unit="x",
            goal=0.20,
            better="lower",
            baseline_name="upstream-style - none",
            baseline_value=round(p50["upstream"] - p50["none"], 3),
            figure_of="ratio",
            note=f"{note}; {floor_note}; {UPSTREAM_NOTE}",
        ),
    ]


@contextmanager
def control_plane() -> Iterator[Path]:
    """The private control plane, up for the block (admin kubeconfig), stopped after it."""
    env = dict(os.environ, **K8S_ENV)
    env.pop("KUBECONFIG", None)
    # a fresh etcd every run: down.sh first (up.sh keeps a running control plane and its objects)
    subprocess.run(["bash", str(K8S_DIR / "down.sh")], env=env, check=False)
    try:
        out = subprocess.run(
            ["bash", str(K8S_DIR / "up.sh")], env=env, capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise RuntimeError(f"up.sh failed ({out.returncode}):\n{out.stderr[-2000:]}")
        yield Path(out.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["bash", str(K8S_DIR / "down.sh")], env=env, check=False)


class ApiClient:
    """One keep-alive HTTPS connection to the API server with the kubeconfig's client certificate."""

    def __init__(self, kubeconfig: Path) -> None:
        server, ctx = kube_tls(kubeconfig)
        url = httpx.URL(server)
        self.conn = http.client.HTTPSConnection(url.host, url.port or 443, context=ctx, timeout=30)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def timed_create(self, namespace: str, body: bytes) -> tuple[float, bytes]:
        start = time.perf_counter()
        status, data = self.call("POST", f"/api/v1/namespaces/{namespace}/pods", body)
        elapsed = time.perf_counter() - start
        if status != 201:
            raise RuntimeError(f"pod create in {namespace}: {status} {data[:500]!r}")
        return elapsed, data

    def cycle(self, namespace: str, body: bytes) -> tuple[float, dict[str, Any]]:
        """Create a pod (timed), then delete it (not timed); returns the seconds and the stored pod."""
        seconds, data = self.timed_create(namespace, body)
        created = orjson.loads(data)
        name = created["metadata"]["name"]
        status, data = self.call("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}")
        if status != 200:
            raise RuntimeError(f"pod delete {namespace}/{name}: {status} {data[:300]!r}")
        return seconds, created

    def close(self) -> None:
        self.conn.close()


def pod(namespace: str) -> dict[str, Any]:
    """The bench's M pod (two containers, 44 env vars) as a ReplicaSet sends it (``generateName``, no name)."""
    body = reviews.pod("M", namespace)
    for key in ("creationTimestamp", "managedFields"):
        body["metadata"].pop(key, None)
    body.pop("status", None)
    return body


# --- the cluster: CRD, DynaKube with its tokens, four mapped namespaces ---
def setup_cluster(kube: Any) -> None:
    kube.create(CRD, yaml.safe_load((ROOT / "tests" / "e2e" / "dynakube-crd.yaml").read_text()))
    wait(
        lambda: any(
            r["name"] == "dynakubes" for r in kube.get(f"/apis/dynatrace.com/{DYNAKUBE_VERSION}")["resources"]
        ),
        what="dynakubes served",
    )
    kube.create(NAMESPACES, namespace_body(DYNAKUBE_NAMESPACE, RUN))
    selector = {"matchLabels": {MAPPED_LABEL: "true"}}
    dynakube_with_tokens(kube, kube, DYNAKUBE_NAMESPACE, DYNAKUBE, RUN, selector=selector)
    for key in KEYS:
        name = namespace_of(key)
        labels = {INSTANCE_LABEL: DYNAKUBE, MAPPED_LABEL: "true", WEBHOOK_LABEL: key}
        kube.create(NAMESPACES, namespace_body(name, RUN, **labels))
        # no controller manager: the ServiceAccount admission plugin needs the default ServiceAccount
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        kube.create(f"{NAMESPACES}/{name}/serviceaccounts", sa)


def without_token_mount(answer: bytes) -> bytes:
    """Upstream's answer for the pod of ``answer`` (ours): the init container without the service-account token
    mount, which the API server's ServiceAccount plugin then adds, calling the webhook again (``README.md``,
    "Differences from upstream")."""
    review = orjson.loads(answer)
    ops = orjson.loads(base64.b64decode(review["response"]["patch"]))
    for op in ops:
        if op["path"].startswith("/spec/initContainers"):
            for init in op["value"] if isinstance(op["value"], list) else [op["value"]]:
                init["volumeMounts"] = [m for m in init["volumeMounts"] if m["mountPath"] != TOKEN_MOUNT_PATH]
    review["response"]["patch"] = base64.b64encode(orjson.dumps(ops)).decode()
    return orjson.dumps(review)


def ask(
    ours: Server,
    ca: Path,
    obj: dict[str, Any],
    namespace: str,
    name: str,
    work: Path,
    *,
    upstream: bool = False,
) -> dict[str, Any]:
    """Our webhook's answer to a review of ``obj`` (``upstream``: as upstream's patch); kept as the template file
    ``answer-<name>.json``."""
    body = orjson.dumps(reviews.review(obj, namespace, str(uuid.uuid4())))
    template = answer_template(ours.port, body, ca)
    if upstream:
        template = without_token_mount(template)
    (work / f"answer-{name}.json").write_bytes(template)
    return dict(orjson.loads(template)["response"])


def capture_answers(kube: Any, ours: Server, key: str, ca: Path, work: Path) -> dict[str, str]:
    """Our webhook's answers for the bench pod in ``key``'s namespace, first admission and reinvocation, as
    template files (the environment of ``bench.baseline``); the upstream-style webhook's first answer is
    upstream's patch. The first review carries the pod as the API server admits it before webhooks (a dry-run
    create while no webhook is registered), the second that pod patched."""
    namespace = namespace_of(key)
    admitted = dry_run_create(kube, f"{NAMESPACES}/{namespace}/pods", pod(namespace))
    first = ask(ours, ca, admitted, namespace, key, work, upstream=key == "upstream")
    if not first.get("allowed") or "patch" not in first:
        raise RuntimeError(f"the webhook did not inject the bench pod in {namespace}: {first}")
    patched = jsonpatch.apply_patch(admitted, orjson.loads(base64.b64decode(first["patch"])))
    again = ask(ours, ca, patched, namespace, f"{key}-reinvoked", work)
    if not again.get("allowed"):
        raise RuntimeError(f"the webhook refused the injected bench pod in {namespace}: {again}")
    return {
        "BENCH_ANSWER": str(work / f"answer-{key}.json"),
        "BENCH_REINVOKED_ANSWER": str(work / f"answer-{key}-reinvoked.json"),
    }


def register(kube: Any, servers: dict[str, Server], ca: Path) -> None:
    """One mutating webhook per hooked namespace (``failurePolicy: Fail``: an error fails the bench)."""
    webhooks = [
        hook(
            f"{key}.bench.dynatrace.com",
            f"https://127.0.0.1:{servers[key].port}/inject",
            [POD_RULE],
            ca_pem=ca.read_bytes(),
            namespace_selector={"matchLabels": {WEBHOOK_LABEL: key}},
        )
        for key in HOOKED
    ]
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "bench-create"},
        "webhooks": webhooks,
    }
    kube.create(MWC, config)
    for key in HOOKED:  # a dry-run create calls the webhook too: the configuration is in effect
        wait(
            partial(dry_run_injects, kube, namespace_of(key)), what=f"the {key} webhook called", interval=0.2
        )


def dry_run_injects(kube: Any, namespace: str) -> bool:
    created = dry_run_create(kube, f"{NAMESPACES}/{namespace}/pods", pod(namespace))
    return annotations_of(created).get(INJECTED) == "true"


def start_servers(stack: ExitStack, kube: Any, home: Path, work: Path) -> tuple[dict[str, Server], Path]:
    ca = ensure_dev_certificates(work / "certs", ("localhost", "127.0.0.1", "::1"))
    webhook_kubeconfig = home / "kubeconfig-webhook"
    args = ["--namespace", DYNAKUBE_NAMESPACE, "--dynakube-api-version", DYNAKUBE_VERSION]
    ours = stack.enter_context(Server(None, work, kubeconfig=webhook_kubeconfig, core=None, extra_args=args))
    for namespace in map(namespace_of, KEYS):  # the webhook writes the init Secrets of mapped namespaces
        path = f"{NAMESPACES}/{namespace}/secrets/{INIT_SECRET}"
        wait(partial(exists, kube, path), what=f"the init Secret in {namespace}", interval=0.2)
    state = work / "state.yaml"
    state.write_text(reviews.state_yaml(1, 1))
    floor_env = capture_answers(kube, ours, "floor", ca, work)
    upstream_env = {
        **capture_answers(kube, ours, "upstream", ca, work),
        "BENCH_UPSTREAM_KUBECONFIG": str(webhook_kubeconfig),
        "BENCH_DYNAKUBE_NAMESPACE": DYNAKUBE_NAMESPACE,
    }
    floor = stack.enter_context(Server(state, work, baseline=True, core=None, env=floor_env))
    upstream = stack.enter_context(Server(state, work, baseline=True, core=None, env=upstream_env))
    return {"floor": floor, "ours": ours, "upstream": upstream}, ca


# --- the measurement ---
def shape(created: dict[str, Any], key: str) -> bytes:
    """The stored pod's spec and annotations with its namespace and name taken out (compared across keys)."""
    kept = {"spec": created["spec"], "annotations": created["metadata"].get("annotations")}
    text = orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)
    name = created["metadata"]["name"].encode()
    return text.replace(namespace_of(key).encode(), b"NS").replace(name, b"POD")


def warm_up(client: ApiClient, plan: Plan) -> None:
    """Untimed creates in every namespace; checks that the three webhooks produce the same pod."""
    shapes: dict[str, bytes] = {}
    for key in KEYS:
        ns = namespace_of(key)
        body = orjson.dumps(pod(ns))
        for _ in range(plan.warmup):
            shapes[key] = shape(client.cycle(ns, body)[1], key)
    if b'"' + INJECTED.encode() + b'":"true"' in shapes["none"]:
        raise RuntimeError("a pod was injected in the namespace without a webhook")
    for key in ("floor", "upstream"):
        if shapes[key] != shapes["ours"]:
            at = next(i for i, (a, b) in enumerate(zip(shapes[key], shapes["ours"], strict=False)) if a != b)
            raise RuntimeError(
                f"the {key} webhook does not produce the pod ours produces: {shapes[key][at - 80 : at + 120]!r}"
                f" where ours has {shapes['ours'][at - 80 : at + 120]!r}"
            )


def measure(client: ApiClient, plan: Plan) -> dict[str, list[float]]:
    """``plan.rounds`` rounds of ``plan.batch`` creates per namespace, the order rotating every round."""
    times: dict[str, list[float]] = {key: [] for key in KEYS}
    bodies = {key: orjson.dumps(pod(namespace_of(key))) for key in KEYS}
    for r in range(plan.rounds):
        shift = r % len(KEYS)
        for key in KEYS[shift:] + KEYS[:shift]:
            for _ in range(plan.batch):
                times[key].append(client.cycle(namespace_of(key), bodies[key])[0])
    return times


def per_round(times: dict[str, list[float]], batch: int, key: str, base: str) -> dict[str, float]:
    """The difference of ``key``'s and ``base``'s p50 in each round (the same minute of the machine's load):
    median, lowest and highest over the rounds, in ms."""
    rounds = len(times[key]) // batch
    diffs = sorted(
        percentile(sorted(times[key][r * batch : (r + 1) * batch]), 50)
        - percentile(sorted(times[base][r * batch : (r + 1) * batch]), 50)
        for r in range(rounds)
    )
    return {
        "median_ms": round(percentile(diffs, 50) * 1000, 3),
        "min_ms": round(diffs[0] * 1000, 3),
        "max_ms": round(diffs[-1] * 1000, 3),
    }


def handler_ms(log: Path) -> dict[str, dict[str, float]]:
    """What the webhook logged of its own time per admission (``duration_ms``), by decision; dry runs left out."""
    durations: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        if '"path":"/inject"' not in line:
            continue
        entry = orjson.loads(line)
        if not entry.get("dry_run"):
            durations.setdefault(entry["decision"], []).append(entry["duration_ms"])
    return {
        decision: {"n": len(v), "p50_ms": percentile(sorted(v), 50), "p90_ms": percentile(sorted(v), 90)}
        for decision, v in durations.items()
    }


def run(quick: bool, work: Path) -> dict[str, Any]:
    plan = Plan.make(quick)
    started = time.perf_counter()
    with control_plane() as kubeconfig, ExitStack() as stack:
        kube = KubeApi(load_api_client(str(kubeconfig)), request_timeout=15)
        setup_cluster(kube)
        servers, _ = start_servers(stack, kube, kubeconfig.parent, work)
        register(kube, servers, work / "certs" / "ca.crt")
        client = ApiClient(kubeconfig)
        stack.callback(client.close)
        warm_up(client, plan)
        load_before = load_average()
        times = measure(client, plan)
        load = load_average()
    assert servers["ours"].log_path is not None
    return {
        "plan": {"creates": plan.creates, "batch": plan.batch, "rounds": plan.rounds, "warmup": plan.warmup},
        "method": "real creates (stored, then deleted untimed), one keep-alive connection, sequential",
        "load_average_before": load_before,
        "load_average": load,
        "seconds": round(time.perf_counter() - started, 1),
        "stats": {key: summary(times[key]) for key in KEYS},
        "per_round": {
            "ours-floor": per_round(times, plan.batch, "ours", "floor"),
            "ours-none": per_round(times, plan.batch, "ours", "none"),
            "upstream-none": per_round(times, plan.batch, "upstream", "none"),
        },
        "ours_handler": handler_ms(servers["ours"].log_path),
    }


def create_rows(quick: bool) -> list[Row]:
    """For ``make bench``: the two rows of one run."""
    with tempfile.TemporaryDirectory(prefix="bench-create-") as tmp:
        result = run(quick, Path(tmp))
    return rows_of(result["stats"], result["load_average"])


def table(result: dict[str, Any]) -> str:
    lines = [
        f"load average {result['load_average_before']} before, {result['load_average']} after; "
        f"{result['plan']['creates']} creates per webhook in {result['plan']['rounds']} rounds; "
        f"{result['seconds']} s in all",
        "",
        "| webhook | creates | p50 ms | p90 ms |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {s['n']} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} |" for k, s in result["stats"].items()
    ]
    lines += [
        "",
        "| per round (p50 of the round's batch) | median ms | lowest | highest |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {d['median_ms']:.2f} | {d['min_ms']:.2f} | {d['max_ms']:.2f} |"
        for k, d in result["per_round"].items()
    ]
    handler = ", ".join(
        f"{k} p50 {d['p50_ms']} p90 {d['p90_ms']} ms" for k, d in result["ours_handler"].items()
    )
    lines += ["", f"ours, its own logged time per admission: {handler}"]
    lines += [f"the floor alone: (floor - none) / (upstream - none) = {floor_share(result['stats']):.3f}"]
    lines += ["", "| row | value | baseline | figure | goal | met |", "|---|---|---|---|---|---|"]
    rows = [row.as_dict() for row in rows_of(result["stats"], result["load_average"])]
    for r in rows:
        lines.append(
            f"| {r['key']} | {r['value']:.3f} | {r['baseline_value']:.3f} ({r['baseline_name']}) | "
            f"{r['figure']:.3f} | {r['goal']} | {r['met']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = arguments("python -m bench.create", __doc__, "fewer creates: under 90 s in all").parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-create-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = run(args.quick, work)
    print(table(result))
    rows = rows_of(result["stats"], result["load_average"])
    text = json.dumps({**result, "rows": [row.as_dict() for row in rows]}, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
