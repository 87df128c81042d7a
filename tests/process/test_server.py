"""The real process on loopback: real TLS with a CA-checked client, readiness, reloads, SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from webhook.config import Settings
from webhook.tls.certs import generate_ca, generate_serving

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    def __init__(
        self,
        tmp: Path,
        *args: str,
        env: dict | None = None,
        ports: tuple[int, int, int] | None = None,
        kubeconfig: Path | None = None,
    ) -> None:
        """The webhook with ``args``; with ``kubeconfig``, in cluster mode against that file, never the
        in-cluster configuration of whatever pod the tests might run in."""
        if kubeconfig is not None:
            args = ("--kubeconfig", str(kubeconfig), *args)
            env = {"KUBERNETES_SERVICE_HOST": "", **(env or {})}
        self.certs = tmp / "certs"
        self.port, self.health, self.metrics = ports or (free_port(), free_port(), free_port())
        cmd = [
            sys.executable,
            "-m",
            "webhook",
            "--webhook-host",
            "127.0.0.1",
            "--webhook-port",
            str(self.port),
            "--health-probe-bind-address",
            f"127.0.0.1:{self.health}",
            "--metrics-bind-address",
            f"127.0.0.1:{self.metrics}",
            "--certs-dir",
            str(self.certs),
            *args,
        ]
        self.log = tmp / "webhook.log"
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def get(self, port: int, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)

    def wait(self, predicate, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if predicate():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"timed out; log:\n{self.log.read_text()}")

    def api_retries(self) -> float:
        """How often the cache's watches failed and were retried (the webhook's own count)."""
        text = self.get(self.metrics, "/metrics").text
        return sum(
            float(v)
            for v in re.findall(
                r'dynatrace_webhook_watch_events_total\{[^}]*type="reconnect"[^}]*\} ([0-9.e+]+)', text
            )
        )

    def wait_ready(self) -> None:
        self.wait(lambda: self.get(self.health, "/readyz").status_code == 200)

    def tls_client(self, ca: Path | None = None) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(ca or self.certs / "ca.crt"))
        return httpx.Client(base_url=f"https://localhost:{self.port}", verify=ctx, timeout=5)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture()
def local(tmp_path):
    state = tmp_path / "state.yaml"
    shutil.copy(ROOT / "examples" / "local-state.yaml", state)
    running = Running(tmp_path, "--state-file", str(state), "--cert-mode", "dev")
    running.state = state
    yield running
    running.proc.kill() if running.proc.poll() is None else None


def review(name: str) -> bytes:
    return (ROOT / "examples" / f"review-{name}.json").read_bytes()


def post(client: httpx.Client, body: bytes) -> dict:
    response = client.post("/inject?timeout=10s", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    return response.json()["response"]


def ops(answer: dict) -> list:
    return json.loads(base64.b64decode(answer["patch"])) if "patch" in answer else []


def test_inject_and_skip_over_real_tls(local):
    local.wait_ready()
    with local.tls_client() as client:
        injected = post(client, review("inject"))
        assert any(op["path"] == "/spec/initContainers" for op in ops(injected))
        skipped = post(client, review("skip"))
        assert ops(skipped)[0]["value"]["oneagent.dynatrace.com/reason"] == "EmptyConnectionInfo"
    # TLS 1.3 is what a current client negotiates
    ctx = ssl.create_default_context(cafile=str(local.certs / "ca.crt"))
    with (
        socket.create_connection(("127.0.0.1", local.port)) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.3"
    # a client that does not trust the CA is refused
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=True, timeout=5) as untrusting:
        untrusting.post(f"https://localhost:{local.port}/inject", content=review("skip"))
    metrics = local.get(local.metrics, "/metrics").text
    assert 'dynatrace_webhook_injections_total{outcome="injected",reason=""} 1.0' in metrics
    assert (
        'dynatrace_webhook_dynakube_connection_info_complete{dynakube="zone-pending",network_zone="eu-west-zone-b"} 0.0'
        in metrics
    )
    assert local.stop() == 0


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_below_1_2_is_refused(local):
    local.wait_ready()
    ctx = ssl.create_default_context(cafile=str(local.certs / "ca.crt"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", local.port)) as raw:
        ctx.wrap_socket(raw, server_hostname="localhost")


def test_state_file_changes_are_used_by_the_next_admission(local):
    local.wait_ready()
    text = local.state.read_text().replace("communicationHosts: []", "communicationHosts: [{host: 10.1.1.1}]")
    local.state.write_text(text)
    with local.tls_client() as client:
        deadline = time.monotonic() + 10
        while any(
            op["path"] == "/metadata/annotations" and "oneagent.dynatrace.com/reason" in op["value"]
            for op in ops(post(client, review("skip")))
        ):
            assert time.monotonic() < deadline, "state change not picked up"
            time.sleep(0.2)
        assert any(op["path"] == "/spec/initContainers" for op in ops(post(client, review("skip"))))
    # a broken file keeps the last good state
    local.state.write_text("kind: [broken")
    time.sleep(1.5)
    with local.tls_client() as client:
        assert any(op["path"] == "/spec/initContainers" for op in ops(post(client, review("skip"))))
    assert local.get(local.health, "/readyz").status_code == 200


def test_certificate_rotated_on_disk_is_served_without_restart(local):
    local.wait_ready()
    ca = generate_ca("rotated-ca")
    leaf = generate_serving(ca, ["localhost"], dt.timedelta(days=1))
    new_ca = local.certs.parent / "new-ca.crt"
    new_ca.write_bytes(ca.cert_pem)
    with local.tls_client() as old_client:  # an established connection keeps working
        post(old_client, review("skip"))
        (local.certs / "tls.key").write_bytes(leaf.key_pem)
        (local.certs / "tls.crt").write_bytes(leaf.cert_pem)

        def rotated() -> bool:
            try:
                with local.tls_client(new_ca) as client:
                    post(client, review("skip"))
                return True
            except httpx.ConnectError:
                return False

        local.wait(rotated, timeout=10)
        post(old_client, review("skip"))
    # garbage on disk keeps the good pair in service
    (local.certs / "tls.crt").write_bytes(b"not a certificate")
    time.sleep(2.5)
    with local.tls_client(new_ca) as client:
        post(client, review("skip"))
    assert (
        'dynatrace_webhook_certificate_reloads_total{result="failure"} 1.0'
        in local.get(local.metrics, "/metrics").text
    )


def test_sigterm_drops_readiness_then_exits_zero(tmp_path):
    state = tmp_path / "state.yaml"
    shutil.copy(ROOT / "examples" / "local-state.yaml", state)
    running = Running(tmp_path, "--state-file", str(state), "--cert-mode", "dev", "--shutdown-delay", "1")
    running.wait_ready()
    running.proc.send_signal(signal.SIGTERM)
    running.wait(lambda: running.get(running.health, "/readyz").status_code == 503, timeout=1)
    with running.tls_client() as client:  # still answering admissions during the delay
        post(client, review("inject"))
    assert running.proc.wait(timeout=30) == 0


def test_not_ready_until_synced_when_the_api_is_unreachable(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": f"https://127.0.0.1:{free_port()}",
                            "insecure-skip-tls-verify": True,
                        },
                    }
                ],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    certs = tmp_path / "certs"
    ca = generate_ca()
    leaf = generate_serving(ca, ["localhost"])
    certs.mkdir()
    (certs / "tls.crt").write_bytes(leaf.cert_pem)
    (certs / "tls.key").write_bytes(leaf.key_pem)
    running = Running(tmp_path, kubeconfig=kubeconfig)
    try:
        running.wait(lambda: running.get(running.health, "/healthz").status_code == 200)
        ready = running.get(running.health, "/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["cache_synced"] is False
        running.wait(lambda: running.api_retries() >= 2)  # it tried the API, and again: still not ready
        assert running.get(running.health, "/readyz").status_code == 503
    finally:
        assert running.stop() == 0


def test_the_cache_synced_settles_the_heap_once_on_the_event_loop(tmp_path, monkeypatch):
    """Cluster mode: the collection and freeze of what start-up made wait for the cache's sync (its "listed"
    event from a watch thread), then run once, on the event loop, not in the middle of the lists."""
    from webhook import server
    from webhook.server import Webhook
    from webhook.state.kinds import DYNAKUBES, NAMESPACES, SECRETS

    webhook = Webhook(Settings(certs_dir=tmp_path))
    settled: list[int] = []

    async def main() -> None:
        loop = webhook.admissions.loop = asyncio.get_running_loop()
        done = asyncio.Event()
        monkeypatch.setattr(server, "SETTLE_DELAY", 0.0)
        monkeypatch.setattr(server, "settle", lambda: (settled.append(1), done.set()))
        webhook._watch_event(NAMESPACES, "listed", None)  # not synced yet: nothing
        for resource in (DYNAKUBES, NAMESPACES, SECRETS):
            webhook.store.replace(resource, [])
        await loop.run_in_executor(None, webhook._watch_event, NAMESPACES, "listed", None)
        await loop.run_in_executor(None, webhook._watch_event, NAMESPACES, "listed", None)
        await asyncio.wait_for(done.wait(), 5)

    asyncio.run(main())
    assert settled == [1]
