"""Lease-based leader election against the in-memory API, with a clock the tests move."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fakeapi import FakeApi
from webhook.controllers.leader import LeaderElector, lease_path, micro_time
from webhook.kube.api import ApiError

NS = "dynatrace"
NAME = "dynatrace-webhook"
PATH = lease_path(NS, NAME)


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def elector(api: Any, clock: Clock, identity: str) -> LeaderElector:
    return LeaderElector(
        api, NS, NAME, identity=identity, lease_duration=15, renew_deadline=10, retry_period=2, clock=clock
    )


def spec(api: FakeApi) -> dict:
    return api.objects[PATH]["spec"]


def test_first_candidate_creates_the_lease_and_leads():
    api, clock = FakeApi(), Clock()
    a = elector(api, clock, "a")
    assert a.step() is True
    assert spec(api) == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 15,
        "acquireTime": micro_time(clock.now),
        "renewTime": micro_time(clock.now),
        "leaseTransitions": 0,
    }
    assert api.objects[PATH]["apiVersion"] == "coordination.k8s.io/v1"
    assert api.objects[PATH]["kind"] == "Lease"


def test_leader_renews_once_per_retry_period_and_keeps_acquire_time():
    api, clock = FakeApi(), Clock()
    a = elector(api, clock, "a")
    a.step()
    acquired = spec(api)["acquireTime"]
    clock.advance(1)
    a.step()  # within the retry period: no API call
    assert [c for c in api.calls if c[0] == "PUT"] == []
    clock.advance(1)
    assert a.step() is True
    assert api.calls[-1] == ("PUT", PATH)
    assert spec(api)["renewTime"] == micro_time(clock.now)
    assert spec(api)["acquireTime"] == acquired
    assert spec(api)["leaseTransitions"] == 0


def test_second_candidate_follows_while_the_leader_renews():
    api, clock = FakeApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    assert a.step() is True
    for _ in range(20):  # 40 s: far beyond the lease duration, but the lease keeps changing
        assert b.step() is False
        assert b.holder == "a"
        clock.advance(2)
        assert a.step() is True
    assert spec(api)["holderIdentity"] == "a"


def test_follower_takes_over_after_the_leader_stops_renewing():
    api, clock = FakeApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    a.step()
    b.step()  # b first sees a's record now
    # a dies (no more renewals); b retries every 2 s and waits a whole lease duration from its own sighting
    for _ in range(7):
        clock.advance(2)
        assert b.step() is False
    clock.advance(2)  # 16 s since b saw the record
    assert b.step() is True
    assert spec(api)["holderIdentity"] == "b"
    assert spec(api)["leaseTransitions"] == 1
    assert spec(api)["acquireTime"] == micro_time(clock.now)
    # the old leader stopped acting at its renew deadline, before b could take over
    assert a.is_leader() is False
    # and when it comes back, it follows
    assert a.step() is False
    assert a.holder == "b"


def test_leader_steps_down_when_it_cannot_renew_within_the_deadline():
    api, clock = FakeApi(), Clock()
    a = elector(api, clock, "a")
    a.step()
    for _ in range(4):
        api.script("GET", PATH, ApiError(503, "unavailable"))
        clock.advance(2)
        assert a.step() is True  # 8 s without renewal: still within the 10 s deadline
    api.script("GET", PATH, ApiError(503, "unavailable"))
    clock.advance(2)
    assert a.step() is False
    clock.advance(2)
    assert a.step() is True  # the API is back and the lease is still ours


def test_release_lets_the_follower_take_over_at_once():
    api, clock = FakeApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    a.step()
    b.step()
    a.release()
    assert a.is_leader() is False
    assert spec(api)["holderIdentity"] == ""
    assert spec(api)["leaseDurationSeconds"] == 1
    clock.advance(2)
    assert b.step() is True
    assert spec(api)["holderIdentity"] == "b"


def test_release_without_leading_writes_nothing():
    api, clock = FakeApi(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    a.step()
    b.step()
    writes = len(api.changes)
    b.release()
    assert len(api.changes) == writes
    assert spec(api)["holderIdentity"] == "a"


class Interleaved:
    """Runs ``between`` once, right after the next GET of the Lease: another candidate writes meanwhile."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api
        self.between: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    def get(self, path: str) -> dict:
        try:
            return self.api.get(path)
        finally:
            if self.between is not None:
                between, self.between = self.between, None
                between()


def test_two_candidates_racing_for_an_expired_lease_only_one_wins():
    api, clock = FakeApi(), Clock()
    dead = elector(api, clock, "dead")
    dead.step()
    racing = Interleaved(api)
    a, b = elector(racing, clock, "a"), elector(api, clock, "b")
    a.step()
    b.step()
    clock.advance(16)
    racing.between = b.step  # b reads and writes between a's read and a's write
    assert a.step() is False  # a's PUT carries a stale resourceVersion: 409
    assert b.is_leader() is True
    assert spec(api)["holderIdentity"] == "b"
    assert a.holder == "dead"
    clock.advance(2)
    assert a.step() is False
    assert a.holder == "b"


def test_two_candidates_creating_the_lease_only_one_wins():
    api, clock = FakeApi(), Clock()
    racing = Interleaved(api)
    a, b = elector(racing, clock, "a"), elector(api, clock, "b")
    racing.between = b.step  # both see 404; b creates first
    assert a.step() is False
    assert b.is_leader() is True
    assert spec(api)["holderIdentity"] == "b"


@pytest.mark.parametrize(
    ("duration", "deadline", "retry"),
    [(15, 15, 2), (15, 10, 10), (15, 10, 0), (10, 15, 2)],
)
def test_inconsistent_timings_are_rejected(duration, deadline, retry):
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        LeaderElector(
            FakeApi(),
            NS,
            NAME,
            lease_duration=duration,
            renew_deadline=deadline,
            retry_period=retry,
            clock=Clock(),
        )


def test_identity_defaults_to_a_unique_name():
    first = LeaderElector(FakeApi(), NS, NAME, clock=Clock())
    second = LeaderElector(FakeApi(), NS, NAME, clock=Clock())
    assert first.identity and second.identity and first.identity != second.identity
