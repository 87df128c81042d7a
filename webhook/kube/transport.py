"""How ``KubeApi`` reaches the API server: one request in, the urllib3 response out (unread, so watches stream).

``connect(kubeconfig)`` reads the pod's service account in a cluster, else a kubeconfig, the official client's
way (``KUBERNETES_SERVICE_HOST``/``_PORT`` and the service account's files first; ``KUBECONFIG`` or
``~/.kube/config`` next). What a webhook's deployment and the usual kubeconfigs hold — the service account's
token (read again every minute, as bound tokens rotate), a token or token file, a client certificate, the
CA, ``insecure-skip-tls-verify``, ``tls-server-name`` — is served by ``Direct``, urllib3 alone, without
importing the official ``kubernetes`` client (a tenth of a second and 11 MiB before the first list). Anything
else (exec credential plugins, auth providers, several files in ``KUBECONFIG``, a proxy in the kubeconfig or
the environment) is read and served by the official client (``Official``), as before.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import orjson
import urllib3
from urllib3.util.retry import Retry

from webhook.kube.api import ApiError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD = 60.0  # seconds: the official client reads the service account's token again every minute
PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
# the kubeconfig entries Direct serves; any other makes the official client read the file
CLUSTER_KEYS = frozenset(
    (
        "server",
        "certificate-authority",
        "certificate-authority-data",
        "insecure-skip-tls-verify",
        "tls-server-name",
    )
)
USER_KEYS = frozenset(
    ("token", "tokenFile", "client-certificate", "client-certificate-data", "client-key", "client-key-data")
)


def retries() -> Retry:
    """Connection errors are retried, HTTP statuses never: 429/5xx and their Retry-After reach the caller (the
    reflector's backoff), instead of blocking a thread inside urllib3."""
    return Retry(total=2, status=0, redirect=0, respect_retry_after_header=False)


def retry_after(headers: Any) -> float | None:
    """Seconds of a ``Retry-After`` header, None when absent or not a number."""
    try:
        value = headers.get("Retry-After") if headers else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def timeout_of(value: Any) -> urllib3.Timeout:
    """Seconds for the whole request, or (connect, read), as the official client takes them."""
    if isinstance(value, tuple):
        return urllib3.Timeout(connect=value[0], read=value[1])
    return urllib3.Timeout(total=value)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None
    timeout: Any  # seconds for the whole request, or (connect, read)


class Transport(Protocol):
    def request(self, request: Request) -> Any:
        """The urllib3 response, unread; an error below HTTP raises."""
        ...


def keepalive_options() -> list[tuple[int, int, int]]:
    """urllib3's socket options (no Nagle) with TCP keepalive as client-go asks for it: an idle watch is
    probed after 30 s and dropped after 9 unanswered probes 15 s apart."""
    options = list(urllib3.connection.HTTPConnection.default_socket_options)
    options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 9)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return options


class Direct:
    """urllib3 to one API server with a CA, a client certificate and a bearer token (``token()``)."""

    def __init__(
        self,
        host: str,
        *,
        ca_file: str | None = None,
        ca_data: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        verify: bool = True,
        server_name: str | None = None,
        token: Callable[[], str] | None = None,
        pool_size: int = (os.cpu_count() or 1) * 5,
    ) -> None:
        self.host = host.rstrip("/")
        self.token = token
        tls: dict[str, Any] = {}
        if self.host.startswith("https:"):
            tls = {
                "cert_reqs": "CERT_REQUIRED" if verify else "CERT_NONE",
                "ca_certs": ca_file,
                "ca_cert_data": ca_data,
                "cert_file": cert_file,
                "key_file": key_file,
            }
            if server_name:
                tls["server_hostname"] = server_name
        self.pool = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, retries=retries(), socket_options=keepalive_options(), **tls
        )

    def request(self, request: Request) -> Any:
        query = request.query
        url = self.host + request.path + (f"?{urlencode(query, quote_via=quote)}" if query else "")
        headers = request.headers
        if self.token is not None:
            headers = {**headers, "Authorization": self.token()}
        return self.pool.request(
            request.method,
            url,
            body=request.body,
            headers=headers,
            timeout=timeout_of(request.timeout),
            preload_content=False,
        )


