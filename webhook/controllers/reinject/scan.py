"""One namespace scan of the reinjection controller: which pods need a restart, and whose they are.

Bounded cost: the pods are read as metadata-only pages (``PartialObjectMetadata``, ``page_size`` a page,
``continue`` tokens; ended pods filtered by the server), each page dropped before the next is read. What is
kept is one ``Work`` per workload with pods that need a restart (a sample of names, an exact count, the newest
creation time per cause). A continue token that expired (410 Gone) restarts the namespace's list from the
beginning. ReplicaSets are looked up once per scan (GET), never listed.

A pod needs a restart when

- it was admitted without OneAgent for a reason in ``RESTARTABLE_REASONS`` and the webhook would inject it
  now (the DynaKube's connection info is complete, the init Secret is there), and its DynaKube is opted in; or
- it never reached the webhook: no injection annotation at all (``oneagent.dynatrace.com/injected``,
  ``dynakube.dynatrace.com/injected``, ``metadata-enrichment.dynatrace.com/injected``), the webhook would have
  changed it (injecting mode, namespace selected, pod not opted out), and it was created after its namespace
  was mapped to the DynaKube. When was that? The time of the namespace's ``managedFields`` entry that owns the
  ``dynakube.internal.dynatrace.com/instance`` label (the last write of that manager: never earlier than the
  mapping, so a pod from before the mapping is never taken for a missed one); the namespace's
  creationTimestamp when no entry names the label. Such pods are reported whatever the DynaKube's opt-in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook import dynakube as dk
from webhook.controllers.reinject.verdict import (
    APPS_KINDS,
    CAUSE_MISSED,
    EPOCH,
    FAIL_LIST,
    FAIL_OWNER,
    MANUAL,
    SKIP_BARE,
    SKIP_JOB,
    SKIP_NOT_FOUND,
    SKIP_UNSUPPORTED,
    ScanError,
    Work,
    complete,
    may_restart,
    opted_in,
    parse_time,
    waiting_reasons,
)
from webhook.kube.api import Api, ApiError, Items, Stopped, pages
from webhook.mutation.bootstrapper import CONFIG_SECRET as BOOTSTRAPPER_CONFIG_SECRET
from webhook.mutation.missed import never_seen
from webhook.mutation.pod import CONFIG_SECRET, connection_info_reasons
from webhook.ownerref import OwnerRef, controller_of
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

ACTIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"
_FIELDS_PREFIX = ("f:metadata", "f:labels", f"f:{dk.INSTANCE_LABEL}")
_RESTARTS_ON_GONE = 3  # list restarts after an expired continue token before the scan counts as failed


def would_inject_now(dynakube: Mapping[str, Any], secrets: Collection[str] | None) -> bool:
    """A pod created now would get OneAgent: connection info complete and the init Secret present, of the v1.4
    contract or the v1.10 contract's bootstrapper config (``None``: the Store does not track init Secrets, so
    they count as present)."""
    return complete(dynakube) and (
        secrets is None or CONFIG_SECRET in secrets or BOOTSTRAPPER_CONFIG_SECRET in secrets
    )


def namespace_view(
    namespace: Mapping[str, Any] | None, dynakube: Mapping[str, Any] | None, secrets: Collection[str] | None
) -> tuple[Any, ...] | None:
    """What a scan of a namespace depends on (its labels, its DynaKube's connection info, opt-in, mode and
    selector, its init Secrets): a scan is due when this changes. None when the namespace is not mapped."""
    if dynakube is None:
        return None
    labels = _map(_map(_map(namespace).get("metadata")).get("labels"))
    return (
        tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        dk.name(dynakube),
        tuple(connection_info_reasons(dynakube)),
        opted_in(dynakube),
        dk.mode(dynakube),
        dk.automatic_injection(dynakube),
        repr(dk.namespace_selector(dynakube)),
        None if secrets is None else tuple(sorted(secrets)),
    )


def _owns_instance_label(fields: Any) -> bool:
    for key in _FIELDS_PREFIX:
        if not isinstance(fields, Mapping) or key not in fields:
            return False
        fields = fields[key]
    return True


def mapped_since(namespace: Mapping[str, Any]) -> dt.datetime | None:
    """When the namespace got its DynaKube label, at the latest (see the module docstring); None: unknown."""
    meta = _map(namespace.get("metadata"))
    entries = meta.get("managedFields")
    times = [
        parse_time(entry.get("time"))
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, Mapping) and _owns_instance_label(entry.get("fieldsV1"))
    ]
    known = [t for t in times if t is not None]
    return max(known) if known else parse_time(meta.get("creationTimestamp"))


@dataclass
class NamespaceScan:
    """What one scan of a namespace found."""

    namespace: str
    dynakube: str
    mapped_since: dt.datetime | None
    works: dict[tuple[str, str, str], Work] = field(default_factory=dict)
    missed: int = 0  # pods never seen by the webhook
    pods: int = 0  # pods read
    pages: int = 0
    restarts: int = 0  # list restarts after 410 Gone

    def reset(self) -> None:
        self.works, self.missed, self.pods = {}, 0, 0


class _Owners:
    """Top-level owners of pods, with each ReplicaSet read once per scan (GET, never a list)."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self._replica_sets: dict[str, OwnerRef | bool | None] = {}

    def resolve(self, meta: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
        """(kind, name, apiVersion, uid, skip reason or "") of the workload to restart for a pod."""
        ref = controller_of(meta)
        if ref is None:
            return ("Pod", _str(meta.get("name")), "v1", _str(meta.get("uid")), SKIP_BARE)
        kind, name = ref[0], ref[1]
        if kind == "Job":
            return (*ref, SKIP_JOB)
        if kind in APPS_KINDS and kind != "Deployment":
            return (*ref, "")
        if kind != "ReplicaSet":
            return (*ref, SKIP_UNSUPPORTED)
        if name not in self._replica_sets:
            try:
                rs = self.api.get(f"/apis/apps/v1/namespaces/{self.namespace}/replicasets/{name}")
            except ApiError as err:
                if err.status != 404:
                    raise ScanError(FAIL_OWNER, err) from None
                self._replica_sets[name] = False
            else:
                self._replica_sets[name] = controller_of(_map(rs.get("metadata")))
        owner = self._replica_sets[name]
        if owner is False:
            return (*ref, SKIP_NOT_FOUND)
        if isinstance(owner, tuple) and owner[0] == "Deployment":
            return (*owner, "")
        return (*ref, SKIP_UNSUPPORTED)


def scan_namespace(
    api: Api,
    namespace: Mapping[str, Any],
    dynakube: Mapping[str, Any],
    *,
    page_size: int = 500,
    secrets: Callable[[str], Collection[str] | None] = lambda namespace: None,
    between_pages: Callable[[], bool] = lambda: True,
) -> NamespaceScan | None:
    """Read the pods of ``namespace`` (its object as read from the API, with ``managedFields``) page by page
    and return the workloads whose pods need a restart. Raises ``ScanError`` when the API fails; None when
    ``between_pages()`` (the leadership check) turned False."""
    meta = _map(namespace.get("metadata"))
    name = _str(meta.get("name"))
    ns_labels = _map(meta.get("labels"))
    dk_name = dk.name(dynakube)
    since = mapped_since(namespace)
    scan = NamespaceScan(name, dk_name, since)
    ready = would_inject_now(dynakube, secrets(name))
    owners = _Owners(api, name)
    path = f"/api/v1/namespaces/{name}/pods"

    def fetch(token: str) -> tuple[Items, str, str]:
        items, following = api.list_metadata_page(
            path, limit=page_size, continue_token=token, field_selector=ACTIVE_PODS
        )
        return items, "", following

    try:
        for page in pages(fetch, restarts=_RESTARTS_ON_GONE, proceed=between_pages):
            if page.restarted:
                scan.restarts += 1
                scan.reset()
            scan.pages += 1
            for item in page.items:
                scan.pods += 1
                _classify(scan, owners, _map(item.get("metadata")), ns_labels, dynakube, ready)
    except Stopped:
        return None
    except ApiError as err:  # ContinueExpired too
        raise ScanError(FAIL_LIST, err) from None
    return scan


def _classify(
    scan: NamespaceScan,
    owners: _Owners,
    meta: Mapping[str, Any],
    ns_labels: Mapping[str, Any],
    dynakube: Mapping[str, Any],
    ready: bool,
) -> None:
    created = _str(meta.get("creationTimestamp"))
    causes = waiting_reasons({"metadata": meta})
    if causes:
        if not (ready and may_restart(dynakube, causes)):
            return
    elif never_seen(meta, ns_labels, dynakube) and (parse_time(created) or EPOCH) > (
        scan.mapped_since or dt.datetime.max.replace(tzinfo=dt.UTC)
    ):
        causes = [CAUSE_MISSED]
        scan.missed += 1
    else:
        return
    kind, name, api_version, uid, skip = owners.resolve(meta)
    key = (scan.namespace, kind, name)
    work = scan.works.get(key)
    if work is None:
        work = scan.works[key] = Work(scan.dynakube, scan.namespace, kind, name, api_version, uid)
        if skip:
            work.state, work.detail = MANUAL, skip
    work.add_pod(_str(meta.get("name")), causes, created)
