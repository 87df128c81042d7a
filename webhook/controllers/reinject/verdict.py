"""Workloads whose pods need a restart to get OneAgent: data, the restart verdict, the restart patch, messages.

Shared by the reinjection controller (``webhook.controllers.reinject``); no API calls here.

**Causes.** A pod needs its workload restarted for a *cause*: one of ``RESTARTABLE_REASONS`` (the reason the
webhook annotated when it admitted the pod without OneAgent, and which is gone now), or ``CAUSE_MISSED`` (the
pod never reached the webhook). **Once per cause**: a restart writes, in the same PATCH as
``kubectl.kubernetes.io/restartedAt``, the annotation ``reinjection.dynatrace.com/restarts`` on the workload: a
JSON object of cause -> time of the restart. A workload is restarted for a cause only when one of its pods
waiting for that cause was created *after* the recorded time (or in the same second: the rollout's own pod): pods created before it belong to the outage that
restart already handled (its rollout replaces them); a pod created later and again admitted without OneAgent
for that cause is a new outage. Two restarts for one cause are at least ``cooldown`` apart, so a webhook
replica whose cache lags cannot make a loop of it. The record lives on the workload, so it holds across
webhook restarts and leader changes; the PATCH carries the resourceVersion read, so of two replicas acting on
the same read only one restart lands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from webhook import dynakube as dk
from webhook.controllers.events import rfc3339
from webhook.kube.api import ApiError
from webhook.mutation.bootstrapper import ANNOTATION_DYNAKUBE_REASON, REASON_NO_BOOTSTRAPPER_CONFIG
from webhook.mutation.pod import (
    ANNOTATION_DYNAKUBE_INJECTED,
    ANNOTATION_INJECTED,
    ANNOTATION_REASON,
    CONNECTION_INFO_REASONS,
    REASON_MISSING_INIT_SECRET,
)
from webhook.mutation.pod import connection_info_reasons as _connection_info_reasons
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

FEATURE_AUTOMATIC_REINJECTION = "feature.dynatrace.com/automatic-reinjection"
ANNOTATION_OPT_OUT = "dynatrace.com/reinject"
ANNOTATION_RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
ANNOTATION_RESTARTS = "reinjection.dynatrace.com/restarts"  # on the workload: {"<cause>": "<RFC 3339>"}

# Why a pod waits for a restart. The admission reasons whose cause can go away: extend this one tuple.
RESTARTABLE_REASONS = (*CONNECTION_INFO_REASONS, REASON_MISSING_INIT_SECRET, REASON_NO_BOOTSTRAPPER_CONFIG)
CAUSE_MISSED = "NotSeenByWebhook"  # no injection annotation at all: the webhook never saw the pod
# Causes the webhook itself owns: their pods are restarted without the DynaKube's opt-in (the user did not ask
# for a pod without OneAgent; the webhook failed to provide what it needed). The rest need the opt-in.
OWNED_CAUSES = (REASON_MISSING_INIT_SECRET, REASON_NO_BOOTSTRAPPER_CONFIG)
CAUSES = (*RESTARTABLE_REASONS, CAUSE_MISSED)

# Event reasons
EVENT_RESTARTED = "OneAgentReinjection"
EVENT_SKIPPED = "OneAgentReinjectionSkipped"
EVENT_FAILED = "OneAgentReinjectionFailed"
EVENT_MISSED = "PodsNotSeenByWebhook"
# Event actions (what was done or left undone): a restart of the workload, or the injection its pods missed
ACTION_RESTART = "RestartWorkload"
ACTION_INJECT = "InjectOneAgent"

# counter outcomes and their bounded reasons
RESTARTED = "restarted"
SKIPPED = "skipped"
FAILED = "failed"
REPORTED = "reported"  # pods found that never reached the webhook (reason CAUSE_MISSED)
REASON_ROLLOUT_RESTART = "RolloutRestart"
SKIP_OPT_OUT = "OptOut"
SKIP_NOT_OPTED_IN = "NotOptedIn"
SKIP_JOB = "JobPod"
SKIP_BARE = "BarePod"
SKIP_UNSUPPORTED = "UnsupportedOwner"
SKIP_NOT_FOUND = "OwnerNotFound"
SKIP_PAUSED = "Paused"
SKIP_IN_PROGRESS = "RolloutInProgress"
SKIP_ALREADY = "AlreadyRestarted"
SKIP_COOLDOWN = "Cooldown"
SKIP_DRY_RUN = "DryRun"
SKIP_CONFLICT = "Conflict"
FAIL_LIST = "ListPods"
FAIL_OWNER = "GetOwner"
FAIL_PATCH = "Patch"

# pending() states
QUEUED = "queued"  # a restart will be tried (waiting for a token, the leader or a retry)
WAITING = "waiting"  # never seen by the webhook, but the DynaKube's connection info is incomplete now
DRY_RUN = "dry-run"  # would be restarted without --reinject-dry-run
MANUAL = "manual"  # left alone: needs a restart by hand
REPORTED_ONLY = "reported"  # the DynaKube is not opted in to automatic reinjection
DONE = "done"

APPS_KINDS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
SAMPLE = 20  # pod names kept per workload (the count is exact)


@dataclass(frozen=True)
class Config:
    """Installation-wide settings (``--reinject``, ``--reinject-dry-run``, ``--reinject-rate``,
    ``--reinject-resync``)."""

    enabled: bool = False
    dry_run: bool = False
    rate_per_minute: float = 10.0
    interval: float = 1.0  # seconds between checks while waiting to serve
    startup_grace: float = 10.0  # seconds the webhook serves before the first scan (endpoints catch up)
    resync: float = 600.0  # seconds between full scans of every mapped namespace
    cooldown: float = 600.0  # seconds at least between two restarts of one workload for one cause
    page_size: int = 500  # pods per metadata-only list page
    max_attempts: int = 3  # restarts of one workload before giving up
    retry_delay: float = 30.0  # seconds before retrying a failed list or restart

    def __post_init__(self) -> None:
        if not self.rate_per_minute > 0:
            raise ValueError(
                f"--reinject-rate must be a positive number of workloads per minute, got {self.rate_per_minute}"
            )
        if not self.resync > 0:
            raise ValueError(f"--reinject-resync must be a positive number of seconds, got {self.resync}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {self.page_size}")


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def opted_in(dynakube: Mapping[str, Any]) -> bool:
    return dk.feature(dynakube, FEATURE_AUTOMATIC_REINJECTION, "false").strip().lower() == "true"


def may_restart(dynakube: Mapping[str, Any], causes: Iterable[str]) -> bool:
    """Reinjection may restart a workload for these causes: the DynaKube opted in, or every cause is one the
    webhook owns (``OWNED_CAUSES``)."""
    causes = list(causes)
    return opted_in(dynakube) or (bool(causes) and all(cause in OWNED_CAUSES for cause in causes))


def complete(dynakube: Mapping[str, Any]) -> bool:
    return not _connection_info_reasons(dynakube)


def waiting_reasons(pod: Mapping[str, Any]) -> list[str]:
    """The restartable reasons a pod was admitted without OneAgent for; [] when it is not waiting. Reads the
    metadata only (a PartialObjectMetadata will do); a pod that ended or is being deleted never waits."""
    meta = _map(pod.get("metadata"))
    annotations = _map(meta.get("annotations"))
    if meta.get("deletionTimestamp") or _str(_map(pod.get("status")).get("phase")) in ("Succeeded", "Failed"):
        return []
    reasons = []
    # v1.4 and v1.10 say it on oneagent.dynatrace.com/*; v1.10's NoBootstrapperConfig on dynakube.dynatrace.com/*
    for injected, reason in (
        (ANNOTATION_INJECTED, ANNOTATION_REASON),
        (ANNOTATION_DYNAKUBE_INJECTED, ANNOTATION_DYNAKUBE_REASON),
    ):
        if _str(annotations.get(injected)).lower() == "false":
            reasons += [r.strip() for r in _str(annotations.get(reason)).split(",")]
    return [r for r in RESTARTABLE_REASONS if r in reasons]


def restarts(obj: Mapping[str, Any]) -> dict[str, dt.datetime]:
    """The restart record of a workload: cause -> when it was restarted for it (unreadable entries dropped)."""
    raw = _map(_map(obj.get("metadata")).get("annotations")).get(ANNOTATION_RESTARTS)
    try:
        parsed = orjson.loads(raw) if isinstance(raw, str) else {}
    except orjson.JSONDecodeError:
        return {}
    record = {}
    for cause, at in parsed.items() if isinstance(parsed, dict) else ():
        when = parse_time(at)
        if isinstance(cause, str) and when is not None:
            record[cause] = when
    return record


def restart_patch(
    timestamp: str, record: Mapping[str, dt.datetime], causes: list[str], resource_version: str
) -> dict[str, Any]:
    """What ``kubectl rollout restart`` sends (a strategic merge patch), plus the restart record for
    ``causes`` and the resourceVersion read (the API server refuses the PATCH with 409 when it changed)."""
    entries = {c: when.strftime("%Y-%m-%dT%H:%M:%SZ") for c, when in sorted(record.items())}
    entries.update(dict.fromkeys(causes, timestamp))
    meta: dict[str, Any] = {"annotations": {ANNOTATION_RESTARTS: orjson.dumps(entries).decode()}}
    if resource_version:
        meta["resourceVersion"] = resource_version
    return {
        "metadata": meta,
        "spec": {"template": {"metadata": {"annotations": {ANNOTATION_RESTARTED_AT: timestamp}}}},
    }


class ScanError(Exception):
    def __init__(self, reason: str, error: ApiError) -> None:
        super().__init__(str(error))
        self.reason = reason
        self.error = error


@dataclass
class Work:
    """One workload (or a Job or bare pod) with pods that need a restart to get OneAgent."""

    dynakube: str
    namespace: str
    kind: str
    name: str
    api_version: str
    uid: str = ""
    pods: dict[str, list[str]] = field(default_factory=dict)  # up to SAMPLE pod names -> their causes
    count: int = 0  # pods found (exact)
    newest: dict[str, str] = field(default_factory=dict)  # cause -> creationTimestamp of its newest pod
    state: str = QUEUED
    detail: str = ""
    attempts: int = 0
    next_try: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.kind, self.name)

    @property
    def causes(self) -> list[str]:
        return [c for c in CAUSES if c in self.newest]

    @property
    def missed(self) -> bool:
        return CAUSE_MISSED in self.newest

    def add_pod(self, name: str, causes: list[str], created: str) -> None:
        self.count += 1
        if len(self.pods) < SAMPLE:
            self.pods[name] = list(causes)
        for cause in causes:
            if cause not in self.newest or (parse_time(created) or EPOCH) > (
                parse_time(self.newest[cause]) or EPOCH
            ):
                self.newest[cause] = created

    def pod_list(self, limit: int = 5) -> str:
        names = sorted(self.pods)
        more = f" and {self.count - limit} more" if self.count > limit else ""
        return ", ".join(names[:limit]) + more

    def why(self) -> str:
        """The causes in words, for messages."""
        parts = [c for c in self.causes if c != CAUSE_MISSED]
        text = f"admitted without it ({', '.join(parts)})" if parts else ""
        if self.missed:
            text += (" and some " if text else "") + "never seen by the webhook (no injection annotations)"
        return text


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def manual_message(work: Work) -> str:
    """What to tell about pods found at scan time whose owner this controller does not restart."""
    why = work.why()
    if work.detail == SKIP_JOB:
        return (
            f"Pods {work.pod_list()} of Job {work.name} were {why}; Jobs are not restarted automatically: "
            "re-create the Job (or wait for its next run) to inject OneAgent"
        )
    if work.detail == SKIP_BARE:
        return f"Pod {work.name} was {why} and has no controller; delete and re-create it to inject OneAgent"
    if work.detail == SKIP_NOT_FOUND:
        return (
            f"Pods {work.pod_list()} were {why}; their owner {work.kind} {work.name} no longer exists; "
            "delete them to inject OneAgent"
        )
    return (
        f"Pods {work.pod_list()} were {why}; their owner {work.kind} {work.name} cannot be restarted "
        "automatically: restart it by hand to inject OneAgent"
    )


def missed_message(work: Work, mapped_since: str, action: str) -> str:
    """The report of pods that never reached the webhook."""
    return (
        f"Pods {work.pod_list()} of {work.kind} {work.name} were created after namespace {work.namespace} was "
        f"mapped to DynaKube {work.dynakube} (at {mapped_since}) but carry no injection annotation: the "
        "webhook never saw them (down, unreachable or too slow, and failurePolicy Ignore admitted them "
        f"unchanged); {action}"
    )


class Verdict(NamedTuple):
    reason: str  # a bounded skip reason (counter label)
    message: str
    state: str  # the state the work ends in
    retry_at: float | None = None  # for a Cooldown: when the restart may be made


def restart_verdict(work: Work, obj: Mapping[str, Any], now: float, cooldown: float = 0.0) -> Verdict | None:
    """Why the workload ``obj`` (as read now) must not be restarted for ``work``, or None when it should be.

    Pure. In order: the opt-out annotation (on the workload or its pod template); a paused Deployment; every
    cause already restarted for after its newest waiting pod was created (the restart record); a restart by
    anyone (``restartedAt``) after every waiting pod was created; a restart for the same cause less than
    ``cooldown`` seconds ago."""
    meta = _map(obj.get("metadata"))
    template_annotations = _map(
        _map(_map(_map(obj.get("spec")).get("template")).get("metadata")).get("annotations")
    )
    for marks in (_map(meta.get("annotations")), template_annotations):
        if _str(marks.get(ANNOTATION_OPT_OUT)).strip().lower() == "false":
            return Verdict(
                SKIP_OPT_OUT,
                f"{work.kind} {work.name} is annotated {ANNOTATION_OPT_OUT}=false; restart it by hand to "
                f"inject OneAgent into pods {work.pod_list()}",
                MANUAL,
            )
    if work.kind == "Deployment" and _map(obj.get("spec")).get("paused") is True:
        return Verdict(
            SKIP_PAUSED,
            f"Deployment {work.name} is paused; resume it and run 'kubectl rollout restart' to inject "
            f"OneAgent into pods {work.pod_list()}",
            MANUAL,
        )
    record = restarts(obj)
    newest = {c: parse_time(at) for c, at in work.newest.items()}
    # creation times have one-second resolution: a pod created in the second of the restart may be the
    # rollout's own (still not injected), so it counts as after it
    due = [c for c in work.causes if c not in record or (newest.get(c) or EPOCH) >= record[c]]
    if not due:
        done = ", ".join(f"{c} at {record[c]:%Y-%m-%dT%H:%M:%SZ}" for c in work.causes)
        return Verdict(
            SKIP_ALREADY,
            f"{work.kind} {work.name} was already restarted for this ({done}), after pods {work.pod_list()} "
            "were created; that rollout replaces them",
            DONE,
        )
    restarted_at = parse_time(template_annotations.get(ANNOTATION_RESTARTED_AT))
    times = list(newest.values())
    if restarted_at is not None and times and all(t is not None and t < restarted_at for t in times):
        return Verdict(
            SKIP_IN_PROGRESS,
            f"{work.kind} {work.name} was restarted at {template_annotations.get(ANNOTATION_RESTARTED_AT)}, "
            f"after pods {work.pod_list()} were created; that rollout replaces them",
            DONE,
        )
    recent = [record[c].timestamp() for c in due if c in record]
    if recent and now - max(recent) < cooldown:
        return Verdict(
            SKIP_COOLDOWN,
            f"{work.kind} {work.name} was restarted for {', '.join(c for c in due if c in record)} less than "
            f"{cooldown:.0f}s ago and pods {work.pod_list()} still wait; the next restart waits until "
            f"{rfc3339(max(recent) + cooldown)}",
            QUEUED,
            max(recent) + cooldown,
        )
    return None


def log_fields(work: Work, outcome: str, reason: str) -> dict[str, Any]:
    return {
        "dynakube": work.dynakube,
        "namespace": work.namespace,
        "workload": f"{work.kind}/{work.name}",
        "outcome": outcome,
        "reason": reason,
    }
