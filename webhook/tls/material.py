"""What the self-managed certificate Secret holds and which configurations it covers: the ``Policy`` (names,
validities, webhook configurations) and the ``Material`` (the Secret's content, parsed tolerantly)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from webhook.tls import certs
from webhook.tls.certs import CA_CERT, CA_CERT_OLD, CA_KEY, TLS_CERT, TLS_KEY, KeyPair

SECRET_NAME = "dynatrace-webhook-certs"
TRUSTED_ANNOTATION = "webhook.dynatrace.com/ca-trusted"  # "<CA sha256> <ISO time the bundles trusted it>"
ADMISSION = "/apis/admissionregistration.k8s.io/v1"
CONFIG_KINDS = {
    "mutating": f"{ADMISSION}/mutatingwebhookconfigurations",
    "validating": f"{ADMISSION}/validatingwebhookconfigurations",
}
LABELS = {
    "app.kubernetes.io/name": "dynatrace-webhook",
    "app.kubernetes.io/component": "webhook-certificates",
    "app.kubernetes.io/managed-by": "dynatrace-webhook",
}
CONFLICTS = (409, 422)  # 422: a JSON patch whose "test" failed (the configuration changed)


@dataclass(frozen=True)
class Policy:
    namespace: str = "dynatrace"
    service: str = "dynatrace-webhook"
    extra_sans: tuple[str, ...] = ()
    secret_name: str = SECRET_NAME
    mutating: tuple[str, ...] = ()
    validating: tuple[str, ...] = ()
    ca_validity: dt.timedelta = dt.timedelta(days=365)
    ca_renew_before: dt.timedelta = dt.timedelta(days=30)
    serving_validity: dt.timedelta = dt.timedelta(days=7)
    serving_renew_before: dt.timedelta = dt.timedelta(hours=12)
    propagation_delay: dt.timedelta = dt.timedelta(seconds=30)
    check_interval: float = 300.0

    @property
    def names(self) -> list[str]:
        return certs.serving_names(self.service, self.namespace, self.extra_sans)

    @property
    def secret_path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/secrets/{self.secret_name}"

    @property
    def configs(self) -> list[tuple[str, str]]:
        """(kind, path) of every webhook configuration whose caBundle is managed."""
        return [(kind, f"{CONFIG_KINDS[kind]}/{name}") for kind, names in self.kinds() for name in names]

    def kinds(self) -> Iterable[tuple[str, tuple[str, ...]]]:
        return (("mutating", self.mutating), ("validating", self.validating))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _cert(pem: bytes) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem) if pem else None
    except ValueError:
        return None


@dataclass
class Material:
    """The Secret's content, parsed tolerantly: anything unreadable is treated as missing."""

    secret: dict[str, Any]
    ca: KeyPair | None
    old_ca_pem: bytes
    leaf: KeyPair | None
    trusted: tuple[str, dt.datetime] | None  # (CA fingerprint, since)

    @classmethod
    def parse(cls, secret: dict[str, Any]) -> Material:
        data = secret.get("data") or {}
        ca_pem, ca_key = unb64(data.get(CA_CERT)), unb64(data.get(CA_KEY))
        tls_pem, tls_key = unb64(data.get(TLS_CERT)), unb64(data.get(TLS_KEY))
        ca = KeyPair(ca_pem, ca_key) if _cert(ca_pem) and certs.key_matches(ca_pem, ca_key) else None
        if ca is not None and not certs.is_ca(ca.cert):
            ca = None
        leaf = KeyPair(tls_pem, tls_key) if _cert(tls_pem) and certs.key_matches(tls_pem, tls_key) else None
        old = unb64(data.get(CA_CERT_OLD))
        trusted = None
        note = ((secret.get("metadata") or {}).get("annotations") or {}).get(TRUSTED_ANNOTATION, "")
        try:
            digest, since = note.split(" ", 1)
            trusted = (digest, dt.datetime.fromisoformat(since))
        except (ValueError, AttributeError):
            pass
        return cls(secret, ca, old if _cert(old) else b"", leaf, trusted)

    @property
    def resource_version(self) -> str:
        return str((self.secret.get("metadata") or {}).get("resourceVersion") or "")

    def cas(self, now: dt.datetime) -> list[x509.Certificate]:
        """The CAs the bundle should hold: the current one first, then the previous one while it is valid."""
        result = [self.ca.cert] if self.ca else []
        old = _cert(self.old_ca_pem)
        if old is not None and old.not_valid_after_utc > now and all(old != c for c in result):
            result.append(old)
        return result

    def bundle(self, now: dt.datetime) -> bytes:
        return b"".join(c.public_bytes(Encoding.PEM) for c in self.cas(now))

    def leaf_issuer(self, cas: Iterable[x509.Certificate]) -> x509.Certificate | None:
        if self.leaf is None:
            return None
        leaf = self.leaf.cert
        return next((ca for ca in cas if certs.issued_by(leaf, ca)), None)


def fingerprints(bundle: bytes) -> set[str]:
    try:
        return {certs.fingerprint(c) for c in x509.load_pem_x509_certificates(bundle)} if bundle else set()
    except ValueError:
        return set()
