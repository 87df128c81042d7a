"""Workloads waiting for reinjection: which pods wait, whose they are, how a restart looks, what is reported.

Shared by the reinjection controller (``webhook.controllers.reinject``); no API calls here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook import dynakube as dk
from webhook.kubeapi import ApiError
from webhook.mutation.pod import ANNOTATION_INJECTED, ANNOTATION_REASON, CONNECTION_INFO_REASONS
from webhook.mutation.pod import connection_info_reasons as _connection_info_reasons
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

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


def manual_message(work: Work) -> str:
    """What to tell about pods found at scan time whose owner this controller does not restart."""
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
    return message


def event_body(
    work: Work, event_type: str, reason: str, message: str, instance: str, at: float
) -> dict[str, Any]:
    """An Event on the workload, written the way client-go writes one."""
    now = _rfc3339(at)
    involved = {
        "apiVersion": work.api_version,
        "kind": work.kind,
        "name": work.name,
        "namespace": work.namespace,
    }
    if work.uid:
        involved["uid"] = work.uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{work.name[:200]}.{uuid.uuid4().hex[:16]}", "namespace": work.namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message[:1024],
        "type": event_type,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance[:128],
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def restart_verdict(work: Work, obj: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """Why the workload ``obj`` (as read now) must not be restarted for ``work``: (skip reason, message, state
    the work ends in), or None when it should be. Pure: the opt-out annotation (on the workload or its pod
    template), a paused Deployment, or a restart already made after every waiting pod was created."""
    meta = _map(obj.get("metadata"))
    template_annotations = _map(
        _map(_map(_map(obj.get("spec")).get("template")).get("metadata")).get("annotations")
    )
    for marks in (_map(meta.get("annotations")), template_annotations):
        if _str(marks.get(ANNOTATION_OPT_OUT)).strip().lower() == "false":
            return (
                SKIP_OPT_OUT,
                f"{work.kind} {work.name} is annotated {ANNOTATION_OPT_OUT}=false; restart it by hand to "
                f"inject OneAgent into pods {work.pod_list()}",
                MANUAL,
            )
    if work.kind == "Deployment" and _map(obj.get("spec")).get("paused") is True:
        return (
            SKIP_PAUSED,
            f"Deployment {work.name} is paused; resume it and run 'kubectl rollout restart' to inject "
            f"OneAgent into pods {work.pod_list()}",
            MANUAL,
        )
    restarted_at = _parse_time(template_annotations.get(ANNOTATION_RESTARTED_AT))
    created = [_parse_time(p["created"]) for p in work.pods.values()]
    if restarted_at is not None and created and all(c is not None and c <= restarted_at for c in created):
        return (
            SKIP_IN_PROGRESS,
            f"{work.kind} {work.name} was restarted at {template_annotations.get(ANNOTATION_RESTARTED_AT)}, "
            f"after pods {work.pod_list()} were created; that rollout replaces them",
            _DONE,
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
