"""The reconcile loop every background controller runs on: a queue of keys, one worker, rate limit, backoff.

Modelled on client-go's ``workqueue`` and controller-runtime's ``Reconcile(key) -> Result``:

- ``Loop.add(key, delay)`` queues a key (a namespace/name, a DynaKube name, or one fixed key for a controller
  that works on the whole cache). A key is queued at most once: adding it again keeps the earlier due time, so
  an object that changes five times while it waits is reconciled once. A key added while it is being
  reconciled is queued again when that reconcile ends, never run twice at once.
- Due keys run in order of due time, ties in the order they were added.
- ``reconcile(key)`` is level-triggered: it reads the current state and makes the world match it. It returns
  ``Result(requeue_after=s)`` to run again later (a resync), or ``None`` to be done with the key. An exception
  is logged and the key retried after an exponential backoff with jitter (``Backoff``), per key; a success
  resets it.
- An optional ``TokenBucket`` limits reconciles (of the keys ``limited(key)`` says, every key by default): a
  due key waits for a token. Controllers hold no bucket of their own.
- Retries are the queue's, as client-go's rate-limited queue: ``add_rate_limited(key)`` queues it after its
  backoff (``num_requeues(key)`` failures so far), ``forget(key)`` ends its failures; a reconcile that raises
  does the same as ``add_rate_limited``. Controllers count no attempts of their own.
- The clock is injectable: tests call ``process()`` and move a fake clock instead of sleeping. ``start()``
  runs the same ``process()`` in a daemon thread that sleeps until the next due key (or an ``add``), and
  ``stop()`` wakes it, lets a running reconcile finish and joins it; ``start()`` may run it again later.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

_EPSILON = 1e-9  # 30 s at 2/min is 0.999... tokens in floating point
_MAX_IDLE = 3600.0  # a thread with nothing queued still wakes up once an hour


class TokenBucket:
    """``rate_per_minute`` tokens a minute, at most ``burst`` saved up (default: one minute's worth)."""

    def __init__(
        self, rate_per_minute: float, clock: Callable[[], float], burst: float | None = None
    ) -> None:
        if not rate_per_minute > 0:
            raise ValueError(f"rate must be positive, got {rate_per_minute}")
        self.rate = rate_per_minute / 60.0
        self.capacity = burst if burst is not None else max(1.0, float(int(rate_per_minute)))
        if not self.capacity >= 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.clock = clock
        self.tokens = self.capacity
        self._at = clock()

    def _refill(self) -> None:
        now = self.clock()
        if now > self._at:  # a clock that goes backwards adds nothing
            self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.rate)
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


@dataclass(frozen=True)
class Backoff:
    """``base * 2**(failures-1)`` seconds, at most ``cap``, spread by +-``jitter`` (a fraction)."""

    base: float = 1.0
    cap: float = 300.0
    jitter: float = 0.2

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        raw = min(self.cap, self.base * 2.0 ** max(0, failures - 1))
        return max(0.0, raw * (1.0 + self.jitter * (2.0 * rand() - 1.0)))


@dataclass(frozen=True)
class Result:
    requeue_after: float | None = None  # seconds; None: done with the key until it is added again


