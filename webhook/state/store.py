"""In-memory state read by every admission request.

Writers (the watch threads or the local file loader) replace whole entries or whole maps; readers on the
event loop only do dictionary look-ups, so no lock is needed and no admission ever waits for the API.
Every object is transformed by its kind (``webhook.state.kinds``) before it is stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from webhook.dynakube import INSTANCE_LABEL
from webhook.state.kinds import DEFAULT_KINDS, DYNAKUBES, NAMESPACES, SECRET_KEYS, SECRETS, Kind, Obj
from webhook.tolerant import as_map

log = logging.getLogger(__name__)

RESOURCES = (DYNAKUBES, NAMESPACES, SECRETS)
ISTIO_API = "networking.istio.io/v1beta1"  # /validate: is Istio's API served (spec.enableIstio)?

__all__ = [
    "DYNAKUBES",
    "ISTIO_API",
    "NAMESPACES",
    "RESOURCES",
    "SECRETS",
    "SECRET_KEYS",
    "Obj",
    "Store",
    "slim",
]


def slim(resource: str, obj: Mapping[str, Any]) -> Obj:
    """What the cache keeps of ``obj`` by the default kinds' transforms."""
    return next(k for k in DEFAULT_KINDS if k.resource == resource).transform(obj)


class Store:
    def __init__(self, namespace: str, kinds: Iterable[Kind] = DEFAULT_KINDS) -> None:
        self.namespace = namespace  # where DynaKubes live (the webhook's own namespace)
        self._kinds: dict[str, Kind] = {}
        self._objects: dict[str, dict[str, Obj]] = {}
        self._synced: dict[str, bool] = {}
        self.last_event: dict[str, float] = {}
        self.dropped = 0  # objects a transform could not handle (never stored)
        self.source = "none"
        # API group versions probed in the background (``webhook.state.discovery``): served or not; absent: unknown
        self.served: dict[str, bool] = {}
        for kind in kinds:
            self.add_kind(kind)

    def add_kind(self, kind: Kind) -> None:
        """Cache one more kind (before the state source starts): empty and not synced until listed."""
        self._kinds[kind.resource] = kind
        self._objects.setdefault(kind.resource, {})
        self._synced.setdefault(kind.resource, False)
        self.last_event.setdefault(kind.resource, 0.0)

    def kinds(self) -> list[Kind]:
        return list(self._kinds.values())

    def kind(self, resource: str) -> Kind:
        return self._kinds[resource]

    @property
    def resources(self) -> list[str]:
        return list(self._kinds)

    # --- readers (admission path) ---
    def get(self, resource: str, key: str) -> Obj | None:
        return self._objects[resource].get(key)

    def objects(self, resource: str) -> list[Obj]:
        return list(self._objects[resource].values())

    def count(self, resource: str) -> int:
        return len(self._objects[resource])

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
        """What readiness waits for: the first list of every kind that is ``sync_required``."""
        return all(self._synced[r] for r, kind in self._kinds.items() if kind.sync_required)

    def is_synced(self, resource: str) -> bool:
        return self._synced[resource]

    # --- transform at arrival ---
    def transform(self, resource: str, obj: Mapping[str, Any]) -> tuple[str, Obj | None]:
        """(key, what the cache keeps of ``obj``); (key or "", None) when it cannot be kept."""
        kind = self._kinds[resource]
        key = kind.key(obj)
        if not key:
            return "", None
        try:
            return key, kind.transform(obj)
        except Exception:  # a transform must never stop a watch: drop the object, say so
            self.dropped += 1
            log.exception("%s: object %s could not be transformed; not cached", resource, key)
            return key, None

    # --- writers ---
    def replace(self, resource: str, objects: Iterable[Mapping[str, Any]]) -> None:
        """A full list of whole objects: transform them, swap the whole map at once, mark the kind synced."""
        fresh = {}
        for obj in objects:
            key, kept = self.transform(resource, obj)
            if kept is not None:
                fresh[key] = kept
        self.replace_transformed(resource, fresh)

    def replace_transformed(self, resource: str, fresh: dict[str, Obj]) -> None:
        """A full list already transformed and keyed (the reflector builds it page by page)."""
        self._objects[resource] = fresh
        self._synced[resource] = True
        self.last_event[resource] = time.time()

    def upsert(self, resource: str, obj: Mapping[str, Any]) -> None:
        key, kept = self.transform(resource, obj)
        if kept is not None:
            self._objects[resource][key] = kept
        self.last_event[resource] = time.time()

    def delete(self, resource: str, obj: Mapping[str, Any]) -> None:
        self._objects[resource].pop(self._kinds[resource].key(obj), None)
        self.last_event[resource] = time.time()

    def touch(self, resource: str) -> None:
        self.last_event[resource] = time.time()
