"""A store that goes back in time: the control plane's etcd wiped under a running webhook (what an etcd restored
from a backup, or a control plane rebuilt behind the same address, looks like to it). Its watches ask for
resourceVersions the new store has never reached; the API server answers "Too large resource version", and the
webhook relists: within seconds its cache holds the new cluster's namespaces and DynaKubes, and nothing of the old.

Runs against a control plane of its own (``../shared/k8s`` in a home and on ports of this test), because it
wipes that control plane's store; skipped where there is none to start (a cluster given by KUBECONFIG only).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.helpers import CRD, DYNAKUBE_VERSION, NAMESPACES, dynakube_body, free_port, short_id, wait
from webhook.kube.api import list_items
from webhook.kube.client import KubeApi, load_api_client

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
K8S_DIR = Path(os.environ.get("E2E_K8S_DIR") or ROOT.parent / "shared" / "k8s")
TIER_HOME = Path(os.environ.get("K8S_E2E_HOME") or "/tmp/k8s-e2e")
WEBHOOK_NS = "dynatrace"
CONVERGED_WITHIN = 10.0  # seconds after the API server answers again


class ControlPlane:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            **os.environ,
            "K8S_E2E_HOME": str(home),
            "K8S_E2E_API_PORT": str(free_port()),
            "K8S_E2E_ETCD_PORT": str(free_port()),
            "K8S_E2E_ETCD_PEER_PORT": str(free_port()),
            "K8S_E2E_KCM": "0",
        }

    def up(self) -> KubeApi:
        """Start it (from an empty store when it was stopped); the admin client."""
        done = subprocess.run(
            ["bash", str(K8S_DIR / "up.sh")], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        self.kubeconfig = done.stdout.strip()
        return KubeApi(load_api_client(self.kubeconfig), request_timeout=15)

    def down(self) -> None:
        subprocess.run(["bash", str(K8S_DIR / "down.sh")], env=self.env, timeout=60, check=False)


@pytest.fixture()
def control_plane() -> Iterator[ControlPlane]:
    if not (K8S_DIR / "up.sh").is_file():
        pytest.skip(f"no local control plane to reset ({K8S_DIR}/up.sh); a KUBECONFIG cluster is not wiped")
    home = Path(f"/tmp/k8s-e2e-reset-{short_id()}")
    home.mkdir(parents=True)
    if (
        TIER_HOME / "bin" / ".sha256"
    ).is_file():  # the binaries the tier unpacked, linked instead of unpacked
        subprocess.run(["cp", "-al", str(TIER_HOME / "bin"), str(home / "bin")], check=True)
    plane = ControlPlane(home)
    try:
        yield plane
    finally:
        plane.down()
        shutil.rmtree(home, ignore_errors=True)


def populate(kube: KubeApi, run: str, namespaces: int) -> str:
    """The DynaKube CRD, the webhook's namespace, one DynaKube and ``namespaces`` namespaces; the DynaKube's name."""
    kube.create(CRD, yaml.safe_load((HERE / "dynakube-crd.yaml").read_text()))
    wait(
        lambda: any(
            r["name"] == "dynakubes" for r in kube.get(f"/apis/dynatrace.com/{DYNAKUBE_VERSION}")["resources"]
        ),
        what="dynakubes served",
        interval=0.1,
    )
    kube.create(NAMESPACES, {"metadata": {"name": WEBHOOK_NS}})
    name = f"dk-{run}"
    kube.create(
        f"/apis/dynatrace.com/{DYNAKUBE_VERSION}/namespaces/{WEBHOOK_NS}/dynakubes",
        dynakube_body(name, WEBHOOK_NS, run),
    )
    for i in range(namespaces):
        kube.create(NAMESPACES, {"metadata": {"name": f"{run}-{i}"}})
    return name


def age(kube: KubeApi, writes: int) -> None:
    """Move the store's resourceVersion on by ``writes`` (a long-lived cluster's store is far ahead of a
    fresh control plane's, so its resourceVersions are "too large" for the new store)."""
    path = f"{NAMESPACES}/{WEBHOOK_NS}/configmaps"
    kube.create(path, {"metadata": {"name": "age"}, "data": {"n": "0"}})
    for n in range(writes):
        kube.patch(f"{path}/age", {"data": {"n": str(n)}})


def cached(metrics_port: int) -> dict[str, Any]:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    counts = dict(re.findall(r'dynatrace_webhook_cache_objects\{resource="([^"]+)"\} ([0-9.e+]+)', text))
    dynakubes = set(
        re.findall(r'dynatrace_webhook_dynakube_connection_info_complete\{dynakube="([^"]+)"', text)
    )
    return {"namespaces": float(counts.get("namespaces", -1)), "dynakubes": dynakubes}


def namespace_count(kube: KubeApi) -> int:
    items = list_items(kube, NAMESPACES)
    return len(items)


def test_the_cache_converges_after_the_store_went_back_in_time(control_plane, tmp_path):
    kube = control_plane.up()
    old = populate(kube, "old", namespaces=30)
    age(kube, 600)
    metrics, health = free_port(), free_port()
    log_path = tmp_path / "webhook.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "webhook",
                "serve",
                "--namespace",
                WEBHOOK_NS,
                "--webhook-port",
                str(free_port()),
                "--certs-dir",
                str(tmp_path / "certs"),
                "--cert-mode",
                "dev",
                "--health-probe-bind-address",
                f"127.0.0.1:{health}",
                "--metrics-bind-address",
                f"127.0.0.1:{metrics}",
                "--kubeconfig",
                control_plane.kubeconfig,
                "--log-format",
                "text",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        before = namespace_count(kube)
        wait(
            lambda: cached(metrics) == {"namespaces": before, "dynakubes": {old}},
            what=f"the webhook's cache of the first store (log: {log_path})",
        )

        control_plane.down()  # the store is wiped: the next up starts from an empty etcd
        kube = control_plane.up()
        back = time.monotonic()
        new = populate(kube, "new", namespaces=3)
        after = namespace_count(kube)
        assert after < before
        wait(
            lambda: cached(metrics) == {"namespaces": after, "dynakubes": {new}},
            timeout=60,
            interval=0.2,
            what=f"the webhook's cache of the new store (log: {log_path})",
        )
        elapsed = time.monotonic() - back
        print(f"cache converged {elapsed:.1f}s after the API server answered again")
        assert elapsed <= CONVERGED_WITHIN, f"{elapsed:.1f}s (log: {log_path.read_text()[-4000:]})"
        assert "Too large resource version" in log_path.read_text() or "relist" in log_path.read_text()
    finally:
        proc.terminate()
        proc.wait(30)
