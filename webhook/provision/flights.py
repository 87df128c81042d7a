"""Single flight for init-Secret creates within one process, shared by the admission path and the controller.

Whoever asks first for ``(namespace, name)`` sends the create; everyone asking while it is in flight waits on
the same future (admissions through ``asyncio.wrap_future``, the controller by leaving the key to the watch
event the create brings). A create that succeeded, or found the Secret existing (409), makes the name count as
present until the cache shows it, or ``remember`` seconds at most. A failed create blocks new ones for that
key for a backoff that doubles per failure. Thread-safe: admissions run on the event loop, creates and the
controller in threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import Future

Key = tuple[str, str]  # (namespace, Secret name)

CREATED = "created"  # 201
EXISTS = "exists"  # 409: someone else created it first; it is there
FAILED = "failed"  # any other answer, or no connection


class Flights:
    def __init__(
        self,
        *,
        remember: float = 60.0,
        backoff_initial: float = 5.0,
        backoff_cap: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.remember = remember
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.clock = clock
        self._lock = threading.Lock()
        self._flying: dict[Key, Future[str]] = {}
        self._present: dict[Key, float] = {}  # -> until when it counts as present
        self._failures: dict[Key, tuple[float, int]] = {}  # -> (no create before, failures in a row)

    def start(self, key: Key) -> tuple[Future[str], bool]:
        """The create of ``key``: (its future, True when the caller is to send it and ``finish`` it)."""
        with self._lock:
            flying = self._flying.get(key)
            if flying is not None:
                return flying, False
            future: Future[str] = Future()
            self._flying[key] = future
            return future, True

    def finish(self, key: Key, future: Future[str], result: str) -> None:
        """The create of ``key`` has its answer (CREATED, EXISTS or FAILED): wake everyone waiting on it."""
        now = self.clock()
        with self._lock:
            if self._flying.get(key) is future:
                del self._flying[key]
            if result in (CREATED, EXISTS):
                self._present[key] = now + self.remember
                self._failures.pop(key, None)
            else:
                _, failures = self._failures.get(key, (0.0, 0))
                delay = min(self.backoff_cap, self.backoff_initial * 2**failures)
                self._failures[key] = (now + delay, failures + 1)
        if not future.done():
            future.set_result(result)

    def backing_off(self, key: Key) -> bool:
        """A create of ``key`` failed lately: none is to be sent before its backoff has passed."""
        with self._lock:
            not_before, _ = self._failures.get(key, (0.0, 0))
        return self.clock() < not_before

    def flying(self, key: Key) -> bool:
        return key in self._flying

    def in_flight(self) -> int:
        return len(self._flying)

    def present(self, namespace: str, names: Iterable[str], cached: Collection[str]) -> frozenset[str]:
        """Which of ``names`` were created (or found existing) here and are not in ``cached`` yet."""
        if not self._present:  # the common case: nothing created lately
            return frozenset()
        now = self.clock()
        out = []
        with self._lock:
            for name in names:
                key = (namespace, name)
                until = self._present.get(key)
                if until is None:
                    continue
                if name in cached or now >= until:
                    del self._present[key]  # the cache speaks for it now (or it never arrived: ask again)
                else:
                    out.append(name)
        return frozenset(out)
