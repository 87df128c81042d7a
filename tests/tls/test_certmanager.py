"""Self-managed certificates against the in-memory API: create, renew, roll the CA, patch caBundles, races."""

from __future__ import annotations

import base64
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakeapi import FakeApi
from webhook.cli import build_parser, settings_from
from webhook.kube.api import ApiError
from webhook.metrics import Metrics
from webhook.tls import certs
from webhook.tls.manager import CertManager, from_settings
from webhook.tls.material import CONFIG_KINDS, TRUSTED_ANNOTATION, Policy

NS = "dynatrace"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"
SECRET = f"{SECRETS}/dynatrace-webhook-certs"
MWC = f"{CONFIG_KINDS['mutating']}/dynatrace-webhook"
VWC = f"{CONFIG_KINDS['validating']}/dynatrace-webhook"
HOST = "dynatrace-webhook.dynatrace.svc"
START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class Clock:
    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)


def config(kind: str, *webhooks: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": f"{kind.capitalize()}WebhookConfiguration",
        "metadata": {"name": "dynatrace-webhook"},
        "webhooks": [
            {
                "name": name,
                "clientConfig": {
                    "service": {"name": "dynatrace-webhook", "namespace": NS, "path": "/inject"}
                },
            }
            for name in webhooks
        ],
    }


def configured_api() -> FakeApi:
    """A fake API holding the two webhook configurations the manager keeps in step."""
    fake = FakeApi()
    fake.seed(
        CONFIG_KINDS["mutating"], config("mutating", "webhook.pod.dynatrace.com", "webhook.ns.dynatrace.com")
    )
    fake.seed(CONFIG_KINDS["validating"], config("validating", "webhook.dynakube.dynatrace.com"))
    return fake


@pytest.fixture()
def api() -> FakeApi:
    return configured_api()


POLICY = Policy(
    namespace=NS,
    extra_sans=("webhook.example.com", "10.0.0.7"),
    mutating=("dynatrace-webhook",),
    validating=("dynatrace-webhook",),
    propagation_delay=dt.timedelta(seconds=30),
)


def manager(api: Any, tmp_path: Path, clock: Clock, name: str = "a", **kw: Any) -> CertManager:
    return CertManager(api, POLICY, tmp_path / name, metrics=Metrics(), clock=clock, **kw)


def secret_data(api: FakeApi) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in api.objects[SECRET]["data"].items()}


def bundles(api: FakeApi) -> list[bytes]:
    """Every webhook's caBundle, decoded, across both configurations."""
    return [
        base64.b64decode(w["clientConfig"]["caBundle"])
        for path in (MWC, VWC)
        for w in api.objects[path]["webhooks"]
    ]


def fingerprints(pem: bytes) -> list[str]:
    return [certs.fingerprint(c) for c in certs.load_certificates(pem)]


def served(m: CertManager) -> bytes:
    return (m.certs_dir / "tls.crt").read_bytes()


def assert_trusted_everywhere(api: FakeApi, m: CertManager, clock: Clock) -> None:
    for bundle in bundles(api):
        assert certs.trust_problems(bundle, served(m), HOST, clock()) == []


def writes(m: CertManager, action: str, result: str) -> float:
    assert m.metrics is not None
    value = m.metrics.registry.get_sample_value(
        "dynatrace_webhook_certificate_secret_writes_total", {"action": action, "result": result}
    )
    return value or 0.0


def patches(m: CertManager, kind: str, result: str) -> float:
    assert m.metrics is not None
    value = m.metrics.registry.get_sample_value(
        "dynatrace_webhook_ca_bundle_patches_total", {"kind": kind, "result": result}
    )
    return value or 0.0


def mutating_calls(api: FakeApi) -> list[tuple[str, str]]:
    return [c for c in api.calls if c[0] in ("POST", "PUT", "PATCH", "DELETE")]


