"""An in-memory Kubernetes API for tests (no kube-apiserver runs on these machines).

Implements ``webhook.kubeapi.Api`` with the API server's documented semantics that the webhook relies on:
- every write bumps a global resourceVersion and stores it in ``metadata.resourceVersion``;
- ``replace`` with a stale ``metadata.resourceVersion`` is 409 Conflict; ``create`` of an existing name is 409;
- missing objects are 404; merge patch (RFC 7386) and JSON patch (RFC 6902); strategic merge is treated as
  merge, which is what it does for the maps the webhook patches;
- ``watch`` replays the changes after a resourceVersion and then ends (as a server-side timeout does); a
  resourceVersion older than ``compacted`` is 410 Gone;
- ``list_metadata_page`` serves PartialObjectMetadata pages (``limit``, ``continue``, a ``status.phase``
  field selector); a continue token issued before ``compact()`` is 410 Gone, as an expired one is;
- ``script(method, path, *items)`` makes the next calls fail or, for watches, replays scripted items
  (events, or exceptions raised mid-stream) instead of the change log.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import jsonpatch

from webhook.kubeapi import ApiError, Items


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _split(path: str) -> tuple[str, str]:
    collection, _, name = path.rstrip("/").rpartition("/")
    return collection, name


def _labels_match(obj: dict[str, Any], selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _fields_match(obj: dict[str, Any], selector: str) -> bool:
    """``status.phase`` and ``metadata.name`` terms with ``=``, ``==`` or ``!=``."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        key, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
        section, _, field = key.partition(".")
        actual = (obj.get(section) or {}).get(field) or ""
        if (actual == value) == negate:
            return False
    return True


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.changes: list[tuple[int, str, str, dict[str, Any]]] = []  # (rv, collection, type, object)
        self.compacted = 0
        self.compactions = 0  # continue tokens name the compaction they were issued in
        self.calls: list[tuple[str, str]] = []
        self._rv = itertools.count(100)
        self._scripts: dict[tuple[str, str], list[Any]] = {}
        self.lock = threading.RLock()

    # --- test controls ---
    def script(self, method: str, path: str, *items: Any) -> None:
        """Queue what the next ``method`` calls on ``path`` do: an exception is raised; for WATCH, a list of
        items is one watch session (events yielded in order, exceptions raised mid-stream)."""
        self._scripts.setdefault((method, path), []).extend(items)

    def compact(self) -> None:
        """Forget history: watches from any resourceVersion seen so far get 410 Gone."""
        self.compacted = self.resource_version
        self.compactions += 1

    @property
    def resource_version(self) -> int:
        return self.changes[-1][0] if self.changes else 0

    def seed(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self.create(collection, obj)

    def _next_script(self, method: str, path: str) -> Any:
        queue = self._scripts.get((method, path))
        return queue.pop(0) if queue else None

    def _record(self, method: str, path: str) -> None:
        self.calls.append((method, path))
        item = self._next_script(method, path)
        if isinstance(item, BaseException):
            raise item

    def _store(self, path: str, obj: dict[str, Any], kind: str) -> dict[str, Any]:
        rv = next(self._rv)
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
        self.objects[path] = obj
        self.changes.append((rv, _split(path)[0], kind, copy.deepcopy(obj)))
        return copy.deepcopy(obj)

    # --- webhook.kubeapi.Api ---
    def get(self, path: str) -> dict[str, Any]:
        with self.lock:
            self._record("GET", path)
            if path not in self.objects:
                raise ApiError(404, f"{path} not found")
            return copy.deepcopy(self.objects[path])

    def list(self, path: str, label_selector: str = "") -> tuple[list[dict[str, Any]], str]:
        with self.lock:
            self._record("LIST", path)
            items = [
                copy.deepcopy(o)
                for p, o in sorted(self.objects.items())
                if _split(p)[0] == path and _labels_match(o, label_selector)
            ]
            return items, str(self.resource_version)

    def list_metadata_page(
        self, path: str, *, limit: int, continue_token: str = "", field_selector: str = ""
    ) -> tuple[Items, str]:
        with self.lock:
            self._record("LISTMETA", path)
            after = ""
            if continue_token:
                issued, _, after = continue_token.partition(":")
                if issued != str(self.compactions):
                    raise ApiError(410, "the provided continue parameter is too old")
            names = sorted(
                p
                for p, o in self.objects.items()
                if _split(p)[0] == path and p > after and _fields_match(o, field_selector)
            )
            page = names[: max(1, limit)]
            items = [
                {
                    "apiVersion": "meta.k8s.io/v1",
                    "kind": "PartialObjectMetadata",
                    "metadata": copy.deepcopy(self.objects[p].get("metadata") or {}),
                }
                for p in page
            ]
            more = len(names) > len(page)
            return items, f"{self.compactions}:{page[-1]}" if more else ""

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._record("POST", path)
            name = (body.get("metadata") or {}).get("name")
            if not name:
                raise ApiError(422, "metadata.name is required")
            target = f"{path}/{name}"
            if target in self.objects:
                raise ApiError(409, f"{target} already exists")
            body = copy.deepcopy(body)
            body["metadata"].pop("resourceVersion", None)
            return self._store(target, body, "ADDED")

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._record("PUT", path)
            if path not in self.objects:
                raise ApiError(404, f"{path} not found")
            sent = (body.get("metadata") or {}).get("resourceVersion")
            current = self.objects[path]["metadata"]["resourceVersion"]
            if sent and sent != current:
                raise ApiError(409, f"the object has been modified (resourceVersion {sent} != {current})")
            return self._store(path, body, "MODIFIED")

    def patch(self, path: str, body: Any, patch_type: str = "merge") -> dict[str, Any]:
        with self.lock:
            self._record("PATCH", path)
            if path not in self.objects:
                raise ApiError(404, f"{path} not found")
            current = copy.deepcopy(self.objects[path])
            if patch_type == "json":
                try:
                    updated = jsonpatch.apply_patch(current, body)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as err:
                    raise ApiError(422, str(err)) from None
            else:
                sent = ((body or {}).get("metadata") or {}).get("resourceVersion")
                if sent and sent != current["metadata"]["resourceVersion"]:
                    raise ApiError(409, "the object has been modified")
                updated = _merge(current, body)
            return self._store(path, updated, "MODIFIED")

    def delete(self, path: str) -> None:
        with self.lock:
            self._record("DELETE", path)
            if path not in self.objects:
                raise ApiError(404, f"{path} not found")
            obj = self.objects.pop(path)
            rv = next(self._rv)
            obj["metadata"]["resourceVersion"] = str(rv)
            self.changes.append((rv, _split(path)[0], "DELETED", obj))

    def watch(self, path: str, resource_version: str, timeout_seconds: int) -> Iterator[dict[str, Any]]:
        with self.lock:
            self.calls.append(("WATCH", path))
            scripted = self._next_script("WATCH", path)
            if isinstance(scripted, BaseException):
                raise scripted
            if scripted is None:
                if resource_version and int(resource_version) < self.compacted:
                    raise ApiError(410, "too old resource version")
                since = int(resource_version or 0)
                session: list[Any] = [
                    {"type": kind, "object": copy.deepcopy(obj)}
                    for rv, collection, kind, obj in self.changes
                    if collection == path and rv > since
                ]
            else:
                session = list(scripted)
        for item in session:
            if isinstance(item, BaseException):
                raise item
            yield item
