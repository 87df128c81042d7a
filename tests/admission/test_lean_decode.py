"""``decode(lean=True)``: the objects' managedFields are cut before parsing, and nothing else changes."""

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


# strings as hostile as JSON allows: quotes, brackets, braces, backslashes, commas, the key itself
PIECES = [*'"[]{}\\,:ab /', "managedFields", '"managedFields":[', "é"]
TEXT = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
FIELDS = st.recursive(st.just({}), lambda inner: st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
ENTRY = st.fixed_dictionaries(
    {"manager": TEXT, "operation": st.sampled_from(["Update", "Apply"]), "fieldsV1": FIELDS},
    optional={"subresource": TEXT, "time": st.just("2026-12-07T12:00:00Z")},
)
META = st.fixed_dictionaries(
    {"name": TEXT, "managedFields": st.lists(ENTRY, max_size=3)},
    optional={"labels": st.dictionaries(TEXT, TEXT, max_size=2), "annotations": st.dictionaries(TEXT, TEXT)},
)


def review(obj_meta: dict, old_meta: dict | None, first: bool) -> dict:
    obj = {"metadata": obj_meta, "spec": {"containers": [{"name": "app", "args": ["]", '"', "\\"]}]}}
    if not first:  # managedFields last in metadata: its member is followed by "}", not ","
        mf = obj_meta.pop("managedFields")
        obj_meta["managedFields"] = mf
    request = {"uid": "u-1", "operation": "UPDATE" if old_meta else "CREATE", "object": obj}
    if old_meta is not None:
        request["oldObject"] = {"metadata": old_meta}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


@settings(max_examples=400, deadline=None)
@given(META, st.none() | META, st.booleans())
def test_lean_decode_is_the_full_decode_without_managed_fields(obj_meta, old_meta, first):
    document = review(obj_meta, old_meta, first)
    body = orjson.dumps(document)
    cut = without_managed_fields(body)
    expected = strip(orjson.loads(body))
    if cut is not None:  # a cut is made only with certainty
        assert orjson.loads(cut) == expected
    # without a cut, the whole body is parsed: the request as sent
    wanted = expected if cut is not None else orjson.loads(body)
    assert dict(decode(body, lean=True).request) == wanted["request"]


@pytest.mark.parametrize("size", ["S", "M", "L", "X"])
@pytest.mark.parametrize("scenario", ["inject", "skip", "reinvoke"])
def test_bench_reviews_are_cut(size, scenario):
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
        b'{"managedFields":[{"m":"\\\\"}],"x":1}',  # an escaped backslash: left to the full parse
        b'{"managedFields":[{"m":"x"}] }',  # not compact
        b'{"managedFields":[{"m":"x"}',  # never closed
    ],
)
def test_no_cut_without_certainty(body):
    assert without_managed_fields(body) is None


def test_a_cut_of_invalid_json_is_still_an_error():
    with pytest.raises(ReviewError) as err:
        decode(
            b'{"kind":"AdmissionReview","request":{"object":{"metadata":{"managedFields":[{"m":"x"}],',
            lean=True,
        )
    assert err.value.status == 400 and "not valid JSON" in err.value.reason
