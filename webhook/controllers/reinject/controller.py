"""Automatic reinjection, level-triggered: find pods that would get OneAgent now but did not, restart their
workloads once per cause, and report pods that never reached the webhook.

The controller compares the pods it finds with what the webhook would decide now, not with changes it saw, so
a webhook restarted after a DynaKube's connection info became complete still restarts the workloads it had
skipped, and a pod admitted while no webhook answered (``failurePolicy: Ignore``) is found.

It is a leader-only Runnable of the Manager (``webhook.manager``): started when this replica wins the one
Lease, stopped when it loses it (what it found is then the new leader's to report); ``leading()`` is checked
between pages and before every restart. It runs on a reconcile loop (``webhook.controllers.loop``) with these
keys:

- ``resync``: every mapped namespace is due for a scan; runs on start and every ``resync`` seconds
  (``--reinject-resync``, 10 min).
- ``sync``: queued by every watch event of a trigger resource (DynaKubes, namespaces, the init Secrets when
  the Store has them): the namespaces whose *view* changed (their labels, their DynaKube's connection info,
  opt-in, mode and selector, their init Secrets) are due for a scan; namespaces no longer mapped are forgotten.
- ``("scan", namespace)``: one namespace, read as metadata-only pages (``reinject_scan``); its workloads with
  pods to restart replace what was known of the namespace; each one to restart is queued as a restart key.
- ``("restart", namespace, kind, name)``: one workload: GET it, ``restart_verdict`` (opt-out, paused, the
  restart record, a restart already made, cooldown), then one strategic-merge PATCH with ``restartedAt``,
  the restart record and the resourceVersion read, at most ``rate_per_minute`` a minute (a token bucket).

Every restart, skip, report and failure is a log line, an Event on the workload and a counter
(``counts``/``on_count``), reported once per workload and outcome while the outcome lasts (a resync does not
repeat it). ``pending()`` lists what waits, ``missed()`` counts the pods never seen by the webhook per
namespace and DynaKube. The clock is injectable; tests call ``tick()`` and move the clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Hashable, Mapping
from typing import Any

from webhook import dynakube as dk
from webhook.controllers.events import Recorder, rfc3339
from webhook.controllers.leader import default_identity
from webhook.controllers.loop import Backoff, Loop, Result, TokenBucket
from webhook.controllers.reinject.findings import WorkKey
from webhook.controllers.reinject.report import Reports
from webhook.controllers.reinject.scan import NamespaceScan, namespace_view, scan_namespace, would_inject_now
from webhook.controllers.reinject.verdict import (
    APPS_KINDS,
    DONE,
    DRY_RUN,
    EVENT_RESTARTED,
    EVENT_SKIPPED,
    FAIL_LIST,
    FAIL_OWNER,
    FAIL_PATCH,
    FAILED,
    QUEUED,
    REASON_ROLLOUT_RESTART,
    RESTARTED,
    SKIP_ALREADY,
    SKIP_CONFLICT,
    SKIP_DRY_RUN,
    SKIPPED,
    Config,
    ScanError,
    Work,
    log_fields,
    may_restart,
    restart_patch,
    restart_verdict,
    restarts,
)
from webhook.kube.api import Api, ApiError
from webhook.state.secrets import INIT_RESOURCES
from webhook.state.store import DYNAKUBES, NAMESPACES, Store
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

log = logging.getLogger(__name__)

RESYNC, SYNC = "resync", "sync"


def default_triggers(store: Store) -> frozenset[str]:
    """DynaKubes, namespaces and the init Secrets (not the Store's other resources)."""
    return frozenset({DYNAKUBES, NAMESPACES, *INIT_RESOURCES})


class Reinjector(Reports):
    """The controller; what it found, its counters and ``pending()``/``missed()`` come from ``Findings``."""

    def __init__(
        self,
        api: Api,
        store: Store,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        leading: Callable[[], bool] = lambda: True,
        identity: str = "",
        on_count: Callable[[str, str], None] | None = None,
        triggers: Collection[str] | None = None,
        ready: Callable[[], bool] | None = None,
        recorder: Any = None,
    ) -> None:
        """``leading()``: this replica holds the Lease (the Manager's); ``identity`` reports the Events.
        ``triggers``: the Store resources whose watch events start a ``sync`` (default: ``default_triggers``).
        ``ready``: whether this webhook serves admissions; nothing is scanned or restarted before it has for
        ``config.startup_grace`` seconds, so that the new pods of a restart reach a webhook."""
        self.api = api
        self.store = store
        self.config = config
        self.clock = clock
        self.triggers = frozenset(triggers) if triggers is not None else default_triggers(store)
        self.secrets: Callable[[str], Collection[str] | None] = store.init_secrets
        self.leading = leading
        self.identity = identity or default_identity()
        # the Events recorder everyone shares; one of its own (flushed by ``tick()``) when driven by hand
        self._own_recorder = recorder is None
        Reports.__init__(self, recorder or Recorder(api, instance=self.identity, clock=clock), on_count)
        self.ready = ready
        self._ready_since: float | None = None
        self.scans = 0  # namespace scans made
        self._views: dict[str, tuple[Any, ...]] = {}  # namespace -> view at its last scan
        self._since: dict[str, str] = {}  # namespace -> when it was mapped (for messages)
        self._started = False
        self.loop: Loop[Hashable] = Loop(
            "reinject",
            self._reconcile,
            clock=clock,
            # a failed restart is tried again after retry_delay, twice that, ... (the queue's retry; one leader,
            # so no jitter); restarts are rate-limited by the queue: a restart key runs when a token is there
            backoff=Backoff(base=config.retry_delay, cap=config.retry_delay * 8, jitter=0.0),
            limiter=TokenBucket(config.rate_per_minute, clock),
            limited=lambda key: isinstance(key, tuple) and key[0] == "restart" and not config.dry_run,
        )

    # --- lifecycle ---
    name = "reinject"

    def start(self, thread: bool = True) -> None:
        """Begin (this replica leads): a full scan, then watch events (``thread``: run the loop in a thread)."""
        if not self.config.enabled or self._started:
            return
        self._started = True
        mode = " (dry run)" if self.config.dry_run else ""
        log.info(
            "automatic reinjection on%s: at most %g workloads a minute, full scan every %.0fs",
            mode,
            self.config.rate_per_minute,
            self.config.resync,
        )
        self.loop.add(RESYNC)
        if thread:
            self.loop.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (leadership lost, or the process stops); what was found is the next leader's."""
        self._started = False
        self.loop.stop(timeout)
        for namespace in list(self._views):
            self._forget(namespace)

    @property
    def leader(self) -> bool:
        return self._started and self.leading()

    def tick(self) -> int:
        """Run every key that is due now (tests drive the loop with this and a fake clock)."""
        if not self._started:
            self.start(thread=False)
        ran = self.loop.process()
        if self._own_recorder:
            self.recorder.process(final=True)
        return ran

    def on_event(self, resource: str, kind: str, obj: Mapping[str, Any] | None = None) -> None:
        """A watch event of the Store (called from the watch threads), mapped to the keys it affects: a
        namespace's event, or an init Secret's, re-checks that namespace's view; a DynaKube's event (or a
        relist) re-checks every namespace's view (in memory; only the changed ones are scanned)."""
        if not self._started or resource not in self.triggers:
            return
        if obj is not None and resource != DYNAKUBES:
            meta = _map(obj.get("metadata"))
            namespace = _str(meta.get("name") if resource == NAMESPACES else meta.get("namespace"))
            if namespace:
                self.loop.add(("view", namespace))
                return
        self.loop.add(SYNC)

    # --- the keys ---
    def _reconcile(self, key: Hashable) -> Result | None:
        if key == RESYNC:
            if self._ready():
                self._sync(everything=True)
                return Result(requeue_after=self.config.resync)
            return Result(requeue_after=self.config.interval) if self._leading() else None
        if key == SYNC:
            if self._ready():
                self._sync(everything=False)
            return None
        if isinstance(key, tuple) and key[0] == "view":
            if self._ready():
                self._check(key[1])
            return None
        if isinstance(key, tuple) and key[0] == "scan":
            return self._scan(key[1])
        if isinstance(key, tuple) and key[0] == "restart":
            return self._restart((key[1], key[2], key[3]))
        return None

    def _leading(self) -> bool:
        """Started, and the Manager still holds the Lease (renewed beside this loop, never in it)."""
        return self._started and self.leading()

    def _serving(self) -> bool:
        """This webhook has served admissions for the start-up grace (always, without a ``ready`` check)."""
        if self.ready is None:
            return True
        if not self.ready():
            self._ready_since = None
            return False
        now = self.clock()
        if self._ready_since is None:
            self._ready_since = now
        return now - self._ready_since >= self.config.startup_grace

    def _ready(self) -> bool:
        return (
            self._leading()
            and self._serving()
            and self.store.is_synced(DYNAKUBES)
            and self.store.is_synced(NAMESPACES)
        )

    def _sync(self, *, everything: bool) -> None:
        """Every namespace's view (``everything``: scanned whether or not it changed); views of namespaces that
        are gone are forgotten."""
        names = {_str(_map(ns.get("metadata")).get("name")) for ns in self.store.namespaces()} - {""}
        for name in [n for n in self._views if n not in names]:
            self._forget(name)
        for name in sorted(names):
            self._check(name, force=everything)

    def _check(self, name: str, *, force: bool = False) -> None:
        """One namespace's view: scanned when it changed (or ``force``), forgotten when it is no longer mapped."""
        view = namespace_view(*self.store.pod_state(name), self.secrets(name))
        if view is None:
            if name in self._views:
                self._forget(name)
        elif force or self._views.get(name) != view:
            self._views[name] = view
            self.loop.add(("scan", name))

    def _forget(self, namespace: str) -> None:
        self._views.pop(namespace, None)
        self._since.pop(namespace, None)
        self.forget(namespace)

    # --- scanning (leader only) ---
    def _scan(self, namespace: str) -> Result | None:
        if not self._leading():
            return None
        _, dynakube = self.store.pod_state(namespace)
        if dynakube is None:
            self._forget(namespace)
            return None
        try:
            try:
                ns = self.api.get(f"/api/v1/namespaces/{namespace}")
            except ApiError as err:
                if err.status == 404:
                    self._forget(namespace)
                    return None
                raise ScanError(FAIL_LIST, err) from None
            scan = scan_namespace(
                self.api,
                ns,
                dynakube,
                page_size=self.config.page_size,
                secrets=self.secrets,
                between_pages=self._leading,
            )
        except ScanError as failure:
            self.count(FAILED, failure.reason)
            log.warning(
                "reinjection: scanning namespace %s failed (%s); retrying in %.0fs",
                namespace,
                failure.error,
                self.config.retry_delay,
                extra={"dynakube": dk.name(dynakube), "namespace": namespace},
            )
            return Result(requeue_after=self.config.retry_delay)
        if scan is None:
            log.info(
                "reinjection: lost the Lease while scanning namespace %s; the new leader scans it", namespace
            )
            return None
        self.scans += 1
        self._take(scan, dynakube)
        return None

    def _take(self, scan: NamespaceScan, dynakube: dict[str, Any]) -> None:
        """Replace what was known of the namespace with what the scan found, and act on it."""
        namespace = scan.namespace
        self._since[namespace] = rfc3339(scan.mapped_since.timestamp()) if scan.mapped_since else "?"
        ready = would_inject_now(dynakube, self.secrets(namespace))
        for key in self.take(scan, dynakube, ready, self._since[namespace]):
            self.loop.add(("restart", *key))

    # --- restarting (leader only) ---
    def _restart(self, key: WorkKey) -> Result | None:
        work = self.work(key)
        if work is None or work.state != QUEUED or not self._leading():
            return None
        if not self._serving():
            return Result(requeue_after=self.config.interval)
        _, dynakube = self.store.pod_state(work.namespace)
        if dynakube is None or not (
            may_restart(dynakube, work.causes) and would_inject_now(dynakube, self.secrets(work.namespace))
        ):
            return None  # the view changed: a sync rescans the namespace
        path = f"/apis/apps/v1/namespaces/{work.namespace}/{APPS_KINDS[work.kind]}/{work.name}"
        work.attempts = self.loop.num_requeues(("restart", *key)) + 1
        try:
            obj = self.api.get(path)
        except ApiError as err:
            return self._failed(key, work, FAIL_OWNER, err)
        work.uid = _str(_map(obj.get("metadata")).get("uid")) or work.uid
        now = self.clock()
        verdict = restart_verdict(work, obj, now, self.config.cooldown)
        if verdict is not None:
            self.set_state(work, verdict.state, verdict.reason)
            self.report(work, SKIPPED, verdict.reason, verdict.message, EVENT_SKIPPED)
            if verdict.retry_at is not None:
                return Result(requeue_after=max(0.0, verdict.retry_at - now))
            return None
        if self.config.dry_run:
            self.set_state(work, DRY_RUN, SKIP_DRY_RUN)
            message = (
                f"Dry run: would restart {work.kind} {work.name} so that pods {work.pod_list()} get OneAgent "
                f"(they were {work.why()}; DynaKube {work.dynakube} would inject them now)"
            )
            self.report(work, SKIPPED, SKIP_DRY_RUN, message, EVENT_RESTARTED)
            return None
        timestamp = rfc3339(now)
        version = _str(_map(obj.get("metadata")).get("resourceVersion"))
        try:
            self.api.patch(path, restart_patch(timestamp, restarts(obj), work.causes, version), "strategic")
        except ApiError as err:
            if err.status == 409:  # changed since the GET (another replica, a rollout): read it again
                self.count(SKIPPED, SKIP_CONFLICT)
                log.info("%s %s/%s changed meanwhile; reading it again", work.kind, work.namespace, work.name)
                return Result(requeue_after=0.0)
            return self._failed(key, work, FAIL_PATCH, err)
        self.set_state(work, DONE, REASON_ROLLOUT_RESTART)
        # the old pods linger while the rollout runs: the next scan finds them "already restarted", quietly
        self.reported(work.key, f"{SKIPPED}/{SKIP_ALREADY}/{','.join(work.causes)}")
        self.count(RESTARTED, REASON_ROLLOUT_RESTART)
        message = (
            f"Restarted {work.kind} {work.name} so that pods {work.pod_list()} get OneAgent: they were "
            f"{work.why()}, and DynaKube {work.dynakube} injects them now"
        )
        log.info("%s", message, extra=log_fields(work, RESTARTED, REASON_ROLLOUT_RESTART))
        self.event(work, "Normal", EVENT_RESTARTED, message)
        return None

    def _failed(self, key: WorkKey, work: Work, reason: str, err: ApiError) -> Result | None:
        """A GET or PATCH of the workload failed: the queue tries the restart key again after its backoff, up to
        ``max_attempts``; then it is left to the user."""
        if self.restart_failed(work, reason, err, self.config.max_attempts, self.loop.backoff.base):
            self.loop.add_rate_limited(("restart", *key))
        else:
            self.loop.forget(("restart", *key))
        return None
