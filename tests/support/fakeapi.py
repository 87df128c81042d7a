"""An in-memory Kubernetes API for tests (no kube-apiserver runs on these machines).

Implements ``webhook.kube.api.Api`` with the API server's documented semantics that the webhook relies on:
- every write bumps a global resourceVersion and stores it in ``metadata.resourceVersion``;
- ``replace`` with a stale ``metadata.resourceVersion`` is 409 Conflict; ``create`` of an existing name is 409;
- missing objects are 404; merge patch (RFC 7386) and JSON patch (RFC 6902); strategic merge is treated as
  merge, which is what it does for the maps the webhook patches;
- ``watch`` replays the changes after a resourceVersion and then ends (as a server-side timeout does); a
  resourceVersion older than ``compacted`` is 410 Gone;
- ``list_page`` paginates (``limit``/``continue``) from one consistent snapshot per list, as etcd does; a continue
  token older than ``compacted`` is 410 Gone; ``metadata_only`` answers PartialObjectMetadata; lists and watches
  of a cluster-wide collection (``/api/v1/secrets``) see every namespace's objects;
- ``list_metadata_page`` serves PartialObjectMetadata pages (``limit``, ``continue``, a ``status.phase``
  field selector); a continue token issued before ``compact()`` is 410 Gone, as an expired one is;
- ``script(method, path, *items)`` makes the next calls fail or, for watches, replays scripted items
  (events, or exceptions raised mid-stream) instead of the change log; a scripted callable runs (for its side
  effects, such as changes between two pages of a list) before the call is served.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import jsonpatch

from webhook.kube.api import ApiError, Items


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


def _in_collection(object_path: str, collection: str) -> bool:
    """An object's path is in ``collection`` (``.../namespaces/ns/secrets``) or in the cluster-wide one
    (``/api/v1/secrets`` holds ``/api/v1/namespaces/<any>/secrets/<name>``)."""
    parent = _split(object_path)[0]
    if parent == collection:
        return True
    parts = parent.split("/")
    if len(parts) >= 3 and parts[-3] == "namespaces":
        return "/".join(parts[:-3] + parts[-1:]) == collection
    return False


def partial(obj: dict[str, Any]) -> dict[str, Any]:
    """The PartialObjectMetadata view of an object."""
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": obj.get("metadata") or {},
    }


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
    """``status.phase``, ``metadata.name`` and ``metadata.namespace`` terms with ``=``, ``==`` or ``!=``."""
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
        self.pages: list[
            dict[str, Any]
        ] = []  # every list_page call: path, limit, continue, selectors, metadata
        self.watches: list[
            dict[str, Any]
        ] = []  # every watch call: path, resourceVersion, selectors, metadata
        # the snapshots paginated lists are reading from, by list (each list has its own, as etcd's revision
        # reads do: two lists started at the same resourceVersion do not end each other's)
        self._snapshots: dict[int, tuple[int, list[tuple[str, dict[str, Any]]]]] = {}
        self._snapshot_ids = itertools.count(1)
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
        self._snapshots.clear()  # and the snapshots that paginated lists are reading from

    @property
    def resource_version(self) -> int:
        return self.changes[-1][0] if self.changes else 0

    def seed(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self.create(collection, obj)

    def bulk_seed(self, collection: str, objects: list[dict[str, Any]]) -> None:
        """Create many objects quickly (benchmarks): the objects are taken over, not copied."""
        with self.lock:
            for obj in objects:
                rv = next(self._rv)
                obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
                self.objects[f"{collection}/{obj['metadata']['name']}"] = obj
                self.changes.append((rv, collection, "ADDED", obj))

    def _next_script(self, method: str, path: str) -> Any:
        queue = self._scripts.get((method, path))
        return queue.pop(0) if queue else None

    def _record(self, method: str, path: str) -> None:
        self.calls.append((method, path))
        item = self._next_script(method, path)
        if isinstance(item, BaseException):
            raise item
        if callable(item):
            item()

    def _store(self, path: str, obj: dict[str, Any], kind: str) -> dict[str, Any]:
        rv = next(self._rv)
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
        self.objects[path] = obj  # replaced, never edited in place: list snapshots keep references
        self.changes.append((rv, _split(path)[0], kind, copy.deepcopy(obj)))
        return copy.deepcopy(obj)

    # --- webhook.kube.api.Api ---
    def get(self, path: str) -> dict[str, Any]:
        with self.lock:
            self._record("GET", path)
            if path not in self.objects:
                raise ApiError(404, f"{path} not found")
            return copy.deepcopy(self.objects[path])

    def list_page(
        self,
        path: str,
        *,
        limit: int = 0,
        continue_token: str = "",
        label_selector: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
        copy_items: bool = True,
        resource_version: str = "",
    ) -> tuple[Items, str, str]:
        """One page: (items, resourceVersion of the snapshot, continue token or ""). ``copy_items=False``
        hands out the stored objects themselves (for a caller that only serialises them)."""
        with self.lock:
            self.pages.append(
                {
                    "path": path,
                    "limit": limit,
                    "continue": continue_token,
                    "labelSelector": label_selector,
                    "fieldSelector": field_selector,
                    "metadata_only": metadata_only,
                }
            )
            self._record("LIST", path)
            if resource_version.isdigit() and int(resource_version) > self.resource_version:
                raise ApiError(
                    504,
                    f"Timeout: Too large resource version: {resource_version}, current: {self.resource_version}",
                )
            if continue_token:
                snapshot_rv, _, rest = continue_token.partition("|")
                snapshot_id, _, after = rest.partition("|")
                rv = int(snapshot_rv) if snapshot_rv.isdigit() else -1
                sid = int(snapshot_id) if snapshot_id.isdigit() else -1
                if rv < self.compacted or sid not in self._snapshots:
                    self._snapshots.pop(sid, None)
                    raise ApiError(
                        410, "The provided continue parameter is too old to display a consistent list"
                    )
                rv, snapshot = self._snapshots[sid]
            else:
                rv, after, sid = self.resource_version, "", next(self._snapshot_ids)
                snapshot = self._collection(path, label_selector, field_selector)
            start = bisect.bisect_right(snapshot, after, key=lambda entry: entry[0]) if after else 0
            chunk = snapshot[start : start + limit] if limit > 0 else snapshot[start:]
            more = limit > 0 and start + limit < len(snapshot)
            if more:
                self._snapshots[sid] = (rv, snapshot)
                token = f"{rv}|{sid}|{chunk[-1][0]}"
            else:
                self._snapshots.pop(sid, None)
                token = ""
            items = [copy.deepcopy(o) if copy_items else o for _, o in chunk]
            if metadata_only:
                items = [partial(o) for o in items]
            return items, str(rv), token

    def _collection(
        self, path: str, label_selector: str, field_selector: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """(path, object) of the collection's objects matching the selectors, sorted by path. The resource
        segment is compared first: with 50 000 namespaces stored, a list of 50 DynaKubes costs little more."""
        resource = path.rstrip("/").rsplit("/", 1)[-1]
        return sorted(
            (p, o)
            for p, o in self.objects.items()
            if p.rsplit("/", 2)[-2] == resource
            and _in_collection(p, path)
            and (not label_selector or _labels_match(o, label_selector))
            and (not field_selector or _fields_match(o, field_selector))
        )

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
            obj = copy.deepcopy(self.objects.pop(path))
            rv = next(self._rv)
            obj["metadata"]["resourceVersion"] = str(rv)
            self.changes.append((rv, _split(path)[0], "DELETED", obj))

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
        with self.lock:
            self.calls.append(("WATCH", path))
            self.watches.append(
                {
                    "path": path,
                    "resourceVersion": resource_version,
                    "labelSelector": label_selector,
                    "fieldSelector": field_selector,
                    "metadata_only": metadata_only,
                }
            )
            scripted = self._next_script("WATCH", path)
            if isinstance(scripted, BaseException):
                raise scripted
            if scripted is None:
                if resource_version and int(resource_version) < self.compacted:
                    raise ApiError(410, "too old resource version")
                since = int(resource_version or 0)
                first = bisect.bisect_right(self.changes, since, key=lambda change: change[0])
                session: list[Any] = [
                    {"type": kind, "object": copy.deepcopy(partial(obj) if metadata_only else obj)}
                    for rv, collection, kind, obj in self.changes[first:]
                    if _in_collection(collection + "/x", path)
                    and _labels_match(obj, label_selector)
                    and _fields_match(obj, field_selector)
                ]
            else:
                session = list(scripted)
        for item in session:
            if isinstance(item, BaseException):
                raise item
            yield item