class Loop(Generic[K]):
    def __init__(
        self,
        name: str,
        reconcile: Callable[[K], Result | None],
        *,
        clock: Callable[[], float] = time.monotonic,
        limiter: TokenBucket | None = None,
        limited: Callable[[K], bool] | None = None,
        backoff: Backoff = Backoff(),
        rand: Callable[[], float] = random.random,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.reconcile = reconcile
        self.clock = clock
        self.limiter = limiter
        self.limited = limited or (lambda key: True)
        self.backoff = backoff
        self.rand = rand
        self.on_stop = on_stop
        self.failures: dict[K, int] = {}
        self.reconciled = 0  # reconciles run, successful or not
        self._due: dict[K, float] = {}  # queued key -> due time
        self._rank: dict[K, int] = {}  # queued key -> 0: at the front (``add(front=True)``), 1: in due order
        self._heap: list[
            tuple[int, float, int, K]
        ] = []  # may hold stale entries; _due and _rank are the truth
        self._seq = itertools.count()
        self._active: K | None = None
        self._busy = False
        self._again: float | None = None  # the active key was added meanwhile, due then
        self._keep_failures = False  # the active key's reconcile called add_rate_limited
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- the queue ---
    def add(self, key: K, delay: float = 0.0, *, front: bool = False) -> None:
        """Queue ``key`` to run in ``delay`` seconds (or keep its earlier due time). ``front``: due now, and
        ahead of every key queued in due order (an event that something new needs doing does not wait behind
        a pass over everything)."""
        due = self.clock() + (0.0 if front else max(0.0, delay))
        with self._cond:
            if self._busy and self._active == key:
                self._again = due if self._again is None else min(self._again, due)
                return
            self._push(key, due, 0 if front else 1)
            self._cond.notify()

    def _push(self, key: K, due: float, rank: int = 1) -> None:
        current = self._due.get(key)
        if current is not None and (self._rank[key], current) <= (rank, due):
            return
        self._due[key] = due
        self._rank[key] = rank
        heapq.heappush(self._heap, (rank, due, next(self._seq), key))

    def add_rate_limited(self, key: K) -> float:
        """Queue ``key`` again after its backoff (one more failure); the delay chosen."""
        with self._cond:
            failures = self.failures.get(key, 0) + 1
            self.failures[key] = failures
            if self._busy and self._active == key:
                self._keep_failures = True  # its reconcile returns normally: the failure stands
        delay = self.backoff.delay(failures, self.rand)
        self.add(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """``key`` succeeded (or gave up): its failures start over."""
        with self._cond:
            self.failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        with self._cond:
            return self.failures.get(key, 0)

    def queued(self) -> dict[K, float]:
        """Queued keys and their due times."""
        with self._cond:
            return dict(self._due)

    def __len__(self) -> int:
        with self._cond:
            return len(self._due)

    def next_due(self) -> float | None:
        with self._cond:
            self._drop_stale()
            return self._heap[0][1] if self._heap else None

    def _drop_stale(self) -> None:
        while self._heap:
            rank, due, _, key = self._heap[0]
            if self._due.get(key) == due and self._rank.get(key) == rank:
                return
            heapq.heappop(self._heap)

    def _pop_due(self, now: float) -> K | None:
        with self._cond:
            self._drop_stale()
            if not self._heap or self._heap[0][1] > now or self._stopping:
                return None
            key = self._heap[0][3]
            if self.limiter is not None and self.limited(key) and not self.limiter.take():
                return None
            heapq.heappop(self._heap)
            del self._due[key]
            del self._rank[key]
            self._active, self._busy, self._again = key, True, None
            return key

    # --- running ---
    def process(self) -> int:
        """Run every key that is due now (as far as the rate limit allows); the number run."""
        ran = 0
        while True:
            key = self._pop_due(self.clock())
            if key is None:
                return ran
            self._run_one(key)
            ran += 1

    def _run_one(self, key: K) -> None:
        requeue: float | None
        try:
            result = self.reconcile(key)
        except Exception:
            failures = self.failures.get(key, 0) + 1
            self.failures[key] = failures
            requeue = self.backoff.delay(failures, self.rand)
            log.exception(
                "%s: reconciling %s failed (%d in a row); retrying in %.1fs",
                self.name,
                key,
                failures,
                requeue,
            )
        else:
            with self._cond:
                if not self._keep_failures:
                    self.failures.pop(key, None)
            requeue = result.requeue_after if result is not None else None
        finally:
            self.reconciled += 1
        with self._cond:
            again, self._busy, self._active, self._again = self._again, False, None, None
            self._keep_failures = False
            now = self.clock()
            if requeue is not None:
                self._push(key, now + max(0.0, requeue))
            if again is not None:
                self._push(key, again)

    def wait_time(self) -> float:
        """Seconds the worker may sleep before something is due (an ``add`` wakes it earlier)."""
        due = self.next_due()
        if due is None:
            return _MAX_IDLE
        wait = max(0.0, due - self.clock())
        if wait == 0.0 and self.limiter is not None:
            wait = self.limiter.wait_time()
        return min(wait, _MAX_IDLE)

    def run(self) -> None:
        try:
            while True:
                with self._cond:
                    if self._stopping:
                        return
                self.process()
                with self._cond:
                    if self._stopping:
                        return
                    self._cond.wait(self.wait_time())  # the lock is an RLock: wait_time may take it again
        finally:
            if self.on_stop is not None:
                try:
                    self.on_stop()
                except Exception:
                    log.exception("%s: stopping failed", self.name)

    def start(self) -> threading.Thread:
        with self._cond:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
                self._thread.start()
            return self._thread

    def stop(self, timeout: float | None = 5.0) -> None:
        """Wake the worker, let a running reconcile finish, join it. Queued keys are not run."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            with self._cond:
                if self._thread is thread and not thread.is_alive():
                    self._thread = None  # start() may run it again (a leader that lost and won the Lease)
        elif self.on_stop is not None:
            self.on_stop()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @property
    def stopping(self) -> bool:
        return self._stopping
