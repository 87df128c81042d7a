"""Owner metadata for metadata enrichment's owner walk, kept as small as it can be.

The walk (contract §7) goes pod -> controller owner -> its controller owner ... while the kind is one of the
workload kinds. Only objects that can *have* a controller owner the walk follows need their ownerReferences
known: a ReplicaSet (owned by a Deployment), a Job (by a CronJob), a ReplicationController (by an OpenShift
DeploymentConfig). Deployments, StatefulSets, DaemonSets, CronJobs and DeploymentConfigs are where the walk
ends (nothing in the walk's kinds controls them), so they are not cached: the pod names them directly, or the
ReplicaSet / Job / ReplicationController entry does.

Each cached object is transformed at arrival (metadata-only watches, ``PartialObjectMetadata``) into one dict
entry ``name -> owner`` per namespace and kind, where ``owner`` is:

- ``None``: no controller owner;
- ``""``: the usual owner (Deployment for a ReplicaSet, CronJob for a Job, DeploymentConfig for a
  ReplicationController) whose name is the object's name cut before its last ``-`` (``web-5d7f8`` ->
  ``web``): the common case costs no string at all;
- a ``str``: the usual owner kind, another name;
- a tuple ``(apiVersion, kind, name)``: any other controller.

Namespace and kind strings are interned. Writers are the watch threads; the admission path only reads.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

from webhook.ownerref import controller_of
from webhook.tolerant import as_map, as_str

REPLICASETS = "replicasets"
JOBS = "jobs"
REPLICATIONCONTROLLERS = "replicationcontrollers"

# resource -> (kind, API path of the cluster-wide collection)
RESOURCES = {
    REPLICASETS: ("ReplicaSet", "/apis/apps/v1/replicasets"),
    JOBS: ("Job", "/apis/batch/v1/jobs"),
    REPLICATIONCONTROLLERS: ("ReplicationController", "/api/v1/replicationcontrollers"),
}
KIND_RESOURCE = {kind: resource for resource, (kind, _) in RESOURCES.items()}
CACHED_KINDS = frozenset(KIND_RESOURCE)
USUAL_OWNER = {
    "ReplicaSet": ("apps/v1", "Deployment"),
    "Job": ("batch/v1", "CronJob"),
    "ReplicationController": ("apps.openshift.io/v1", "DeploymentConfig"),
}

Owner = None | str | tuple[str, str, str]


def compact(kind: str, name: str, meta: Mapping[str, Any]) -> Owner:
    owner = controller_of(meta)
    if owner is None:
        return None
    api_version, owner_kind, owner_name = owner.api_version, owner.kind, owner.name
    if (api_version, owner_kind) != USUAL_OWNER[kind]:
        return (sys.intern(api_version), sys.intern(owner_kind), owner_name)
    if owner_name == name.rpartition("-")[0]:
        return ""
    return owner_name


def expand(kind: str, name: str, owner: Owner) -> dict[str, Any]:
    if owner is None:
        refs: list[dict[str, Any]] = []
    else:
        if isinstance(owner, tuple):
            api_version, owner_kind, owner_name = owner
        else:
            api_version, owner_kind = USUAL_OWNER[kind]
            owner_name = owner or name.rpartition("-")[0]
        refs = [{"apiVersion": api_version, "kind": owner_kind, "name": owner_name, "controller": True}]
    return {"name": name, "ownerReferences": refs}


def _meta(obj: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
    meta = as_map(obj.get("metadata"))
    return as_str(meta.get("namespace")), as_str(meta.get("name")), meta


class OwnerCache:
    """``namespace -> name -> owner`` per kind; see the module docstring for the owner encoding."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, dict[str, Owner]]] = {kind: {} for kind in CACHED_KINDS}
        self.synced: dict[str, bool] = dict.fromkeys(RESOURCES, False)  # a whole list arrived (HasSynced)

    # --- reader (admission path) ---
    def owner_meta(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        """``{"name", "ownerReferences"}`` (only the controller reference) or None when not cached."""
        names = self._by_kind.get(kind, {}).get(namespace)
        if names is None or name not in names:
            return None
        return expand(kind, name, names[name])

    def count(self, resource: str) -> int:
        return sum(len(names) for names in self._by_kind[RESOURCES[resource][0]].values())

    # --- writers (watch threads, state file) ---
    def replace(self, resource: str, objects: Iterable[Mapping[str, Any]]) -> None:
        kind = RESOURCES[resource][0]
        fresh: dict[str, dict[str, Owner]] = {}
        for obj in objects:
            namespace, name, meta = _meta(obj)
            if namespace and name:
                fresh.setdefault(sys.intern(namespace), {})[name] = compact(kind, name, meta)
        self._by_kind[kind] = fresh
        self.synced[resource] = True

    def upsert(self, resource: str, obj: Mapping[str, Any]) -> None:
        kind = RESOURCES[resource][0]
        namespace, name, meta = _meta(obj)
        if namespace and name:
            self._by_kind[kind].setdefault(sys.intern(namespace), {})[name] = compact(kind, name, meta)

    def delete(self, resource: str, obj: Mapping[str, Any]) -> None:
        kind = RESOURCES[resource][0]
        namespace, name, _ = _meta(obj)
        names = self._by_kind[kind].get(namespace)
        if names is not None:
            names.pop(name, None)
            if not names:
                self._by_kind[kind].pop(namespace, None)
