"""In-memory state read by every admission request.

Writers (the watch threads or the local file loader) replace whole entries or whole maps; readers on the
event loop only do dictionary look-ups, so no lock is needed and no admission ever waits for the API.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from webhook.dynakube import INSTANCE_LABEL
from webhook.tolerant import as_map

Obj = dict[str, Any]

DYNAKUBES = "dynakubes"
NAMESPACES = "namespaces"
SECRETS = "secrets"  # of the webhook's namespace, only their `proxy` key (what a DynaKube's spec.proxy names)
RESOURCES = (DYNAKUBES, NAMESPACES, SECRETS)
# what readiness (``synced``) waits for; the Secrets only serve /validate's proxy check, which says so until
# they are loaded
SYNC_REQUIRED = (DYNAKUBES, NAMESPACES)
SECRET_KEYS = ("proxy",)
ISTIO_API = "networking.istio.io/v1beta1"  # /validate: is Istio's API served (spec.enableIstio)?


def slim(resource: str, obj: Mapping[str, Any]) -> Obj:
    """What the webhook keeps of an object: managedFields never, namespaces only their metadata, Secrets only
    their name and ``SECRET_KEYS``."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    if resource == NAMESPACES:
        keep = {k: meta[k] for k in ("name", "labels", "annotations", "resourceVersion", "uid") if k in meta}
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": keep}
    if resource == SECRETS:
        keep = {k: meta[k] for k in ("name", "namespace", "resourceVersion", "uid") if k in meta}
        data = as_map(obj.get("data"))
        return {"kind": "Secret", "metadata": keep, "data": {k: data[k] for k in SECRET_KEYS if k in data}}
    out = dict(obj)
    out["metadata"] = meta
    return out


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""


class Store:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace  # where DynaKubes live (the webhook's own namespace)
        self._objects: dict[str, dict[str, Obj]] = {r: {} for r in RESOURCES}
        self._synced: dict[str, bool] = dict.fromkeys(RESOURCES, False)
        self.last_event: dict[str, float] = dict.fromkeys(RESOURCES, 0.0)
        self.source = "none"
        # API group versions probed in the background (``webhook.state.discovery``): served or not; absent: unknown
        self.served: dict[str, bool] = {}

    # --- readers (admission path) ---
    def dynakube(self, name: str) -> Obj | None:
        return self._objects[DYNAKUBES].get(name)

    def namespace_object(self, name: str) -> Obj | None:
        return self._objects[NAMESPACES].get(name)

    def pod_state(self, namespace: str) -> tuple[Obj | None, Obj | None]:
        """The namespace a pod is created in and the DynaKube its instance label names (None when unknown)."""
        ns = self.namespace_object(namespace)
        name = as_map(as_map(as_map(ns).get("metadata")).get("labels")).get(INSTANCE_LABEL)
        return ns, (self.dynakube(name) if isinstance(name, str) else None)

    def secret(self, name: str) -> Obj | None:
        """A cached Secret of the webhook's namespace (name and ``SECRET_KEYS`` of ``data`` only)."""
        return self._objects[SECRETS].get(name)

    def dynakubes(self) -> list[Obj]:
        return list(self._objects[DYNAKUBES].values())

    def namespaces(self) -> list[Obj]:
        return list(self._objects[NAMESPACES].values())

    @property
    def synced(self) -> bool:
        return all(self._synced[r] for r in SYNC_REQUIRED)

    def is_synced(self, resource: str) -> bool:
        return self._synced[resource]

    # --- writers ---
    def replace(self, resource: str, objects: Iterable[Mapping[str, Any]]) -> None:
        """A full list: swap the whole map at once and mark the resource synced."""
        fresh = {}
        for obj in objects:
            if _name(obj):
                fresh[_name(obj)] = slim(resource, obj)
        self._objects[resource] = fresh
        self._synced[resource] = True
        self.last_event[resource] = time.time()

    def upsert(self, resource: str, obj: Mapping[str, Any]) -> None:
        if _name(obj):
            self._objects[resource][_name(obj)] = slim(resource, obj)
        self.last_event[resource] = time.time()

    def delete(self, resource: str, obj: Mapping[str, Any]) -> None:
        self._objects[resource].pop(_name(obj), None)
        self.last_event[resource] = time.time()

    def touch(self, resource: str) -> None:
        self.last_event[resource] = time.time()
