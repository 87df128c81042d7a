"""Automatic reinjection: restart workloads whose pods were admitted without OneAgent for want of connection info.

While a DynaKube's connection info is incomplete (typically: no ActiveGate registered yet in its network zone)
the webhook admits pods unchanged and annotates them ``oneagent.dynatrace.com/injected: "false"`` with a
reason (``EmptyConnectionInfo``, ``EmptyTenantUUID``, ``UnknownCodeModule``). This controller, opt-in, waits
for the connection info to become complete and then rolls those pods' workloads the way
``kubectl rollout restart`` does, so that the new pods are injected.

How it works, one ``tick()`` a second on a reconcile loop (``webhook.controllers.loop``), never on the
admission path:

1. Every replica reads the DynaKubes from the ``Store`` (already fed by list+watch) and remembers whether each
   one's connection info was complete. An incomplete -> complete change on a DynaKube annotated
   ``feature.dynatrace.com/automatic-reinjection: "true"`` is a *transition*. A DynaKube seen complete from
   the start, or never annotated, is left alone.
2. Only the replica holding the Lease (``webhook.controllers.leader``) talks to the API: for each transition it lists
   the pods of every namespace mapped to the DynaKube, keeps the ones skipped for a connection-info reason,
   and resolves each to its top-level owner (ReplicaSet -> Deployment, StatefulSet, DaemonSet).
3. Each workload is restarted at most once per transition, at most ``rate_per_minute`` workloads a minute
   (a token bucket). A workload is left alone, with an Event saying why, when it is annotated
   ``dynatrace.com/reinject: "false"``, is a paused Deployment, or was already restarted after its
   uninjected pods were created (a rollout already under way, e.g. by a previous leader). Job pods, bare
   pods and owners that cannot be rolled (a bare ReplicaSet, a custom controller) are reported, not touched.
4. Every restart, skip and failure is an Event on the workload, a log line and a counter
   (``counts``/``on_count``); ``pending()`` lists the pods still waiting.

The clock is injectable, so tests move time instead of sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from webhook import dynakube as dk
from webhook.controllers.leader import LeaderElector
from webhook.controllers.loop import Backoff, Loop, Result, TokenBucket
from webhook.controllers.workloads import (
    _DONE,
    APPS_KINDS,
    DRY_RUN,
    EVENT_FAILED,
    EVENT_RESTARTED,
    EVENT_SKIPPED,
    FAIL_LIST,
    FAIL_OWNER,
    FAIL_PATCH,
    FAILED,
    MANUAL,
    QUEUED,
    REASON_ROLLOUT_RESTART,
    RESTARTED,
    SKIP_BARE,
    SKIP_DRY_RUN,
    SKIP_JOB,
    SKIP_NOT_FOUND,
    SKIP_UNSUPPORTED,
    SKIPPED,
    Config,
    Transition,
    Work,
    _controller,
    _rfc3339,
    _ScanError,
    complete,
    event_body,
    log_fields,
    manual_message,
    opted_in,
    restart_patch,
    restart_verdict,
    waiting_reasons,
)
from webhook.kubeapi import Api, ApiError
from webhook.state.store import DYNAKUBES, Store
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

log = logging.getLogger(__name__)

_TICK = "tick"


class Reinjector:
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
    ) -> None:
        """``elector`` defaults to a Lease named ``config.lease_name`` in the Store's namespace (the webhook's)."""
        self.api = api
        self.store = store
        self.config = config
        self.clock = clock
        self.on_count = on_count
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
        self.counts: Counter[tuple[str, str]] = Counter()
        self.leader = False
        self._complete: dict[str, bool] = {}
        self._generation = 0
        self._transitions: dict[str, Transition] = {}
        self._work: dict[tuple[str, str, str], Work] = {}
        self._lock = threading.Lock()
        self._started = False
        # one key: a round observes every DynaKube, then scans and restarts as the leader
        self.loop: Loop[str] = Loop(
            "reinject",
            self._reconcile,
            backoff=Backoff(base=config.interval, cap=max(config.interval, config.retry_delay)),
            on_stop=lambda: self.elector.release(),
        )

    # --- counters ---
    @property
    def restarted(self) -> int:
        return sum(n for (outcome, _), n in self.counts.items() if outcome == RESTARTED)

    @property
    def failed(self) -> int:
        return sum(n for (outcome, _), n in self.counts.items() if outcome == FAILED)

    @property
    def skipped(self) -> dict[str, int]:
        return {reason: n for (outcome, reason), n in self.counts.items() if outcome == SKIPPED}

    def _count(self, outcome: str, reason: str) -> None:
        self.counts[(outcome, reason)] += 1
        if self.on_count is not None:
            try:
                self.on_count(outcome, reason)
            except Exception:
                log.exception("reinjection counter callback failed")

    # --- lifecycle ---
    def start(self) -> None:
        if not self.config.enabled or self._started:
            return
        self._started = True
        mode = " (dry run)" if self.config.dry_run else ""
        log.info(
            "automatic reinjection enabled%s: at most %g workloads a minute, lease %s/%s as %s",
            mode,
            self.config.rate_per_minute,
            self.elector.namespace,
            self.elector.name,
            self.elector.identity,
        )
        self.loop.add(_TICK)
        self.loop.start()

    def _reconcile(self, key: str) -> Result:
        self.tick()
        return Result(requeue_after=self.config.interval)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and release the Lease (also when ticks were driven by hand)."""
        self.loop.stop(timeout)
        self.leader = False

    # --- one round ---
    def tick(self) -> None:
        if not self.config.enabled:
            return
        self._observe()
        self.leader = self.elector.step()
        if not self.leader:
            return
        now = self.clock()
        for transition in list(self._transitions.values()):
            if transition.namespaces != [] and now >= transition.next_scan:
                self._scan(transition)
        self._act()

    def _observe(self) -> None:
        """Record every DynaKube's completeness; start a transition on incomplete -> complete (opted in)."""
        if not self.store.is_synced(DYNAKUBES):
            return
        current = {dk.name(obj): obj for obj in self.store.dynakubes() if dk.name(obj)}
        for name in list(self._complete):
            if name not in current:
                del self._complete[name]
                self._drop(name, "was deleted")
        for name, obj in current.items():
            now_complete = complete(obj)
            before = self._complete.get(name)
            self._complete[name] = now_complete
            if not now_complete:
                if name in self._transitions:
                    self._drop(name, "lost its connection info again")
                continue
            if before is False and opted_in(obj):
                self._generation += 1
                self._drop(name, "")
                self._transitions[name] = Transition(name, self._generation, self.clock())
                log.info(
                    "DynaKube %s: connection info complete now; workloads admitted without OneAgent will be restarted",
                    name,
                    extra={"dynakube": name, "network_zone": dk.network_zone(obj)},
                )

    def _drop(self, name: str, why: str) -> None:
        transition = self._transitions.pop(name, None)
        with self._lock:
            dropped = [key for key, work in self._work.items() if work.dynakube == name]
            for key in dropped:
                del self._work[key]
        if why and (transition is not None or dropped):
            log.info("DynaKube %s %s: reinjection of %d workload(s) cancelled", name, why, len(dropped))

    def _still_wanted(self, name: str) -> bool:
        obj = self.store.dynakube(name)
        return obj is not None and complete(obj) and opted_in(obj)

    # --- scanning (leader only) ---
    def _scan(self, transition: Transition) -> None:
        name = transition.dynakube
        if not self._still_wanted(name):
            self._drop(name, "is no longer opted in to automatic reinjection")
            return
        if transition.namespaces is None:
            transition.namespaces = sorted(
                dk_ns
                for ns in self.store.namespaces()
                if (dk_ns := _str(_map(ns.get("metadata")).get("name")))
                and _map(_map(ns.get("metadata")).get("labels")).get(dk.INSTANCE_LABEL) == name
            )
        replica_sets: dict[str, Mapping[str, Any] | None] = {}
        for namespace in list(transition.namespaces):
            try:
                found = self._scan_namespace(transition, namespace, replica_sets)
            except _ScanError as failure:
                reason, err = failure.reason, failure.error
                self._count(FAILED, reason)
                log.warning(
                    "DynaKube %s: scanning namespace %s failed (%s); retrying in %.0fs",
                    name,
                    namespace,
                    err,
                    self.config.retry_delay,
                    extra={"dynakube": name},
                )
                transition.next_scan = self.clock() + self.config.retry_delay
                continue
            transition.namespaces.remove(namespace)
            if found:
                log.info("DynaKube %s: %d workload(s) in namespace %s to reinject", name, found, namespace)

    def _scan_namespace(
        self, transition: Transition, namespace: str, replica_sets: dict[str, Mapping[str, Any] | None]
    ) -> int:
        try:
            pods, _ = self.api.list(f"/api/v1/namespaces/{namespace}/pods")
        except ApiError as err:
            raise _ScanError(FAIL_LIST, err) from None
        found: dict[tuple[str, str, str], Work] = {}
        for pod in pods:
            reasons = waiting_reasons(pod)
            if not reasons:
                continue
            meta = _map(pod.get("metadata"))
            work = self._owner(transition, namespace, pod, replica_sets)
            if work.key in transition.seen and work.key not in found:
                continue
            work = found.setdefault(work.key, work)
            work.pods[_str(meta.get("name"))] = {
                "reasons": reasons,
                "created": _str(meta.get("creationTimestamp")),
            }
        for key, work in found.items():
            transition.seen.add(key)
            with self._lock:
                self._work[key] = work
            if work.state == MANUAL:
                self._report_manual(work)
        return len(found)

    def _owner(
        self,
        transition: Transition,
        namespace: str,
        pod: Mapping[str, Any],
        replica_sets: dict[str, Mapping[str, Any] | None],
    ) -> Work:
        meta = _map(pod.get("metadata"))
        ref = _controller(meta)

        def work(kind: str, name: str, api_version: str, uid: str, skip: str = "") -> Work:
            item = Work(transition.dynakube, transition.generation, namespace, kind, name, api_version, uid)
            if skip:
                item.state, item.detail = MANUAL, skip
            return item

        if ref is None:
            return work("Pod", _str(meta.get("name")), "v1", _str(meta.get("uid")), SKIP_BARE)
        kind, name, api_version, uid = ref
        if kind == "Job":
            return work(kind, name, api_version, uid, SKIP_JOB)
        if kind in ("StatefulSet", "DaemonSet"):
            return work(kind, name, api_version, uid)
        if kind != "ReplicaSet":
            return work(kind, name, api_version, uid, SKIP_UNSUPPORTED)
        if name not in replica_sets:
            try:
                replica_sets[name] = self.api.get(f"/apis/apps/v1/namespaces/{namespace}/replicasets/{name}")
            except ApiError as err:
                if err.status != 404:
                    raise _ScanError(FAIL_OWNER, err) from None
                replica_sets[name] = None
        rs = replica_sets[name]
        if rs is None:
            return work(kind, name, api_version, uid, SKIP_NOT_FOUND)
        owner = _controller(_map(rs.get("metadata")))
        if owner is not None and owner[0] == "Deployment":
            return work(*owner)
        return work(kind, name, api_version, uid, SKIP_UNSUPPORTED)

    # --- acting (leader only) ---
    def _act(self) -> None:
        with self._lock:
            queue = [w for w in self._work.values() if w.state == QUEUED]
        for work in queue:
            if work.next_try > self.clock():
                continue
            if not self._still_wanted(work.dynakube):
                self._drop(work.dynakube, "is no longer opted in to automatic reinjection")
                continue
            if not self.config.dry_run and not self.bucket.ready():
                log.debug("reinjection rate limit reached; next restart in %.0fs", self.bucket.wait_time())
                return
            if not self.elector.is_leader():
                self.leader = False
                return
            self._restart(work)

    def _restart(self, work: Work) -> None:
        path = f"/apis/apps/v1/namespaces/{work.namespace}/{APPS_KINDS[work.kind]}/{work.name}"
        work.attempts += 1
        try:
            obj = self.api.get(path)
        except ApiError as err:
            if err.status == 404:
                self._skip(work, SKIP_NOT_FOUND, f"{work.kind} {work.name} no longer exists")
            else:
                self._failure(work, FAIL_OWNER, err)
            return
        work.uid = _str(_map(obj.get("metadata")).get("uid")) or work.uid
        verdict = restart_verdict(work, obj)
        if verdict is not None:
            reason, message, state = verdict
            self._skip(work, reason, message, state=state)
            return
        if self.config.dry_run:
            self._skip(
                work,
                SKIP_DRY_RUN,
                f"Dry run: would restart {work.kind} {work.name} so that pods {work.pod_list()} get OneAgent "
                f"({', '.join(work.reasons)} at admission; DynaKube {work.dynakube} connection info is complete now)",
                state=DRY_RUN,
                event_reason=EVENT_RESTARTED,
            )
            return
        if not self.bucket.take():  # checked by _act; only a clock going backwards gets here
            work.attempts -= 1
            return
        timestamp = _rfc3339(self.clock())
        try:
            self.api.patch(path, restart_patch(timestamp), "strategic")
        except ApiError as err:
            if err.status == 404:
                self._skip(work, SKIP_NOT_FOUND, f"{work.kind} {work.name} no longer exists")
            else:
                self._failure(work, FAIL_PATCH, err)
            return
        self._set_state(work, _DONE, REASON_ROLLOUT_RESTART)
        self._count(RESTARTED, REASON_ROLLOUT_RESTART)
        message = (
            f"Restarted {work.kind} {work.name} so that pods {work.pod_list()} get OneAgent: they were admitted "
            f"without it ({', '.join(work.reasons)}) and DynaKube {work.dynakube} connection info is complete now"
        )
        log.info("%s", message, extra=log_fields(work, RESTARTED, REASON_ROLLOUT_RESTART))
        self._event(work, "Normal", EVENT_RESTARTED, message)

    def _failure(self, work: Work, reason: str, err: ApiError) -> None:
        self._count(FAILED, reason)
        if work.attempts < self.config.max_attempts:
            with self._lock:
                work.next_try = self.clock() + self.config.retry_delay
                work.detail = f"{reason}: {err}"
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
            return
        message = (
            f"Restarting {work.kind} {work.name} failed {work.attempts} time(s), last: {err}; run "
            f"'kubectl rollout restart' to inject OneAgent into pods {work.pod_list()}"
        )
        self._set_state(work, MANUAL, reason)
        log.warning("%s", message, extra=log_fields(work, FAILED, reason))
        self._event(work, "Warning", EVENT_FAILED, message)

    def _skip(
        self, work: Work, reason: str, message: str, *, state: str = MANUAL, event_reason: str = EVENT_SKIPPED
    ) -> None:
        self._set_state(work, state, reason)
        self._count(SKIPPED, reason)
        log.info("%s", message, extra=log_fields(work, SKIPPED, reason))
        self._event(work, "Normal", event_reason, message)

    def _report_manual(self, work: Work) -> None:
        """Pods found at scan time whose owner this controller does not restart."""
        message = manual_message(work)
        self._count(SKIPPED, work.detail)
        log.info("%s", message, extra=log_fields(work, SKIPPED, work.detail))
        self._event(work, "Normal", EVENT_SKIPPED, message)

    def _set_state(self, work: Work, state: str, detail: str) -> None:
        with self._lock:
            work.state, work.detail = state, detail
            if state == _DONE:
                self._work.pop(work.key, None)

    def _event(self, work: Work, event_type: str, reason: str, message: str) -> None:
        body = event_body(work, event_type, reason, message, self.elector.identity, self.clock())
        try:
            self.api.create(f"/api/v1/namespaces/{work.namespace}/events", body)
        except ApiError as err:
            log.warning(
                "event %s on %s %s/%s not recorded: %s", reason, work.kind, work.namespace, work.name, err
            )

    # --- introspection (safe from any thread, no API calls) ---
    def pending(self) -> list[dict[str, Any]]:
        """Pods still waiting for reinjection, as of the last scan: one entry per pod."""
        with self._lock:
            works = sorted(self._work.values(), key=lambda w: w.key)
            return [
                {
                    "dynakube": w.dynakube,
                    "namespace": w.namespace,
                    "pod": pod,
                    "reasons": list(info["reasons"]),
                    "owner": f"{w.kind}/{w.name}",
                    "state": w.state,
                    "detail": w.detail,
                }
                for w in works
                for pod, info in sorted(w.pods.items())
            ]

    def status(self) -> dict[str, Any]:
        """For a debug endpoint: configuration, leadership, DynaKubes seen, transitions and pending pods."""
        return {
            "enabled": self.config.enabled,
            "dry_run": self.config.dry_run,
            "rate_per_minute": self.config.rate_per_minute,
            "identity": self.elector.identity,
            "leader": self.leader,
            "lease_holder": self.elector.holder,
            "connection_info_complete": dict(self._complete),
            "transitions": [
                {
                    "dynakube": t.dynakube,
                    "since": _rfc3339(t.at),
                    "namespaces_to_scan": None if t.namespaces is None else list(t.namespaces),
                }
                for t in list(self._transitions.values())
            ],
            "counts": {f"{o}/{r}": n for (o, r), n in sorted(self.counts.items())},
            "pending": self.pending(),
        }
