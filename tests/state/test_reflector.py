"""List+watch against the scripted fake API: resume, relist on 410, reconnect with backoff."""

from __future__ import annotations

import pytest
from urllib3.exceptions import ProtocolError

from tests.support.fakeapi import FakeApi
from webhook.kube.api import ApiError
from webhook.state.kinds import DYNAKUBE_KIND, NAMESPACE_KIND
from webhook.state.reflector import Backoff, Reflector
from webhook.state.store import NAMESPACES, Store

NS = "/api/v1/namespaces"


def ns(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


class NoWait(Backoff):
    def __init__(self) -> None:
        super().__init__()
        self.delays: list[float] = []

    def next(self, retry_after: float | None = None) -> float:
        self.delays.append(super().next(retry_after))
        return 0.0


@pytest.fixture()
def api() -> FakeApi:
    fake = FakeApi()
    fake.seed(NS, ns("shop", team="a"))
    fake.seed(NS, ns("payments"))
    return fake


def reflector(api: FakeApi, store: Store, events: list | None = None) -> Reflector:
    return Reflector(
        api,
        store,
        NAMESPACE_KIND,
        backoff=NoWait(),
        on_event=lambda r, k, o: events.append(k) if events is not None else None,
    )


def test_list_then_watch_applies_changes_and_resumes_from_last_resource_version(api):
    store = Store("dynatrace")
    r = reflector(api, store)
    r.run(max_cycles=1)
    assert sorted(n["metadata"]["name"] for n in store.namespaces()) == ["payments", "shop"]
    assert store.is_synced(NAMESPACES)
    listed_at = r.resource_version

    api.patch(f"{NS}/shop", {"metadata": {"labels": {"team": "b"}}})
    api.delete(f"{NS}/payments")
    api.seed(NS, ns("new"))
    r.run(max_cycles=1)
    assert store.namespace_object("shop")["metadata"]["labels"] == {"team": "b"}
    assert store.namespace_object("payments") is None
    assert store.namespace_object("new") is not None
    assert int(r.resource_version) > int(listed_at)
    # one list only: the second cycle resumed the watch
    assert [c for c in api.calls if c[0] == "LIST"] == [("LIST", NS)]


def test_gone_as_http_error_relists(api):
    store = Store("dynatrace")
    events: list[str] = []
    r = reflector(api, store, events)
    r.run(max_cycles=1)
    api.seed(NS, ns("late"))
    api.compact()
    r.run(max_cycles=2)
    assert events.count("relist") == 1
    assert store.namespace_object("late") is not None
    assert [c[0] for c in api.calls].count("LIST") == 2


def test_gone_as_error_event_relists(api):
    store = Store("dynatrace")
    events: list[str] = []
    r = reflector(api, store, events)
    api.script(
        "WATCH", NS, [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}]
    )
    r.run(max_cycles=3)
    assert "relist" in events
    assert [c[0] for c in api.calls].count("LIST") == 2


@pytest.mark.parametrize(
    "answer",
    [
        # as an HTTP error of the watch request
        ApiError(504, "Too large resource version: 9000, current: 42"),
        # as an ERROR event in the stream, the cause in the details
        [
            {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "code": 504,
                    "reason": "Timeout",
                    "message": "Timeout: Too large resource version: 9000, current: 42",
                    "details": {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large"}]},
                },
            }
        ],
    ],
)
def test_a_store_that_went_back_in_time_is_relisted_at_once(api, answer):
    """An etcd restored from a backup (or a rebuilt control plane): the watch's resourceVersion is ahead of the
    store. Relist from scratch at once, so that what the cluster no longer has leaves the cache."""
    store = Store("dynatrace")
    events: list[str] = []
    r = reflector(api, store, events)
    r.run(max_cycles=1)
    assert store.namespace_object("payments") is not None
    api.delete(f"{NS}/payments")  # gone in the restored store
    api.script("WATCH", NS, answer)
    r.run(max_cycles=2)
    assert events.count("relist") == 1 and "reconnect" not in events
    assert store.namespace_object("payments") is None
    assert [c[0] for c in api.calls].count("LIST") == 2


