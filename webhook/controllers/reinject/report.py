"""What the reinjection controller finds, told: logged, counted and recorded as an Event on the workload
(through the Events recorder everyone shares), once per workload and outcome while that outcome lasts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from webhook.controllers.reinject.findings import Findings, WorkKey
from webhook.controllers.reinject.scan import NamespaceScan
from webhook.controllers.reinject.verdict import (
    ACTION_INJECT,
    ACTION_RESTART,
    CAUSE_MISSED,
    EVENT_FAILED,
    EVENT_MISSED,
    EVENT_SKIPPED,
    FAILED,
    MANUAL,
    QUEUED,
    REPORTED,
    REPORTED_ONLY,
    SKIP_NOT_FOUND,
    SKIPPED,
    WAITING,
    Work,
    log_fields,
    manual_message,
    may_restart,
    missed_message,
)
from webhook.kube.api import ApiError

log = logging.getLogger("webhook.controllers.reinject.controller")


class Reports(Findings):
    def __init__(self, recorder: Any, on_count: Callable[[str, str], None] | None = None) -> None:
        """``recorder``: ``webhook.controllers.events.Recorder`` (``record(regarding, reason, message, type, action=)``)."""
        Findings.__init__(self, on_count)
        self.recorder = recorder

    def take(
        self, scan: NamespaceScan, dynakube: Mapping[str, Any], ready: bool, since: str
    ) -> list[WorkKey]:
        """Replace what was known of the scanned namespace with what the scan found; report what is to be
        reported; the workloads to restart now. ``ready``: a pod created now would be injected."""
        namespace = scan.namespace
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
        restart = []
        for key, work in sorted(scan.works.items()):
            if work.state != MANUAL:
                if not may_restart(dynakube, work.causes):
                    work.state, work.detail = REPORTED_ONLY, "NotOptedIn"
                elif not ready:
                    work.state = WAITING
            self.put(work)
            if work.missed and work.state not in (QUEUED, MANUAL):
                self.report_missed(work, since)
            elif work.state == MANUAL:
                self.report(work, SKIPPED, work.detail, manual_message(work), EVENT_SKIPPED)
            elif work.state == QUEUED:
                restart.append(key)
        return restart

    def report_missed(self, work: Work, since: str) -> None:
        if work.state == REPORTED_ONLY:
            action = (
                f"restart it by hand, or annotate DynaKube {work.dynakube} "
                "feature.dynatrace.com/automatic-reinjection=true to have it restarted"
            )
        else:
            action = f"it will be restarted once DynaKube {work.dynakube}'s connection info is complete"
        message = missed_message(work, since, action)
        self.report(work, REPORTED, CAUSE_MISSED, message, EVENT_MISSED, "Warning")

    def report(
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
        self.event(work, event_type, event_reason, message)

    def restart_failed(
        self, work: Work, reason: str, err: ApiError, max_attempts: int, retry_delay: float
    ) -> bool:
        """A GET or PATCH of the workload failed: retried after ``retry_delay`` up to ``max_attempts``, then
        left to the user (a Warning Event says what to run); a workload that is gone is skipped. True: try again
        (the caller's queue does, after ``retry_delay``)."""
        if err.status == 404:
            self.set_state(work, MANUAL, SKIP_NOT_FOUND)
            self.report(
                work, SKIPPED, SKIP_NOT_FOUND, f"{work.kind} {work.name} no longer exists", EVENT_SKIPPED
            )
            return False
        self.count(FAILED, reason)
        if work.attempts < max_attempts:
            self.set_detail(work, f"{reason}: {err}")
            log.warning(
                "restarting %s %s/%s failed (%s); attempt %d of %d, retrying in %.0fs",
                work.kind,
                work.namespace,
                work.name,
                err,
                work.attempts,
                max_attempts,
                retry_delay,
                extra=log_fields(work, FAILED, reason),
            )
            return True
        message = (
            f"Restarting {work.kind} {work.name} failed {work.attempts} time(s), last: {err}; run "
            f"'kubectl rollout restart' to inject OneAgent into pods {work.pod_list()}"
        )
        self.set_state(work, MANUAL, reason)
        log.warning("%s", message, extra=log_fields(work, FAILED, reason))
        self.event(work, "Warning", EVENT_FAILED, message)
        return False

    def event(self, work: Work, event_type: str, reason: str, message: str) -> None:
        """An Event on the workload, through the Events recorder everyone shares (rate-limited, aggregated)."""
        regarding = {
            "apiVersion": work.api_version,
            "kind": work.kind,
            "name": work.name,
            "namespace": work.namespace,
            "uid": work.uid,
        }
        action = ACTION_INJECT if reason == EVENT_MISSED else ACTION_RESTART
        self.recorder.record(regarding, reason, message, event_type, action=action)