def test_missing_secret_is_created_and_every_webhook_trusts_its_ca(api, tmp_path):
    clock = Clock()
    installed: list[bool] = []
    m = manager(api, tmp_path, clock, on_installed=lambda: installed.append(True))
    outcome = m.reconcile()

    data = secret_data(api)
    assert set(data) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    assert api.objects[SECRET]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "dynatrace-webhook"
    assert certs.key_matches(data["ca.crt"], data["ca.key"])
    assert certs.key_matches(data["tls.crt"], data["tls.key"])
    leaf = certs.load_certificates(data["tls.crt"])[0]
    assert certs.san_names(leaf) == [
        "dynatrace-webhook",
        "dynatrace-webhook.dynatrace",
        "dynatrace-webhook.dynatrace.svc",
        "dynatrace-webhook.dynatrace.svc.cluster.local",
        "webhook.example.com",
        "10.0.0.7",
    ]
    assert leaf.not_valid_after_utc == START + dt.timedelta(days=7)
    ca = certs.load_certificates(data["ca.crt"])[0]
    assert ca.not_valid_after_utc == START + dt.timedelta(days=365)
    # all three webhooks of the two configurations carry the CA, and the served pair is the Secret's
    assert bundles(api) == [data["ca.crt"]] * 3
    assert served(m) == data["tls.crt"]
    assert (m.certs_dir / "tls.key").read_bytes() == data["tls.key"]
    assert (m.certs_dir / "tls.key").stat().st_mode & 0o777 == 0o600
    assert installed == [True] and outcome.installed
    assert_trusted_everywhere(api, m, clock)
    assert certs.trust_problems(data["ca.crt"], served(m), "10.0.0.7", clock()) == []
    assert writes(m, "create", "success") == 1
    assert patches(m, "mutating", "patched") == 1 and patches(m, "validating", "patched") == 1
    assert api.objects[SECRET]["metadata"]["annotations"][TRUSTED_ANNOTATION].startswith(
        certs.fingerprint(ca)
    )
    assert m.metrics is not None
    assert (
        m.metrics.registry.get_sample_value(
            "dynatrace_webhook_certificate_not_after_timestamp_seconds", {"certificate": "ca"}
        )
        == ca.not_valid_after_utc.timestamp()
    )


def test_nothing_is_written_while_everything_is_current(api, tmp_path):
    clock = Clock()
    m = manager(api, tmp_path, clock)
    m.reconcile()
    api.calls.clear()
    clock.advance(days=3)
    outcome = m.reconcile()
    assert mutating_calls(api) == []
    assert outcome.actions == [] and not outcome.installed
    assert patches(m, "mutating", "unchanged") == 1


@pytest.mark.parametrize(
    ("elapsed", "renewed"),
    [
        (dt.timedelta(days=6, hours=11), False),  # 13 h left
        (dt.timedelta(days=6, hours=12, minutes=1), True),  # 11 h 59 m left
        (dt.timedelta(days=8), True),  # expired while nobody ran
    ],
)
def test_serving_certificate_is_renewed_when_less_than_12h_remain(api, tmp_path, elapsed, renewed):
    clock = Clock()
    m = manager(api, tmp_path, clock)
    m.reconcile()
    before = secret_data(api)
    api.calls.clear()
    clock.now += elapsed
    m.reconcile()
    after = secret_data(api)
    assert (after["tls.crt"] != before["tls.crt"]) is renewed
    assert after["ca.crt"] == before["ca.crt"]
    assert ("PATCH", MWC) not in api.calls  # same CA: the bundles stay as they are
    assert served(m) == after["tls.crt"]
    if renewed:
        leaf = certs.load_certificates(after["tls.crt"])[0]
        assert leaf.not_valid_after_utc == clock() + dt.timedelta(days=7)
        assert_trusted_everywhere(api, m, clock)


