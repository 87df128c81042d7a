"""CA and serving certificates with the ``cryptography`` package (ECDSA P-256, as upstream).

Generation (``generate_ca``, ``generate_serving``), inspection (``describe``, ``san_names``) and the trust
check the API server makes when it calls the webhook (``trust_problems``: chain to a CA of the caBundle,
the name in the SANs, every certificate within its validity). All functions take ``now`` so callers with a
clock of their own (the certificate manager, tests) decide what "now" is.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.durations import format_duration
from webhook.durations import parse_duration as parse_duration  # re-exported: the certs tool and its tests

CA_CERT, CA_KEY, CA_CERT_OLD, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "ca.crt.old", "tls.crt", "tls.key"
BACKDATE = dt.timedelta(minutes=5)  # tolerate clocks of other machines that run a little behind


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --- names ---
def service_names(service: str, namespace: str) -> list[str]:
    """The DNS names kube-apiserver may use for a Service."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def serving_names(service: str, namespace: str, extra: Iterable[str] = ()) -> list[str]:
    """The Service's names, then the extra DNS names or IP addresses; duplicates dropped, order kept."""
    names: list[str] = []
    for name in [*service_names(service, namespace), *extra]:
        name = name.strip()
        if name and name not in names:
            names.append(name)
    return names


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


# --- generation ---
def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """Signing only: a CA also signs certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=ca,
        crl_sign=ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def generate_ca(
    common_name: str = "dynatrace-webhook-ca",
    validity: dt.timedelta = dt.timedelta(days=365),
    *,
    now: dt.datetime | None = None,
) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = now or _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def generate_serving(
    ca: KeyPair,
    names: Iterable[str],
    validity: dt.timedelta = dt.timedelta(days=7),
    *,
    now: dt.datetime | None = None,
) -> KeyPair:
    """A serving certificate signed by ``ca`` whose SANs are ``names`` (DNS names or IP addresses).

    It never outlives its CA: the end of its validity is capped at the CA's.
    """
    names = list(names)
    if not names:
        raise ValueError("a serving certificate needs at least one DNS name or IP address")
    ca_cert = ca.cert
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = now or _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


# --- inspection ---
def remaining(cert: x509.Certificate, now: dt.datetime | None = None) -> dt.timedelta:
    return cert.not_valid_after_utc - (now or _now())


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def load_certificates(pem: bytes, what: str = "input") -> list[x509.Certificate]:
    """All certificates of a PEM text; ValueError naming ``what`` when there is none or one is broken."""
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError(f"{what} holds no PEM certificate (expected '-----BEGIN CERTIFICATE-----')")
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as err:
        raise ValueError(f"{what} holds a certificate that cannot be parsed: {err}") from None


def decode_bundle(data: bytes) -> bytes:
    """A caBundle as PEM: accepts PEM as is, or the base64 of PEM as it appears in a webhook configuration."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        return text + b"\n"
    try:
        decoded = base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return data
    return decoded if b"-----BEGIN" in decoded else data


def san_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.DNSName)] + [
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    ]


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def describe(cert: x509.Certificate, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or _now()
    left = remaining(cert, now)
    if cert.not_valid_before_utc > now:
        state = "not yet valid"
    elif left <= dt.timedelta(0):
        state = f"expired {format_duration(-left)} ago"
    else:
        state = f"valid for another {format_duration(left)}"
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "ca": is_ca(cert),
        "sans": san_names(cert),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "remaining_seconds": int(left.total_seconds()),
        "state": state,
        "sha256": fingerprint(cert),
    }


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """``cert`` carries a valid signature of ``ca`` (and names it as issuer)."""
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def name_matches(name: str, sans: Iterable[str]) -> bool:
    """``name`` (DNS name or IP address) is covered by one of ``sans``; ``*.`` matches one left-most label."""
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    wanted = name.lower().rstrip(".")
    for san in sans:
        if ip is not None:
            try:
                if ipaddress.ip_address(san) == ip:
                    return True
            except ValueError:
                continue
            continue
        pattern = san.lower().rstrip(".")
        if pattern == wanted:
            return True
        if pattern.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def _validity_problem(cert: x509.Certificate, what: str, now: dt.datetime) -> str | None:
    if cert.not_valid_before_utc > now:
        return f"{what} is not valid before {cert.not_valid_before_utc.isoformat()}"
    if cert.not_valid_after_utc <= now:
        return f"{what} expired at {cert.not_valid_after_utc.isoformat()}"
    return None


