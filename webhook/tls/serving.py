"""The TLS server context, with certificates reloaded from disk without a restart.

Every handshake asks the watcher for the current context (through the SNI callback, which OpenSSL calls
for every ClientHello, with or without SNI), so a renewed certificate is served to new connections while
established ones finish on the old one. A pair that fails to load keeps the previous pair in service; so
does an expired pair offered while the current one is still valid.

The certificate and key are two files that a writer (kubelet's Secret volume, the self-managed certificate
manager, an operator) replaces one after the other. A poll that reads the files while they change could see
a new certificate with an old key: the watcher reads both before and after loading and only accepts a load
whose content did not change underneath it, so a half-written pair is retried, never counted as a failure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

log = logging.getLogger(__name__)


def make_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")  # TLS 1.2 suites; TLS 1.3 suites are all strong
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


class CertificateWatcher:
    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        on_reload: Callable[[bool], None] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.on_reload = on_reload or (lambda ok: None)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._context: ssl.SSLContext | None = None
        self._digest = b""
        self._lock = threading.Lock()
        self.not_before: dt.datetime | None = None
        self.not_after: dt.datetime | None = None
        self.fingerprint = ""  # SHA-256 of the served certificate (DER), hex
        self._server_context: ssl.SSLContext | None = None
        self._missing = False  # the files were unreadable at the last poll

    @property
    def loaded(self) -> bool:
        return self._context is not None

    @property
    def valid(self) -> bool:
        """A certificate is loaded and is within its validity period right now."""
        if self.not_after is None or self.not_before is None:
            return False
        now = self.clock()
        return self.not_before <= now < self.not_after

    def _read(self) -> tuple[bytes, bytes] | None:
        try:
            pair = self.cert_file.read_bytes(), self.key_file.read_bytes()
        except OSError as err:
            if not self.loaded:
                log.warning("certificate not loaded from %s: %s", self.cert_file, err)
            elif not self._missing:  # deleted or unreadable later: keep serving what we have, say so once
                log.error(
                    "certificate files unreadable, serving the loaded certificate until they return: %s", err
                )
            self._missing = True
            return None
        if self._missing:
            log.info("certificate files in %s are readable again", self.cert_file.parent)
            self._missing = False
        return pair

    def poll(self) -> bool:
        """Load the pair when its content changed; True when a new pair is now served. Thread-safe."""
        with self._lock:
            for _ in range(3):
                outcome = self._poll_once()
                if outcome is not None:
                    return outcome
            return False  # still changing: the next poll picks up the settled content

    def _poll_once(self) -> bool | None:
        """True/False as ``poll``; None when the files changed while they were being loaded."""
        before = self._read()
        if before is None:
            return False
        digest = hashlib.sha256(before[0] + b"\0" + before[1]).digest()
        if digest == self._digest:
            return False
        error: Exception | None = None
        try:
            context = make_context(self.cert_file, self.key_file)
            cert = x509.load_pem_x509_certificate(before[0])
        except (ssl.SSLError, OSError, ValueError) as err:
            error = err
        if self._read() != before:
            return None  # a writer is replacing the pair right now: what was loaded may be a mix
        if error is None and self.valid and cert.not_valid_after_utc <= self.clock():
            error = ValueError(f"the new certificate expired at {cert.not_valid_after_utc.isoformat()}")
        if error is not None:
            self._digest = digest  # do not retry the same broken content every poll
            log.error("certificate in %s failed to load, keeping the previous one: %s", self.cert_file, error)
            self.on_reload(False)
            return False
        self._context = context
        self._digest = digest
        self.not_before = cert.not_valid_before_utc
        self.not_after = cert.not_valid_after_utc
        self.fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        log.info(
            "serving certificate loaded from %s (valid until %s)", self.cert_file, self.not_after.isoformat()
        )
        self.on_reload(True)
        return True

    def _select(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, ctx: ssl.SSLContext
    ) -> None:
        current = self._context
        if current is not None and current is not ctx:
            sslobj.context = current
        return None

    def server_context(self) -> ssl.SSLContext:
        """The context to give the server: the first loaded pair, switching to the newest on each handshake."""
        if self._server_context is None:
            if self._context is None:
                raise RuntimeError(f"no certificate loaded from {self.cert_file}")
            self._server_context = self._context
            self._server_context.sni_callback = self._select
        return self._server_context