def test_ca_roll_trusts_both_cas_and_the_serving_certificate_follows_after_the_delay(api, tmp_path):
    clock = Clock()
    m = manager(api, tmp_path, clock)
    m.reconcile()
    first = secret_data(api)
    while clock() + dt.timedelta(days=6, hours=18) < START + dt.timedelta(days=336):
        clock.advance(days=6, hours=18)  # renewals every 6 days 18 hours, by the same CA
        m.reconcile()
    assert secret_data(api)["ca.crt"] == first["ca.crt"]
    clock.now = START + dt.timedelta(days=336)  # 29 days left: roll
    leaf_before = secret_data(api)["tls.crt"]
    outcome = m.reconcile()

    rolled = secret_data(api)
    assert rolled["ca.crt.old"] == first["ca.crt"]
    assert rolled["ca.crt"] != first["ca.crt"]
    assert rolled["tls.crt"] == leaf_before  # not yet: the bundles must trust the new CA for a while
    assert outcome.waiting and outcome.retry_in == pytest.approx(30.0)
    assert all(fingerprints(b) == fingerprints(rolled["ca.crt"] + first["ca.crt"]) for b in bundles(api))
    assert served(m) == leaf_before
    assert_trusted_everywhere(api, m, clock)

    clock.advance(seconds=10)
    m.reconcile()
    assert secret_data(api)["tls.crt"] == leaf_before  # 10 s < 30 s

    clock.advance(seconds=25)
    m.reconcile()
    final = secret_data(api)
    assert final["tls.crt"] != leaf_before
    leaf = certs.load_certificates(final["tls.crt"])[0]
    assert certs.issued_by(leaf, certs.load_certificates(rolled["ca.crt"])[0])
    assert served(m) == final["tls.crt"]
    assert_trusted_everywhere(api, m, clock)
    # both CAs stay in the bundle until the next roll
    assert all(len(fingerprints(b)) == 2 for b in bundles(api))


def test_the_next_roll_drops_the_oldest_ca(api, tmp_path):
    clock = Clock()
    m = manager(api, tmp_path, clock)
    m.reconcile()
    cas = [secret_data(api)["ca.crt"]]
    for _ in range(2):
        clock.advance(days=336)  # 29 days before the current CA ends
        m.reconcile()
        cas.append(secret_data(api)["ca.crt"])
        clock.advance(minutes=1)
        m.reconcile()
        assert_trusted_everywhere(api, m, clock)
    assert len(set(cas)) == 3
    assert all(fingerprints(b) == fingerprints(cas[2] + cas[1]) for b in bundles(api))


def test_changed_names_reissue_at_once(api, tmp_path):
    clock = Clock()
    manager(api, tmp_path, clock).reconcile()
    before = secret_data(api)["tls.crt"]
    policy = Policy(**{**POLICY.__dict__, "extra_sans": ("other.example.com",)})
    m = CertManager(api, policy, tmp_path / "b", clock=clock)
    m.reconcile()
    leaf = certs.load_certificates(served(m))[0]
    assert served(m) != before and "other.example.com" in certs.san_names(leaf)
    assert "webhook.example.com" not in certs.san_names(leaf)


@pytest.mark.parametrize(
    "data",
    [
        {"ca.crt": "bm90IGEgY2VydA==", "ca.key": "eA==", "tls.crt": "!!!", "tls.key": ""},  # garbage
        {},  # an empty placeholder Secret, e.g. created by a chart
    ],
)
def test_unusable_secret_content_is_replaced(api, tmp_path, data):
    api.seed(
        SECRETS,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dynatrace-webhook-certs"}, "data": data},
    )
    clock = Clock()
    m = manager(api, tmp_path, clock)
    m.reconcile()
    fresh = secret_data(api)
    assert certs.key_matches(fresh["ca.crt"], fresh["ca.key"])
    assert served(m) == fresh["tls.crt"]
    assert_trusted_everywhere(api, m, clock)


def test_missing_configuration_is_skipped_and_counted(api, tmp_path):
    api.delete(MWC)
    clock = Clock()
    m = manager(api, tmp_path, clock)
    outcome = m.reconcile()
    assert patches(m, "mutating", "not_found") == 1
    assert patches(m, "validating", "patched") == 1
    assert served(m) == secret_data(api)["tls.crt"]
    # looked for again within seconds, not after the whole check interval
    assert outcome.retry_in is not None and outcome.retry_in <= 10


def test_bundle_patch_whose_test_fails_is_retried_on_fresh_data(api, tmp_path):
    api.script("PATCH", MWC, ApiError(422, "test operation failed"))
    clock = Clock()
    m = manager(api, tmp_path, clock)
    m.reconcile()
    assert patches(m, "mutating", "conflict") == 1 and patches(m, "mutating", "patched") == 1
    assert_trusted_everywhere(api, m, clock)


def test_nothing_is_served_while_the_bundle_cannot_be_written(api, tmp_path):
    api.script("PATCH", VWC, ApiError(500, "etcd is down"))
    clock = Clock()
    m = manager(api, tmp_path, clock)
    with pytest.raises(ApiError):
        m.reconcile()
    assert not (m.certs_dir / "tls.crt").exists()
    assert patches(m, "validating", "error") == 1
    m.reconcile()
    assert_trusted_everywhere(api, m, clock)


