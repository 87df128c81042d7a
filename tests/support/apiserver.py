"""A loopback HTTP front for FakeApi, so the real webhook process can run in cluster mode in tests.

It speaks the parts of the Kubernetes API wire format the webhook uses: GET of objects and lists, discovery
of the dynatrace.com group, watch streams (newline-delimited JSON events, held open briefly for new changes,
then ended as a server-side timeout would), POST, PUT, and PATCH (merge, strategic as merge, JSON patch).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

from tests.support.fakeapi import FakeApi
from webhook.kube.api import ApiError

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
}


def is_collection(path: str) -> bool:
    """``/api/v1/namespaces`` and ``/apis/g/v/namespaces/ns/dynakubes`` are collections; one more segment
    names an object; ``/status`` and other subresources follow an object."""
    parts = path.strip("/").split("/")
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    return len(rest) % 2 == 1 and rest[-1] not in ("status", "scale")


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client gone mid-answer is expected here
            super().handle_error(request, client_address)


@dataclass
class Failure:
    """A scripted error answer: ``times`` requests whose method and path prefix match get ``status``."""

    method: str
    path_prefix: str
    status: int
    retry_after: float | None
    times: int


def write_kubeconfig(path: Path, url: str) -> Path:
    """A kubeconfig for ``url`` (which need not be listening yet)."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": url}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    return path


class ApiServer:
    def __init__(self, api: FakeApi, dynakube_version: str = "v1beta2", port: int = 0) -> None:
        """Serves ``api`` on 127.0.0.1:``port`` (0: any free port; a fixed one to come back after ``close``)."""
        self.api = api
        self.version = dynakube_version
        self.requests: list[tuple[str, str]] = []  # (method, path) as the webhook sent them
        self.accepts: list[tuple[str, str]] = []  # (path with query, Accept header) of every GET
        self.times: list[tuple[float, str, str]] = []  # (time.monotonic(), method, path) of every request
        self.failures: list[Failure] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with outer._lock:
                    outer._connections.add(self.connection)

            def finish(self):
                with outer._lock:
                    outer._connections.discard(self.connection)
                super().finish()

            def _send(self, status: int, body) -> None:
                data = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, err: ApiError) -> None:
                self._send(err.status, {"kind": "Status", "code": err.status, "message": str(err)})

            def _scripted(self, method: str) -> bool:
                """Answer with a scripted failure when one matches; True when it did."""
                outer.times.append((time.monotonic(), method, self.path))
                failure = outer._take_failure(method, urlsplit(self.path).path)
                if failure is None:
                    return False
                data = json.dumps(
                    {"kind": "Status", "code": failure.status, "message": "scripted failure"}
                ).encode()
                self.send_response(failure.status)
                if failure.retry_after is not None:
                    self.send_header("Retry-After", f"{failure.retry_after:g}")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return True

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def do_GET(self):
                outer.requests.append(("GET", self.path))
                accept = self.headers.get("Accept", "")
                outer.accepts.append((self.path, accept))
                if self._scripted("GET"):
                    return
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                try:
                    if url.path == "/apis/dynatrace.com":
                        return self._send(
                            200,
                            {
                                "kind": "APIGroup",
                                "name": "dynatrace.com",
                                "preferredVersion": {
                                    "groupVersion": f"dynatrace.com/{outer.version}",
                                    "version": outer.version,
                                },
                            },
                        )
                    if query.get("watch") == "true":
                        return self._watch(url.path, query, "as=PartialObjectMetadata;" in accept)
                    if not is_collection(url.path):
                        return self._send(200, outer.api.get(url.path))
                    metadata_only = "as=PartialObjectMetadataList;" in accept
                    items, rv, token = outer.api.list_page(
                        url.path,
                        limit=int(query.get("limit") or 0),
                        continue_token=query.get("continue", ""),
                        label_selector=query.get("labelSelector", ""),
                        field_selector=query.get("fieldSelector", ""),
                        metadata_only=metadata_only,
                        copy_items=False,
                    )
                    meta = {"resourceVersion": rv, **({"continue": token} if token else {})}
                    kind = "PartialObjectMetadataList" if metadata_only else "List"
                    self._send(200, {"kind": kind, "metadata": meta, "items": items})
                except ApiError as err:
                    self._error(err)

            def _watch(self, path: str, query: dict[str, str], metadata_only: bool) -> None:
                rv = query.get("resourceVersion", "")
                labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")

                def events_after(since: str) -> list:
                    return list(
                        outer.api.watch(
                            path,
                            since,
                            1,
                            label_selector=labels,
                            field_selector=fields,
                            metadata_only=metadata_only,
                        )
                    )

                try:
                    first = events_after(rv)
                except ApiError as err:
                    return self._error(err)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                last = int(rv or 0)
                events = first
                deadline = time.monotonic() + 1.0
                while True:
                    for event in events:
                        line = orjson.dumps(event) + b"\n"
                        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                        last = max(last, int(event["object"]["metadata"].get("resourceVersion", last)))
                    self.wfile.flush()
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                    events = events_after(str(last))
                self.wfile.write(b"0\r\n\r\n")

            def _write(self, method: str) -> None:
                outer.requests.append((method, self.path))
                if self._scripted(method):
                    return
                path = urlsplit(self.path).path
                try:
                    body = self._body()
                    if method == "POST":
                        self._send(201, outer.api.create(path, body))
                    elif method == "PUT":
                        self._send(200, outer.api.replace(path, body))
                    elif method == "PATCH":
                        kind = PATCH_TYPES.get(self.headers.get("Content-Type", ""), "merge")
                        self._send(200, outer.api.patch(path, body, kind))
                    else:
                        outer.api.delete(path)
                        self._send(200, {"kind": "Status", "status": "Success"})
                except ApiError as err:
                    self._error(err)

            def do_POST(self):
                self._write("POST")

            def do_PUT(self):
                self._write("PUT")

            def do_PATCH(self):
                self._write("PATCH")

            def do_DELETE(self):
                self._write("DELETE")

        self.server = _Quiet(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def kubeconfig(self, path: Path) -> Path:
        return write_kubeconfig(path, self.url)

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        status: int,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests with ``method`` to a path starting with ``path_prefix`` are answered
        ``status`` (with ``Retry-After`` when given) instead of being served."""
        with self._lock:
            self.failures.append(Failure(method, path_prefix, status, retry_after, times))

    def clear_failures(self) -> None:
        with self._lock:
            self.failures.clear()

    def _take_failure(self, method: str, path: str) -> Failure | None:
        with self._lock:
            for failure in self.failures:
                if failure.method == method and path.startswith(failure.path_prefix) and failure.times > 0:
                    failure.times -= 1
                    if failure.times == 0:
                        self.failures.remove(failure)
                    return failure
        return None

    def count(self, method: str, path_prefix: str, since: float, until: float | None = None) -> int:
        """Requests (served or failed) matching method and path prefix between two monotonic times."""
        end = until if until is not None else time.monotonic()
        return sum(
            1
            for t, m, p in list(self.times)
            if m == method and urlsplit(p).path.startswith(path_prefix) and since <= t <= end
        )

    def close(self) -> None:
        """Stop listening and cut every open connection (keep-alive and watch streams), as a lost API would."""
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
