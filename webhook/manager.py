"""The process's background half in controller-runtime's shape: one Manager owns every Runnable.

- ``add(runnable)`` registers a Runnable (caches, the certificate manager, discovery, the Events recorder):
  started by ``start()`` in the order added, stopped by ``stop()`` in reverse.
- ``add(runnable, leader=True)`` registers one that writes cluster state for everyone (reinjection, the init
  Secrets, relabeling): it runs only while this replica holds the **one** Lease (``LeaderElector``), started in
  the order added when the Lease is won and stopped in reverse when it is lost or the process stops.
- The election runs beside the work queues, never in them: a thread of its own steps the elector every retry
  period (acquire or renew), so a long reconcile cannot let the Lease lapse. ``leading()`` (cheap, no API call)
  tells a running reconcile whether it may still write; it turns false ``renew_deadline`` after the last
  renewal, before anyone else may take over.
- ``step()`` is one election round, for tests that move a fake clock instead of running the thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from webhook.controllers.leader import LeaderElector

log = logging.getLogger(__name__)

LEASE_NAME = "dynatrace-webhook"  # the one Lease, in the webhook's namespace


class Runnable(Protocol):
    def start(self) -> object: ...

    def stop(self) -> object: ...


def _name(runnable: Runnable) -> str:
    return getattr(runnable, "name", "") or type(runnable).__name__


class Manager:
    def __init__(self, elector: LeaderElector | None = None) -> None:
        self.elector = elector
        self._runnables: list[Runnable] = []
        self._leader_runnables: list[Runnable] = []
        self._leading = False
        self._started = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # start/stop of the leader group: the election thread and stop()
        self._term = 0  # the elector's term the leader group was started in

    def add(self, runnable: Runnable, *, leader: bool = False) -> None:
        if leader and self.elector is None:
            raise ValueError(f"{_name(runnable)} needs leader election, and this Manager has no elector")
        (self._leader_runnables if leader else self._runnables).append(runnable)

    # --- leadership ---
    def leading(self) -> bool:
        """This replica holds the Lease and renewed it in time: the leader group may write."""
        return self._leading and self.elector is not None and self.elector.is_leader()

    @property
    def leader(self) -> bool:
        return self._leading

    def step(self) -> bool:
        """One election round: acquire or renew, then start or stop the leader group on a change."""
        if self.elector is None:
            return False
        won = self.elector.step()
        term = self.elector.terms
        with self._lock:
            if self._stop.is_set():
                return self._leading
            if won and self._leading and term != self._term:
                # lost (the renew deadline passed) and won again between two rounds: what the group dropped
                # meanwhile is picked up by starting it afresh
                log.warning("leader election: lease %s/%s lapsed and was renewed; restarting", *self._lease())
                for runnable in reversed(self._leader_runnables):
                    self._call(runnable, "stop")
                for runnable in self._leader_runnables:
                    self._call(runnable, "start")
            self._term = term
            if won == self._leading:
                return self._leading
            self._leading = won
            group = self._leader_runnables if won else list(reversed(self._leader_runnables))
            log.info(
                "leader election: %s lease %s/%s; %s %s",
                "holding" if won else "lost",
                self.elector.namespace,
                self.elector.name,
                "starting" if won else "stopping",
                ", ".join(_name(r) for r in group) or "nothing",
            )
            for runnable in group:
                self._call(runnable, "start" if won else "stop")
        return won

    def _lease(self) -> tuple[str, str]:
        assert self.elector is not None
        return self.elector.namespace, self.elector.name

    def _elect(self) -> None:
        assert self.elector is not None
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # never let the election die: the next round tries again
                log.exception("leader election round failed")
            self._stop.wait(self.elector.retry_period)

    # --- lifecycle ---
    def start(self) -> None:
        """Start every Runnable in order, then the election (when any Runnable needs the Lease)."""
        if self._started:
            return
        self._started = True
        for runnable in self._runnables:
            self._call(runnable, "start")
        if self._leader_runnables and self.elector is not None:
            log.info(
                "leader election: lease %s/%s as %s for %s",
                self.elector.namespace,
                self.elector.name,
                self.elector.identity,
                ", ".join(_name(r) for r in self._leader_runnables),
            )
            self._thread = threading.Thread(target=self._elect, name="leader-election", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the election and the leader group (then hand the Lease back), then every Runnable in reverse."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            if self._leading:
                for runnable in reversed(self._leader_runnables):
                    self._call(runnable, "stop")
                self._leading = False
        if self.elector is not None:
            self.elector.release()
        for runnable in reversed(self._runnables):
            self._call(runnable, "stop")

    @staticmethod
    def _call(runnable: Runnable, action: str) -> None:
        try:
            getattr(runnable, action)()
        except Exception:
            log.exception("%s: %s failed", _name(runnable), action)
