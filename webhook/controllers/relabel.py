"""Background relabeling of existing namespaces when DynaKubes change (opt-in, off by default).

``/label-ns`` labels a namespace when the namespace itself is created or updated. When a DynaKube is created,
changed or deleted, the namespaces that already exist keep their old label until they are touched; upstream's
operator relabels them from the DynaKube's side. This module does the same from the webhook's cache:

- ``plan(...)`` is pure: cached DynaKubes and namespaces in, the label changes out, decided by the very same
  rules as ``/label-ns`` (``webhook.mutation.namespace.desired``). Namespaces matched by two or more DynaKubes
  are left alone (``/label-ns`` would deny them; ``/validate`` denies the DynaKube that causes it).
- ``Relabeler.reconcile_once()`` applies a plan with merge PATCHes on ``/api/v1/namespaces/<name>`` that carry
  the cached ``resourceVersion``: a namespace changed since the cache saw it answers 409 and is skipped (that
  change went through ``/label-ns`` and was labelled there). A 404 (deleted meanwhile) is skipped too.
- ``Relabeler.start()`` runs it on a reconcile loop (``webhook.controllers.loop``, one key for the whole
  cache): once when the cache has synced, then on every DynaKube change (``notify()``, debounced) and every
  ``interval`` seconds; a pass that fails is retried with backoff. It never runs on the admission path.

Needs RBAC ``patch`` on ``namespaces``. With several webhook replicas each one relabels; the patches are
idempotent and the resourceVersion precondition keeps them from overwriting each other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from webhook import dynakube as dk
from webhook.controllers.loop import Backoff, Loop, Result
from webhook.kube.api import Api, ApiError
from webhook.mutation import namespace as mapping
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

log = logging.getLogger(__name__)

NAMESPACES_PATH = "/api/v1/namespaces"
_ALL = "all"  # one key: a pass plans over the whole cache


class Change(NamedTuple):
    namespace: str
    value: str | None  # the DynaKube name to label with; None removes the label


@dataclass(frozen=True)
class Plan:
    changes: list[Change] = field(default_factory=list)
    conflicts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # namespace -> matching DynaKubes


def make_plan(
    dynakubes: Sequence[Mapping[str, Any]], namespaces: Sequence[Mapping[str, Any]], webhook_namespace: str
) -> Plan:
    """The label changes that bring every namespace in line with the DynaKubes, sorted by namespace."""
    changes: list[Change] = []
    conflicts: dict[str, tuple[str, ...]] = {}
    rules = [mapping.rules_of(d, webhook_namespace) for d in dynakubes]
    for namespace in namespaces:
        name = mapping.name_of(namespace)
        if not name or name == webhook_namespace:
            continue
        labels = mapping.labels_of(namespace)
        want = mapping.desired_by_rules(rules, name, labels)
        if want.conflict:
            conflicts[name] = want.matching
            continue
        current = labels.get(dk.INSTANCE_LABEL)
        if want.value is not None and current != want.value:
            changes.append(Change(name, want.value))
        elif want.value is None and dk.INSTANCE_LABEL in labels:
            changes.append(Change(name, None))
    return Plan(sorted(changes), conflicts)


def plan(
    dynakubes: Sequence[Mapping[str, Any]], namespaces: Sequence[Mapping[str, Any]], webhook_namespace: str
) -> list[Change]:
    """Only the changes of ``make_plan``: a list of (namespace, desired label value or None)."""
    return make_plan(dynakubes, namespaces, webhook_namespace).changes


def patch_body(value: str | None, resource_version: str = "") -> dict[str, Any]:
    """The merge patch (RFC 7386) that sets or, with None, removes the instance label."""
    metadata: dict[str, Any] = {"labels": {dk.INSTANCE_LABEL: value}}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {"metadata": metadata}


@dataclass
class Report:
    patched: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # 404 or 409: changed or gone since the cache saw it
    failed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    skipped: str = ""  # why nothing was tried


class Relabeler:
    def __init__(
        self,
        api: Api,
        store: Store,
        *,
        interval: float = 300.0,
        debounce: float = 1.0,
    ) -> None:
        self.api = api
        self.store = store
        self.interval = interval
        self.debounce = debounce
        self.loop: Loop[str] = Loop(
            "relabel", self._reconcile, backoff=Backoff(base=min(1.0, interval), cap=max(interval, 1.0))
        )
        self.runs = 0
        self.last_report: Report | None = None

    # --- signals ---
    def notify(self) -> None:
        """Something changed: reconcile soon (bursts of notifications are batched by ``debounce``)."""
        self.loop.add(_ALL, self.debounce)

    def on_event(self, resource: str, kind: str, obj: Mapping[str, Any] | None = None) -> None:
        """A watch-event callback: DynaKube changes and relists wake the relabeler, and so does a whole list of
        DynaKubes or namespaces (the cache it waits for at start)."""
        if (resource == DYNAKUBES and kind in ("ADDED", "MODIFIED", "DELETED", "relist")) or (
            resource in (DYNAKUBES, NAMESPACES) and kind == "listed"
        ):
            self.notify()

    # --- one pass ---
    def reconcile_once(self) -> Report:
        report = Report()
        if not (self.store.is_synced(DYNAKUBES) and self.store.is_synced(NAMESPACES)):
            report.skipped = "cache not synced"
            self.last_report = report
            return report
        namespaces = self.store.namespaces()
        result = make_plan(self.store.dynakubes(), namespaces, self.store.namespace)
        for name, matching in sorted(result.conflicts.items()):
            log.warning("namespace %s matches DynaKubes %s; left unchanged", name, ", ".join(matching))
            report.conflicts.append(name)
        versions = {mapping.name_of(n): _resource_version(n) for n in namespaces}
        for change in result.changes:
            if self.loop.stopping:
                break
            self._apply(change, versions.get(change.namespace, ""), report)
        if report.patched or report.failed:
            log.info(
                "relabeled %d namespace(s), %d stale, %d failed",
                len(report.patched),
                len(report.stale),
                len(report.failed),
            )
        self.runs += 1
        self.last_report = report
        return report

    def _apply(self, change: Change, resource_version: str, report: Report) -> None:
        path = f"{NAMESPACES_PATH}/{change.namespace}"
        try:
            updated = self.api.patch(path, patch_body(change.value, resource_version), "merge")
        except ApiError as err:
            if err.status in (404, 409):
                report.stale.append(change.namespace)
                log.info("namespace %s changed or was deleted meanwhile (%s); skipped", change.namespace, err)
            else:
                report.failed.append(change.namespace)
                log.warning("relabeling namespace %s failed: %s", change.namespace, err)
            return
        except Exception as err:  # the connection: try again next round
            report.failed.append(change.namespace)
            log.warning("relabeling namespace %s failed: %s", change.namespace, err)
            return
        report.patched.append(change.namespace)
        if change.value is None:
            log.info("namespace %s: removed label %s", change.namespace, dk.INSTANCE_LABEL)
        else:
            log.info("namespace %s: labeled %s=%s", change.namespace, dk.INSTANCE_LABEL, change.value)
        if isinstance(updated, dict) and mapping.name_of(updated) == change.namespace:
            # the watch will deliver it too; updating now keeps the next pass from patching again
            self.store.upsert(NAMESPACES, updated)

    # --- the loop ---
    def _reconcile(self, key: str) -> Result:
        """Reconcile once the cache has synced (the list that syncs it notifies); then again every ``interval``
        seconds, or on ``notify()``."""
        if not self.store.synced:
            return Result(requeue_after=self.interval)  # the "listed" event of the last cache comes first
        self.reconcile_once()
        return Result(requeue_after=self.interval)

    def start(self) -> threading.Thread:
        self.loop.add(_ALL)
        return self.loop.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        self.loop.stop(timeout)


def _resource_version(namespace: Mapping[str, Any]) -> str:
    meta = namespace.get("metadata")
    rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
    return rv if isinstance(rv, str) else ""
