"""Hostile and malformed input: every case gets a well-formed answer or a 400/413 with a reason.

Nothing here may produce a 500, an exception, a hang, or a pod answer other than ``allowed: true``.
"""

from __future__ import annotations

import base64
import gzip
import json

import jsonpatch
import orjson
import pytest

from tests.conftest import SETTINGS, make_dynakube, make_namespace, make_pod, make_review, make_store
from webhook.admission import handlers
from webhook.admission.review import decode

HEADERS = {"Content-Type": "application/json"}


def post(client, body: bytes, headers=HEADERS):
    return client.post("/inject", content=body, headers=headers)


def answer(response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "AdmissionReview"
    assert body["response"]["allowed"] is True
    return body["response"]


def patched(review: dict, response) -> dict:
    r = answer(response)
    ops = json.loads(base64.b64decode(r["patch"])) if "patch" in r else []
    return jsonpatch.apply_patch(review["request"]["object"], ops)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "depth limit"),
        (b'{"kind": "AdmissionReview", "x": NaN}', "not valid JSON"),
        (b'{"kind": "AdmissionReview", "x": Infinity}', "not valid JSON"),
        (b'{"kind": "AdmissionReview", "x": "\\ud800"}', "not valid JSON"),
        (
            b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"uid": "u"',
            "not valid JSON",
        ),
        (gzip.compress(orjson.dumps(make_review(make_pod()))), "not valid JSON"),
        (b"\x00\x01\x02", "not valid JSON"),
    ],
    ids=["nested-10000", "nan", "infinity", "lone-surrogate", "truncated", "gzip", "binary"],
)
def test_bodies_that_are_not_json_are_400(client, body, reason):
    response = post(client, body)
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_duplicate_keys_take_the_last_value(client):
    body = orjson.dumps(make_review(make_pod())).replace(b'"uid":"uid-1"', b'"uid":"first","uid":"second"', 1)
    assert answer(post(client, body))["uid"] == "second"


def test_integers_beyond_64_bits_are_answered(client):
    review = make_review(make_pod(securityContext={"runAsUser": 1}))
    body = orjson.dumps(review).replace(b'"runAsUser":1', b'"runAsUser":18446744073709551616000', 1)
    r = answer(post(client, body))
    init = next(op for op in json.loads(base64.b64decode(r["patch"])) if op["path"] == "/spec/initContainers")
    # a number that cannot be a uid is ignored: the default user is used
    assert init["value"][0]["securityContext"]["runAsUser"] == 1001


def test_chunked_transfer_encoding_is_read(client):
    body = orjson.dumps(make_review(make_pod()))

    def chunks():
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    assert "patch" in answer(client.post("/inject", content=chunks(), headers=HEADERS))


def test_bytes_that_are_not_utf8_inside_strings_are_400(client):
    body = orjson.dumps(make_review(make_pod())).replace(b"checkout", b"check\xffout", 1)
    assert post(client, body).status_code == 400


REVIEW_CASES = {
    "dry-run": ({"dryRun": True}, "injected"),
    "no namespace": ({"namespace": None, "object": make_pod(namespace=None)}, "NamespaceUnknown"),
    "namespace only in the object": ({"namespace": None}, "injected"),
    "no name nor generateName": ({"object": make_pod(generate_name=None)}, "injected"),
    "containers null": ({"object": {**make_pod(), "spec": {"containers": None}}}, "AllContainersExcluded"),
    "spec null": ({"object": {**make_pod(), "spec": None}}, "AllContainersExcluded"),
    "metadata null": ({"object": {"kind": "Pod", "metadata": None, "spec": make_pod()["spec"]}}, "injected"),
    "annotations not a map": (
        {"object": make_pod(annotations=None) | {"metadata": {"annotations": ["x"]}}},
        "injected",
    ),
    "annotation values not strings": (
        {
            "object": make_pod(
                annotations={
                    "oneagent.dynatrace.com/inject": False,
                    "oneagent.dynatrace.com/flavor": 3,
                    "dynatrace.com/inject": None,
                    "oneagent.dynatrace.com/install-path": {"a": 1},
                }
            )
        },
        "injected",
    ),
    "containers not maps": (
        {"object": make_pod(containers=["x", None, {"name": "ok", "image": "i"}])},
        "injected",
    ),
    "container without name": ({"object": make_pod(containers=[{"image": "i"}])}, "AllContainersExcluded"),
    "names with slash and tilde": (
        {"object": make_pod(containers=[{"name": "a/b~c", "image": "i"}], annotations={"x/y~z": "1"})},
        "injected",
    ),
    "mount path of the wrong type": (
        {
            "object": make_pod(
                containers=[{"name": "a", "image": "i", "volumeMounts": [{"name": "d", "mountPath": []}]}]
            )
        },
        "injected",
    ),
    "env of the wrong type": (
        {"object": make_pod(containers=[{"name": "a", "image": "i", "env": "PATH=/"}])},
        "injected",
    ),
}


