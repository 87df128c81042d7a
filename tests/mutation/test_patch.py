from __future__ import annotations

import jsonpatch
import pytest

from webhook.mutation.patch import Patch, escape, pointer


@pytest.mark.parametrize(
    ("token", "escaped"),
    [
        ("oneagent.dynatrace.com/reason", "oneagent.dynatrace.com~1reason"),
        ("a~b", "a~0b"),
        ("~/", "~0~1"),
        ("/~1", "~1~01"),
        ("plain", "plain"),
    ],
)
def test_escape(token, escaped):
    assert escape(token) == escaped
    # and the pointer resolves back to the key in a real JSON Patch implementation
    doc = {"m": {token: 1}}
    assert jsonpatch.JsonPointer(pointer("m", token)).resolve(doc) == 1


def apply(doc, patch):
    return jsonpatch.apply_patch(doc, patch.ops)


def test_set_in_missing_map_adds_the_whole_map_once():
    doc = {"metadata": {}}
    p = Patch(doc)
    p.set_in_map(("metadata", "annotations"), "a/b", "1")
    p.set_in_map(("metadata", "annotations"), "c", "2")
    assert p.ops == [{"op": "add", "path": "/metadata/annotations", "value": {"a/b": "1", "c": "2"}}]
    assert apply(doc, p) == {"metadata": {"annotations": {"a/b": "1", "c": "2"}}}


def test_set_in_missing_nested_maps_adds_from_the_deepest_existing_parent():
    doc = {}
    p = Patch(doc)
    p.set_in_map(("metadata", "annotations"), "k", "v")
    assert p.ops == [{"op": "add", "path": "/metadata", "value": {"annotations": {"k": "v"}}}]


def test_set_in_existing_map_only_changes_what_differs():
    doc = {"metadata": {"annotations": {"same": "x", "other": "y"}}}
    p = Patch(doc)
    p.set_in_map(("metadata", "annotations"), "same", "x")
    p.set_in_map(("metadata", "annotations"), "other", "z")
    assert p.ops == [{"op": "add", "path": "/metadata/annotations/other", "value": "z"}]


def test_null_map_is_replaced_by_add():
    doc = {"metadata": {"annotations": None}}
    p = Patch(doc)
    p.set_in_map(("metadata", "annotations"), "k", "v")
    assert apply(doc, p) == {"metadata": {"annotations": {"k": "v"}}}


def test_append_to_missing_then_existing_list():
    doc = {"spec": {"containers": [{"name": "a"}, {"name": "b", "env": [{"name": "X"}]}]}}
    p = Patch(doc)
    p.append(("spec", "containers", 0, "env"), {"name": "A"})
    p.append(("spec", "containers", 0, "env"), {"name": "B"})
    p.append(("spec", "containers", 1, "env"), {"name": "Y"})
    assert p.ops == [
        {"op": "add", "path": "/spec/containers/0/env", "value": [{"name": "A"}, {"name": "B"}]},
        {"op": "add", "path": "/spec/containers/1/env/-", "value": {"name": "Y"}},
    ]
    out = apply(doc, p)
    assert out["spec"]["containers"][0]["env"] == [{"name": "A"}, {"name": "B"}]
    assert out["spec"]["containers"][1]["env"] == [{"name": "X"}, {"name": "Y"}]


@pytest.mark.parametrize(
    "doc",
    [
        {"spec": {"containers": [{"name": "a"}]}},
        {"spec": {"containers": [{"name": "a", "env": [{"name": "X"}]}]}},
        {"spec": {"containers": [{"name": "a", "env": None}]}},
    ],
)
def test_extend_gives_the_operations_of_appends(doc):
    path = ("spec", "containers", 0, "env")
    one, many = Patch(doc), Patch(doc)
    for value in ({"name": "A"}, {"name": "B"}, {"name": "C"}):
        one.append(path, value)
    many.extend(path, [{"name": "A"}])
    many.extend(path, [])
    many.extend(path, [{"name": "B"}, {"name": "C"}])
    assert many.ops == one.ops
    assert apply(doc, many)["spec"]["containers"][0]["env"][-3:] == [{"name": n} for n in "ABC"]


def test_remove_only_present_keys():
    doc = {"metadata": {"annotations": {"gone": "1"}}}
    p = Patch(doc)
    p.remove_from_map(("metadata", "annotations"), "gone")
    p.remove_from_map(("metadata", "annotations"), "absent")
    p.remove_from_map(("metadata", "labels"), "absent")
    assert apply(doc, p) == {"metadata": {"annotations": {}}}


def test_original_document_is_never_modified():
    doc = {"metadata": {"annotations": {"a": "1"}}, "spec": {"volumes": []}}
    snapshot = jsonpatch.json.dumps(doc, sort_keys=True)
    p = Patch(doc)
    p.set_in_map(("metadata", "annotations"), "b", "2")
    p.append(("spec", "volumes"), {"name": "v"})
    p.append(("spec", "initContainers"), {"name": "i"})
    p.append(("spec", "initContainers"), {"name": "j"})
    assert jsonpatch.json.dumps(doc, sort_keys=True) == snapshot
