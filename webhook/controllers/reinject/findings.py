"""What the reinjection controller knows between scans: the workloads with pods to restart, the pods never
seen by the webhook per namespace and DynaKube, what was reported of each workload, and the counters.

Written by the controller's loop thread; ``pending()``, ``pending_count()`` and ``missed()`` are safe from any
thread (the metrics refresh, a debug endpoint) and make no API call.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from webhook.controllers.reinject.verdict import DONE, FAILED, RESTARTED, SKIPPED, Work

log = logging.getLogger(__name__)

WorkKey = tuple[str, str, str]  # (namespace, kind, name)


class Findings:
    def __init__(self, on_count: Callable[[str, str], None] | None = None) -> None:
        self.on_count = on_count
        self.counts: Counter[tuple[str, str]] = Counter()
        self._work: dict[WorkKey, Work] = {}
        self._missed: dict[tuple[str, str], int] = {}  # (namespace, dynakube) -> pods never seen
        self._reported: dict[WorkKey, str] = {}  # what was last reported of a workload
        self._lock = threading.Lock()

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

    def count(self, outcome: str, reason: str) -> None:
        self.counts[(outcome, reason)] += 1
        if self.on_count is not None:
            try:
                self.on_count(outcome, reason)
            except Exception:
                log.exception("reinjection counter callback failed")

    # --- the tables ---
    def work(self, key: WorkKey) -> Work | None:
        with self._lock:
            return self._work.get(key)

    def put(self, work: Work) -> None:
        with self._lock:
            self._work[work.key] = work

    def set_state(self, work: Work, state: str, detail: str) -> None:
        with self._lock:
            work.state, work.detail = state, detail
            if state == DONE:
                self._work.pop(work.key, None)

    def set_detail(self, work: Work, detail: str) -> None:
        with self._lock:
            work.detail = detail

    def replace(self, namespace: str, found: dict[WorkKey, Work], missed: dict[str, int]) -> None:
        """A new scan of ``namespace``: workloads it no longer found are dropped (and may be reported again
        when they come back), its never-seen counts are ``missed`` (dynakube -> pods)."""
        with self._lock:
            for key in [k for k in self._work if k[0] == namespace and k not in found]:
                del self._work[key]
            for gone in [k for k in self._missed if k[0] == namespace]:
                del self._missed[gone]
            self._missed.update({(namespace, dk): n for dk, n in missed.items() if n})
        for key in [k for k in self._reported if k[0] == namespace and k not in found]:
            del self._reported[key]

    def forget(self, namespace: str) -> None:
        self.replace(namespace, {}, {})

    def first_report(self, key: WorkKey, what: str) -> bool:
        """True when ``what`` was not the last thing reported of the workload (and remember it)."""
        if self._reported.get(key) == what:
            return False
        self._reported[key] = what
        return True

    def reported(self, key: WorkKey, what: str) -> None:
        self._reported[key] = what

    # --- introspection ---
    def pending(self) -> list[dict[str, Any]]:
        """Pods waiting for a restart, as of the last scans: one entry per sampled pod name."""
        with self._lock:
            works = sorted(self._work.values(), key=lambda w: w.key)
            return [
                {
                    "dynakube": w.dynakube,
                    "namespace": w.namespace,
                    "pod": pod,
                    "causes": list(causes),
                    "owner": f"{w.kind}/{w.name}",
                    "state": w.state,
                    "detail": w.detail,
                }
                for w in works
                for pod, causes in sorted(w.pods.items())
            ]

    def pending_count(self) -> int:
        """Pods waiting for a restart (exact, not only the sampled names)."""
        with self._lock:
            return sum(w.count for w in self._work.values())

    def missed(self) -> dict[tuple[str, str], int]:
        """(namespace, dynakube) -> pods found that never reached the webhook, as of the last scans."""
        with self._lock:
            return dict(self._missed)
