"""In-memory state read by every admission request.

Writers (the watch threads or the local file loader) replace whole entries or whole maps; readers on the
event loop only do dictionary look-ups, so no lock is needed and no admission ever waits for the API.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from webhook.dynakube import INSTANCE_LABEL
from webhook.state import owners as owner_cache
from webhook.state import secrets as secret_cache
from webhook.tolerant import as_map

CLUSTER_ID_NAMESPACE = "kube-system"  # its UID identifies the cluster (K8S_CLUSTER_ID, orchestrator_id)

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
        keep = {
            k: meta[k]
            for k in ("name", "labels", "annotations", "resourceVersion", "uid", "deletionTimestamp")
            if k in meta
        }
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
        # the UID of Namespace kube-system, taken from the namespace cache (no API call of its own)
        self.cluster_id = ""

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
        """DynaKubes, namespaces and (when tracked) the init Secrets listed; the owner cache and the webhook
        namespace's Secrets are not waited for."""
        return all(self._synced[r] for r in SYNC_REQUIRED) and self.init_secret_cache.synced

    def is_synced(self, resource: str) -> bool:
        return self._synced[resource]

    # --- writers ---
    def replace(self, resource: str, objects: Iterable[Mapping[str, Any]]) -> None:
        """A full list: swap the whole map at once and mark the resource synced."""
        part = self._parts.get(resource)
        if part is not None:
            part.replace(resource, objects)
            self.last_event[resource] = time.time()
            return
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
        part = self._parts.get(resource)
        if part is not None:
            part.upsert(resource, obj)
        elif _name(obj):
            kept = self._objects[resource][_name(obj)] = slim(resource, obj)
            if resource == NAMESPACES and _name(obj) == CLUSTER_ID_NAMESPACE:
                self._update_cluster_id(kept)
        self.last_event[resource] = time.time()

    def delete(self, resource: str, obj: Mapping[str, Any]) -> None:
        part = self._parts.get(resource)
        if part is not None:
            part.delete(resource, obj)
        else:
            self._objects[resource].pop(_name(obj), None)
        self.last_event[resource] = time.time()

    def _update_cluster_id(self, namespace: Obj | None) -> None:
        uid = as_map(as_map(namespace).get("metadata")).get("uid")
        if isinstance(uid, str) and uid:
            self.cluster_id = uid  # kept when kube-system leaves the cache: the cluster did not change

    def touch(self, resource: str) -> None:
        self.last_event[resource] = time.time()
