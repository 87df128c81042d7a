"""Self-managed certificates: a CA and a serving certificate kept in a Secret, the caBundle kept in step.

The Secret ``dynatrace-webhook-certs`` in the webhook's namespace holds ``ca.crt``/``ca.key`` (ECDSA P-256,
365 days), ``ca.crt.old`` (the previous CA during a roll) and ``tls.crt``/``tls.key`` (7 days, renewed when
less than 12 h remain). Every replica runs the same reconcile loop in a background thread, never on the
admission path; all writes are optimistic (``metadata.resourceVersion`` on replace, 409 on create of an
existing name), and a replica that loses a race re-reads the Secret and adopts what the winner wrote, so the
replicas converge on one CA and one serving certificate.

The invariant: no replica serves a certificate that the caBundle of the webhook configurations does not
trust. One reconcile, in this order:

1. Secret. Missing: create it with a new CA and a serving certificate signed by it (nothing trusted us
   before, so nothing can break). CA within ``ca_renew_before`` of its end, or unusable: write a *new CA*
   into ``ca.crt``, move the current one to ``ca.crt.old`` and keep the current serving certificate, which
   the old CA signed. A roll starts only when the serving certificate is signed by the current CA, so at
   most two CAs are ever in flight.
2. caBundle. For every configured webhook configuration: read the configuration, *then* read the Secret,
   set every webhook's ``clientConfig.caBundle`` to ``ca.crt`` + ``ca.crt.old`` with a JSON patch that
   first tests the configuration's resourceVersion (only when a bundle differs). Reading the Secret after
   the configuration makes a stale replica harmless: if another replica wrote a newer CA after our Secret
   read, it patches the configuration after that write, so either our patch fails its test and we retry
   on fresh data, or its patch lands after ours. The first replica that sees the current CA in every bundle
   records the time in the Secret annotation ``webhook.dynatrace.com/ca-trusted``.
3. Serving certificate. Due (missing, broken, names changed, within ``serving_renew_before`` of its end, or
   signed by the old CA after a roll): issue one signed by ``ca.crt``. After a roll this waits until the
   bundles have trusted the new CA for ``propagation_delay`` (kube-apiserver picks up configuration changes
   through its own watch, so a bundle written is not a bundle in use that same instant). A serving
   certificate that is already unusable (expired, missing) is replaced at once: there is nothing to protect.
4. Install. The Secret's serving pair is written to the certs directory (``tls.key`` then ``tls.crt``,
   each by an atomic rename), only when the bundles read in step 2 trust its issuer; otherwise the
   previous pair stays in service. The manager then calls ``on_installed`` (the server passes
   ``CertificateWatcher.poll``), so the new pair is served to new connections at once and the watcher's
   own polling is the fallback; in-flight connections keep the context they started with.

A CA leaves the bundle only at the roll after next (``ca.crt.old`` is replaced), a CA validity later; every
serving certificate it signed expired long before. Configurations that do not exist (yet) are skipped and
reported; nothing calls the webhook through them.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webhook.kube.api import Api, ApiError
from webhook.metrics import Metrics
from webhook.tls import certs
from webhook.tls.bundles import sync_bundle
from webhook.tls.certs import CA_CERT, CA_CERT_OLD, CA_KEY, TLS_CERT, TLS_KEY
from webhook.tls.material import (
    CONFLICTS,
    LABELS,
    TRUSTED_ANNOTATION,
    Material,
    Policy,
    b64,
)

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one reconcile did (for logs and tests)."""

    actions: list[str] = field(default_factory=list)
    trusted: set[str] | None = None  # fingerprints of CAs in every existing bundle; None: no bundle exists
    installed: bool = False
    waiting: str = ""  # why a due step was postponed
    retry_in: float | None = None


