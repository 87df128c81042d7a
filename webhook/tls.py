"""The TLS server context, with certificates reloaded from disk without a restart.

Every handshake asks the watcher for the current context (through the SNI callback, which OpenSSL calls
for every ClientHello, with or without SNI), so a renewed certificate is served to new connections while
established ones finish on the old one. A pair that fails to load keeps the previous pair in service.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

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
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.on_reload = on_reload or (lambda ok: None)
        self._context: ssl.SSLContext | None = None
        self._digest = b""
        self.not_after: dt.datetime | None = None
        self._server_context: ssl.SSLContext | None = None

    @property
    def loaded(self) -> bool:
        return self._context is not None

    @property
    def valid(self) -> bool:
        """A certificate is loaded and has not expired."""
        return self.not_after is not None and self.not_after > dt.datetime.now(dt.UTC)

    def poll(self) -> bool:
        """Load the pair when its content changed; True when a new pair is now served."""
        try:
            cert_pem = self.cert_file.read_bytes()
            key_pem = self.key_file.read_bytes()
        except OSError as err:
            if self.loaded:
                return False  # deleted or unreadable: keep serving what we have
            log.warning("certificate not loaded from %s: %s", self.cert_file, err)
            return False
        digest = hashlib.sha256(cert_pem + b"\0" + key_pem).digest()
        if digest == self._digest:
            return False
        try:
            context = make_context(self.cert_file, self.key_file)
            cert = x509.load_pem_x509_certificate(cert_pem)
        except (ssl.SSLError, OSError, ValueError) as err:
            self._digest = digest  # do not retry the same broken content every poll
            log.error("certificate in %s failed to load, keeping the previous one: %s", self.cert_file, err)
            self.on_reload(False)
            return False
        self._context = context
        self._digest = digest
        self.not_after = cert.not_valid_after_utc
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