@pytest.mark.parametrize(("changes", "expect"), REVIEW_CASES.values(), ids=REVIEW_CASES.keys())
def test_odd_reviews_are_answered_and_the_patch_applies(client, changes, expect):
    review = make_review(make_pod())
    review["request"].update(changes)
    response = post(client, orjson.dumps(review))
    result = patched(review, response)
    message = answer(response)["status"]["message"]
    if expect == "injected":
        assert result["metadata"]["annotations"]["oneagent.dynatrace.com/injected"] == "true", message
    else:
        assert expect in message or result == review["request"]["object"]
        assert result == review["request"]["object"]


def test_two_thousand_containers(client):
    containers = [{"name": f"c{i}", "image": "i"} for i in range(2000)]
    review = make_review(make_pod(containers=containers))
    result = patched(review, post(client, orjson.dumps(review)))
    assert all("LD_PRELOAD" in [e["name"] for e in c["env"]] for c in result["spec"]["containers"])


def test_ten_thousand_env_entries_and_a_megabyte_of_annotations(client):
    env = [{"name": f"V{i}", "value": str(i)} for i in range(10_000)]
    review = make_review(
        make_pod(
            containers=[{"name": "a", "image": "i", "env": env}], annotations={"big": "x" * (1024 * 1024)}
        )
    )
    result = patched(review, post(client, orjson.dumps(review)))
    assert len(result["spec"]["containers"][0]["env"]) == 10_003
    assert result["metadata"]["annotations"]["big"] == "x" * (1024 * 1024)


@pytest.mark.parametrize("kind", ["Namespace", "Secret"])
def test_objects_of_the_wrong_kind_on_inject(client, kind):
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}}
    r = answer(post(client, orjson.dumps(make_review(obj, kind=kind))))
    assert "patch" not in r and "not a Pod" in r["status"]["message"]


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT", "UPDATE", None])
def test_operations_other_than_create(client, operation):
    r = answer(post(client, orjson.dumps(make_review(make_pod(), operation=operation))))
    assert "patch" not in r


MALFORMED_DYNAKUBES = {
    "status wrong types": (
        {**make_dynakube(), "status": {"oneAgent": "x", "codeModules": [], "kubeSystemUUID": 5}},
        ("EmptyTenantUUID", "EmptyConnectionInfo", "UnknownCodeModule"),
    ),
    "hosts missing fields": (
        make_dynakube(hosts=[{}, {"port": 443}, {"host": None}]),
        ("EmptyConnectionInfo",),
    ),
    "hosts not a list": (make_dynakube(hosts="10.0.0.1"), ("EmptyConnectionInfo",)),  # type: ignore[arg-type]
    "spec wrong type": ({**make_dynakube(), "spec": ["cloudNativeFullStack"]}, ("ModeWithoutInjection",)),
    "selector unknown operator": (
        make_dynakube(selector={"matchExpressions": [{"key": "a", "operator": "Like"}]}),
        ("InvalidNamespaceSelector",),
    ),
    "oneAgent mode null": (
        {**make_dynakube(), "spec": {"oneAgent": {"cloudNativeFullStack": None}}},
        ("ModeWithoutInjection",),
    ),
    # annotations of the wrong type are ignored: the defaults apply and the pod is injected
    "annotations wrong type": ({**make_dynakube(), "metadata": {"name": "dk", "annotations": "x"}}, ()),
}


@pytest.mark.parametrize(
    ("dynakube", "reasons"), MALFORMED_DYNAKUBES.values(), ids=MALFORMED_DYNAKUBES.keys()
)
def test_malformed_dynakubes_in_the_cache_skip_with_a_reason(dynakube, reasons):
    store = make_store([dynakube], [make_namespace()])
    review = decode(orjson.dumps(make_review(make_pod())))
    result = handlers.inject(review, store, SETTINGS)
    assert result.allowed and result.message
    assert tuple(result.reasons) == reasons
    assert result.outcome == ("skipped" if reasons else "injected")
