"""Failure behaviour of the real process: the Kubernetes API missing, lost, failing or rate limiting;
certificate files deleted; SIGTERM under load; SIGKILL and restart. The rule throughout: keep answering from
the last known state, lose nothing that was accepted, never block the cluster."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import shutil
import signal
import ssl
import threading
import time

import pytest

from tests.conftest import make_dynakube, make_init_secret, make_namespace, make_pod, make_review
from tests.process.test_server import ROOT, Running, free_port, ops, post, review
from tests.support.apiserver import ApiServer, write_kubeconfig
from tests.support.fakeapi import FakeApi

DK_PATH = "/apis/dynatrace.com/v1beta2/namespaces/dynatrace/dynakubes"
NS_PATH = "/api/v1/namespaces"


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value from an exposition (0 when absent); labels in the metric's declaration order."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


def injected(client, body: dict) -> bool:
    response = client.post("/inject", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    return any(op["path"] == "/spec/initContainers" for op in ops(response.json()["response"]))


def seeded(hosts: list | None) -> FakeApi:
    api = FakeApi()
    api.seed(DK_PATH, make_dynakube("dk", hosts=hosts))
    api.seed(NS_PATH, make_namespace("shop", "dk"))
    api.seed(NS_PATH, make_namespace("dynatrace", None))
    api.seed(f"{NS_PATH}/shop/secrets", make_init_secret("shop"))  # as the operator left it
    return api


READY_HOSTS = {
    "status": {
        "oneAgent": {
            "connectionInfoStatus": {
                "communicationHosts": [{"protocol": "https", "host": "10.0.0.9", "port": 443}]
            }
        }
    }
}


def test_api_unreachable_at_start_then_reachable_becomes_ready_without_restart(tmp_path):
    port = free_port()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    running = Running(tmp_path, "--cert-mode", "dev", kubeconfig=kubeconfig)
    server = None
    try:
        running.wait(lambda: running.get(running.health, "/healthz").status_code == 200)
        assert running.get(running.health, "/livez").status_code == 200
        ready = running.get(running.health, "/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["cache_synced"] is False
        running.wait(lambda: running.api_retries() >= 2)  # it tried the API, and again: still not ready
        assert running.get(running.health, "/readyz").status_code == 503
        server = ApiServer(seeded(hosts=None), port=port)  # the API comes up on the address it was given
        start = time.monotonic()
        running.wait_ready()
        print(f"ready {time.monotonic() - start:.1f}s after the API came up")
        with running.tls_client() as client:
            assert injected(client, make_review(make_pod()))
    finally:
        assert running.stop() == 0
        if server is not None:
            server.close()


def test_api_lost_mid_run_keeps_answering_and_catches_up_when_back(tmp_path):
    api = seeded(hosts=[])
    server = ApiServer(api)
    port = server.port
    running = Running(tmp_path, "--cert-mode", "dev", kubeconfig=server.kubeconfig(tmp_path / "kubeconfig"))
    body = make_review(make_pod())
    try:
        running.wait_ready()
        with running.tls_client() as client:
            assert not injected(client, body)  # EmptyConnectionInfo
            before = running.get(running.metrics, "/metrics").text
            last_event = metric(
                before, "dynatrace_webhook_cache_last_event_timestamp_seconds", resource="dynakubes"
            )
            reconnects = metric(
                before, "dynatrace_webhook_watch_events_total", resource="dynakubes", type="reconnect"
            )
            server.close()

            def reconnecting() -> bool:
                text = running.get(running.metrics, "/metrics").text
                now = metric(
                    text, "dynatrace_webhook_watch_events_total", resource="dynakubes", type="reconnect"
                )
                return now > reconnects

            running.wait(reconnecting, timeout=10)
            api.patch(f"{DK_PATH}/dk", READY_HOSTS)  # changed while the webhook cannot see it
            for _ in range(5):  # answered from the last known state, promptly
                start = time.monotonic()
                assert not injected(client, body)
                assert time.monotonic() - start < 1
            assert running.get(running.health, "/readyz").status_code == 200  # serving, not blocking
            during = running.get(running.metrics, "/metrics").text
            assert (
                metric(during, "dynatrace_webhook_cache_last_event_timestamp_seconds", resource="dynakubes")
                == last_event
            )
            server = ApiServer(api, port=port)  # back on the same address
            start = time.monotonic()
            running.wait(lambda: injected(client, body), timeout=30)
            print(f"change reached the admissions {time.monotonic() - start:.1f}s after the API came back")
        after = running.get(running.metrics, "/metrics").text
        assert (
            metric(after, "dynatrace_webhook_cache_last_event_timestamp_seconds", resource="dynakubes")
            > last_event
        )
    finally:
        assert running.stop() == 0
        server.close()


@pytest.mark.parametrize(
    ("status", "retry_after", "window", "max_requests", "min_gap"),
    [
        # no Retry-After: exponential backoff from 0.5 s (+ up to 50 % jitter): attempts at ~0, 0.5, 1.5, 3.5
        (500, None, 4.0, 5, 0.0),
        # Retry-After: 2 is honoured: attempts at least 2 s apart
        (429, 2.0, 5.0, 4, 1.9),
    ],
)
def test_api_errors_are_backed_off_and_recovered_from(
    tmp_path, status, retry_after, window, max_requests, min_gap
):
    api = seeded(hosts=None)
    server = ApiServer(api)
    running = Running(tmp_path, "--cert-mode", "dev", kubeconfig=server.kubeconfig(tmp_path / "kubeconfig"))
    late = make_review(make_pod(namespace="late"), namespace="late")
    try:
        running.wait_ready()
        with running.tls_client() as client:
            assert not injected(client, late)  # namespace unknown to the cache
            start = time.monotonic()
            server.fail_next("GET", NS_PATH, status, retry_after, times=1000)
            time.sleep(window)
            end = time.monotonic()
            api.seed(NS_PATH, make_namespace("late", "dk"))  # created while the API answers errors
            api.seed(f"{NS_PATH}/late/secrets", make_init_secret("late"))
            # the namespaces reflector's requests (the Secrets of a namespace live under the same prefix)
            attempts = [
                t for t, m, p in list(server.times) if p.split("?", 1)[0] == NS_PATH and start <= t <= end
            ]
            assert 1 <= len(attempts) <= max_requests, attempts
            gaps = [b - a for a, b in itertools.pairwise(attempts[1:])]  # the first follows a watch
            assert all(gap >= min_gap for gap in gaps), gaps
            print(f"{status}: {len(attempts)} request(s) in {window:g}s, gaps {[round(g, 2) for g in gaps]}")
            assert running.get(running.health, "/readyz").status_code == 200
            text = running.get(running.metrics, "/metrics").text
            assert (
                metric(text, "dynatrace_webhook_watch_events_total", resource="namespaces", type="reconnect")
                >= 1
            )
            server.clear_failures()
            running.wait(lambda: injected(client, late), timeout=40)
    finally:
        assert running.stop() == 0
        server.close()


@pytest.fixture()
def local(tmp_path):
    state = tmp_path / "state.yaml"
    shutil.copy(ROOT / "examples" / "local-state.yaml", state)
    running = Running(tmp_path, "--state-file", str(state), "--cert-mode", "dev")
    running.state = state
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


def test_certificate_files_deleted_while_serving_keep_the_loaded_pair(local):
    local.wait_ready()
    ca = local.certs.parent / "ca-copy.crt"
    shutil.copy(local.certs / "ca.crt", ca)
    (local.certs / "tls.crt").unlink()
    (local.certs / "tls.key").unlink()
    time.sleep(2.5)  # more than a certificate poll
    with local.tls_client(ca) as client:  # a new connection, a new handshake
        assert post(client, review("inject"))["allowed"] is True
    assert local.get(local.health, "/readyz").status_code == 200
    assert "certificate files unreadable" in local.log.read_text()


class Load:
    """Threads sending /inject continuously over keep-alive TLS connections, classifying every outcome.

    - ok: 200 with an AdmissionReview;
    - refused: no connection (connect or TLS handshake failed): expected once the listener has closed;
    - unread: the connection was closed before any byte of an answer, i.e. the server closed it while
      idle, before it read the request: expected only once the listener has closed (what readiness and the
      shutdown delay keep clients away from);
    - broken: anything else (a partial or malformed answer, a non-200, a reset mid-answer): never allowed.
    """

    def __init__(self, running: Running, body: bytes, threads: int = 4) -> None:
        self.running = running
        self.body = body
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok: list[float] = []
        self.refused: list[float] = []
        self.unread: list[float] = []
        self.broken: list[str] = []
        self.ctx = ssl.create_default_context(cafile=str(running.certs / "ca.crt"))
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def _note(self, bucket: list, value) -> None:
        with self.lock:
            bucket.append(value)

    def _run(self) -> None:
        conn: http.client.HTTPSConnection | None = None
        while not self.stop.is_set():
            if conn is None:
                conn = http.client.HTTPSConnection(
                    "localhost", self.running.port, context=self.ctx, timeout=10
                )
                try:
                    conn.connect()
                except OSError:
                    self._note(self.refused, time.monotonic())
                    conn = None
                    time.sleep(0.02)
                    continue
            try:
                conn.request("POST", "/inject", self.body, {"Content-Type": "application/json"})
            except OSError:
                self._note(self.unread, time.monotonic())  # the server had closed it: nothing was read
                conn.close()
                conn = None
                continue
            try:
                response = conn.getresponse()
                data = response.read()
            except http.client.RemoteDisconnected:  # closed cleanly before the first byte of a status line
                self._note(self.unread, time.monotonic())
                conn.close()
                conn = None
                continue
            except Exception as err:  # IncompleteRead, BadStatusLine, SSL errors mid-answer
                self._note(self.broken, repr(err))
                conn.close()
                conn = None
                continue
            try:
                answer = json.loads(data)["response"]
                assert response.status == 200 and answer["allowed"] is True
                self._note(self.ok, time.monotonic())
            except Exception:
                self._note(self.broken, f"{response.status} {data[:200]!r}")
            if (response.getheader("connection") or "").lower() == "close":
                conn.close()
                conn = None


def test_sigterm_under_load_loses_no_accepted_request(tmp_path):
    state = tmp_path / "state.yaml"
    shutil.copy(ROOT / "examples" / "local-state.yaml", state)
    delay = 1.0
    running = Running(
        tmp_path,
        "--state-file",
        str(state),
        "--cert-mode",
        "dev",
        "--shutdown-delay",
        str(delay),
        "--log-level",
        "warning",
    )
    running.wait_ready()
    with Load(running, review("inject")) as load:
        time.sleep(1.0)
        sigterm = time.monotonic()
        running.proc.send_signal(signal.SIGTERM)
        code = running.proc.wait(timeout=25)  # within the default graceful timeout
        exited = time.monotonic()
        time.sleep(0.3)
    assert code == 0
    assert load.broken == [], load.broken[:5]
    served_while_draining = [t for t in load.ok if sigterm <= t]
    assert len(load.ok) > 50 and served_while_draining, (len(load.ok), len(served_while_draining))
    # refusals and idle closes only once the listeners close, after the delay: never while still listed
    early = [t for t in load.refused + load.unread if t < sigterm + delay - 0.05]
    assert early == []
    print(
        f"ok {len(load.ok)} ({len(served_while_draining)} while draining), refused {len(load.refused)}, "
        f"closed before read {len(load.unread)}, broken {len(load.broken)}, exit {exited - sigterm:.2f}s after SIGTERM"
    )


# A restart re-reads the state file and the certificates on disk: no API, no network (~1 s on a quiet 2-core
# machine: interpreter, imports, first state load).


def test_sigkill_and_restart_is_ready_again_on_the_same_ports_and_files(tmp_path):
    """Killed mid-flight, a new process binds the same ports and serves from the same files. How fast it is
    ready is a figure of the bench (start to ready), not a bound of this test: it is printed here."""
    state = tmp_path / "state.yaml"
    shutil.copy(ROOT / "examples" / "local-state.yaml", state)
    args = ("--state-file", str(state), "--cert-mode", "dev")
    first = Running(tmp_path, *args)
    first.wait_ready()
    first.proc.send_signal(signal.SIGKILL)
    assert first.proc.wait(timeout=5) == -signal.SIGKILL
    start = time.monotonic()
    second = Running(
        tmp_path, *args, ports=(first.port, first.health, first.metrics)
    )  # same ports, same files
    try:
        second.wait(lambda: second.get(second.health, "/readyz").status_code == 200, timeout=15)
        took = time.monotonic() - start
        print(f"ready {took:.2f}s after restart (load {os.getloadavg()[0]:.1f})")
        with second.tls_client() as client:
            assert any(op["path"] == "/spec/initContainers" for op in ops(post(client, review("inject"))))
    finally:
        assert second.stop() == 0
