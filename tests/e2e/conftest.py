"""The e2e tier: runs against the cluster that KUBECONFIG points at, and skips cleanly without one.

The API server must reach the webhook these tests start on this machine: set ``E2E_WEBHOOK_HOST`` to an
address of this machine that the cluster can reach (for kind: the docker network's gateway, e.g. 172.18.0.1).
See tests/e2e/README.md.

Fixtures, in the order their teardown undoes them (pytest tears down in reverse setup order):

- ``register_webhook``: creates webhook configurations and deletes them first, so the API server stops
  calling a webhook before it goes away and never calls one for the namespaces being deleted;
- ``start_webhook``: starts ``python -m webhook`` processes in the run's namespace, stops them with SIGTERM and
  fails the test when one did not exit 0 (its log is in the message);
- ``cleanup``: deletes every other object a test registered, last created first (namespaces last);
- ``webhook_namespace``: the run's namespace ``e2e-dynatrace-<run>`` (the webhook's DynaKube namespace);
- ``dynakube_crd`` (session): the DynaKube CRD from dynakube-crd.yaml when the cluster has none; deleted at the
  end only when this session created it and no DynaKube other than the session's own is left;
- ``webhook_identity`` (session): the kubeconfig the webhook processes use (``kubeconfig-webhook`` beside
  KUBECONFIG when there is one, a user of its own the audit log tells apart) and the audit log, if any;
- ``audit_log``: that audit log, or a skip saying why there is none to read;
- ``namespace`` / ``dynakube``: create a namespace of the run with labels (ready for pods), a DynaKube in the
  run's namespace with a given spec and status; both deleted at teardown.

Nothing here touches an object the session did not create.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.audit import AuditLog, client_certificate_user
from tests.e2e.helpers import (
    CONFIG_PATHS,
    CRD,
    DYNAKUBE_VERSION,
    NAMESPACES,
    RUN_LABEL,
    delete_quietly,
    dynakube_body,
    dynakube_status,
    dynakubes_path,
    exists,
    free_port,
    labels_of,
    namespace_body,
    short_id,
    wait,
)
from webhook.kube.api import ApiError, list_items
from webhook.tls.certs import KeyPair, generate_ca, generate_serving

HERE = Path(__file__).parent
E2E_TIMEOUT = 300  # seconds per test: a cluster is slower than the unit tests' 120 s budget
log = logging.getLogger(__name__)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))
    # tests that leave the cluster busy after them (thousands of namespaces finalizing) run last
    items.sort(key=lambda item: item.get_closest_marker("e2e_last") is not None)


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e_last: an e2e test that runs after all others (heavy teardown)")


def no_cluster(reason: str) -> None:
    """Skip, or fail when a cluster was promised (``E2E_REQUIRE_CLUSTER=1``, set by run-local-cluster.sh once
    it started one): there, a tier that skips would pass without having tested anything."""
    if os.environ.get("E2E_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"E2E_REQUIRE_CLUSTER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kube():
    if not os.environ.get("KUBECONFIG"):
        no_cluster("no cluster: KUBECONFIG is not set (see tests/e2e/README.md)")
    from webhook.kube.client import KubeApi, load_api_client

    try:
        api = KubeApi(load_api_client(os.environ["KUBECONFIG"]), request_timeout=15)
        api.get("/version")
    except Exception as err:  # unreachable or misconfigured: say so and skip
        no_cluster(f"cluster in KUBECONFIG not reachable: {err}")
    return api


@pytest.fixture(scope="session")
def webhook_host() -> str:
    host = os.environ.get("E2E_WEBHOOK_HOST", "").strip()
    if not host:
        no_cluster("set E2E_WEBHOOK_HOST to an address of this machine the cluster can reach (README.md)")
    return host


def _first_kubeconfig() -> Path:
    return Path(os.environ["KUBECONFIG"].split(os.pathsep)[0])


@dataclass(frozen=True)
class WebhookIdentity:
    """How the webhook processes reach the API server, and where their requests can be counted."""

    kubeconfig: Path | None  # None: the webhook uses KUBECONFIG, like the tests
    user: str | None  # the user name the API server logs for the webhook, when it differs from the tests'
    audit_log: Path | None
    no_audit: str  # why the webhook's requests cannot be counted ("" when they can)


@pytest.fixture(scope="session")
def webhook_identity(kube) -> WebhookIdentity:
    """``E2E_WEBHOOK_KUBECONFIG``, else ``kubeconfig-webhook`` beside KUBECONFIG (as ../shared/k8s/up.sh
    writes it); ``E2E_AUDIT_LOG``, else ``logs/audit.log`` beside KUBECONFIG."""
    home = _first_kubeconfig().parent
    given = os.environ.get("E2E_WEBHOOK_KUBECONFIG", "").strip()
    kubeconfig = Path(given) if given else home / "kubeconfig-webhook"
    if not kubeconfig.is_file():
        kubeconfig = None
    given = os.environ.get("E2E_AUDIT_LOG", "").strip()
    audit = Path(given) if given else home / "logs" / "audit.log"
    if not audit.is_file():
        audit = None
    user = client_certificate_user(kubeconfig) if kubeconfig else None
    if user is not None and user == client_certificate_user(_first_kubeconfig()):
        user = None
    if kubeconfig is None:
        reason = (
            f"the webhook runs with the plain KUBECONFIG (no {home / 'kubeconfig-webhook'}, "
            "E2E_WEBHOOK_KUBECONFIG unset): its requests cannot be told apart from the tests'"
        )
    elif user is None:
        reason = f"{kubeconfig} does not authenticate with a client certificate of a user of its own"
    elif audit is None:
        reason = (
            f"no kube-apiserver audit log readable here ({home / 'logs' / 'audit.log'}, E2E_AUDIT_LOG unset)"
        )
    else:
        reason = ""
    return WebhookIdentity(kubeconfig, user, audit, reason)


@pytest.fixture()
def audit_log(webhook_identity) -> AuditLog:
    """The API server's audit log, reading the webhook's requests; skips when there is none to read (fails
    with ``E2E_REQUIRE_CLUSTER=1``: the local control plane run-local-cluster.sh starts always has one)."""
    if webhook_identity.no_audit:
        no_cluster(webhook_identity.no_audit)
    assert webhook_identity.audit_log and webhook_identity.user
    return AuditLog(webhook_identity.audit_log, webhook_identity.user)


@pytest.fixture(scope="session")
def session_run() -> str:
    """Labels the session's DynaKubes too, so the CRD teardown can tell them from anybody else's."""
    return short_id()


@pytest.fixture(scope="session")
def dynakube_crd(kube, session_run) -> Iterator[None]:
    created = False
    if not exists(kube, f"{CRD}/dynakubes.dynatrace.com"):
        kube.create(CRD, yaml.safe_load((HERE / "dynakube-crd.yaml").read_text()))
        created = True
    wait(
        lambda: any(
            r["name"] == "dynakubes" for r in kube.get(f"/apis/dynatrace.com/{DYNAKUBE_VERSION}")["resources"]
        ),
        what=f"dynatrace.com/{DYNAKUBE_VERSION} dynakubes served",
    )
    yield
    if not created:
        return
    try:
        items = list_items(kube, f"/apis/dynatrace.com/{DYNAKUBE_VERSION}/dynakubes")
    except ApiError as err:
        log.warning("DynaKube CRD kept: listing DynaKubes failed (%s)", err)
        return
    # the session's own DynaKubes may still be there while their namespaces terminate
    others = [d for d in items if not labels_of(d).get(RUN_LABEL, "").startswith(session_run)]
    if others:
        log.warning("DynaKube CRD kept: %d DynaKube(s) of others exist", len(others))
        return
    failure = delete_quietly(kube, f"{CRD}/dynakubes.dynatrace.com")
    assert not failure, f"the DynaKube CRD this session created was not deleted: {failure}"


@pytest.fixture()
def run_id(session_run) -> str:
    """Unique per test and starting with the session's id; short, as namespace names are DNS labels."""
    return f"{session_run}{short_id()[:4]}"


