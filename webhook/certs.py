"""CA and serving certificates with the ``cryptography`` package (ECDSA P-256, as upstream)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"


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


def service_names(service: str, namespace: str) -> list[str]:
    """The DNS names kube-apiserver may use for a Service."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def generate_ca(
    common_name: str = "dynatrace-webhook-ca", validity: dt.timedelta = dt.timedelta(days=365)
) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def generate_serving(
    ca: KeyPair, names: Iterable[str], validity: dt.timedelta = dt.timedelta(days=7)
) -> KeyPair:
    """A serving certificate signed by ``ca`` whose SANs are ``names`` (DNS names or IP addresses)."""
    names = list(names)
    ca_cert = ca.cert
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "webhook")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def remaining(cert: x509.Certificate) -> dt.timedelta:
    return cert.not_valid_after_utc - _now()


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
        san = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        covered = {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
            str(v) for v in san.get_values_for_type(x509.IPAddress)
        }
        if (
            ca_path.exists()
            and key_path.exists()
            and remaining(current) > dt.timedelta(hours=1)
            and set(names) <= covered
        ):
            return ca_path
    except (OSError, ValueError, x509.ExtensionNotFound):
        pass
    ca = generate_ca("dynatrace-webhook-dev-ca", dt.timedelta(days=30))
    serving = generate_serving(ca, names, dt.timedelta(days=30))
    ca_path.write_bytes(ca.cert_pem)
    key_path.write_bytes(serving.key_pem)
    key_path.chmod(0o600)
    cert_path.write_bytes(serving.cert_pem)
    return ca_path