class Official:
    """The official client's ``ApiClient`` (its configuration from any kubeconfig it understands)."""

    def __init__(self, api_client: Any) -> None:
        self.api = api_client

    def request(self, request: Request) -> Any:
        from kubernetes.client.exceptions import ApiException

        body = request.body
        try:
            method, url, headers, data, _ = self.api.param_serialize(
                method=request.method,
                resource_path=request.path,
                query_params=request.query,
                header_params=request.headers,
                body=None if body is None else orjson.loads(body),  # it serialises JSON bodies itself
                auth_settings=["BearerToken"],
            )
            call = self.api.call_api(
                method, url, header_params=headers, body=data, _request_timeout=request.timeout
            )
        except ApiException as err:
            raise ApiError(err.status or 500, err.reason or "", retry_after(err.headers)) from None
        return call.response


class FileToken:
    """``Bearer <the file's content>``, read again every ``reread`` seconds (rotated service account tokens)."""

    def __init__(self, path: Path, reread: float = TOKEN_REREAD) -> None:
        self.path = path
        self.reread = reread
        self._value = ""
        self._until = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if time.monotonic() >= self._until:
                content = self.path.read_text().strip()
                if not content:
                    raise ValueError(f"token file {self.path} is empty")
                self._value, self._until = f"Bearer {content}", time.monotonic() + self.reread
            return self._value


def _proxied(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name) for name in PROXY_VARIABLES)


def in_cluster(environ: Mapping[str, str], account: Path = SERVICE_ACCOUNT) -> Direct | None:
    """The pod's service account, when the environment and its files say the process runs in a pod."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    token, ca = account / "token", account / "ca.crt"
    if not host or not port or not token.is_file() or not ca.is_file():
        return None
    host = f"[{host}]" if ":" in host else host
    return Direct(f"https://{host}:{port}", ca_file=str(ca), token=FileToken(token))


_data_dir: str | None = None


def _data_file(data: str) -> str:
    """A file holding base64 ``data`` decoded (urllib3 reads client certificates and keys from files),
    removed when the process exits."""
    global _data_dir
    if _data_dir is None:
        _data_dir = tempfile.mkdtemp(prefix="kubeconfig-")
        atexit.register(shutil.rmtree, _data_dir, True)
    fd, path = tempfile.mkstemp(dir=_data_dir)
    with os.fdopen(fd, "wb") as out:
        out.write(base64.b64decode(data))
    return path


def _named(entries: Any, name: Any, key: str) -> dict[str, Any] | None:
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and entry.get("name") == name and isinstance(entry.get(key), dict):
            return entry[key]
    return None


def from_kubeconfig(path: Path) -> Direct | None:
    """``Direct`` from a kubeconfig that holds only what it serves; None for anything else."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(path.read_text(), Loader=loader)
    if not isinstance(doc, dict):
        return None
    context = _named(doc.get("contexts"), doc.get("current-context"), "context")
    cluster = _named(doc.get("clusters"), (context or {}).get("cluster"), "cluster")
    user = _named(doc.get("users"), (context or {}).get("user"), "user") or {}
    if context is None or cluster is None or not isinstance(cluster.get("server"), str):
        return None
    if not CLUSTER_KEYS.issuperset(cluster) or not USER_KEYS.issuperset(user):
        return None

    def file(entry: dict[str, Any], key: str) -> str | None:
        if entry.get(f"{key}-data"):
            return _data_file(str(entry[f"{key}-data"]))
        return str(path.parent / str(entry[key])) if entry.get(key) else None

    token: Callable[[], str] | None = None
    if user.get("token"):
        static = f"Bearer {user['token']}"
        token = lambda: static  # noqa: E731
    elif user.get("tokenFile"):
        token = FileToken(path.parent / str(user["tokenFile"]))
    ca_data = cluster.get("certificate-authority-data")
    return Direct(
        cluster["server"],
        ca_file=None if ca_data else file(cluster, "certificate-authority"),
        ca_data=base64.b64decode(str(ca_data)).decode() if ca_data else None,
        cert_file=file(user, "client-certificate"),
        key_file=file(user, "client-key"),
        verify=not cluster.get("insecure-skip-tls-verify"),
        server_name=cluster.get("tls-server-name"),
        token=token,
    )


def connect(kubeconfig: str | None, environ: Mapping[str, str] | None = None) -> Transport:
    """The transport to the API server: in-cluster configuration in a pod, else the kubeconfig (``kubeconfig``,
    else ``KUBECONFIG``, else ``~/.kube/config``)."""
    env = os.environ if environ is None else environ
    if not _proxied(env):
        direct = in_cluster(env)
        if direct is not None:
            return direct
        files = kubeconfig or env.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
        if os.pathsep not in files and Path(files).is_file():
            direct = from_kubeconfig(Path(files))
            if direct is not None:
                return direct
    from webhook.kube.client import load_official_client

    return Official(load_official_client(kubeconfig))
