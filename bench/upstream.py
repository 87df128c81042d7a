"""An admission endpoint that makes the API calls the Dynatrace Operator's webhook makes per pod admission.

Upstream's pod mutator reads, for every pod, without a cache (controller-runtime's API reader): the pod's
Namespace and the DynaKube its instance label names; for a pod not injected yet also the namespace's init
Secret ``dynatrace-dynakube-config``, then it records an Event on the pod (client-go's event recorder, which
writes the Event from a queue, not on the admission's path) and answers the patch. A reinvocation (the pod is
injected already, nothing new to inject) stops after the first two reads. This endpoint makes the same
requests over keep-alive HTTPS connections authenticated by a kubeconfig's client certificate (a thin
asyncio HTTP/1.1 client, ``bench.load.Connection``: Python's per-request overhead kept small), then answers
as ``bench.baseline``'s fixed answers do. It reproduces upstream's requests to the API server, not its Go runtime.

Also here: reading a kubeconfig's server and client certificate into an ``ssl.SSLContext``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml

from bench.baseline import HEADERS, INJECTED_MARK, Answers, read_body
from bench.load import Connection

INSTANCE_LABEL = "dynakube.internal.dynatrace.com/instance"
INIT_SECRET = "dynatrace-dynakube-config"
DYNAKUBE_VERSION = "v1beta2"


def _pem(entry: dict[str, Any], key: str, directory: Path) -> str:
    """The file a kubeconfig entry names (``key``) or holds inline (``key-data``), as a path."""
    if entry.get(key):
        return str(entry[key])
    path = directory / key
    path.write_bytes(base64.b64decode(entry[f"{key}-data"]))
    return str(path)


def kube_tls(kubeconfig: Path) -> tuple[str, ssl.SSLContext]:
    """The current context's server URL and a client context: its CA verified, its client certificate sent."""
    config = yaml.safe_load(kubeconfig.read_text())
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    with tempfile.TemporaryDirectory(prefix="bench-kubeconfig-") as tmp:
        directory = Path(tmp)
        ctx = ssl.create_default_context(cafile=_pem(cluster, "certificate-authority", directory))
        ctx.load_cert_chain(_pem(user, "client-certificate", directory), _pem(user, "client-key", directory))
    return str(cluster["server"]).rstrip("/"), ctx


def event_body(pod: str, namespace: str, uid: str) -> dict[str, Any]:
    """The Event upstream records on an injected pod."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{pod}.{time.time_ns():x}", "namespace": namespace},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace, "uid": uid},
        "reason": "Inject",
        "message": "Injecting the necessary info into pod",
        "type": "Normal",
        "source": {"component": "dynatrace-webhook"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class KeepAlive:
    """One keep-alive HTTPS connection to the API server (``bench.load.Connection``), one request at a time;
    reopened when the server closed it."""

    def __init__(self, server: str, ctx: ssl.SSLContext) -> None:
        url = urlsplit(server)
        self.host, self.port, self.ctx = url.hostname or "127.0.0.1", url.port or 443, ctx
        self.conn: Connection | None = None
        self.lock = asyncio.Lock()

    async def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        if body is None:
            raw = (
                f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: application/json\r\n\r\n".encode()
            )
        else:
            raw = Connection.request_bytes(self.host, path, body)
        async with self.lock:
            if self.conn is None or self.conn.closed:
                self.conn = await Connection.open(self.host, self.port, self.ctx)
            status, data = await self.conn.send(raw)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
        return data


class UpstreamStyle:
    """ASGI endpoint: three GETs and an Event per first admission (two GETs per reinvocation), then the fixed
    answer with the request's uid. The reads go over one keep-alive connection, the Events over another, one
    after the other (client-go's recorder writes them from one goroutine)."""

    def __init__(self, answers: Answers, kubeconfig: Path, dynakube_namespace: str) -> None:
        self.answers = answers
        self.dynakube_namespace = dynakube_namespace
        server, ctx = kube_tls(kubeconfig)
        self.reads = KeepAlive(server, ctx)
        self.writes = KeepAlive(server, ctx)
        self.events: set[asyncio.Task[Any]] = set()

    async def _get(self, path: str) -> dict[str, Any]:
        return dict(orjson.loads(await self.reads.request("GET", path)))

    async def _event(self, body: dict[str, Any]) -> None:
        namespace = body["metadata"]["namespace"]
        await self.writes.request("POST", f"/api/v1/namespaces/{namespace}/events", orjson.dumps(body))

    async def admit(self, body: bytes) -> bytes:
        request = orjson.loads(body)["request"]
        namespace = request["namespace"]
        pod = request["object"]["metadata"]
        ns = await self._get(f"/api/v1/namespaces/{namespace}")
        dynakube = ns["metadata"]["labels"][INSTANCE_LABEL]
        await self._get(
            f"/apis/dynatrace.com/{DYNAKUBE_VERSION}/namespaces/{self.dynakube_namespace}/dynakubes/{dynakube}"
        )
        if INJECTED_MARK not in body:
            await self._get(f"/api/v1/namespaces/{namespace}/secrets/{INIT_SECRET}")
            event = event_body(pod.get("name", ""), namespace, pod.get("uid", ""))
            task = asyncio.create_task(self._event(event))
            self.events.add(task)
            task.add_done_callback(self.events.discard)
        return self.answers.answer(body)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        answer = await self.admit(await read_body(receive))
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": answer})
