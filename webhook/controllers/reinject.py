"""Automatic reinjection, level-triggered: find pods that would get OneAgent now but did not, restart their
workloads once per cause, and report pods that never reached the webhook.

The controller compares the pods it finds with what the webhook would decide now, not with changes it saw, so
a webhook restarted after a DynaKube's connection info became complete still restarts the workloads it had
skipped, and a pod admitted while no webhook answered (``failurePolicy: Ignore``) is found.

It runs on a reconcile loop (``webhook.controllers.loop``) with these keys:

- ``lead``: one leader-election step (``webhook.controllers.leader``) every ``interval``; only the Lease
  holder scans and writes. Winning the Lease queues ``resync``.
- ``resync``: every mapped namespace is due for a scan; runs on start (once leader) and every ``resync``
  seconds (``--reinject-resync``, 10 min).
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
from collections.abc import Callable, Collection, Hashable
from typing import Any

from webhook import dynakube as dk
from webhook.controllers.leader import LeaderElector
from webhook.controllers.loop import Backoff, Loop, Result, TokenBucket
from webhook.controllers.reinject_findings import Findings, WorkKey
from webhook.controllers.reinject_scan import NamespaceScan, scan_namespace, would_inject_now
from webhook.controllers.workloads import (
    _DONE,
    APPS_KINDS,
    CAUSE_MISSED,
    DRY_RUN,
    EVENT_FAILED,
    EVENT_MISSED,
    EVENT_RESTARTED,
    EVENT_SKIPPED,
    FAIL_LIST,
    FAIL_OWNER,
    FAIL_PATCH,
    FAILED,
    MANUAL,
    QUEUED,
    REASON_ROLLOUT_RESTART,
    REPORTED,
    REPORTED_ONLY,
    RESTARTED,
    SKIP_ALREADY,
    SKIP_CONFLICT,
    SKIP_DRY_RUN,
    SKIP_NOT_FOUND,
    SKIPPED,
    WAITING,
    Config,
    Work,
    _rfc3339,
    _ScanError,
    event_body,
    log_fields,
    manual_message,
    may_restart,
    missed_message,
    opted_in,
    restart_patch,
    restart_verdict,
    restarts,
)
from webhook.kubeapi import Api, ApiError
from webhook.mutation.pod import connection_info_reasons
from webhook.state.secrets import INIT_RESOURCES
from webhook.state.store import DYNAKUBES, NAMESPACES, Store
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

log = logging.getLogger(__name__)

LEAD, RESYNC, SYNC = "lead", "resync", "sync"


def default_triggers(store: Store) -> frozenset[str]:
    """DynaKubes, namespaces and the init Secrets (not the Store's other resources)."""
    return frozenset({DYNAKUBES, NAMESPACES, *INIT_RESOURCES})


class Reinjector(Findings):
    """The controller; what it found, its counters and ``pending()``/``missed()`` come from ``Findings``."""

    def __init__(
        self,
        api: Api,
        store: Store,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        elector: LeaderElector | None = None,
        identity: str = "",
        on_count: Callable[[str, str], None] | None = None,
        triggers: Collection[str] | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        """``elector`` defaults to a Lease named ``config.lease_name`` in the Store's namespace (the webhook's).
        ``triggers``: the Store resources whose watch events start a ``sync`` (default: ``default_triggers``).
        ``ready``: whether this webhook serves admissions; nothing is scanned or restarted before it has for
        ``config.startup_grace`` seconds, so that the new pods of a restart reach a webhook."""
        self.api = api
        self.store = store
        self.config = config
        self.clock = clock
        self.triggers = frozenset(triggers) if triggers is not None else default_triggers(store)
        self.secrets: Callable[[str], Collection[str] | None] = store.init_secrets
        self.elector = elector or LeaderElector(
            api,
            store.namespace,
            config.lease_name,
            identity=identity,
            lease_duration=config.lease_duration,
            renew_deadline=config.renew_deadline,
            retry_period=config.retry_period,
            clock=clock,
        )
        self.bucket = TokenBucket(config.rate_per_minute, clock)
        Findings.__init__(self, on_count)
        self.leader = False
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
            backoff=Backoff(base=config.interval, cap=max(config.interval, config.retry_delay)),
            on_stop=lambda: self.elector.release(),
        )

    # --- lifecycle ---
    def start(self, thread: bool = True) -> None:
        """Queue the first leader-election step (and run the loop in a thread unless ``thread`` is False)."""
        if not self.config.enabled or self._started:
            return
        self._started = True
        mode = " (dry run)" if self.config.dry_run else ""
        log.info(
            "automatic reinjection enabled%s: at most %g workloads a minute, full scan every %.0fs, lease %s/%s "
            "as %s",
            mode,
            self.config.rate_per_minute,
            self.config.resync,
            self.elector.namespace,
            self.elector.name,
            self.elector.identity,
        )
        self.loop.add(LEAD)
        if thread:
            self.loop.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and release the Lease (also when the loop was driven by hand)."""
        self.loop.stop(timeout)
        self.leader = False

    def tick(self) -> int:
        """Run every key that is due now (tests drive the loop with this and a fake clock)."""
        if not self._started:
            self.start(thread=False)
        return self.loop.process()

    def on_event(self, resource: str, kind: str) -> None:
        """A watch event of the Store (called from the watch threads): re-check the namespaces' views."""
        if self._started and resource in self.triggers:
            self.loop.add(SYNC)

    # --- the keys ---
    def _reconcile(self, key: Hashable) -> Result | None:
        if key == LEAD:
            was = self.leader
            self.leader = self.elector.step()
            if self.leader and not was:
                self.loop.add(RESYNC)
            elif was and not self.leader:  # the new leader reports; a follower's figures would be stale
                for namespace in list(self._views):
                    self._forget(namespace)
            return Result(requeue_after=self.config.interval)
        if key == RESYNC:
            if self._ready():
                self._sync(everything=True)
                return Result(requeue_after=self.config.resync)
            return Result(requeue_after=self.config.interval) if self.leader else None
        if key == SYNC:
            if self._ready():
                self._sync(everything=False)
            return None
        if isinstance(key, tuple) and key[0] == "scan":
            return self._scan(key[1])
        if isinstance(key, tuple) and key[0] == "restart":
            return self._restart((key[1], key[2], key[3]))
        return None

    def _leading(self) -> bool:
        """Renew the Lease when a retry period has passed (a long run of scans must not let it lapse)."""
        self.leader = self.elector.step()
        return self.leader

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

    def _view(self, namespace: str) -> tuple[Any, ...] | None:
        """What a scan of ``namespace`` depends on, from the Store; None when it is not mapped."""
        ns, dynakube = self.store.pod_state(namespace)
        labels = _map(_map(_map(ns).get("metadata")).get("labels"))
        if dynakube is None:
            return None
        secrets = self.secrets(namespace)
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

    def _sync(self, *, everything: bool) -> None:
        mapped = {}
        for ns in self.store.namespaces():
            name = _str(_map(ns.get("metadata")).get("name"))
            view = self._view(name) if name else None
            if view is not None:
                mapped[name] = view
        for name in [n for n in self._views if n not in mapped]:
            self._forget(name)
        for name, view in sorted(mapped.items()):
            if everything or self._views.get(name) != view:
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
                raise _ScanError(FAIL_LIST, err) from None
            scan = scan_namespace(
                self.api,
                ns,
                dynakube,
                page_size=self.config.page_size,
                secrets=self.secrets,
                between_pages=self._leading,
            )
        except _ScanError as failure:
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
        self._since[namespace] = _rfc3339(scan.mapped_since.timestamp()) if scan.mapped_since else "?"
        ready = would_inject_now(dynakube, self.secrets(namespace))
        self.replace(namespace, scan.works, {scan.dynakube: scan.missed})
        if scan.works:
            log.info(
                "reinjection: namespace %s: %d pod(s) read in %d page(s), %d workload(s) with pods to restart, "
                "%d pod(s) never seen by the webhook",
                namespace,
                scan.pods,
                scan.pages,
                len(scan.works),
                scan.missed,
                extra={"dynakube": scan.dynakube, "namespace": namespace},
            )
        for key, work in sorted(scan.works.items()):
            if work.state != MANUAL:
                if not may_restart(dynakube, work.causes):
                    work.state, work.detail = REPORTED_ONLY, "NotOptedIn"
                elif not ready:
                    work.state = WAITING
            self.put(work)
            if work.missed and work.state not in (QUEUED, MANUAL):
                self._report_missed(work)
            elif work.state == MANUAL:
                self._report(work, SKIPPED, work.detail, manual_message(work), EVENT_SKIPPED)
            elif work.state == QUEUED:
                self.loop.add(("restart", *key))

    def _report_missed(self, work: Work) -> None:
        if work.state == REPORTED_ONLY:
            action = (
                f"restart it by hand, or annotate DynaKube {work.dynakube} "
                "feature.dynatrace.com/automatic-reinjection=true to have it restarted"
            )
        else:
            action = f"it will be restarted once DynaKube {work.dynakube}'s connection info is complete"
        message = missed_message(work, self._since.get(work.namespace, "?"), action)
        self._report(work, REPORTED, CAUSE_MISSED, message, EVENT_MISSED, "Warning")

    def _report(
        self,
        work: Work,
        outcome: str,
        reason: str,
        message: str,
        event_reason: str,
        event_type: str = "Normal",
    ) -> None:
        """Log, count and record an Event, once per workload and outcome while that outcome lasts."""
        if not self.first_report(work.key, f"{outcome}/{reason}/{','.join(work.causes)}"):
            return
        self.count(outcome, reason)
        log.info("%s", message, extra=log_fields(work, outcome, reason))
        self._event(work, event_type, event_reason, message)

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
        if not self.config.dry_run and not self.bucket.ready():
            return Result(requeue_after=self.bucket.wait_time())
        path = f"/apis/apps/v1/namespaces/{work.namespace}/{APPS_KINDS[work.kind]}/{work.name}"
        work.attempts += 1
        try:
            obj = self.api.get(path)
        except ApiError as err:
            return self._api_failure(work, FAIL_OWNER, err)
        work.uid = _str(_map(obj.get("metadata")).get("uid")) or work.uid
        now = self.clock()
        verdict = restart_verdict(work, obj, now, self.config.cooldown)
        if verdict is not None:
            self.set_state(work, verdict.state, verdict.reason)
            self._report(work, SKIPPED, verdict.reason, verdict.message, EVENT_SKIPPED)
            if verdict.retry_at is not None:
                return Result(requeue_after=max(0.0, verdict.retry_at - now))
            return None
        if self.config.dry_run:
            self.set_state(work, DRY_RUN, SKIP_DRY_RUN)
            message = (
                f"Dry run: would restart {work.kind} {work.name} so that pods {work.pod_list()} get OneAgent "
                f"(they were {work.why()}; DynaKube {work.dynakube} would inject them now)"
            )
            self._report(work, SKIPPED, SKIP_DRY_RUN, message, EVENT_RESTARTED)
            return None
        if not self.bucket.take():  # checked above; only a clock going backwards gets here
            work.attempts -= 1
            return Result(requeue_after=self.bucket.wait_time())
        timestamp = _rfc3339(now)
        version = _str(_map(obj.get("metadata")).get("resourceVersion"))
        try:
            self.api.patch(path, restart_patch(timestamp, restarts(obj), work.causes, version), "strategic")
        except ApiError as err:
            if err.status == 409:  # changed since the GET (another replica, a rollout): read it again
                self.count(SKIPPED, SKIP_CONFLICT)
                log.info("%s %s/%s changed meanwhile; reading it again", work.kind, work.namespace, work.name)
                work.attempts -= 1
                return Result(requeue_after=0.0)
            return self._api_failure(work, FAIL_PATCH, err)
        self.set_state(work, _DONE, REASON_ROLLOUT_RESTART)
        # the old pods linger while the rollout runs: the next scan finds them "already restarted", quietly
        self.reported(work.key, f"{SKIPPED}/{SKIP_ALREADY}/{','.join(work.causes)}")
        self.count(RESTARTED, REASON_ROLLOUT_RESTART)
        message = (
            f"Restarted {work.kind} {work.name} so that pods {work.pod_list()} get OneAgent: they were "
            f"{work.why()}, and DynaKube {work.dynakube} injects them now"
        )
        log.info("%s", message, extra=log_fields(work, RESTARTED, REASON_ROLLOUT_RESTART))
        self._event(work, "Normal", EVENT_RESTARTED, message)
        return None

    def _api_failure(self, work: Work, reason: str, err: ApiError) -> Result | None:
        if err.status == 404:
            self.set_state(work, MANUAL, SKIP_NOT_FOUND)
            self._report(
                work, SKIPPED, SKIP_NOT_FOUND, f"{work.kind} {work.name} no longer exists", EVENT_SKIPPED
            )
            return None
        self.count(FAILED, reason)
        if work.attempts < self.config.max_attempts:
            self.set_detail(work, f"{reason}: {err}")
            log.warning(
                "restarting %s %s/%s failed (%s); attempt %d of %d, retrying in %.0fs",
                work.kind,
                work.namespace,
                work.name,
                err,
                work.attempts,
                self.config.max_attempts,
                self.config.retry_delay,
                extra=log_fields(work, FAILED, reason),
            )
            return Result(requeue_after=self.config.retry_delay)
        message = (
            f"Restarting {work.kind} {work.name} failed {work.attempts} time(s), last: {err}; run "
            f"'kubectl rollout restart' to inject OneAgent into pods {work.pod_list()}"
        )
        self.set_state(work, MANUAL, reason)
        log.warning("%s", message, extra=log_fields(work, FAILED, reason))
        self._event(work, "Warning", EVENT_FAILED, message)
        return None

    def _event(self, work: Work, event_type: str, reason: str, message: str) -> None:
        body = event_body(work, event_type, reason, message, self.elector.identity, self.clock())
        try:
            self.api.create(f"/api/v1/namespaces/{work.namespace}/events", body)
        except ApiError as err:
            log.warning(
                "event %s on %s %s/%s not recorded: %s", reason, work.kind, work.namespace, work.name, err
            )