class Interleaved:
    """The Api of one replica; ``before(method, path)`` runs another replica's step first, once."""

    def __init__(self, api: FakeApi, method: str, path: str, step: Any) -> None:
        self.api, self.method, self.path, self.step = api, method, path, step

    def _maybe(self, method: str, path: str) -> None:
        if (method, path) == (self.method, self.path) and self.step is not None:
            step, self.step = self.step, None
            step()

    def get(self, path: str) -> dict[str, Any]:
        self._maybe("GET", path)
        return self.api.get(path)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._maybe("POST", path)
        return self.api.create(path, body)

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._maybe("PUT", path)
        return self.api.replace(path, body)

    def patch(self, path: str, body: Any, patch_type: str = "merge") -> dict[str, Any]:
        self._maybe("PATCH", path)
        return self.api.patch(path, body, patch_type)

    def watch(self, path: str, resource_version: str, timeout_seconds: int) -> Any:
        return self.api.watch(path, resource_version, timeout_seconds)

    def delete(self, path: str) -> None:
        self.api.delete(path)


def test_create_conflict_adopts_the_other_replicas_certificate(api, tmp_path):
    clock = Clock()
    b = manager(api, tmp_path, clock, "b")
    a = manager(Interleaved(api, "POST", SECRETS, b.reconcile), tmp_path, clock, "a")
    a.reconcile()
    assert api.calls.count(("POST", SECRETS)) == 2
    assert writes(a, "create", "conflict") == 1 and writes(b, "create", "success") == 1
    assert served(a) == served(b) == secret_data(api)["tls.crt"]


def test_ca_roll_conflict_adopts_the_winners_ca(api, tmp_path):
    clock = Clock()
    b = manager(api, tmp_path, clock, "b")
    b.reconcile()
    original = secret_data(api)["ca.crt"]
    clock.advance(days=340)
    a = manager(Interleaved(api, "PUT", SECRET, b.reconcile), tmp_path, clock, "a")
    a.reconcile()
    data = secret_data(api)
    assert writes(a, "rotate_ca", "conflict") == 1 and writes(b, "rotate_ca", "success") == 1
    assert data["ca.crt.old"] == original  # one roll, not two
    assert all(fingerprints(x) == fingerprints(data["ca.crt"] + original) for x in bundles(api))
    clock.advance(minutes=1)
    a.reconcile()
    b.reconcile()
    assert served(a) == served(b) == secret_data(api)["tls.crt"]
    assert_trusted_everywhere(api, a, clock)


