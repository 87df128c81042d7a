"""``KubeApi``: ``webhook.kube.api.Api`` over a transport (``webhook.kube.transport``), raw JSON in and out.

Imported only when the webhook runs against a cluster. The official ``kubernetes`` client is imported only for
a kubeconfig the direct transport does not serve (or a test that hands it a configuration).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import orjson
import urllib3

from webhook.kube.api import ApiError, Items
from webhook.kube.transport import Official, Request, Transport, connect, retries, retry_after

log = logging.getLogger(__name__)

DYNAKUBE_GROUP = "dynatrace.com"
PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


# PartialObjectMetadata (metadata.k8s.io): the API server answers with each object's metadata only. Plain JSON
# follows as a fallback for servers (or aggregated APIs) that cannot convert; the kind's transform keeps the
# metadata either way.
METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
METADATA_WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"


def _selectors(label_selector: str, field_selector: str) -> list[tuple[str, str]]:
    query = [("labelSelector", label_selector)] if label_selector else []
    return query + ([("fieldSelector", field_selector)] if field_selector else [])


def _page(data: bytes) -> tuple[Items, str, str]:
    """(items, resourceVersion, continue token) of a list's JSON."""
    document = orjson.loads(data) if data else {}
    meta = document.get("metadata") or {}
    return (
        list(document.get("items") or []),
        str(meta.get("resourceVersion") or ""),
        str(meta.get("continue") or ""),
    )


def continue_token_of(data: bytes, head: int = 4096) -> str:
    """The continue token of a list's JSON, read from the list's ``metadata`` when it comes before the items
    (as the API server writes it); "" when it does not, or on the last page."""
    start = data.find(b'"metadata":{', 0, head)
    items = data.find(b'"items":', 0, head)
    if start < 0 or 0 <= items < start:
        return ""
    end = data.find(b"}", start, head)  # ListMeta holds strings and a number, no nested object
    if end < 0:
        return ""
    try:
        meta = orjson.loads(data[start + len(b'"metadata":') : end + 1])
    except orjson.JSONDecodeError:
        return ""
    token = meta.get("continue") if isinstance(meta, dict) else None
    return token if isinstance(token, str) else ""


def _in_thread(work: Callable[[str], bytes], token: str) -> Future[bytes]:
    """``work(token)`` in a daemon thread of its own; its result or error in the future."""
    future: Future[bytes] = Future()

    def run() -> None:
        try:
            future.set_result(work(token))
        except BaseException as err:
            future.set_exception(err)

    threading.Thread(target=run, name="list-ahead", daemon=True).start()
    return future


