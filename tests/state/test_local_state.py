from __future__ import annotations

import os
from pathlib import Path

import pytest

from webhook.state.local import LocalState, StateFileError, parse
from webhook.state.store import Store

ROOT = Path(__file__).parents[2]


def test_example_state_has_a_ready_and_a_pending_zone():
    store = Store("dynatrace")
    assert LocalState(ROOT / "examples" / "local-state.yaml", store).load()
    assert store.synced
    assert store.dynakube("zone-ready")["status"]["oneAgent"]["connectionInfoStatus"]["communicationHosts"]
    assert (
        store.dynakube("zone-pending")["status"]["oneAgent"]["connectionInfoStatus"]["communicationHosts"]
        == []
    )
    labels = store.namespace_object("payments")["metadata"]["labels"]
    assert labels["dynakube.internal.dynatrace.com/instance"] == "zone-pending"


def test_dynakubes_outside_the_webhook_namespace_are_ignored():
    text = """
kind: DynaKube
metadata: {name: here}
---
kind: DynaKube
metadata: {name: elsewhere, namespace: other}
---
kind: List
items:
  - {kind: Namespace, metadata: {name: a}}
"""
    dynakubes, namespaces = parse(text, "dynatrace")
    assert [d["metadata"]["name"] for d in dynakubes] == ["here"]
    assert dynakubes[0]["metadata"]["namespace"] == "dynatrace"
    assert [n["metadata"]["name"] for n in namespaces] == ["a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("kind: [", "not valid YAML"), ("kind: Pod\n", "kind 'Pod'"), ("- 1\n- 2\n", "kind None")],
)
def test_bad_files_are_rejected_with_a_reason(text, message):
    with pytest.raises(StateFileError, match=message):
        parse(text, "dynatrace")


def test_reload_on_change_and_keep_last_good_state(tmp_path):
    path = tmp_path / "state.yaml"
    path.write_text("kind: Namespace\nmetadata: {name: a}\n")
    store = Store("dynatrace")
    local = LocalState(path, store)
    assert local.load()
    assert not local.poll()  # unchanged
    path.write_text("kind: Namespace\nmetadata: {name: b, labels: {x: y}}\n")
    os.utime(path, (1, 1))
    assert local.poll()
    assert store.namespace_object("b") and store.namespace_object("a") is None
    path.write_text("kind: [broken")
    assert not local.poll()
    assert store.namespace_object("b") is not None and local.errors == 1


def test_missing_file_leaves_the_store_unsynced(tmp_path):
    store = Store("dynatrace")
    assert not LocalState(tmp_path / "absent.yaml", store).load()
    assert not store.synced


def test_pod_state_follows_the_instance_label_and_tolerates_odd_namespaces():
    store = Store("dynatrace")
    assert LocalState(ROOT / "examples" / "local-state.yaml", store).load()
    ns, dynakube = store.pod_state("payments")
    assert ns["metadata"]["name"] == "payments" and dynakube["metadata"]["name"] == "zone-pending"
    assert store.pod_state("dynatrace")[1] is None  # no instance label
    assert store.pod_state("absent") == (None, None)
    store.upsert("namespaces", {"metadata": {"name": "odd", "labels": None}})
    assert store.pod_state("odd")[1] is None
