"""A loopback HTTP front for FakeApi, so the real webhook process can run in cluster mode in tests.

It speaks the parts of the Kubernetes API wire format the webhook uses: GET of objects and lists, discovery
of the dynatrace.com group, watch streams (newline-delimited JSON events, held open briefly for new changes,
then ended as a server-side timeout would), POST, PUT, and PATCH (merge, strategic as merge, JSON patch).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.fakeapi import FakeApi
from webhook.kubeapi import ApiError

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


class ApiServer:
    def __init__(self, api: FakeApi, dynakube_version: str = "v1beta2") -> None:
        self.api = api
        self.version = dynakube_version
        self.requests: list[tuple[str, str]] = []  # (method, path) as the webhook sent them
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, err: ApiError) -> None:
                self._send(err.status, {"kind": "Status", "code": err.status, "message": str(err)})

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def do_GET(self):
                outer.requests.append(("GET", self.path))
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
                        return self._watch(url.path, query.get("resourceVersion", ""))
                    if not is_collection(url.path):
                        return self._send(200, outer.api.get(url.path))
                    items, rv = outer.api.list(url.path, query.get("labelSelector", ""))
                    self._send(200, {"kind": "List", "metadata": {"resourceVersion": rv}, "items": items})
                except ApiError as err:
                    self._error(err)

            def _watch(self, path: str, rv: str) -> None:
                try:
                    first = list(outer.api.watch(path, rv, 1))
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
                        line = json.dumps(event).encode() + b"\n"
                        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                        last = max(last, int(event["object"]["metadata"].get("resourceVersion", last)))
                    self.wfile.flush()
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                    events = list(outer.api.watch(path, str(last), 1))
                self.wfile.write(b"0\r\n\r\n")

            def _write(self, method: str) -> None:
                outer.requests.append((method, self.path))
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "u"}}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                }
            )
        )
        return path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
