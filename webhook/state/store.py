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

CLUSTER_ID_NAMESPACE = "kube-system"  # its UID identifies the cluster (K8S_CLUSTER_ID, orchestrator_id)
INIT_SECRETS = frozenset(("dynatrace-dynakube-config", "dynatrace-metadata-enrichment-endpoint"))

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


class _Listed(dict[str, frozenset[str]]):
    """Init secrets per namespace from the state file; a namespace it does not list holds both."""

    def __missing__(self, namespace: str) -> frozenset[str]:
        return INIT_SECRETS


class Store:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace  # where DynaKubes live (the webhook's own namespace)
        self._objects: dict[str, dict[str, Obj]] = {r: {} for r in RESOURCES}
        self._synced: dict[str, bool] = dict.fromkeys(RESOURCES, False)
        self.last_event: dict[str, float] = dict.fromkeys(RESOURCES, 0.0)
        self.source = "none"
        # API group versions probed in the background (``webhook.state.discovery``): served or not; absent: unknown
        self.served: dict[str, bool] = {}
        # the UID of Namespace kube-system, taken from the namespace cache (no API call of its own)
        self.cluster_id = ""
        # init secrets per namespace; None while no secret cache feeds the store: every namespace is then
        # taken to hold both (the local state file may list Secrets to say otherwise)
        self._init_secrets: _Listed | None = None

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

    def owner_meta(self, namespace: str, kind: str, name: str) -> Obj | None:
        """Cached metadata (``name``, ``ownerReferences``) of a pod owner, or None when it is not cached.

        No owner cache feeds the store yet: every owner reads as not cached, and the enrichment walk infers
        what the pod itself tells (see ``webhook.mutation.enrichment``)."""
        return None

    def init_secrets(self, namespace: str) -> frozenset[str]:
        """Names of the init secrets the cache holds in ``namespace``."""
        if self._init_secrets is None:
            return INIT_SECRETS
        return self._init_secrets[namespace]

    def set_local_init_secrets(self, secrets: Mapping[str, Iterable[str]]) -> None:
        """Local state file: the namespaces it lists Secrets for hold those; any other holds both."""
        listed = {ns: frozenset(names) for ns, names in secrets.items()}
        self._init_secrets = None if not listed else _Listed(listed)

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
        if resource == NAMESPACES:
            self._update_cluster_id(fresh.get(CLUSTER_ID_NAMESPACE))
        self._synced[resource] = True
        self.last_event[resource] = time.time()

    def upsert(self, resource: str, obj: Mapping[str, Any]) -> None:
        if _name(obj):
            kept = self._objects[resource][_name(obj)] = slim(resource, obj)
            if resource == NAMESPACES and _name(obj) == CLUSTER_ID_NAMESPACE:
                self._update_cluster_id(kept)
        self.last_event[resource] = time.time()

    def delete(self, resource: str, obj: Mapping[str, Any]) -> None:
        self._objects[resource].pop(_name(obj), None)
        self.last_event[resource] = time.time()

    def _update_cluster_id(self, namespace: Obj | None) -> None:
        uid = as_map(as_map(namespace).get("metadata")).get("uid")
        if isinstance(uid, str) and uid:
            self.cluster_id = uid  # kept when kube-system leaves the cache: the cluster did not change

    def touch(self, resource: str) -> None:
        self.last_event[resource] = time.time()
