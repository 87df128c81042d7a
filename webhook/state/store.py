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
from webhook.state import owners as owner_cache
from webhook.state import secrets as secret_cache
from webhook.state.kinds import (
    CLUSTER_ID_NAMESPACE,
    DEFAULT_KINDS,
    DYNAKUBES,
    NAMESPACES,
    SECRET_KEYS,
    SECRETS,
    Kind,
    Obj,
    add_annotations,
    rule_annotation_keys,
)
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
        # caches of their own shape, fed through the same writers (see webhook/state/owners.py, secrets.py)
        self.owners = owner_cache.OwnerCache()
        self.init_secret_cache = secret_cache.InitSecretCache()
        self.inputs = secret_cache.InputCache()
        self._parts: dict[str, Any] = dict.fromkeys(owner_cache.RESOURCES, self.owners)
        self._parts.update(dict.fromkeys(secret_cache.INIT_RESOURCES, self.init_secret_cache))
        self._parts.update(
            dict.fromkeys((secret_cache.INPUT_SECRETS, secret_cache.INPUT_CONFIGMAPS), self.inputs)
        )
        self.last_event.update(dict.fromkeys(self._parts, 0.0))
        # API group versions probed in the background (``webhook.state.discovery``): served or not; absent: unknown
        self.served: dict[str, bool] = {}
        # the cluster's Kubernetes minor version, read off the request path (``webhook.state.discovery``); None:
        # not known (yet)
        self.kubernetes_minor: int | None = None
        # the UID of Namespace kube-system, taken from the namespace cache (no API call of its own)
        self.cluster_id = ""
        # namespace annotations the cached DynaKubes' enrichment rules name; when it grows, the namespaces
        # cached without them are listed again (``generation`` tells the reflector not to reuse them)
        self._rule_annotations: frozenset[str] = frozenset()
        self.generation: dict[str, int] = {}
        self._attached: set[str] = set()  # parts a watch feeds (their sync is reported)
        self._relist: set[str] = set()
        for kind in kinds:
            self.add_kind(kind)

    def add_kind(self, kind: Kind) -> None:
        """Cache one more kind (before the state source starts): empty and not synced until listed."""
        if kind.resource in self._parts:
            raise ValueError(f"{kind.resource!r} is fed into a cache of its own shape (Store.parts())")
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
        """The kinds' resources (``kinds()``); the owner, init-Secret and input caches are ``parts()``."""
        return list(self._kinds)

    def parts(self) -> list[str]:
        """Resources fed into the caches of their own shape (``owners``, ``init_secret_cache``, ``inputs``)."""
        return list(self._parts)

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

    def init_secrets(self, namespace: str) -> frozenset[str]:
        """Names of the init Secrets present in ``namespace`` (both, when no source tracks them)."""
        return self.init_secret_cache.names(namespace)

    def owner_meta(self, namespace: str, kind: str, name: str) -> Obj | None:
        """``{"name", "ownerReferences"}`` (the controller reference only) of a cached ReplicaSet, Job or
        ReplicationController; None when not cached: not seen yet (fall back to what the pod tells, e.g. its
        ``pod-template-hash``), or a kind outside ``owners.CACHED_KINDS`` — Deployment, StatefulSet, DaemonSet,
        CronJob, DeploymentConfig — where the owner walk ends (nothing it follows controls them)."""
        return self.owners.owner_meta(namespace, kind, name)

    def secret(self, name: str) -> Obj | None:
        """A cached Secret of the webhook's namespace (name and ``SECRET_KEYS`` of ``data`` only)."""
        return self._objects[SECRETS].get(name)

    def dynakubes(self) -> list[Obj]:
        return list(self._objects[DYNAKUBES].values())

    def namespaces(self) -> list[Obj]:
        return list(self._objects[NAMESPACES].values())

    @property
    def synced(self) -> bool:
        """What readiness waits for: the first list of every kind that is ``sync_required`` and (when tracked)
        of both init Secrets; the owner cache and the inputs are not waited for."""
        return (
            all(self._synced[r] for r, kind in self._kinds.items() if kind.sync_required)
            and self.init_secret_cache.synced
        )

    def is_synced(self, resource: str) -> bool:
        return self._synced[resource]

    def attach(self, resource: str) -> None:
        """A watch feeds this cache of its own shape (``parts()``): its sync is reported from now on."""
        self._attached.add(resource)

    def synced_resources(self) -> dict[str, bool]:
        """Each cache's client-go ``HasSynced``: it holds a whole list. Every kind, and every cache of its own
        shape a watch feeds (the init Secrets, owners and inputs in cluster mode)."""
        out = dict(self._synced)
        parts = {
            **{r: self.owners.synced[r] for r in owner_cache.RESOURCES},
            **{r: self.init_secret_cache.listed(r) for r in secret_cache.INIT_RESOURCES},
            **self.inputs.synced,
        }
        out.update({r: ok for r, ok in parts.items() if r in self._attached})
        return out

    def take_relist(self, resource: str) -> bool:
        """True once after what the cache keeps of ``resource`` widened: the reflector lists it again."""
        if resource in self._relist:
            self._relist.discard(resource)
            return True
        return False

    def _dynakubes_changed(self) -> None:
        keys = rule_annotation_keys(self._objects[DYNAKUBES].values())
        if keys - self._rule_annotations:
            self.generation[NAMESPACES] = self.generation.get(NAMESPACES, 0) + 1
            if self._synced.get(NAMESPACES):
                self._relist.add(NAMESPACES)
                log.info(
                    "DynaKube enrichment rules name new namespace annotations: namespaces are listed again"
                )
        self._rule_annotations = keys

    # --- transform at arrival ---
    def transform(self, resource: str, obj: Mapping[str, Any]) -> tuple[str, Obj | None]:
        """(key, what the cache keeps of ``obj``); (key or "", None) when it cannot be kept."""
        kind = self._kinds[resource]
        key = kind.key(obj)
        if not key:
            return "", None
        try:
            kept = kind.transform(obj)
            if resource == NAMESPACES and self._rule_annotations:
                kept = add_annotations(kept, obj, self._rule_annotations)
            return key, kept
        except Exception:  # a transform must never stop a watch: drop the object, say so
            self.dropped += 1
            log.exception("%s: object %s could not be transformed; not cached", resource, key)
            return key, None

    # --- writers ---
    def replace(self, resource: str, objects: Iterable[Mapping[str, Any]]) -> None:
        """A full list of whole objects: transform them, swap the whole map at once, mark the kind synced (a
        part, ``owners``/``init_secret_cache``/``inputs``, reduces and swaps on its own)."""
        part = self._parts.get(resource)
        if part is not None:
            part.replace(resource, objects)
            self.last_event[resource] = time.time()
            return
        fresh = {}
        for obj in objects:
            key, kept = self.transform(resource, obj)
            if kept is not None:
                fresh[key] = kept
        self.replace_transformed(resource, fresh)

    def replace_transformed(self, resource: str, fresh: dict[str, Obj]) -> None:
        """A full list already transformed and keyed (the reflector builds it page by page)."""
        self._objects[resource] = fresh
        if resource == NAMESPACES:
            self._update_cluster_id(fresh.get(CLUSTER_ID_NAMESPACE))
        if resource == DYNAKUBES:
            self._dynakubes_changed()
        self._synced[resource] = True
        self.last_event[resource] = time.time()

    def upsert(self, resource: str, obj: Mapping[str, Any]) -> None:
        part = self._parts.get(resource)
        if part is not None:
            part.upsert(resource, obj)
            self.last_event[resource] = time.time()
            return
        key, kept = self.transform(resource, obj)
        if kept is not None:
            self._objects[resource][key] = kept
            if resource == NAMESPACES and key == CLUSTER_ID_NAMESPACE:
                self._update_cluster_id(kept)
            if resource == DYNAKUBES:
                self._dynakubes_changed()
        self.last_event[resource] = time.time()

    def delete(self, resource: str, obj: Mapping[str, Any]) -> None:
        part = self._parts.get(resource)
        if part is not None:
            part.delete(resource, obj)
        else:
            self._objects[resource].pop(self._kinds[resource].key(obj), None)
        self.last_event[resource] = time.time()

    def _update_cluster_id(self, namespace: Obj | None) -> None:
        uid = as_map(as_map(namespace).get("metadata")).get("uid")
        if isinstance(uid, str) and uid:
            self.cluster_id = uid  # kept when kube-system leaves the cache: the cluster did not change

    def touch(self, resource: str) -> None:
        self.last_event[resource] = time.time()