def test_after_a_lost_connection_a_store_behind_us_is_relisted(api):
    """A control plane rebuilt behind the same address: the connection drops, and the new store has not reached
    our resourceVersion. A watch from there would wait silently; the probe before resuming sees it."""
    store = Store("dynatrace")
    events: list[str] = []
    r = reflector(api, store, events)
    for i in range(5):
        api.seed(NS, ns(f"old-{i}"))
    r.run(max_cycles=1)
    assert store.namespace_object("old-4") is not None
    rebuilt = FakeApi()  # its resourceVersions start over, below ours
    rebuilt.seed(NS, ns("fresh"))
    rebuilt.script("WATCH", NS, ConnectionRefusedError("connection refused"))
    r.client = rebuilt
    r.run(max_cycles=3)
    assert "reconnect" in events and "relist" in events
    assert [n["metadata"]["name"] for n in store.namespaces()] == ["fresh"]


def test_after_a_lost_connection_a_store_that_kept_up_is_resumed(api):
    store = Store("dynatrace")
    events: list[str] = []
    r = reflector(api, store, events)
    r.run(max_cycles=1)
    api.script("WATCH", NS, ConnectionRefusedError("connection refused"))
    api.seed(NS, ns("late"))
    r.run(max_cycles=3)
    assert "reconnect" in events and "relist" not in events
    assert store.namespace_object("late") is not None
    assert [c[0] for c in api.calls].count("LIST") == 2  # the first list and the one-item probe


def test_stream_cut_mid_event_reconnects_and_keeps_state(api):
    store = Store("dynatrace")
    events: list[str] = []
    r = reflector(api, store, events)
    current = str(api.resource_version)  # what the store has reached
    api.script(
        "WATCH",
        NS,
        [
            {
                "type": "ADDED",
                "object": {**ns("streamed"), "metadata": {"name": "streamed", "resourceVersion": current}},
            },
            ProtocolError("Connection broken: IncompleteRead"),
        ],
    )
    r.run(max_cycles=2)
    assert store.namespace_object("streamed") is not None
    assert store.namespace_object("shop") is not None
    assert events.count("reconnect") == 1
    assert r.resource_version == current
    # the reconnect resumed the watch after a one-item probe (the store is not behind us), it did not relist
    assert "relist" not in events
    assert [c[0] for c in api.calls].count("LIST") == 2


def test_unreachable_api_backs_off_and_serves_last_state(api):
    store = Store("dynatrace")
    r = reflector(api, store)
    r.run(max_cycles=1)
    for _ in range(4):
        api.script("WATCH", NS, ConnectionRefusedError("connection refused"))
    r.run(max_cycles=5)
    assert store.namespace_object("shop") is not None
    delays = r.backoff.delays
    assert len(delays) == 4
    assert delays[0] < delays[1] < delays[2] < delays[3]  # exponential (jitter is at most +50 %)


def test_retry_after_is_honoured():
    backoff = Backoff(initial=0.5, cap=30)
    assert backoff.next(retry_after=7) >= 7
    backoff.reset()
    assert backoff.next() <= 0.75


def test_api_500_and_429_at_list_time_keep_store_unsynced_then_recover(api):
    store = Store("dynatrace")
    r = reflector(api, store)
    api.script("LIST", NS, ApiError(500, "etcd timeout"), ApiError(429, "slow down", retry_after=3))
    r.run(max_cycles=2)
    assert not store.is_synced(NAMESPACES)
    assert r.backoff.delays[1] >= 3
    r.run(max_cycles=1)
    assert store.is_synced(NAMESPACES)


def test_store_keeps_dynakube_status_changes_for_the_next_admission():
    api = FakeApi()
    path = "/apis/dynatrace.com/v1beta2/namespaces/dynatrace/dynakubes"
    api.seed(
        path,
        {
            "apiVersion": "dynatrace.com/v1beta2",
            "kind": "DynaKube",
            "metadata": {"name": "dk"},
            "status": {"oneAgent": {"connectionInfoStatus": {"communicationHosts": []}}},
        },
    )
    store = Store("dynatrace")
    r = Reflector(
        api,
        store,
        DYNAKUBE_KIND.concrete(dynakube_version="v1beta2", namespace="dynatrace"),
        backoff=NoWait(),
    )
    r.run(max_cycles=1)
    api.patch(
        f"{path}/dk",
        {
            "status": {
                "oneAgent": {
                    "connectionInfoStatus": {
                        "communicationHosts": [{"protocol": "https", "host": "10.0.0.1", "port": 443}]
                    }
                }
            }
        },
    )
    r.run(max_cycles=1)
    hosts = store.dynakube("dk")["status"]["oneAgent"]["connectionInfoStatus"]["communicationHosts"]
    assert hosts == [{"protocol": "https", "host": "10.0.0.1", "port": 443}]
