"""Automatic reinjection: restart workloads whose pods were admitted without OneAgent for want of connection info.

While a DynaKube's connection info is incomplete (typically: no ActiveGate registered yet in its network zone)
the webhook admits pods unchanged and annotates them ``oneagent.dynatrace.com/injected: "false"`` with a
reason (``EmptyConnectionInfo``, ``EmptyTenantUUID``, ``UnknownCodeModule``). This controller, opt-in, waits
for the connection info to become complete and then rolls those pods' workloads the way
``kubectl rollout restart`` does, so that the new pods are injected.

How it works, one ``tick()`` a second in a background thread (never on the admission path):

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

import datetime as dt
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook import dynakube as dk
from webhook.controllers.leader import LeaderElector
from webhook.kubeapi import Api, ApiError
from webhook.mutation.pod import ANNOTATION_INJECTED, ANNOTATION_REASON, CONNECTION_INFO_REASONS
from webhook.mutation.pod import connection_info_reasons as _connection_info_reasons
from webhook.state.store import DYNAKUBES, Store
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

log = logging.getLogger(__name__)

FEATURE_AUTOMATIC_REINJECTION = "feature.dynatrace.com/automatic-reinjection"
ANNOTATION_OPT_OUT = "dynatrace.com/reinject"
ANNOTATION_RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
DEFAULT_LEASE_NAME = "dynatrace-webhook-reinject"
COMPONENT = "dynatrace-webhook"

# Event reasons
EVENT_RESTARTED = "OneAgentReinjection"
EVENT_SKIPPED = "OneAgentReinjectionSkipped"
EVENT_FAILED = "OneAgentReinjectionFailed"

# counter outcomes and their bounded reasons
RESTARTED = "restarted"
SKIPPED = "skipped"
FAILED = "failed"
REASON_ROLLOUT_RESTART = "RolloutRestart"
SKIP_OPT_OUT = "OptOut"
SKIP_JOB = "JobPod"
SKIP_BARE = "BarePod"
SKIP_UNSUPPORTED = "UnsupportedOwner"
SKIP_NOT_FOUND = "OwnerNotFound"
SKIP_PAUSED = "Paused"
SKIP_IN_PROGRESS = "RolloutInProgress"
SKIP_DRY_RUN = "DryRun"
FAIL_LIST = "ListPods"
FAIL_OWNER = "GetOwner"
FAIL_PATCH = "Patch"

# pending() states
QUEUED = "queued"  # a restart will be tried (waiting for a token, the leader or a retry)
DRY_RUN = "dry-run"  # would be restarted without --reinject-dry-run
MANUAL = "manual"  # left alone: needs a restart by hand
_DONE = "done"

APPS_KINDS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}


@dataclass(frozen=True)
class Config:
    """Installation-wide settings (``--reinject``, ``--reinject-dry-run``, ``--reinject-rate``)."""

    enabled: bool = False
    dry_run: bool = False
    rate_per_minute: float = 10.0
    interval: float = 1.0  # seconds between ticks
    lease_name: str = DEFAULT_LEASE_NAME
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    max_attempts: int = 3  # restarts of one workload before giving up
    retry_delay: float = 30.0  # seconds before retrying a failed list or restart

    def __post_init__(self) -> None:
        if not self.rate_per_minute > 0:
            raise ValueError(
                f"--reinject-rate must be a positive number of workloads per minute, got {self.rate_per_minute}"
            )
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")


_EPSILON = 1e-9  # 30 s at 2/min is 0.999... tokens in floating point


class TokenBucket:
    """``rate_per_minute`` tokens a minute, at most ``burst`` saved up (default: one minute's worth)."""

    def __init__(
        self, rate_per_minute: float, clock: Callable[[], float], burst: float | None = None
    ) -> None:
        if not rate_per_minute > 0:
            raise ValueError(f"rate must be positive, got {rate_per_minute}")
        self.rate = rate_per_minute / 60.0
        self.capacity = burst if burst is not None else max(1.0, float(int(rate_per_minute)))
        self.clock = clock
        self.tokens = self.capacity
        self._at = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self._at) * self.rate)
        self._at = now

    def ready(self) -> bool:
        self._refill()
        return self.tokens >= 1.0 - _EPSILON

    def take(self) -> bool:
        self._refill()
        if self.tokens >= 1.0 - _EPSILON:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until the next token."""
        self._refill()
        return 0.0 if self.tokens >= 1.0 - _EPSILON else (1.0 - self.tokens) / self.rate


def _rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def opted_in(dynakube: Mapping[str, Any]) -> bool:
    return dk.feature(dynakube, FEATURE_AUTOMATIC_REINJECTION, "false").strip().lower() == "true"


def complete(dynakube: Mapping[str, Any]) -> bool:
    return not _connection_info_reasons(dynakube)


def waiting_reasons(pod: Mapping[str, Any]) -> list[str]:
    """The connection-info reasons a pod was admitted without OneAgent for; [] when it is not waiting."""
    meta = _map(pod.get("metadata"))
    annotations = _map(meta.get("annotations"))
    if _str(annotations.get(ANNOTATION_INJECTED)).lower() != "false" or meta.get("deletionTimestamp"):
        return []
    if _str(_map(pod.get("status")).get("phase")) in ("Succeeded", "Failed"):
        return []
    reasons = [r.strip() for r in _str(annotations.get(ANNOTATION_REASON)).split(",")]
    return [r for r in reasons if r in CONNECTION_INFO_REASONS]


def restart_patch(timestamp: str) -> dict[str, Any]:
    """What ``kubectl rollout restart`` sends (a strategic merge patch)."""
    return {"spec": {"template": {"metadata": {"annotations": {ANNOTATION_RESTARTED_AT: timestamp}}}}}


class _ScanError(Exception):
    def __init__(self, reason: str, error: ApiError) -> None:
        super().__init__(str(error))
        self.reason = reason
        self.error = error


@dataclass
class Transition:
    dynakube: str
    generation: int
    at: float
    namespaces: list[str] | None = None  # still to scan; None until the scan starts
    next_scan: float = 0.0
    seen: set[tuple[str, str, str]] = field(default_factory=set)  # workloads taken up in this transition


@dataclass
class Work:
    """One workload (or a Job or bare pod) with pods waiting for reinjection."""

    dynakube: str
    generation: int
    namespace: str
    kind: str
    name: str
    api_version: str
    uid: str = ""
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {reasons, created}
    state: str = QUEUED
    detail: str = ""
    attempts: int = 0
    next_try: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.kind, self.name)

    @property
    def reasons(self) -> list[str]:
        found = {r for p in self.pods.values() for r in p["reasons"]}
        return [r for r in CONNECTION_INFO_REASONS if r in found]

    def pod_list(self, limit: int = 5) -> str:
        names = sorted(self.pods)
        more = f" and {len(names) - limit} more" if len(names) > limit else ""
        return ", ".join(names[:limit]) + more


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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        if not self.config.enabled or self._thread is not None:
            return
        mode = " (dry run)" if self.config.dry_run else ""
        log.info(
            "automatic reinjection enabled%s: at most %g workloads a minute, lease %s/%s as %s",
            mode,
            self.config.rate_per_minute,
            self.elector.namespace,
            self.elector.name,
            self.elector.identity,
        )
        self._thread = threading.Thread(target=self._run, name="reinject", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:
                    log.exception("reinjection tick failed")
                self._stop.wait(self.config.interval)
        finally:
            self.elector.release()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and release the Lease (also when ticks were driven by hand)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self.elector.release()
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
        meta = _map(obj.get("metadata"))
        work.uid = _str(meta.get("uid")) or work.uid
        template_annotations = _map(
            _map(_map(_map(obj.get("spec")).get("template")).get("metadata")).get("annotations")
        )
        for marks in (_map(meta.get("annotations")), template_annotations):
            if _str(marks.get(ANNOTATION_OPT_OUT)).strip().lower() == "false":
                self._skip(
                    work,
                    SKIP_OPT_OUT,
                    f"{work.kind} {work.name} is annotated {ANNOTATION_OPT_OUT}=false; restart it by hand to "
                    f"inject OneAgent into pods {work.pod_list()}",
                )
                return
        if work.kind == "Deployment" and _map(obj.get("spec")).get("paused") is True:
            self._skip(
                work,
                SKIP_PAUSED,
                f"Deployment {work.name} is paused; resume it and run 'kubectl rollout restart' to inject "
                f"OneAgent into pods {work.pod_list()}",
            )
            return
        restarted_at = _parse_time(template_annotations.get(ANNOTATION_RESTARTED_AT))
        created = [_parse_time(p["created"]) for p in work.pods.values()]
        if restarted_at is not None and created and all(c is not None and c <= restarted_at for c in created):
            self._skip(
                work,
                SKIP_IN_PROGRESS,
                f"{work.kind} {work.name} was restarted at {template_annotations.get(ANNOTATION_RESTARTED_AT)}, "
                f"after pods {work.pod_list()} were created; that rollout replaces them",
                state=_DONE,
            )
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
        log.info("%s", message, extra=self._log_fields(work, RESTARTED, REASON_ROLLOUT_RESTART))
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
                extra=self._log_fields(work, FAILED, reason),
            )
            return
        message = (
            f"Restarting {work.kind} {work.name} failed {work.attempts} time(s), last: {err}; run "
            f"'kubectl rollout restart' to inject OneAgent into pods {work.pod_list()}"
        )
        self._set_state(work, MANUAL, reason)
        log.warning("%s", message, extra=self._log_fields(work, FAILED, reason))
        self._event(work, "Warning", EVENT_FAILED, message)

    def _skip(
        self, work: Work, reason: str, message: str, *, state: str = MANUAL, event_reason: str = EVENT_SKIPPED
    ) -> None:
        self._set_state(work, state, reason)
        self._count(SKIPPED, reason)
        log.info("%s", message, extra=self._log_fields(work, SKIPPED, reason))
        self._event(work, "Normal", event_reason, message)

    def _report_manual(self, work: Work) -> None:
        """Pods found at scan time whose owner this controller does not restart."""
        reasons = ", ".join(work.reasons)
        if work.detail == SKIP_JOB:
            message = (
                f"Pods {work.pod_list()} of Job {work.name} were admitted without OneAgent ({reasons}); Jobs are "
                "not restarted automatically: re-create the Job (or wait for its next run) to inject OneAgent"
            )
        elif work.detail == SKIP_BARE:
            message = (
                f"Pod {work.name} was admitted without OneAgent ({reasons}) and has no controller; delete and "
                "re-create it to inject OneAgent"
            )
        elif work.detail == SKIP_NOT_FOUND:
            message = (
                f"Pods {work.pod_list()} were admitted without OneAgent ({reasons}); their owner {work.kind} "
                f"{work.name} no longer exists; delete them to inject OneAgent"
            )
        else:
            message = (
                f"Pods {work.pod_list()} were admitted without OneAgent ({reasons}); their owner {work.kind} "
                f"{work.name} cannot be restarted automatically: restart it by hand to inject OneAgent"
            )
        self._count(SKIPPED, work.detail)
        log.info("%s", message, extra=self._log_fields(work, SKIPPED, work.detail))
        self._event(work, "Normal", EVENT_SKIPPED, message)

    def _set_state(self, work: Work, state: str, detail: str) -> None:
        with self._lock:
            work.state, work.detail = state, detail
            if state == _DONE:
                self._work.pop(work.key, None)

    @staticmethod
    def _log_fields(work: Work, outcome: str, reason: str) -> dict[str, Any]:
        return {
            "dynakube": work.dynakube,
            "namespace": work.namespace,
            "workload": f"{work.kind}/{work.name}",
            "outcome": outcome,
            "reason": reason,
        }

    def _event(self, work: Work, event_type: str, reason: str, message: str) -> None:
        now = _rfc3339(self.clock())
        involved = {
            "apiVersion": work.api_version,
            "kind": work.kind,
            "name": work.name,
            "namespace": work.namespace,
        }
        if work.uid:
            involved["uid"] = work.uid
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{work.name[:200]}.{uuid.uuid4().hex[:16]}", "namespace": work.namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message[:1024],
            "type": event_type,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.elector.identity[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
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


def _controller(meta: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    """(kind, name, apiVersion, uid) of the controlling ownerReference, or None."""
    refs = [r for r in meta.get("ownerReferences") or [] if isinstance(r, Mapping)]
    for ref in refs:
        if ref.get("controller") is True and _str(ref.get("kind")) and _str(ref.get("name")):
            return (
                _str(ref.get("kind")),
                _str(ref.get("name")),
                _str(ref.get("apiVersion")),
                _str(ref.get("uid")),
            )
    return None