def trust_problems(
    bundle_pem: bytes, cert_pem: bytes, name: str, now: dt.datetime | None = None
) -> list[str]:
    """What keeps a client that trusts only ``bundle_pem`` from accepting ``cert_pem`` for ``name``.

    An empty list means trusted: the serving certificate is signed by a CA of the bundle, names ``name``
    in its SANs, and both are within their validity. Unparseable input raises ValueError.
    """
    now = now or _now()
    cas = load_certificates(bundle_pem, "the CA bundle")
    chain = load_certificates(cert_pem, "the serving certificate")
    leaf, intermediates = chain[0], chain[1:]
    problems: list[str] = []
    subject = leaf.subject.rfc4514_string()
    if problem := _validity_problem(leaf, f"the serving certificate ({subject})", now):
        problems.append(problem)
    sans = san_names(leaf)
    if not name_matches(name, sans):
        problems.append(
            f"the serving certificate is not valid for {name!r}; its names are: {', '.join(sans) or 'none'}"
        )
    issuers = [ca for ca in cas if issued_by(leaf, ca)]
    if not issuers and not intermediates:
        bundle_subjects = "; ".join(sorted({ca.subject.rfc4514_string() for ca in cas}))
        problems.append(
            f"no CA of the bundle signed the serving certificate: it names {leaf.issuer.rfc4514_string()!r} "
            f"as issuer; the bundle holds {len(cas)} CA(s) ({bundle_subjects}) and none has the key that "
            "signed it"
        )
    elif issuers and all(_validity_problem(ca, "", now) for ca in issuers):
        problems.append(
            "the CA that signed the serving certificate is expired or not yet valid: "
            + "; ".join(
                str(_validity_problem(ca, f"CA {ca.subject.rfc4514_string()}", now)) for ca in issuers
            )
        )
    if problems:
        return problems
    # the checks above explain the usual failures; the full WebPKI path validation has the last word
    from cryptography.x509 import verification

    try:
        server = verification.DNSName(name) if not _is_ip(name) else None
        subject_name: Any = server or verification.IPAddress(ipaddress.ip_address(name))
        verifier = (
            verification.PolicyBuilder()
            .store(verification.Store(cas))
            .time(now)
            .build_server_verifier(subject_name)
        )
        verifier.verify(leaf, intermediates)
    except (verification.VerificationError, ValueError) as err:
        problems.append(f"certificate path validation failed: {err}")
    return problems


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def key_matches(cert_pem: bytes, key_pem: bytes) -> bool:
    """The private key belongs to the (first) certificate."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(
        cert.public_key().public_bytes(serialization.Encoding.DER, public)
        == key.public_key().public_bytes(serialization.Encoding.DER, public)
    )


# --- files ---
def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` in one rename, so a reader sees the old content or the new, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


def write_pair(directory: Path, pair: KeyPair, cert_name: str = TLS_CERT, key_name: str = TLS_KEY) -> None:
    """Write a serving pair: the key first, then the certificate (the watcher keys on both)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / key_name, pair.key_pem, 0o600)
    write_atomic(directory / cert_name, pair.cert_pem)


def ensure_dev_certificates(directory: Path, names: Iterable[str]) -> Path:
    """Local development: make sure ``directory`` holds a CA and a serving certificate valid for ``names``.

    Existing files are reused while they are valid for at least another hour and cover the names;
    otherwise a new CA and certificate are written. Returns the CA certificate path (for ``curl --cacert``).
    """
    names = list(names)
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = directory / CA_CERT, directory / TLS_CERT, directory / TLS_KEY
    try:
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if (
            ca_path.exists()
            and key_path.exists()
            and remaining(current) > dt.timedelta(hours=1)
            and set(names) <= set(san_names(current))
        ):
            return ca_path
    except (OSError, ValueError):
        pass
    ca = generate_ca("dynatrace-webhook-dev-ca", dt.timedelta(days=30))
    serving = generate_serving(ca, names, dt.timedelta(days=30))
    write_atomic(ca_path, ca.cert_pem)
    write_pair(directory, serving)
    return ca_path
