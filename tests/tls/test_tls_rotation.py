"""Certificates rotating under a real TLS server: hot reload, no failed handshakes, no dropped connections."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.support.fakeapi import FakeApi
from tests.tls.test_certmanager import HOST, MWC, POLICY, SECRET, configured_api
from webhook.config import Settings
from webhook.server import Webhook
from webhook.tls import certs
from webhook.tls.manager import CertManager
from webhook.tls.material import Policy
from webhook.tls.serving import CertificateWatcher

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture()
def api() -> FakeApi:
    return configured_api()


class EchoServer:
    """A plain asyncio TLS server on 127.0.0.1 in its own thread: echoes lines until the client closes."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> EchoServer:
        self.thread.start()
        start = asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(5)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def tls_connect(port: int, bundle: bytes, name: str = HOST) -> ssl.SSLSocket:
    context = ssl.create_default_context(cadata=bundle.decode())
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        return context.wrap_socket(raw, server_hostname=name)
    except BaseException:
        raw.close()
        raise


def echo(conn: ssl.SSLSocket, text: bytes = b"ping\n") -> bytes:
    conn.sendall(text)
    return conn.recv(64)


def served(conn: ssl.SSLSocket) -> x509.Certificate:
    der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def bundle_in(api: FakeApi) -> bytes:
    return base64.b64decode(api.get(MWC)["webhooks"][0]["clientConfig"]["caBundle"])


def test_client_trusting_only_the_bundle_never_fails_while_ca_and_certificate_rotate(api, tmp_path):
    # every check renews: the CA rolls, then the serving certificate follows once the bundle trusted it 0.5 s
    policy = Policy(
        **{
            **POLICY.__dict__,
            "ca_validity": dt.timedelta(days=1),
            "ca_renew_before": dt.timedelta(days=2),
            "serving_validity": dt.timedelta(hours=1),
            "serving_renew_before": dt.timedelta(hours=2),
            "propagation_delay": dt.timedelta(seconds=0.5),
        }
    )
    watcher = CertificateWatcher(tmp_path / "tls.crt", tmp_path / "tls.key")
    manager = CertManager(api, policy, tmp_path, on_installed=watcher.poll)
    manager.reconcile()
    assert watcher.loaded and watcher.valid

    failures: list[str] = []
    leaves: set[str] = set()
    issuers: set[str] = set()
    handshakes = 0
    stop = threading.Event()

    def client(port: int) -> None:
        nonlocal handshakes
        while not stop.is_set():
            try:
                with tls_connect(port, bundle_in(api)) as conn:  # the bundle as the API server has it now
                    assert echo(conn) == b"ping\n"
                    cert = served(conn)
                    leaves.add(cert.fingerprint(hashes.SHA256()).hex())
                    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
                    issuers.add(str(aki.key_identifier))
                    handshakes += 1
            except Exception as err:
                failures.append(repr(err))

    with EchoServer(watcher.server_context()) as server:
        long_lived = tls_connect(server.port, bundle_in(api))
        first = served(long_lived).fingerprint(hashes.SHA256())
        thread = threading.Thread(target=client, args=(server.port,), daemon=True)
        thread.start()
        cas = {base64.b64decode(api.objects[SECRET]["data"]["ca.crt"])}
        deadline = time.monotonic() + 15
        while len(cas) < 4 and time.monotonic() < deadline:  # the first CA and three rolls
            manager.reconcile()
            cas.add(base64.b64decode(api.objects[SECRET]["data"]["ca.crt"]))
            time.sleep(0.05)
        time.sleep(0.6)  # the last roll's serving certificate too
        manager.reconcile()
        time.sleep(0.2)
        stop.set()
        thread.join(10)
        # an established connection keeps working on the certificate it started with
        assert echo(long_lived, b"still here\n") == b"still here\n"
        assert served(long_lived).fingerprint(hashes.SHA256()) == first
        long_lived.close()

    assert failures == []
    assert len(cas) == 4
    assert handshakes >= 10
    assert len(issuers) == 4  # the client saw certificates signed by every CA
    assert len(leaves) >= 4
    assert first.hex() in leaves


