"""The background relabeler: the pure plan, one reconcile pass against the fake API, and the thread loop."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.fakeapi import FakeApi
from webhook import dynakube as dk
from webhook.controllers.relabel import NAMESPACES_PATH, Change, Relabeler, make_plan, patch_body, plan
from webhook.kube.api import ApiError, list_items
from webhook.mutation import namespace as mapping
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

WEBHOOK_NS = "dynatrace"
LABEL = dk.INSTANCE_LABEL


def make_dk(name: str, selector: Any = None, **annotations: str) -> dict[str, Any]:
    mode = {} if selector is None else {"namespaceSelector": selector}
    meta: dict[str, Any] = {"name": name, "namespace": WEBHOOK_NS}
    if annotations:
        meta["annotations"] = {
            f"feature.dynatrace.com/{k.replace('_', '-')}": v for k, v in annotations.items()
        }
    return {
        "apiVersion": "dynatrace.com/v1beta2",
        "kind": "DynaKube",
        "metadata": meta,
        "spec": {
            "apiUrl": "https://abc12345.live.dynatrace.com/api",
            "oneAgent": {"cloudNativeFullStack": mode},
        },
    }


def make_ns(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def labelled(name: str, instance: str, **labels: str) -> dict[str, Any]:
    return make_ns(name, **{LABEL: instance}, **labels)


APP = {"matchLabels": {"monitoring": "app"}}

PLAN_CASES = [
    # (id, dynakubes, namespaces, changes, conflicts)
    ("nothing at all", [], [], [], []),
    (
        "new DynaKube labels the namespaces it selects",
        [make_dk("a", APP)],
        [make_ns("shop", monitoring="app"), make_ns("other")],
        [Change("shop", "a")],
        [],
    ),
    (
        "already labelled: no change",
        [make_dk("a", APP)],
        [labelled("shop", "a", monitoring="app")],
        [],
        [],
    ),
    (
        "deleted DynaKube: its labels go",
        [],
        [labelled("shop", "a", monitoring="app"), labelled("billing", "a")],
        [Change("billing", None), Change("shop", None)],
        [],
    ),
    (
        "narrowed selector: unselected namespaces lose the label",
        [make_dk("a", {"matchLabels": {"monitoring": "strict"}})],
        [labelled("shop", "a", monitoring="app"), labelled("strict", "a", monitoring="strict")],
        [Change("shop", None)],
        [],
    ),
    (
        "selector moved to another DynaKube: relabel",
        [make_dk("a", {"matchLabels": {"x": "1"}}), make_dk("b", APP)],
        [labelled("shop", "a", monitoring="app")],
        [Change("shop", "b")],
        [],
    ),
    (
        "webhook namespace and default-ignored namespaces are left alone",
        [make_dk("a")],
        [make_ns(WEBHOOK_NS), make_ns("kube-system"), make_ns("openshift-dns"), make_ns("shop")],
        [Change("shop", "a")],
        [],
    ),
    (
        "ignored-namespaces annotation: an ignored namespace loses the label",
        [make_dk("a", ignored_namespaces='["^legacy-"]')],
        [labelled("legacy-1", "a"), make_ns("shop")],
        [Change("legacy-1", None), Change("shop", "a")],
        [],
    ),
    (
        "conflicts are reported and not touched",
        [make_dk("a"), make_dk("b", APP)],
        [labelled("shop", "a", monitoring="app"), make_ns("plain")],
        [Change("plain", "a")],
        ["shop"],
    ),
]


@pytest.mark.parametrize(
    ("dynakubes", "namespaces", "changes", "conflicts"),
    [c[1:] for c in PLAN_CASES],
    ids=[c[0] for c in PLAN_CASES],
)
def test_plan(dynakubes, namespaces, changes, conflicts):
    result = make_plan(dynakubes, namespaces, WEBHOOK_NS)
    assert result.changes == changes
    assert sorted(result.conflicts) == conflicts
    assert plan(dynakubes, namespaces, WEBHOOK_NS) == changes


@pytest.mark.parametrize(
    ("dynakubes", "namespaces"), [c[1:3] for c in PLAN_CASES], ids=[c[0] for c in PLAN_CASES]
)
def test_plan_agrees_with_label_ns(dynakubes, namespaces):
    """Applying the plan gives every namespace exactly the label /label-ns would give it."""
    changes = dict(plan(dynakubes, namespaces, WEBHOOK_NS))
    for namespace in namespaces:
        name = mapping.name_of(namespace)
        decision = mapping.decide(namespace, dynakubes, webhook_namespace=WEBHOOK_NS)
        if decision.outcome in (mapping.LABELED, mapping.UNLABELED):
            expected = decision.dynakube if decision.outcome == mapping.LABELED else None
            assert changes[name] == expected
        else:
            assert name not in changes


def test_patch_body():
    assert patch_body("a") == {"metadata": {"labels": {LABEL: "a"}}}
    assert patch_body(None, "42") == {"metadata": {"labels": {LABEL: None}, "resourceVersion": "42"}}


# --- against the fake API ---


def cluster(dynakubes, namespaces) -> tuple[FakeApi, Store]:
    api = FakeApi()
    store = Store(WEBHOOK_NS)
    for namespace in namespaces:
        api.seed(NAMESPACES_PATH, namespace)
    items = list_items(api, NAMESPACES_PATH)
    store.replace(NAMESPACES, items)
    store.replace(DYNAKUBES, dynakubes)
    return api, store


def labels_in(api: FakeApi, name: str) -> dict[str, str]:
    return api.objects[f"{NAMESPACES_PATH}/{name}"]["metadata"].get("labels") or {}


def test_reconcile_once_patches_and_is_idempotent():
    api, store = cluster(
        [make_dk("a", APP)],
        [make_ns("shop", monitoring="app", team="x"), labelled("old", "gone"), make_ns("plain")],
    )
    relabeler = Relabeler(api, store)
    report = relabeler.reconcile_once()
    assert report.patched == ["old", "shop"]
    assert labels_in(api, "shop") == {"monitoring": "app", "team": "x", LABEL: "a"}
    assert labels_in(api, "old") == {}
    assert [c for c in api.calls if c[0] == "PATCH"] == [
        ("PATCH", f"{NAMESPACES_PATH}/old"),
        ("PATCH", f"{NAMESPACES_PATH}/shop"),
    ]
    # the store was updated from the answers: a second pass has nothing to do
    api.calls.clear()
    assert relabeler.reconcile_once().patched == []
    assert api.calls == []


def test_dynakube_deleted_then_reconcile_removes_labels():
    api, store = cluster([make_dk("a")], [make_ns("shop"), make_ns("billing")])
    relabeler = Relabeler(api, store)
    relabeler.reconcile_once()
    assert labels_in(api, "shop") == {LABEL: "a"}
    store.delete(DYNAKUBES, make_dk("a"))
    assert relabeler.reconcile_once().patched == ["billing", "shop"]
    assert labels_in(api, "shop") == {} and labels_in(api, "billing") == {}


def test_stale_cache_gets_409_and_is_skipped():
    api, store = cluster([make_dk("a")], [make_ns("shop")])
    api.patch(
        f"{NAMESPACES_PATH}/shop", {"metadata": {"labels": {"changed": "yes"}}}
    )  # the cache did not see it
    report = Relabeler(api, store).reconcile_once()
    assert report.stale == ["shop"] and report.patched == []
    assert labels_in(api, "shop") == {"changed": "yes"}


@pytest.mark.parametrize(
    ("error", "bucket"),
    [
        (ApiError(404, "gone"), "stale"),
        (ApiError(409, "conflict"), "stale"),
        (ApiError(403, "forbidden"), "failed"),
        (ApiError(500, "boom"), "failed"),
        (ConnectionResetError("reset"), "failed"),
    ],
)
def test_errors_do_not_stop_the_pass(error, bucket):
    api, store = cluster([make_dk("a")], [make_ns("one"), make_ns("two")])
    api.script("PATCH", f"{NAMESPACES_PATH}/one", error)
    report = Relabeler(api, store).reconcile_once()
    assert getattr(report, bucket) == ["one"]
    assert report.patched == ["two"]
    assert labels_in(api, "two") == {LABEL: "a"}


def test_nothing_before_the_cache_has_synced():
    api = FakeApi()
    api.seed(NAMESPACES_PATH, labelled("shop", "a"))
    store = Store(WEBHOOK_NS)  # DynaKubes never listed: an empty list must not mean "delete every label"
    store.replace(NAMESPACES, list_items(api, NAMESPACES_PATH))
    report = Relabeler(api, store).reconcile_once()
    assert report.skipped == "cache not synced"
    assert [c for c in api.calls if c[0] == "PATCH"] == []


def test_on_event_wakes_only_for_dynakube_changes():
    relabeler = Relabeler(FakeApi(), Store(WEBHOOK_NS))
    for resource, kind in [(NAMESPACES, "ADDED"), (DYNAKUBES, "BOOKMARK"), (DYNAKUBES, "reconnect")]:
        relabeler.on_event(resource, kind)
        assert len(relabeler.loop) == 0
    relabeler.on_event(DYNAKUBES, "MODIFIED")
    assert list(relabeler.loop.queued()) == ["all"]


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_thread_runs_after_sync_and_on_notify():
    api = FakeApi()
    api.seed(NAMESPACES_PATH, make_ns("shop"))
    store = Store(WEBHOOK_NS)
    relabeler = Relabeler(api, store, interval=60.0, debounce=0.01)
    thread = relabeler.start()
    try:
        wait_for(lambda: relabeler.loop.reconciled >= 1)  # its first look: the cache is not synced
        assert relabeler.runs == 0  # waits for the cache
        store.replace(NAMESPACES, list_items(api, NAMESPACES_PATH))
        store.replace(DYNAKUBES, [])
        relabeler.on_event(DYNAKUBES, "listed")  # as the reflector says when the list is in
        wait_for(lambda: relabeler.runs == 1)
        assert labels_in(api, "shop") == {}
        store.upsert(DYNAKUBES, make_dk("a"))  # a DynaKube appears
        relabeler.on_event(DYNAKUBES, "ADDED")
        wait_for(lambda: labels_in(api, "shop") == {LABEL: "a"})
        assert relabeler.runs == 2  # not before the notification (interval is a minute)
    finally:
        relabeler.stop()
    assert not thread.is_alive()


def test_thread_runs_on_interval_and_survives_a_failing_pass(monkeypatch):
    api, store = cluster([], [])
    relabeler = Relabeler(api, store, interval=0.01)
    calls = []
    original = relabeler.reconcile_once

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first pass fails")
        return original()

    monkeypatch.setattr(relabeler, "reconcile_once", flaky)
    relabeler.start()
    try:
        wait_for(lambda: len(calls) >= 3)
    finally:
        relabeler.stop()
    assert relabeler.runs >= 2


def test_stop_ends_a_waiting_thread_promptly():
    relabeler = Relabeler(FakeApi(), Store(WEBHOOK_NS), interval=3600.0)
    thread = relabeler.start()
    started = time.monotonic()
    relabeler.stop()
    assert not thread.is_alive()
    assert time.monotonic() - started < 2.0
