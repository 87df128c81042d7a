"""The Manager: Runnables started in order and stopped in reverse; the leader group behind the one Lease."""

from __future__ import annotations

import pytest

from tests.controllers.test_leader import Clock
from tests.support.fakeapi import FakeApi
from webhook.controllers.leader import LeaderElector, lease_path
from webhook.manager import LEASE_NAME, Manager


class Part:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def start(self) -> None:
        self.log.append(f"start {self.name}")

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")


def manager(api: FakeApi, clock: Clock, identity: str, log: list[str]) -> Manager:
    m = Manager(LeaderElector(api, "dynatrace", LEASE_NAME, identity=identity, clock=clock))
    m.add(Part(f"{identity}-cache", log))
    m.add(Part(f"{identity}-events", log))
    m.add(Part(f"{identity}-initsecrets", log), leader=True)
    m.add(Part(f"{identity}-reinject", log), leader=True)
    return m


def test_start_in_order_leader_group_on_winning_stop_in_reverse_and_release():
    api, clock, log = FakeApi(), Clock(), []
    m = manager(api, clock, "a", log)
    for part in m._runnables:  # what start() does, without the election thread
        part.start()
    assert m.step() and m.leading()
    m._started = True
    m.stop()
    assert log == [
        "start a-cache",
        "start a-events",
        "start a-initsecrets",
        "start a-reinject",
        "stop a-reinject",
        "stop a-initsecrets",
        "stop a-events",
        "stop a-cache",
    ]
    assert api.objects[lease_path("dynatrace", LEASE_NAME)]["spec"]["holderIdentity"] == ""


def test_one_replica_leads_the_other_takes_over_when_the_lease_expires():
    api, clock, log = FakeApi(), Clock(), []
    a, b = manager(api, clock, "a", log), manager(api, clock, "b", log)
    assert a.step() and not b.step()
    assert log == ["start a-initsecrets", "start a-reinject"]
    for _ in range(10):  # a is gone without a word; b waits the lease duration on its own clock
        clock.advance(2)
        b.step()
    assert b.leader and log[-2:] == ["start b-initsecrets", "start b-reinject"]
    assert not a.step() and log[-2:] == ["stop a-reinject", "stop a-initsecrets"]  # a comes back: follower


def test_a_lease_that_lapsed_and_was_renewed_restarts_the_leader_group():
    """Past the renew deadline a leader stops writing (``leading()`` is false), and its controllers drop what
    they were given meanwhile; renewed in the next round, the group starts afresh (its first pass)."""
    api, clock, log = FakeApi(), Clock(), []
    m = manager(api, clock, "a", log)
    m.step()
    clock.advance(11)  # no round for longer than the renew deadline (10 s)
    assert not m.leading()
    log.clear()
    assert m.step() and m.leading()
    assert log == ["stop a-reinject", "stop a-initsecrets", "start a-initsecrets", "start a-reinject"]


def test_leader_runnables_need_an_elector():
    with pytest.raises(ValueError):
        Manager().add(Part("x", []), leader=True)
