"""KubeApi (the official client, raw JSON) against a loopback HTTP server speaking the API's wire format."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client

from webhook.kube.api import ApiError, list_items
from webhook.kube.client import KubeApi, api_client
from webhook.state.cluster import dynakube_version

NAMESPACES = {
    "kind": "NamespaceList",
    "metadata": {"resourceVersion": "41"},
    "items": [{"metadata": {"name": "shop", "labels": {"a": "b"}}}],
}
EVENTS = [
    {"type": "ADDED", "object": {"metadata": {"name": "new", "resourceVersion": "42"}}},
    {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "43"}}},
]


class Handler(BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *args):
        pass

    def _json(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        Handler.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/api/v1/namespaces?watch=true"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            stream = b"".join(json.dumps(e).encode() + b"\n" for e in EVENTS)
            # split mid-line across chunks, as a real stream may
            for part in (stream[:10], stream[10:70], stream[70:]):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path.partition("?")[0] == "/api/v1/namespaces":
            self._json(200, NAMESPACES)
        elif self.path == "/apis/dynatrace.com":
            self._json(
                200,
                {
                    "kind": "APIGroup",
                    "preferredVersion": {"groupVersion": "dynatrace.com/v1beta3", "version": "v1beta3"},
                },
            )
        elif self.path == "/busy":
            self._json(429, {"kind": "Status", "code": 429}, [("Retry-After", "7")])
        else:
            self._json(404, {"kind": "Status", "code": 404})

    def do_PATCH(self):
        length = int(self.headers["Content-Length"])
        Handler.seen.append((self.path, self.headers["Content-Type"], json.loads(self.rfile.read(length))))
        self._json(200, {"metadata": {"name": "shop", "resourceVersion": "44"}})


@pytest.fixture()
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = client.Configuration()
    config.host = f"http://127.0.0.1:{server.server_port}"
    config.api_key = {"authorization": "secret-token"}
    config.api_key_prefix = {"authorization": "Bearer"}
    Handler.seen = []
    yield KubeApi(api_client(config), request_timeout=5)
    server.shutdown()


def test_list_returns_raw_items_and_resource_version(api):
    items, rv, token = api.list_page("/api/v1/namespaces", limit=500)
    assert items == NAMESPACES["items"] and rv == "41" and token == ""
    assert Handler.seen[0] == ("/api/v1/namespaces?limit=500", "Bearer secret-token")
    assert list_items(api, "/api/v1/namespaces") == NAMESPACES["items"]


def test_watch_yields_events_split_across_chunks(api):
    events = list(api.watch("/api/v1/namespaces", "41", 30))
    assert events == EVENTS
    path = Handler.seen[0][0]
    assert "resourceVersion=41" in path and "allowWatchBookmarks=true" in path and "timeoutSeconds=30" in path


def test_errors_carry_status_and_retry_after(api):
    with pytest.raises(ApiError) as err:
        api.get("/busy")
    assert err.value.status == 429 and err.value.retry_after == 7
    with pytest.raises(ApiError) as err:
        api.get("/missing")
    assert err.value.status == 404 and err.value.retry_after is None


def test_merge_patch_content_type(api):
    api.patch("/api/v1/namespaces/shop", {"metadata": {"labels": {"x": "y"}}})
    assert Handler.seen[0] == (
        "/api/v1/namespaces/shop",
        "application/merge-patch+json",
        {"metadata": {"labels": {"x": "y"}}},
    )


def test_dynakube_version_discovery(api):
    assert dynakube_version(api, "") == "v1beta3"
    assert dynakube_version(api, "v1beta2") == "v1beta2"
