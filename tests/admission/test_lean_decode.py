"""``decode(lean=True)``: the objects' managedFields are cut before parsing, and nothing else changes: a body as
kube-apiserver writes it (metadata in the order of the Go type, managedFields last, then spec) is cut, any
other is parsed whole."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import reviews
from webhook.admission.review import ReviewError, decode, without_managed_fields


def strip(document: dict) -> dict:
    """What the lean decode must give: the document without any object's metadata.managedFields."""
    request = document["request"]
    for key in ("object", "oldObject"):
        meta = (request.get(key) or {}).get("metadata")
        if isinstance(meta, dict):
            meta.pop("managedFields", None)
    return document


# strings as hostile as JSON allows: quotes, brackets, braces, backslashes, the key and the end marker
PIECES = [*'"[]{}\\,:ab /\n', "managedFields", '"managedFields":[', ']},"spec":', '"oldObject":{', "é"]
TEXT = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
FIELDS = st.recursive(st.just({}), lambda inner: st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
ENTRY = st.fixed_dictionaries(
    {"manager": TEXT, "operation": st.sampled_from(["Update", "Apply"]), "fieldsV1": FIELDS},
    optional={"subresource": TEXT, "time": st.just("2026-12-07T12:00:00Z")},
)
# ObjectMeta in the order of the Go type: managedFields last
ORDER = ("name", "labels", "annotations", "finalizers", "managedFields")
META = st.fixed_dictionaries(
    {"name": TEXT},
    optional={
        "labels": st.dictionaries(TEXT, TEXT, max_size=2),
        "annotations": st.dictionaries(TEXT, TEXT, max_size=2),
        "finalizers": st.lists(TEXT, max_size=2),
        "managedFields": st.lists(ENTRY, max_size=3),
    },
).map(lambda meta: {key: meta[key] for key in ORDER if key in meta})
SPEC = st.fixed_dictionaries(
    {"containers": st.lists(st.fixed_dictionaries({"name": TEXT, "args": st.lists(TEXT)}))}
)


def obj(meta: dict, spec: dict) -> dict:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": {}}


def review(new: dict, old: dict | None) -> dict:
    # AdmissionRequest in the order of the Go type
    request = {"uid": "u-1", "namespace": "ns", "operation": "UPDATE" if old else "CREATE"}
    request |= {"object": new, "oldObject": old, "dryRun": False, "options": {"kind": "CreateOptions"}}
    return {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request}


@settings(max_examples=500, deadline=None)
@given(META, SPEC, st.none() | META, SPEC)
def test_lean_decode_is_the_full_decode_without_managed_fields(meta, spec, old_meta, old_spec) -> None:
    body = orjson.dumps(review(obj(meta, spec), obj(old_meta, old_spec) if old_meta is not None else None))
    expected = strip(orjson.loads(body))
    cut = without_managed_fields(body)
    members = [m["managedFields"] for m in (meta, old_meta or {}) if "managedFields" in m]
    # cut whenever there is something to cut, unless a "]" in one of its strings comes first
    assert (cut is not None) == bool(members) or b"]" in orjson.dumps(members)
    if cut is not None:
        assert orjson.loads(cut) == expected
    whole = orjson.loads(body)
    assert dict(decode(body, lean=True).request) == (expected if cut is not None else whole)["request"]


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(TEXT, TEXT | st.lists(ENTRY, max_size=2), max_size=4), st.lists(ENTRY, max_size=2), SPEC
)
def test_any_other_order_is_parsed_whole_or_cut_exactly(meta, entries, spec) -> None:
    """managedFields first, or among other members: nothing but managedFields is ever cut."""
    document = review(obj({"managedFields": entries, **meta}, spec), None)
    body = orjson.dumps(document)
    cut = without_managed_fields(body)
    expected = strip(orjson.loads(body))
    if cut is not None:
        assert orjson.loads(cut) == expected
    assert dict(decode(body, lean=True).request) == (expected if cut is not None else document)["request"]


@pytest.mark.parametrize("size", ["S", "M", "L", "X"])
@pytest.mark.parametrize("scenario", ["inject", "skip", "reinvoke"])
def test_bench_reviews_are_cut(size, scenario) -> None:
    body = reviews.body(size, scenario)
    full = orjson.loads(body)
    if b'"managedFields":[' in body:
        cut = without_managed_fields(body)
        assert cut is not None and len(cut) < len(body)
    assert dict(decode(body, lean=True).request) == strip(full)["request"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":"\\"managedFields\\":[1]"}',  # the key inside a string
        b'{"metadata":{"managedFields":[{"m":"x"}]},"status":{}}',  # no spec after the metadata
        b'{"metadata":{"managedFields":[{"m":"x"}] },"spec":{}}',  # not compact
        b'{"metadata":{"managedFields":[{"m":"x"}',  # never closed
        b'{"metadata":{"managedFields":[{"m":"x"}],"labels":{}},"spec":{}}',  # not metadata's last member
        b'{"metadata":{"managedFields":[{"m":"a]"}]},"spec":{}}',  # a "]" in a string before the array's end
    ],
)
def test_no_cut_without_certainty(body) -> None:
    assert without_managed_fields(body) is None


def test_a_cut_of_invalid_json_is_still_an_error() -> None:
    body = b'{"kind":"AdmissionReview","request":{"object":{"metadata":{"managedFields":[{"m":"x"}]},"spec":{'
    with pytest.raises(ReviewError) as err:
        decode(body, lean=True)
    assert err.value.status == 400 and "not valid JSON" in err.value.reason