BULK_WORKERS = 8  # concurrent requests of create_many and its teardown (the client keeps 10 connections)


@dataclass
class Cleanup:
    kube: Any
    paths: list[str | list[str]] = field(default_factory=list)  # a list: a group deleted concurrently

    def add(self, path: str) -> str:
        self.paths.append(path)
        return path

    def create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create an object and delete it at teardown (registered before the call: a create that the API
        server carried out but answered with an error is still cleaned up)."""
        name = body["metadata"]["name"]
        self.add(f"{collection}/{name}")
        return self.kube.create(collection, body)

    def create_many(self, collection: str, bodies: list[dict[str, Any]]) -> None:
        """Create many objects, ``BULK_WORKERS`` requests at a time; deleted at teardown the same way (one
        group, after anything registered later). Raises the first failure once all requests are done."""
        group = [f"{collection}/{b['metadata']['name']}" for b in bodies]
        self.paths.append(group)
        with ThreadPoolExecutor(BULK_WORKERS) as pool:
            for future in [pool.submit(self.kube.create, collection, b) for b in bodies]:
                future.result()

    def run(self) -> None:
        """Delete everything registered, last first; every deletion is tried, then failures are reported."""
        failures: list[str] = []
        while self.paths:
            entry = self.paths.pop()
            if isinstance(entry, str):
                entry = [entry]
            with ThreadPoolExecutor(min(BULK_WORKERS, len(entry)) or 1) as pool:
                failures += [f for f in pool.map(lambda path: delete_quietly(self.kube, path), entry) if f]
        assert not failures, f"cleanup could not delete {len(failures)} object(s): {failures[:10]}"


@pytest.fixture()
def cleanup(kube) -> Iterator[Cleanup]:
    done = Cleanup(kube)
    yield done
    done.run()


def create_namespace(kube, cleanup: Cleanup, name: str, run: str, **labels: str) -> dict[str, Any]:
    """A namespace of this run, ready for pods (its default ServiceAccount exists: the ServiceAccount
    admission plugin rejects pods until the controller created it)."""
    created = cleanup.create(NAMESPACES, namespace_body(name, run, **labels))
    wait(
        lambda: exists(kube, f"{NAMESPACES}/{name}/serviceaccounts/default"),
        what=f"{name}/default ServiceAccount",
    )
    return created


@pytest.fixture()
def webhook_namespace(kube, run_id, cleanup, dynakube_crd) -> str:
    name = f"e2e-dynatrace-{run_id}"
    create_namespace(kube, cleanup, name, run_id)
    return name


MakeNamespace = Callable[..., str]


@pytest.fixture()
def namespace(kube, run_id, cleanup) -> MakeNamespace:
    """``namespace(name, **labels)``: a namespace ``<name>-<run>`` of this run with these labels, its default
    ServiceAccount in place (ready for pods); returns its name. Deleted at teardown."""

    def make(name: str, **labels: str) -> str:
        full = f"{name}-{run_id}"
        create_namespace(kube, cleanup, full, run_id, **labels)
        return full

    return make


MakeDynaKube = Callable[..., dict[str, Any]]


@pytest.fixture()
def dynakube(kube, run_id, cleanup, webhook_namespace) -> MakeDynaKube:
    """``dynakube(name, selector=None, annotations=None, spec=None, hosts=None, status=None)``: a
    cloudNativeFullStack DynaKube ``<name>-<run>`` in the run's namespace (``helpers.dynakube_body``; ``spec``
    is merged into the spec), then its status: ``status`` as given, else ``dynakube_status(hosts)`` when
    ``hosts`` is a list (``[]``: connection info incomplete), else none. Returns the stored object.
    Deleted at teardown."""

    def make(
        name: str,
        *,
        selector: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None,
        spec: dict[str, Any] | None = None,
        hosts: list[dict[str, Any]] | None = None,
        status: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        full = f"{name}-{run_id}"
        path = dynakubes_path(webhook_namespace)
        body = dynakube_body(
            full, webhook_namespace, run_id, selector=selector, annotations=annotations, spec=spec
        )
        created = cleanup.create(path, body)
        if status is None and hosts is not None:
            status = dynakube_status(hosts)
        if status is not None:
            created = kube.patch(
                f"{path}/{full}/status", status if "status" in status else {"status": status}
            )
        return created

    return make


@dataclass
class WebhookProcess:
    host: str
    port: int
    health: int
    log: Path
    proc: subprocess.Popen
    ca: KeyPair | None  # the CA of the serving certificate in files mode; None when self-managed

    def url(self, path: str) -> str:
        return f"https://{self.host}:{self.port}{path}"

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"webhook exited with {self.proc.returncode}:\n{self.log.read_text()}")
        return httpx.get(f"http://127.0.0.1:{self.health}/readyz", timeout=2).status_code == 200

    def wait_ready(self, timeout: float = 60) -> None:
        try:
            wait(self.ready, timeout=timeout, what="webhook ready (cache synced, certificate loaded)")
        except AssertionError as err:
            raise AssertionError(f"{err}\n--- webhook log ---\n{self.log.read_text()}") from None


StartWebhook = Callable[..., WebhookProcess]


@pytest.fixture()
def start_webhook(
    kube, webhook_host, webhook_namespace, webhook_identity, tmp_path
) -> Iterator[StartWebhook]:
    """Start the webhook in the run's namespace, with the kubeconfig of ``webhook_identity``. ``self_managed=False`` (files mode): a CA and a serving
    certificate for ``E2E_WEBHOOK_HOST`` are generated here (``WebhookProcess.ca``). ``args``: more flags.
    ``ready``: wait for /readyz (a self-managed webhook is ready only once its caBundles are written).
    ``port``: the admission port, when a configuration naming it had to exist first (``free_port()``)."""
    started: list[WebhookProcess] = []

    def start(
        *args: str, self_managed: bool = False, ready: bool = True, port: int | None = None
    ) -> WebhookProcess:
        index = len(started)
        certs = tmp_path / f"certs-{index}"
        certs.mkdir()
        ca = None
        if not self_managed:
            ca = generate_ca()
            leaf = generate_serving(ca, [webhook_host])
            (certs / "tls.crt").write_bytes(leaf.cert_pem)
            (certs / "tls.key").write_bytes(leaf.key_pem)
        port, health = port or free_port(), free_port()
        log_path = tmp_path / f"webhook-{index}.log"
        command = [
            sys.executable,
            "-m",
            "webhook",
            "serve",
            "--namespace",
            webhook_namespace,
            "--webhook-port",
            str(port),
            "--certs-dir",
            str(certs),
            "--health-probe-bind-address",
            f"127.0.0.1:{health}",
            "--metrics-bind-address",
            "0",
            "--dynakube-api-version",
            DYNAKUBE_VERSION,
            "--log-format",
            "text",
            *(["--kubeconfig", str(webhook_identity.kubeconfig)] if webhook_identity.kubeconfig else []),
            *(["--cert-mode", "self-managed"] if self_managed else ["--cert-mode", "files"]),
            *args,
        ]
        with log_path.open("wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        process = WebhookProcess(webhook_host, port, health, log_path, proc, ca)
        started.append(process)
        if ready:
            process.wait_ready()
        return process

    yield start
    failures = []
    for process in started:
        process.proc.send_signal(signal.SIGTERM)
        try:
            code = process.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.proc.kill()
            code = process.proc.wait()
        if code != 0:
            failures.append(f"webhook exited with {code}:\n{process.log.read_text()}")
    assert not failures, "\n".join(failures)


RegisterWebhook = Callable[[str, str, list[dict[str, Any]]], str]


@pytest.fixture()
def register_webhook(kube, run_id, start_webhook) -> Iterator[RegisterWebhook]:
    """Create a Mutating- or ValidatingWebhookConfiguration ``<name>-<run>``; returns its name. Depends on
    ``start_webhook`` so that it is torn down first: configurations go before the processes they call."""
    created: list[str] = []

    def register(kind: str, name: str, webhooks: list[dict[str, Any]]) -> str:
        full = f"{name}-{run_id}"
        path = f"{CONFIG_PATHS[kind]}/{full}"
        created.append(path)
        kube.create(
            CONFIG_PATHS[kind],
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": full, "labels": {RUN_LABEL: run_id}},
                "webhooks": webhooks,
            },
        )
        return full

    yield register
    # The API server drops a deleted configuration from its admission chain about a second later; nothing
    # the rest of the teardown sends matches these rules (DELETEs and the namespaces' finalization), so the
    # webhook processes may stop right away.
    failures = [f for f in (delete_quietly(kube, path) for path in reversed(created)) if f]
    assert not failures, f"webhook configurations not deleted: {failures}"