class KubeApi:
    """``webhook.kube.api.Api`` over a ``webhook.kube.transport.Transport``: any path, raw JSON in and out, no
    model classes."""

    def __init__(self, transport: Transport, request_timeout: float = 30.0) -> None:
        self.api = transport
        self.request_timeout = request_timeout

    def _call(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: Any = None,
        accept: str = "application/json",
    ) -> Any:
        """One request; returns the urllib3 response, unread (so watches stream). Non-2xx raises ApiError."""
        headers = {"Accept": accept}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = orjson.dumps(body)
        try:
            response = self.api.request(
                Request(method, path, query or [], headers, data, timeout or self.request_timeout)
            )
        except urllib3.exceptions.SSLError as err:
            raise ApiError(500, str(err)) from None
        if not 200 <= response.status < 300:
            try:
                message = orjson.loads(response.data).get("message", "")
            except (orjson.JSONDecodeError, AttributeError):
                message = response.reason or ""
            finally:
                response.release_conn()
            raise ApiError(response.status, str(message), retry_after(response.headers))
        return response

    def _json(self, *args: Any, **kw: Any) -> dict[str, Any]:
        response = self._call(*args, **kw)
        try:
            data = response.data
        finally:
            response.release_conn()
        return orjson.loads(data) if data else {}

    def get(self, path: str) -> dict[str, Any]:
        return self._json("GET", path)

    def _raw(self, path: str, query: list[tuple[str, str]], accept: str) -> bytes:
        response = self._call("GET", path, query, accept=accept)
        try:
            return bytes(response.data or b"")
        finally:
            response.release_conn()

    def _list_raw(
        self,
        path: str,
        *,
        limit: int = 0,
        continue_token: str = "",
        label_selector: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
        resource_version: str = "",
    ) -> bytes:
        query = _selectors(label_selector, field_selector)
        if resource_version:
            query += [("resourceVersion", resource_version), ("resourceVersionMatch", "NotOlderThan")]
        if limit:
            query.append(("limit", str(limit)))
        if continue_token:
            query.append(("continue", continue_token))
        return self._raw(path, query, METADATA_LIST_ACCEPT if metadata_only else "application/json")

    def list_page(self, path: str, **list_args: Any) -> tuple[Items, str, str]:
        """One page of a paginated list, parsed on its own: (items, resourceVersion, continue token; "" on
        the last page). The arguments of ``webhook.kube.api.Api.list_page``; ``limit=0`` (the default) asks
        for the whole list at once."""
        return _page(self._list_raw(path, **list_args))

    def prefetching(self, path: str, **list_args: Any) -> Callable[[str], tuple[Items, str, str]]:
        """``list_page`` (with ``list_args`` but the continue token) for the pages of one list, read in order:
        the request for the next page leaves as soon as this page's bytes are in and its continue token is
        read off their head (the API server writes the list's metadata before its items), in a thread of its
        own, while the caller parses and transforms this page. At most one page is read ahead; a token other
        than the one read ahead (the list started again) drops it."""
        ahead: dict[str, Future[bytes]] = {}

        def raw(token: str) -> bytes:
            return self._list_raw(path, continue_token=token, **list_args)

        def fetch(token: str) -> tuple[Items, str, str]:
            pending = ahead.pop(token, None)
            ahead.clear()
            data = pending.result() if pending is not None else raw(token)
            following = continue_token_of(data)
            if following:
                ahead[following] = _in_thread(raw, following)
            return _page(data)

        return fetch

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", path, body=body)

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("PUT", path, body=body)

    def patch(self, path: str, body: Any, patch_type: str = "merge") -> dict[str, Any]:
        return self._json("PATCH", path, body=body, content_type=PATCH_CONTENT_TYPES[patch_type])

    def delete(self, path: str) -> None:
        self._call("DELETE", path).release_conn()

    def watch(
        self,
        path: str,
        resource_version: str,
        timeout_seconds: int,
        *,
        label_selector: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
    ) -> Iterator[dict[str, Any]]:
        query = [
            *_selectors(label_selector, field_selector),
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        # the socket read timeout exceeds the server-side watch timeout, so a silent dead stream still ends
        response = self._call(
            "GET",
            path,
            query,
            timeout=(self.request_timeout, timeout_seconds + 30),
            accept=METADATA_WATCH_ACCEPT if metadata_only else "application/json",
        )
        try:
            buffer = b""
            for chunk in response.stream(amt=65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield orjson.loads(line)
        finally:
            response.release_conn()

    def list_metadata_page(
        self, path: str, *, limit: int, continue_token: str = "", field_selector: str = ""
    ) -> tuple[Items, str]:
        """One page of PartialObjectMetadata: (items, continue token); ``list_page`` with ``metadata_only``."""
        items, _, token = self.list_page(
            path,
            limit=limit,
            continue_token=continue_token,
            field_selector=field_selector,
            metadata_only=True,
        )
        return items, token


def api_client(configuration: Any) -> Transport:
    """The official client on ``configuration`` (a ``kubernetes.client.Configuration``), its transport
    retrying connection errors but never HTTP statuses (``transport.retries``)."""
    from kubernetes import client

    configuration.retries = retries()
    return Official(client.ApiClient(configuration))


def load_official_client(kubeconfig: str | None) -> Any:
    """The official client's ``ApiClient``: in-cluster configuration in a pod, else KUBECONFIG (or the given
    file), whatever their authentication."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.retries = retries()
    return client.ApiClient(configuration)


def load_api_client(kubeconfig: str | None) -> Transport:
    """In-cluster configuration when running in a pod, else KUBECONFIG (or the given file)."""
    return connect(kubeconfig)