def test_a_changed_pair_is_served_to_new_connections_within_one_poll(tmp_path):
    ca = certs.generate_ca()
    certs.write_pair(tmp_path, certs.generate_serving(ca, ["localhost"]))
    results: list[bool] = []
    watcher = CertificateWatcher(tmp_path / "tls.crt", tmp_path / "tls.key", on_reload=results.append)
    assert watcher.poll()
    with EchoServer(watcher.server_context()) as server:
        with tls_connect(server.port, ca.cert_pem, "localhost") as conn:
            old = served(conn)
        renewed = certs.generate_serving(ca, ["localhost"])
        certs.write_pair(tmp_path, renewed)
        assert watcher.poll()
        with tls_connect(server.port, ca.cert_pem, "localhost") as conn:
            assert served(conn) == renewed.cert != old
        # broken content: logged, counted, and the previous pair stays in service
        (tmp_path / "tls.crt").write_bytes(
            b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"
        )
        assert not watcher.poll()
        assert not watcher.poll()  # the same broken content is not retried (nor counted) every poll
        with tls_connect(server.port, ca.cert_pem, "localhost") as conn:
            assert served(conn) == renewed.cert
    assert results == [True, True, False]
    assert watcher.valid


def test_a_pair_replaced_while_it_is_read_is_retried_not_counted_as_failure(tmp_path, monkeypatch):
    ca = certs.generate_ca()
    certs.write_pair(tmp_path, certs.generate_serving(ca, ["localhost"]))
    results: list[bool] = []
    watcher = CertificateWatcher(tmp_path / "tls.crt", tmp_path / "tls.key", on_reload=results.append)
    watcher.poll()
    new = certs.generate_serving(ca, ["localhost"])
    # the writer has replaced the certificate, and replaces the key while the watcher loads the pair
    certs.write_atomic(tmp_path / "tls.crt", new.cert_pem)
    import webhook.tls.serving

    real = webhook.tls.serving.make_context
    calls: list[int] = []

    def load_while_writing(cert_file: Path, key_file: Path) -> ssl.SSLContext:
        calls.append(1)
        try:
            return real(cert_file, key_file)
        finally:
            if len(calls) == 1:
                certs.write_atomic(tmp_path / "tls.key", new.key_pem, 0o600)

    monkeypatch.setattr(webhook.tls.serving, "make_context", load_while_writing)
    assert watcher.poll()
    assert results == [True, True]
    assert len(calls) == 2
    assert watcher.fingerprint == new.cert.fingerprint(hashes.SHA256()).hex()


def test_expired_certificate_is_not_valid_and_fails_readiness(tmp_path):
    past = NOW - dt.timedelta(days=10)
    ca = certs.generate_ca(validity=dt.timedelta(days=30), now=past)
    certs.write_pair(tmp_path, certs.generate_serving(ca, ["localhost"], dt.timedelta(days=1), now=past))
    webhook = Webhook(Settings(certs_dir=tmp_path))
    assert webhook.watcher.poll()
    assert webhook.watcher.loaded
    assert not webhook.watcher.valid
    assert webhook.readiness()["certificate_valid"] is False
    # a valid pair replaces it, and readiness follows
    certs.write_pair(tmp_path, certs.generate_serving(ca, ["localhost"]))
    assert webhook.watcher.poll()
    assert webhook.readiness()["certificate_valid"] is True


def test_an_expired_pair_does_not_replace_a_valid_one(tmp_path):
    ca = certs.generate_ca()
    good = certs.generate_serving(ca, ["localhost"])
    certs.write_pair(tmp_path, good)
    results: list[bool] = []
    watcher = CertificateWatcher(tmp_path / "tls.crt", tmp_path / "tls.key", on_reload=results.append)
    watcher.poll()
    past = NOW - dt.timedelta(days=10)
    certs.write_pair(tmp_path, certs.generate_serving(ca, ["localhost"], dt.timedelta(days=1), now=past))
    assert not watcher.poll()
    assert results == [True, False]
    assert watcher.valid and watcher.fingerprint == good.cert.fingerprint(hashes.SHA256()).hex()


@pytest.mark.parametrize(
    ("offset", "valid"),
    [
        (dt.timedelta(0), True),
        (dt.timedelta(days=7, minutes=1), False),  # after notAfter
        (-dt.timedelta(minutes=10), False),  # before notBefore (which is backdated 5 minutes)
    ],
)
def test_validity_follows_the_clock(tmp_path, offset, valid):
    ca = certs.generate_ca(now=NOW)
    certs.write_pair(tmp_path, certs.generate_serving(ca, ["localhost"], now=NOW))
    watcher = CertificateWatcher(tmp_path / "tls.crt", tmp_path / "tls.key", clock=lambda: NOW + offset)
    watcher.poll()
    assert watcher.valid is valid


def test_nothing_loaded_is_not_valid(tmp_path):
    watcher = CertificateWatcher(tmp_path / "tls.crt", tmp_path / "tls.key")
    assert not watcher.poll()
    assert not watcher.loaded and not watcher.valid
    with pytest.raises(RuntimeError, match="no certificate loaded"):
        watcher.server_context()
