"""The Events recorder (events.k8s.io/v1, client-go's shape): series, rate limit, a bounded queue that never
blocks, API errors; and which admissions get an Event."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import orjson
import pytest

from tests.conftest import (
    SETTINGS,
    WEBHOOK_NS,
    make_dynakube,
    make_namespace,
    make_pod,
    make_review,
    make_store,
)
from tests.support.fakeapi import FakeApi
from webhook.admission import handlers
from webhook.admission.review import decode
from webhook.admission.skipevents import REASON_SKIPPED, record_skip, skip_event
from webhook.controllers.events import COMPONENT, Recorder, event_name, reporting_instance
from webhook.kube.api import ApiError

RS = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-785cb95b9f", "namespace": "shop"}
EVENTS = "/apis/events.k8s.io/v1/namespaces/shop/events"
T0 = "2025-06-15T15:06:40.000000Z"  # the fake clock's start as a MicroTime


class Clock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


def make_recorder(api: Any, clock: Clock, counts: Counter[str], **kw: Any) -> Recorder:
    return Recorder(api, on_count=lambda r: counts.update([r]), instance="webhook-0", clock=clock, **kw)


def events_in(api: FakeApi, collection: str = EVENTS) -> list[dict[str, Any]]:
    return [o for p, o in sorted(api.objects.items()) if p.startswith(collection + "/")]


def count_of(event: dict[str, Any]) -> int:
    return int((event.get("series") or {}).get("count", 1))


def test_one_event_per_distinct_key_in_the_client_go_shape(clock: Clock) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts)
    rec.record(RS, REASON_SKIPPED, "connection info incomplete", action="InjectOneAgent")
    rec.record(
        {**RS, "name": "cart-5d8f"}, REASON_SKIPPED, "connection info incomplete", action="InjectOneAgent"
    )
    rec.record(RS, REASON_SKIPPED, "another message", action="InjectOneAgent")
    rec.record(RS, REASON_SKIPPED, "another message", action="Other")
    rec.process()
    events = events_in(api)
    assert len(events) == 4 and counts == {"sent": 4}
    (first,) = [e for e in events if e["note"] == "connection info incomplete" and e["regarding"] == RS]
    # client-go's GenerateEventName: <regarding name>.<hex Unix nanoseconds>
    assert first["metadata"]["name"] == f"{RS['name']}.{1_750_000_000 * 10**9:x}"
    assert first["metadata"]["namespace"] == "shop"
    assert {k: v for k, v in first.items() if k != "metadata"} == {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "eventTime": T0,
        "reportingController": COMPONENT,
        "reportingInstance": "webhook-0",
        "action": "InjectOneAgent",
        "reason": REASON_SKIPPED,
        "regarding": RS,
        "note": "connection info incomplete",
        "type": "Warning",
    }
    assert len({e["metadata"]["name"] for e in events}) == 4  # same clock reading, distinct names


@pytest.mark.parametrize(
    ("message", "action", "want_action", "want_note"),
    [
        ("Injecting into pod a- in namespace b", "", "Injecting into pod a- in namespace b", None),
        ("m", "RestartWorkload", "RestartWorkload", "m"),
        ("x" * 300, "", "x" * 128, "x" * 300),
        ("x" * 2000, "A", "A", "x" * 1024),
        ("é" * 100, "", "é" * 64, "é" * 100),  # limits are bytes; a character is never split
    ],
    ids=["action-is-the-message", "own-action", "action-cut", "note-cut", "utf8-bytes"],
)
def test_action_and_note_within_the_api_limits(
    clock: Clock, message: str, action: str, want_action: str, want_note: str | None
) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts)
    rec.record(RS, "Inject", message, "Normal", action=action)
    rec.process()
    (event,) = events_in(api)
    assert (event["action"], event["note"]) == (want_action, want_note or message)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("checkout-785cb95b9f", True), ("x" * 250, True), ("Upper", False), ("x" * 251, False)],
    ids=["name-dot-nanos", "longest", "invalid-name-uuid", "too-long-uuid"],
)
def test_event_name_as_client_go_generates_it(name: str, valid: bool) -> None:
    got = event_name(name, 255)
    assert (got == f"{name}.ff") is valid
    assert valid or len(got) == 36  # a UUID


def test_repeats_become_a_series_patched_once_per_flush_interval(clock: Clock) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts, flush_interval=30.0)
    rec.record(RS, REASON_SKIPPED, "m")
    rec.process()
    for _ in range(5):
        clock.now += 1
        rec.record(RS, REASON_SKIPPED, "m")
        rec.process()
    (event,) = events_in(api)
    assert "series" not in event  # the interval has not passed: nothing patched yet
    assert [m for m, _ in api.calls] == ["POST"]
    clock.now += 30
    rec.process()
    (event,) = events_in(api)
    assert event["series"] == {"count": 6, "lastObservedTime": "2025-06-15T15:06:45.000000Z"}
    assert event["eventTime"] == T0
    assert [m for m, _ in api.calls] == ["POST", "PATCH"]
    clock.now += 60
    rec.process()  # nothing new: no write
    assert [m for m, _ in api.calls] == ["POST", "PATCH"]
    assert counts == {"sent": 1, "aggregated": 5}


def test_the_series_patch_is_a_strategic_merge_of_the_series_only(clock: Clock) -> None:
    patches: list[tuple[str, Any, str]] = []

    class Recording(FakeApi):
        def patch(self, path: str, body: Any, patch_type: str = "merge") -> dict[str, Any]:
            patches.append((path, body, patch_type))
            return super().patch(path, body, patch_type)

    api, counts = Recording(), Counter[str]()
    rec = make_recorder(api, clock, counts, flush_interval=0.0)
    for _ in range(2):
        rec.record(RS, REASON_SKIPPED, "m")
        rec.process()
    (event,) = events_in(api)
    assert patches == [
        (
            f"{EVENTS}/{event['metadata']['name']}",
            {"series": {"count": 2, "lastObservedTime": T0}},
            "strategic",
        )
    ]


@pytest.mark.parametrize(
    ("gap", "want"),
    [(360.0, [2]), (361.0, [1, 1])],
    ids=["within-the-window", "after-the-window"],
)
def test_a_series_ends_after_the_window(clock: Clock, gap: float, want: list[int]) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts, flush_interval=0.0)
    rec.record(RS, REASON_SKIPPED, "m")
    rec.process()
    clock.now += gap
    rec.record(RS, REASON_SKIPPED, "m")
    rec.process()
    assert sorted(count_of(e) for e in events_in(api)) == want


def test_occurrences_merged_before_the_first_write_create_the_series(clock: Clock) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts)
    rec.record(RS, REASON_SKIPPED, "m")
    clock.now += 2
    rec.record(RS, REASON_SKIPPED, "m")
    rec.process()
    (event,) = events_in(api)
    assert event["eventTime"] == T0
    assert event["series"] == {"count": 2, "lastObservedTime": "2025-06-15T15:06:42.000000Z"}
    assert [m for m, _ in api.calls] == ["POST"]


def test_stop_writes_pending_counts(clock: Clock) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts, tick=0.01)
    rec.start()
    for _ in range(3):
        rec.record(RS, REASON_SKIPPED, "m")
    rec.stop()
    (event,) = events_in(api)
    assert count_of(event) == 3


def test_expired_event_is_written_again_with_the_whole_series(clock: Clock) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts, flush_interval=0.0)
    rec.record(RS, REASON_SKIPPED, "m")
    rec.process()
    (path,) = [p for p in api.objects if p.startswith(EVENTS)]
    api.delete(path)  # the Event's TTL ran out
    rec.record(RS, REASON_SKIPPED, "m")
    rec.process()
    (event,) = events_in(api)
    assert event["series"]["count"] == 2 and event["metadata"]["name"] == path.rsplit("/", 1)[1]
    assert [m for m, _ in api.calls] == ["POST", "DELETE", "PATCH", "POST"]
    assert counts == {"sent": 2, "aggregated": 1}


def test_rate_limit_caps_api_writes_and_delays_the_rest(clock: Clock) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts, burst=3, refill_seconds=5.0)
    for i in range(6):
        rec.record({**RS, "name": f"rs-{i}"}, REASON_SKIPPED, "m")
    rec.process()
    assert len(events_in(api)) == 3
    clock.now += 4.9
    rec.process()
    assert len(events_in(api)) == 3
    clock.now += 0.1  # one token after 5 s
    rec.process()
    assert len(events_in(api)) == 4
    clock.now += 10
    rec.process()
    assert len(events_in(api)) == 6
    written = [obj["regarding"]["name"] for _, _, kind, obj in api.changes if kind == "ADDED"]
    assert written == [f"rs-{i}" for i in range(6)]  # oldest first
    assert len(api.calls) == 6 and counts == {"sent": 6}


def test_rate_limit_over_a_long_run(clock: Clock) -> None:
    """600 distinct events over 10 minutes: 25 at once, then one per 5 s."""
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts)
    for second in range(600):
        rec.record({**RS, "name": f"rs-{second}"}, REASON_SKIPPED, "m")
        rec.process()
        clock.now += 1
    assert len(api.calls) == 25 + 599 // 5  # tokens at t=0, then one per 5 s up to t=599


def test_api_error_is_counted_not_raised(clock: Clock) -> None:
    api, counts = FakeApi(), Counter[str]()
    api.script("POST", EVENTS, ApiError(403, "events.events.k8s.io is forbidden"))
    rec = make_recorder(api, clock, counts, flush_interval=30.0)
    assert rec.record(RS, REASON_SKIPPED, "m") is True
    rec.process()
    assert events_in(api) == [] and counts == {"failed": 1}
    # a later occurrence tries again, once the flush interval has passed
    rec.record(RS, REASON_SKIPPED, "m")
    rec.process()
    assert events_in(api) == []
    clock.now += 30
    rec.process()
    (event,) = events_in(api)
    assert count_of(event) == 2 and counts == {"failed": 1, "aggregated": 1, "sent": 1}


def test_patch_error_is_counted_not_raised(clock: Clock) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts, flush_interval=0.0)
    rec.record(RS, REASON_SKIPPED, "m")
    rec.process()
    (path,) = [p for p in api.objects if p.startswith(EVENTS)]
    api.script("PATCH", path, ApiError(500, "etcd timeout"))
    rec.record(RS, REASON_SKIPPED, "m")
    rec.process()
    assert counts == {"sent": 1, "aggregated": 1, "failed": 1}


def test_an_object_without_namespace_is_regarded_from_default(clock: Clock) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts)
    rec.record({"apiVersion": "v1", "kind": "Node", "name": "n1"}, "R", "m")
    rec.process()
    (event,) = events_in(api, "/apis/events.k8s.io/v1/namespaces/default/events")
    assert event["regarding"] == {"apiVersion": "v1", "kind": "Node", "name": "n1"}


def test_reporting_instance_is_the_component_and_the_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "dynatrace-webhook-7d9f-abcde")
    assert reporting_instance() == "dynatrace-webhook-dynatrace-webhook-7d9f-abcde"


class SlowApi(FakeApi):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.entered = threading.Event()

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.entered.set()
        time.sleep(self.delay)
        return super().create(path, body)


def test_full_queue_drops_and_counts_and_record_never_blocks() -> None:
    api, counts = SlowApi(delay=0.5), Counter[str]()
    rec = Recorder(api, on_count=lambda r: counts.update([r]), queue_size=4, instance="w", tick=0.01)
    rec.start()
    try:
        rec.record(RS, REASON_SKIPPED, "first")
        assert api.entered.wait(2)  # the writer thread is now stuck in a slow API call
        durations = []
        results = []
        for i in range(10):
            start = time.perf_counter()
            results.append(rec.record({**RS, "name": f"rs-{i}"}, REASON_SKIPPED, "m"))
            durations.append(time.perf_counter() - start)
        assert results == [True] * 4 + [False] * 6
        assert counts["dropped"] == 6
        # microseconds, not the API's half second; the max bound leaves room for a busy shared machine
        assert sorted(durations)[len(durations) // 2] < 50e-6, durations
        assert max(durations) < 0.05, durations
    finally:
        api.delay = 0
        rec.stop()
    assert counts["sent"] == 5


def test_evicted_unwritten_event_counts_as_dropped(clock: Clock) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts, burst=1, max_entries=2)
    for i in range(4):
        rec.record({**RS, "name": f"rs-{i}"}, REASON_SKIPPED, "m")
    rec.process()
    # rs-0 and rs-1 evicted before they could be written; rs-2 written; rs-3 waits for a token
    assert counts == {"sent": 1, "dropped": 2}
    assert [e["regarding"]["name"] for e in events_in(api)] == ["rs-2"]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="queue_size"):
        Recorder(FakeApi(), queue_size=0)


# --- which admissions get an Event ----------------------------------------------------------------------

OWNER = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "name": "checkout-785cb95b9f",
    "uid": "0b8a6c8e-1111-2222-3333-444455556666",
    "controller": True,
    "blockOwnerDeletion": True,
}
ZONE = "eu-west-zone-a"


def store_for(**dk: Any):
    dynakube = make_dynakube("dk", **dk)
    dynakube["metadata"]["uid"] = "dk-uid"
    return make_store([dynakube], [make_namespace("shop", "dk"), make_namespace("ghost", "gone")])


def pod_with(owners: list[dict[str, Any]] | None = None, namespace: str = "shop") -> dict[str, Any]:
    pod = make_pod(namespace=namespace)
    if owners is not None:
        pod["metadata"]["ownerReferences"] = owners
    return pod


def decide(store, pod, namespace: str = "shop", **request: Any):
    review = decode(orjson.dumps(make_review(pod, namespace=namespace, **request)))
    return review, handlers.inject(review, store, SETTINGS)


@pytest.mark.parametrize(
    ("dk", "owners", "namespace", "involved", "message"),
    [
        (
            {"hosts": []},
            [OWNER],
            "shop",
            {k: OWNER[k] for k in ("apiVersion", "kind", "name", "uid")} | {"namespace": "shop"},
            f"OneAgent not injected: DynaKube 'dk' (network zone '{ZONE}') has incomplete connection info "
            "(EmptyConnectionInfo); pods created before it is complete run without OneAgent",
        ),
        (
            {"hosts": [], "tenant": "", "version": "", "network_zone": ""},
            [{**OWNER, "controller": False}],
            "shop",
            {"apiVersion": "dynatrace.com/v1beta2", "kind": "DynaKube", "name": "dk", "namespace": WEBHOOK_NS}
            | {"uid": "dk-uid"},
            "OneAgent not injected: DynaKube 'dk' (network zone '(default)') has incomplete connection info "
            "(EmptyTenantUUID, EmptyConnectionInfo, UnknownCodeModule); pods created before it is complete "
            "run without OneAgent",
        ),
        (
            {},
            None,
            "ghost",
            {
                "apiVersion": "dynatrace.com/v1beta2",
                "kind": "DynaKube",
                "name": "gone",
                "namespace": WEBHOOK_NS,
            },
            "OneAgent not injected: namespace 'ghost' is mapped to DynaKube 'gone', which does not exist "
            "(network zone unknown; reason MissingDynakube)",
        ),
    ],
    ids=["connection-info-on-owner", "all-reasons-on-dynakube", "missing-dynakube"],
)
def test_skip_event_target_and_message(dk, owners, namespace, involved, message) -> None:
    store = store_for(**dk)
    review, answer = decide(store, pod_with(owners, namespace), namespace)
    assert skip_event(review, answer, store) == (involved, message)


@pytest.mark.parametrize(
    ("dk", "pod", "namespace", "extra"),
    [
        ({}, make_pod(), "shop", {}),  # injected
        ({"hosts": []}, make_pod(), "shop", {"dryRun": True}),  # dry run: nothing was created
        ({}, make_pod(annotations={"dynatrace.com/inject": "false"}), "shop", {}),  # opted out
        ({}, make_pod(namespace="elsewhere"), "elsewhere", {}),  # namespace unknown
        ({"hosts": []}, make_pod(), "shop", {"operation": "UPDATE"}),  # not a CREATE
    ],
    ids=["injected", "dry-run", "opt-out", "unknown-namespace", "update"],
)
def test_no_event_for_other_answers(dk, pod, namespace, extra) -> None:
    store = store_for(**dk)
    review, answer = decide(store, pod, namespace, **extra)
    assert skip_event(review, answer, store) is None


def test_record_skip_queues_one_event_per_skip(clock: Clock) -> None:
    api, counts = FakeApi(), Counter[str]()
    rec = make_recorder(api, clock, counts)
    store = store_for(hosts=[])
    for _ in range(3):
        review, answer = decide(store, pod_with([OWNER]))
        record_skip(rec, review, answer, store)
    review, answer = decide(store_for(), pod_with([OWNER]))
    record_skip(rec, review, answer, store)  # injected: nothing
    assert rec.queue.qsize() == 3
    rec.process()
    (event,) = events_in(api)
    assert event["regarding"]["kind"] == "ReplicaSet" and event["action"] == "InjectOneAgent"
    assert count_of(event) == 3  # merged before the first write
    assert counts == {"sent": 1, "aggregated": 2}