def test_a_stale_replica_cannot_take_a_new_ca_out_of_the_bundle(api, tmp_path):
    """C computes a bundle from the Secret as it was; B rolls the CA and patches before C's patch lands.

    C's JSON patch tests the configuration's resourceVersion, fails, and C retries on fresh data: the new
    CA stays in the bundle. (C keeps a shorter --ca-renew-before, as during a rollout that changes flags.)
    """
    clock = Clock()
    b = manager(api, tmp_path, clock, "b")
    b.reconcile()
    api.patch(MWC, [{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": ""}], "json")
    clock.advance(days=340)
    policy = Policy(**{**POLICY.__dict__, "ca_renew_before": dt.timedelta(days=1)})
    c = CertManager(
        Interleaved(api, "PATCH", MWC, b.reconcile), policy, tmp_path / "c", metrics=Metrics(), clock=clock
    )
    c.reconcile()
    data = secret_data(api)
    assert writes(b, "rotate_ca", "success") == 1
    assert patches(c, "mutating", "conflict") == 1
    assert all(fingerprints(x) == fingerprints(data["ca.crt"] + data["ca.crt.old"]) for x in bundles(api))
    assert_trusted_everywhere(api, c, clock)


def test_replicas_racing_on_one_secret_converge(api, tmp_path):
    clock = Clock()
    replicas = [manager(api, tmp_path, clock, name) for name in ("a", "b", "c")]

    def rounds(m: CertManager, gate: threading.Barrier) -> None:
        for _ in range(3):
            gate.wait(timeout=10)
            m.reconcile()

    gate = threading.Barrier(len(replicas))
    threads = [threading.Thread(target=rounds, args=(m, gate)) for m in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert api.calls.count(("POST", SECRETS)) >= 1
    assert sum(writes(m, "create", "success") for m in replicas) == 1
    final = secret_data(api)
    assert {served(m) for m in replicas} == {final["tls.crt"]}
    assert bundles(api) == [final["ca.crt"]] * 3


def test_settings_from_the_command_line_build_the_policy(tmp_path):
    args = build_parser().parse_args(
        [
            "serve",
            "--cert-mode",
            "self-managed",
            "--namespace",
            "monitoring",
            "--service-name",
            "hook",
            "--cert-extra-san",
            "hook.example.com",
            "--cert-extra-san",
            "10.1.2.3",
            "--mutating-webhook-config",
            "m1",
            "--validating-webhook-config",
            "v1",
            "--cert-validity",
            "2d",
            "--cert-renew-before",
            "6h",
            "--ca-validity",
            "90d",
            "--ca-renew-before",
            "10d",
            "--cert-check-interval",
            "30s",
            "--certs-dir",
            str(tmp_path),
        ]
    )
    settings = settings_from(args)
    assert settings.cert_mode == "self-managed"
    m = from_settings(settings, FakeApi())
    p = m.policy
    assert p.names == [
        "hook",
        "hook.monitoring",
        "hook.monitoring.svc",
        "hook.monitoring.svc.cluster.local",
        "hook.example.com",
        "10.1.2.3",
    ]
    assert p.configs == [
        ("mutating", f"{CONFIG_KINDS['mutating']}/m1"),
        ("validating", f"{CONFIG_KINDS['validating']}/v1"),
    ]
    assert (p.serving_validity, p.serving_renew_before) == (dt.timedelta(days=2), dt.timedelta(hours=6))
    assert (p.ca_validity, p.ca_renew_before) == (dt.timedelta(days=90), dt.timedelta(days=10))
    assert (
        p.check_interval == 30.0
        and p.secret_path == "/api/v1/namespaces/monitoring/secrets/dynatrace-webhook-certs"
    )
    assert m.certs_dir == tmp_path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cert-validity", "soon"], "duration 'soon' is not understood"),
        (["--cert-validity", "1d", "--cert-renew-before", "1d"], "--cert-renew-before must be shorter"),
        (["--ca-validity", "10d"], "--ca-renew-before must be shorter"),
        (["--cert-mode", "auto"], "invalid choice"),
    ],
)
def test_bad_certificate_flags_are_refused_with_a_clear_message(argv, message, capsys):
    from webhook.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_webhook_in_self_managed_mode_runs_the_manager_in_the_background(api, tmp_path, monkeypatch):
    import time

    import webhook.kube.client as kube
    from webhook.config import Settings
    from webhook.server import Webhook

    monkeypatch.setattr(kube, "load_api_client", lambda kubeconfig: None)
    monkeypatch.setattr(kube, "KubeApi", lambda client: api)
    settings = Settings(
        namespace=NS,
        certs_dir=tmp_path,
        cert_mode="self-managed",
        mutating_webhook_configs=("dynatrace-webhook",),
        validating_webhook_configs=("dynatrace-webhook",),
    )
    webhook = Webhook(settings)
    webhook.start_cert_manager()
    try:
        deadline = time.monotonic() + 10
        while not webhook.watcher.loaded and time.monotonic() < deadline:
            time.sleep(0.02)
        assert webhook.watcher.valid  # installed and loaded by the manager's thread, no poll needed
        assert webhook.readiness()["certificate_valid"] is True
        assert (tmp_path / "tls.crt").read_bytes() == secret_data(api)["tls.crt"]
        webhook.refresh_metrics()
        exposition = webhook.metrics.exposition().decode()
        assert (
            'dynatrace_webhook_certificate_not_after_timestamp_seconds{certificate="serving"}' in exposition
        )
        assert 'dynatrace_webhook_certificate_not_after_timestamp_seconds{certificate="ca"}' in exposition
        assert (
            'dynatrace_webhook_ca_bundle_patches_total{kind="validating",result="patched"} 1.0' in exposition
        )
    finally:
        webhook.background.cert_manager.stop()
