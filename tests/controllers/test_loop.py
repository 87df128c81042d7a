"""The reconcile loop: ordering, deduplication, rate limit, backoff, requeue and shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from tests.controllers.test_leader import Clock
from webhook.controllers.loop import Backoff, Loop, Result, TokenBucket


def recording(clock: Clock, **kw):
    ran: list[str] = []

    def reconcile(key: str) -> Result | None:
        ran.append(key)
        return None

    return Loop("test", reconcile, clock=clock, **kw), ran


def test_due_keys_run_in_due_order_then_in_the_order_added():
    clock = Clock()
    loop, ran = recording(clock)
    loop.add("late", 5)
    loop.add("b")
    loop.add("a")
    loop.add("middle", 2)
    assert loop.process() == 2
    assert ran == ["b", "a"]
    clock.advance(2)
    loop.process()
    clock.advance(3)
    loop.process()
    assert ran == ["b", "a", "middle", "late"]
    assert len(loop) == 0 and loop.next_due() is None


def test_a_key_added_many_times_runs_once_at_its_earliest_due_time():
    clock = Clock()
    loop, ran = recording(clock)
    loop.add("ns/a", 10)
    for _ in range(5):
        loop.add("ns/a", 30)
    loop.add("ns/a", 1)  # earlier wins
    assert loop.queued() == {"ns/a": clock.now + 1}
    clock.advance(1)
    assert loop.process() == 1
    clock.advance(60)
    assert loop.process() == 0
    assert ran == ["ns/a"]


def test_a_key_added_while_it_runs_runs_again_afterwards_not_concurrently():
    clock = Clock()
    ran: list[str] = []
    loop: Loop[str]

    def reconcile(key: str) -> None:
        ran.append(key)
        if len(ran) == 1:
            loop.add(key)  # the object changed while it was being reconciled
            assert loop.queued() == {}  # not queued beside the running one

    loop = Loop("test", reconcile, clock=clock)
    loop.add("k")
    assert loop.process() == 2
    assert ran == ["k", "k"]


def test_requeue_after_is_a_resync():
    clock = Clock()
    runs: list[float] = []

    def reconcile(key: str) -> Result:
        runs.append(clock.now)
        return Result(requeue_after=60)

    loop = Loop("test", reconcile, clock=clock)
    loop.add("all")
    for _ in range(3):
        loop.process()
        clock.advance(30)
    assert [r - runs[0] for r in runs] == [0, 60]


def test_rate_limit_lets_due_keys_wait_for_a_token():
    clock = Clock()
    loop, ran = recording(clock, limiter=TokenBucket(6, clock, burst=2))  # one token per 10 s
    for key in "abcd":
        loop.add(key)
    assert loop.process() == 2
    assert loop.wait_time() == pytest.approx(10)
    clock.advance(9.9)
    assert loop.process() == 0
    clock.advance(0.1)
    assert loop.process() == 1
    clock.advance(10)
    loop.process()
    assert ran == ["a", "b", "c", "d"]


def test_the_rate_limit_applies_to_the_keys_it_is_for():
    clock = Clock()
    loop, ran = recording(clock, limiter=TokenBucket(6, clock, burst=1), limited=lambda key: key != "pass")
    for key in ("a", "b", "pass", "c"):
        loop.add(key)
    assert loop.process() == 1 and ran == ["a"]  # "b" waits for a token; the unlimited key waits behind it
    clock.advance(10)
    loop.process()
    assert ran == ["a", "b", "pass"]  # one token: "b", then "pass" without one; "c" waits again


def test_add_rate_limited_retries_after_the_backoff_and_forget_starts_over():
    """client-go's AddRateLimited / NumRequeues / Forget: the controller asks for a retry from a reconcile that
    returns normally; its failures count until it forgets the key (or a later reconcile succeeds)."""
    clock = Clock()
    seen: list[int] = []
    loop: Loop[str] = Loop("test", lambda key: None, clock=clock, backoff=Backoff(base=2.0, jitter=0.0))

    def reconcile(key: str) -> Result | None:
        seen.append(loop.num_requeues(key))
        if len(seen) < 3:
            loop.add_rate_limited(key)  # failed: again after 2 s, then 4 s
        return None

    loop.reconcile = reconcile
    loop.add("k")
    loop.process()
    assert seen == [0] and loop.num_requeues("k") == 1 and loop.queued() == {"k": clock() + 2.0}
    clock.advance(2.0)
    loop.process()
    assert seen == [0, 1] and loop.queued() == {"k": clock() + 4.0}
    clock.advance(4.0)
    loop.process()
    assert seen == [0, 1, 2] and loop.num_requeues("k") == 0  # it returned without asking again: done
    loop.add_rate_limited("x")
    loop.forget("x")
    assert loop.num_requeues("x") == 0


def test_failures_back_off_exponentially_with_jitter_per_key_and_reset_on_success():
    clock = Clock()
    failing = {"bad": 3}
    ran: list[tuple[str, float]] = []

    def reconcile(key: str) -> None:
        ran.append((key, clock.now))
        if failing.get(key, 0) > 0:
            failing[key] -= 1
            raise RuntimeError("API unavailable")

    loop = Loop("test", reconcile, clock=clock, backoff=Backoff(base=1, cap=3, jitter=0.5), rand=lambda: 1.0)
    loop.add("bad")
    loop.add("good")
    loop.process()
    assert loop.failures == {"bad": 1}
    delays = []
    for _ in range(3):
        due = loop.queued()["bad"]
        delays.append(due - clock.now)
        clock.now = due
        loop.process()
    # 1, 2, then the cap of 3 — each stretched by the maximal jitter (+50 %) here
    assert delays == [1.5, 3.0, 4.5]
    assert loop.failures == {} and "bad" not in loop.queued()
    assert [k for k, _ in ran] == ["bad", "good", "bad", "bad", "bad"]


def test_backoff_jitter_stays_within_its_bounds():
    backoff = Backoff(base=2, cap=100, jitter=0.2)
    assert backoff.delay(1, lambda: 0.0) == pytest.approx(1.6)
    assert backoff.delay(1, lambda: 0.5) == pytest.approx(2.0)
    assert backoff.delay(3, lambda: 1.0) == pytest.approx(9.6)
    assert backoff.delay(30, lambda: 0.5) == pytest.approx(100)


def test_token_bucket_refills_at_its_rate_up_to_its_burst():
    clock = Clock()
    bucket = TokenBucket(3, clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time() == pytest.approx(20)
    clock.advance(3600)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.advance(-100)  # a clock going backwards adds nothing
    assert bucket.take() is False


def test_thread_runs_added_keys_and_stops_promptly_while_waiting():
    done = threading.Event()
    ran: list[str] = []
    stopped: list[bool] = []

    def reconcile(key: str) -> Result:
        ran.append(key)
        done.set()
        return Result(requeue_after=3600)

    loop = Loop("test", reconcile, on_stop=lambda: stopped.append(True))
    thread = loop.start()
    loop.add("x")
    assert done.wait(5)
    started = time.monotonic()
    loop.stop()
    assert not thread.is_alive()
    assert time.monotonic() - started < 2
    assert ran == ["x"] and stopped == [True]


def test_stop_lets_the_running_reconcile_finish_and_runs_nothing_after():
    entered, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def reconcile(key: str) -> None:
        ran.append(key)
        entered.set()
        release.wait(5)

    loop: Loop[str] = Loop("test", reconcile)
    loop.add("first")
    loop.add("second")
    thread = loop.start()
    assert entered.wait(5)
    stopper = threading.Thread(target=loop.stop)
    stopper.start()
    time.sleep(0.05)
    assert thread.is_alive()  # still inside reconcile("first")
    release.set()
    stopper.join(5)
    assert not thread.is_alive()
    assert ran == ["first"]


def test_a_key_added_to_the_front_runs_before_the_keys_queued_in_due_order():
    clock = Clock()
    loop, ran = recording(clock, limiter=TokenBucket(6, clock, burst=1))
    for key in "abc":
        loop.add(key)
    loop.process()
    loop.add("new", front=True)
    clock.advance(10)
    loop.process()
    assert ran == ["a", "new"]