class CertManager:
    def __init__(
        self,
        api: Api,
        policy: Policy,
        certs_dir: Path,
        *,
        cert_name: str = TLS_CERT,
        key_name: str = TLS_KEY,
        metrics: Metrics | None = None,
        on_installed: Callable[[], Any] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.api = api
        self.policy = policy
        self.certs_dir = certs_dir
        self.cert_name = cert_name
        self.key_name = key_name
        self.metrics = metrics
        self.on_installed = on_installed or (lambda: None)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.ca_not_after: dt.datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the loop ---
    def start(self) -> None:
        p = self.policy
        if not p.mutating and not p.validating:
            log.warning(
                "self-managed certificates: no webhook configuration named, no caBundle is kept in step"
            )
        self._thread = threading.Thread(target=self.run, name="cert-manager", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                outcome = self.reconcile()
                failures = 0
                wait = self.policy.check_interval
                if outcome.retry_in is not None:
                    wait = min(wait, outcome.retry_in)
            except Exception as err:
                failures += 1
                wait = min(self.policy.check_interval, 2.0 ** min(failures, 6))
                if isinstance(err, ApiError) and err.status in (401, 403):
                    log.error(
                        "self-managed certificates: the API server refused (%s); the service account needs "
                        "get/create/update on Secret %s in %s and get/patch on the webhook configurations; "
                        "retrying in %.0fs",
                        err,
                        self.policy.secret_name,
                        self.policy.namespace,
                        wait,
                    )
                else:
                    log.exception("self-managed certificates: reconcile failed; retrying in %.0fs", wait)
            self._stop.wait(max(wait, 0.01))

    def reconcile(self) -> Outcome:
        outcome = Outcome()
        material = self._ensure_secret(outcome)
        material = self._sync_bundles(material, outcome)
        material = self._ensure_leaf(material, outcome)
        self._install(material, outcome)
        if self.metrics is not None and self.ca_not_after is not None:
            self.metrics.cert_not_after.labels("ca").set(self.ca_not_after.timestamp())
        for action in outcome.actions:
            log.info("self-managed certificates: %s", action)
        return outcome

    # --- helpers ---
    def _count_write(self, action: str, result: str) -> None:
        self.count("cert_secret_writes", action, result)

    def count(self, metric: str, *labels: str) -> None:
        if self.metrics is not None:
            getattr(self.metrics, metric).labels(*labels).inc()

    def read(self) -> Material | None:
        try:
            return Material.parse(self.api.get(self.policy.secret_path))
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def _body(
        self, base: dict[str, Any] | None, data: dict[str, bytes], trusted: str | None
    ) -> dict[str, Any]:
        p = self.policy
        body = dict(base or {"apiVersion": "v1", "kind": "Secret", "type": "Opaque"})
        metadata = dict(body.get("metadata") or {"name": p.secret_name, "namespace": p.namespace})
        metadata["labels"] = {**(metadata.get("labels") or {}), **LABELS}
        annotations = dict(metadata.get("annotations") or {})
        if trusted is None:
            annotations.pop(TRUSTED_ANNOTATION, None)
        else:
            annotations[TRUSTED_ANNOTATION] = trusted
        metadata["annotations"] = annotations
        body["metadata"] = metadata
        body["data"] = {key: b64(value) for key, value in data.items() if value}
        return body

    def _write(
        self, material: Material | None, data: dict[str, bytes], trusted: str | None, action: str
    ) -> Material | None:
        """Create or replace the Secret; None when another replica won the race (the caller re-reads)."""
        p = self.policy
        try:
            if material is None:
                body = self._body(None, data, trusted)
                written = self.api.create(f"/api/v1/namespaces/{p.namespace}/secrets", body)
            else:
                written = self.api.replace(p.secret_path, self._body(material.secret, data, trusted))
        except ApiError as err:
            if err.status in CONFLICTS:
                self._count_write(action, "conflict")
                log.info("self-managed certificates: another replica wrote the Secret first (%s)", action)
                return None
            self._count_write(action, "error")
            raise
        self._count_write(action, "success")
        return Material.parse(written)

    @staticmethod
    def _data(material: Material) -> dict[str, bytes]:
        data = {CA_CERT_OLD: material.old_ca_pem}
        if material.ca is not None:
            data.update({CA_CERT: material.ca.cert_pem, CA_KEY: material.ca.key_pem})
        if material.leaf is not None:
            data.update({TLS_CERT: material.leaf.cert_pem, TLS_KEY: material.leaf.key_pem})
        return data

    def _trusted_note(self, material: Material) -> str | None:
        if material.trusted is None:
            return None
        return f"{material.trusted[0]} {material.trusted[1].isoformat()}"

    # --- step 1: the Secret and its CA ---
    def _ensure_secret(self, outcome: Outcome) -> Material:
        p = self.policy
        for _ in range(5):
            now = self.clock()
            material = self.read()
            if material is None:
                ca = certs.generate_ca(validity=p.ca_validity, now=now)
                leaf = certs.generate_serving(ca, p.names, p.serving_validity, now=now)
                data = {
                    CA_CERT: ca.cert_pem,
                    CA_KEY: ca.key_pem,
                    TLS_CERT: leaf.cert_pem,
                    TLS_KEY: leaf.key_pem,
                }
                written = self._write(None, data, None, "create")
                if written is not None:
                    outcome.actions.append(
                        f"created Secret {p.secret_name} with a new CA and serving certificate"
                    )
                    return written
                continue
            reason = self._ca_roll_reason(material, now)
            if reason is None:
                return material
            ca = certs.generate_ca(validity=p.ca_validity, now=now)
            old = material.ca.cert_pem if material.ca is not None else material.old_ca_pem
            data = {**self._data(material), CA_CERT: ca.cert_pem, CA_KEY: ca.key_pem, CA_CERT_OLD: old}
            written = self._write(material, data, None, "rotate_ca")
            if written is not None:
                outcome.actions.append(f"new CA ({reason}); the previous one stays in the caBundle")
                return written
        raise RuntimeError(f"Secret {p.secret_name}: too many conflicting writes, retrying later")

    def _ca_roll_reason(self, material: Material, now: dt.datetime) -> str | None:
        if material.ca is None:
            return "the Secret holds no usable CA"
        ca = material.ca.cert
        if ca.not_valid_after_utc <= now:
            return "the CA expired"
        if ca.not_valid_before_utc > now + certs.BACKDATE:
            return "the CA is not valid yet"
        if certs.remaining(ca, now) < self.policy.ca_renew_before:
            if material.leaf is not None and not certs.issued_by(material.leaf.cert, ca):
                return None  # a roll is in progress: the serving certificate follows first
            return f"the CA ends at {ca.not_valid_after_utc.isoformat()}"
        return None

    # --- step 2: caBundle ---
    def _sync_bundles(self, material: Material, outcome: Outcome) -> Material:
        trusted: set[str] | None = None
        for kind, path in self.policy.configs:
            result = sync_bundle(self, kind, path, outcome)
            if result is None:
                continue
            material, in_bundle = result
            if in_bundle is not None:
                trusted = in_bundle if trusted is None else trusted & in_bundle
        outcome.trusted = trusted
        if material.ca is None:
            return material
        self.ca_not_after = material.ca.cert.not_valid_after_utc
        current = certs.fingerprint(material.ca.cert)
        covered = trusted is None or current in trusted
        if covered and (material.trusted is None or material.trusted[0] != current):
            note = f"{current} {self.clock().isoformat()}"
            written = self._write(material, self._data(material), note, "trust")
            material = written or self.read() or material
        return material

    # --- step 3: the serving certificate ---
    def _leaf_due(self, material: Material, now: dt.datetime) -> str | None:
        assert material.ca is not None
        if material.leaf is None:
            return "the Secret holds no usable serving certificate"
        leaf = material.leaf.cert
        if not certs.issued_by(leaf, material.ca.cert):
            return "the CA changed"
        if set(certs.san_names(leaf)) != set(self.policy.names):
            return "the names changed"
        if certs.remaining(leaf, now) < self.policy.serving_renew_before:
            return f"it ends at {leaf.not_valid_after_utc.isoformat()}"
        if leaf.not_valid_before_utc > now + certs.BACKDATE:
            return "it is not valid yet"
        return None

    def _leaf_usable(self, material: Material, now: dt.datetime) -> bool:
        """The current serving certificate still works: valid now and signed by a CA of the bundle."""
        if material.leaf is None:
            return False
        leaf = material.leaf.cert
        within = leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc
        return within and material.leaf_issuer(material.cas(now)) is not None

    def _ensure_leaf(self, material: Material, outcome: Outcome) -> Material:
        p = self.policy
        for _ in range(5):
            now = self.clock()
            if material.ca is None:
                return material
            reason = self._leaf_due(material, now)
            if reason is None:
                return material
            ca_print = certs.fingerprint(material.ca.cert)
            if self._leaf_usable(material, now) and material.leaf_issuer([material.ca.cert]) is None:
                # after a CA roll: the bundles must have trusted the new CA for a while first
                if material.trusted is None or material.trusted[0] != ca_print:
                    outcome.waiting = "the caBundle does not trust the new CA yet"
                    outcome.retry_in = min(p.check_interval, 5.0)
                    return material
                ready = material.trusted[1] + p.propagation_delay
                if now < ready:
                    outcome.waiting = f"the new CA is trusted since {material.trusted[1].isoformat()}"
                    outcome.retry_in = (ready - now).total_seconds()
                    return material
            leaf = certs.generate_serving(material.ca, p.names, p.serving_validity, now=now)
            data = {**self._data(material), TLS_CERT: leaf.cert_pem, TLS_KEY: leaf.key_pem}
            written = self._write(material, data, self._trusted_note(material), "renew")
            if written is not None:
                outcome.actions.append(
                    f"new serving certificate ({reason}), valid until {leaf.cert.not_valid_after_utc.isoformat()}"
                )
                return written
            material = self.read() or material  # adopt the winner's, then look again
        raise RuntimeError(f"Secret {p.secret_name}: too many conflicting writes, retrying later")

    # --- step 4: serve it ---
    def _install(self, material: Material, outcome: Outcome) -> None:
        if material.leaf is None:
            return
        now = self.clock()
        issuer = material.leaf_issuer(material.cas(now))
        if outcome.trusted is not None and (
            issuer is None or certs.fingerprint(issuer) not in outcome.trusted
        ):
            outcome.waiting = (
                "the caBundle does not trust the serving certificate yet; keeping the served one"
            )
            outcome.retry_in = min(self.policy.check_interval, 5.0)
            return
        cert_file, key_file = self.certs_dir / self.cert_name, self.certs_dir / self.key_name
        try:
            if (
                cert_file.read_bytes() == material.leaf.cert_pem
                and key_file.read_bytes() == material.leaf.key_pem
            ):
                return
        except OSError:
            pass
        certs.write_pair(self.certs_dir, material.leaf, self.cert_name, self.key_name)
        outcome.installed = True
        outcome.actions.append(
            f"serving certificate written to {self.certs_dir} "
            f"(valid until {material.leaf.cert.not_valid_after_utc.isoformat()})"
        )
        self.on_installed()


def from_settings(
    settings: Any, api: Api, metrics: Metrics | None = None, on_installed: Callable[[], Any] | None = None
) -> CertManager:
    """The manager as ``dynatrace-webhook serve --cert-mode self-managed`` configures it."""
    s = settings
    policy = Policy(
        namespace=s.namespace,
        service=s.service_name,
        extra_sans=tuple(s.cert_extra_sans),
        secret_name=s.cert_secret_name,
        mutating=tuple(s.mutating_webhook_configs),
        validating=tuple(s.validating_webhook_configs),
        ca_validity=s.ca_validity,
        ca_renew_before=s.ca_renew_before,
        serving_validity=s.cert_validity,
        serving_renew_before=s.cert_renew_before,
        propagation_delay=s.ca_bundle_propagation_delay,
        check_interval=s.cert_check_interval,
    )
    return CertManager(
        api,
        policy,
        s.certs_dir,
        cert_name=s.cert_name,
        key_name=s.key_name,
        metrics=metrics,
        on_installed=on_installed,
    )
