"""The admission-side guard: /inject never returns a patch that mounts an init Secret the cache does not hold."""

from __future__ import annotations

import jsonpatch
import orjson

from tests.conftest import make_dynakube, make_namespace, make_pod, make_review, make_store
from webhook.admission import handlers
from webhook.admission.review import decode
from webhook.explain import explain
from webhook.mutation import pod as pods
from webhook.state import secrets as secret_cache

CONFIG = "dynatrace-dynakube-config"


def mounted_secrets(ops) -> set[str]:
    """Names of the Secrets that the ``add`` operations' volumes mount (a whole volumes list or one volume)."""
    names: set[str] = set()
    for op in ops:
        if op.get("op") != "add" or not str(op.get("path", "")).startswith("/spec/volumes"):
            continue
        value = op.get("value")
        for volume in value if isinstance(value, list) else [value]:
            secret = volume.get("secret") if isinstance(volume, dict) else None
            if isinstance(secret, dict) and secret.get("secretName"):
                names.add(secret["secretName"])
    return names


def answer_for(store, pod=None):
    review = decode(orjson.dumps(make_review(pod or make_pod())))
    return handlers.inject(review, store, pods.Settings(image="init:1", version="0.1.0"))


def config_secret(namespace: str) -> dict:
    return {"metadata": {"name": CONFIG, "namespace": namespace}, "data": {"config": "e30="}}


def test_missing_secret_admits_unchanged_but_for_the_reason() -> None:
    store = make_store([make_dynakube()], [make_namespace()])
    store.init_secret_cache.track()
    store.replace(secret_cache.INIT_CONFIG, [])
    store.replace(secret_cache.INIT_ENDPOINT, [])
    pod = make_pod()
    answer = answer_for(store, pod)
    assert answer.outcome == pods.SKIPPED and answer.reasons == ("MissingInitSecret",)
    assert "secret dynatrace-dynakube-config is not in namespace 'shop' yet" in answer.message
    assert mounted_secrets(answer.ops) == set()
    patched = jsonpatch.apply_patch(pod, answer.ops)
    assert patched["metadata"]["annotations"] == {
        **(pod["metadata"].get("annotations") or {}),
        "oneagent.dynatrace.com/injected": "false",
        "oneagent.dynatrace.com/reason": "MissingInitSecret",
    }
    assert patched["spec"] == pod["spec"]


def test_present_secret_is_mounted() -> None:
    store = make_store([make_dynakube()], [make_namespace()])
    store.init_secret_cache.track()
    store.replace(secret_cache.INIT_CONFIG, [config_secret("shop")])
    store.replace(secret_cache.INIT_ENDPOINT, [])
    answer = answer_for(store)
    assert answer.outcome == pods.INJECTED
    assert mounted_secrets(answer.ops) == {CONFIG}


def test_untracked_cache_assumes_the_secrets() -> None:
    store = make_store([make_dynakube()], [make_namespace()])  # a state file without Secret documents
    assert answer_for(store).outcome == pods.INJECTED


def test_mounted_secrets_reads_whole_lists_and_single_volumes() -> None:
    ops = [
        {"op": "add", "path": "/spec/volumes", "value": [{"name": "a", "secret": {"secretName": "s1"}}]},
        {"op": "add", "path": "/spec/volumes/-", "value": {"name": "b", "secret": {"secretName": "s2"}}},
        {"op": "add", "path": "/spec/volumes/-", "value": {"name": "c", "emptyDir": {}}},
        {"op": "remove", "path": "/spec/volumes/0"},
        {"op": "add", "path": "/metadata/annotations", "value": {"secret": {"secretName": "no"}}},
    ]
    assert mounted_secrets(ops) == {"s1", "s2"}


def test_explain_reports_the_missing_secret() -> None:
    store = make_store([make_dynakube()], [make_namespace()])
    store.init_secret_cache.track()
    store.replace(secret_cache.INIT_CONFIG, [])
    store.replace(secret_cache.INIT_ENDPOINT, [])
    report = explain(make_pod(), store, pods.Settings(image="init:1", version="0.1.0"))
    assert (report["outcome"], report["reasons"]) == ("skipped", ["MissingInitSecret"])
    (check,) = [c for c in report["checks"] if c["check"] == "init secret present"]
    assert check["passed"] is False and "dynatrace-dynakube-config" in check["detail"]


def test_explain_and_the_edge_decide_alike_with_secrets_known_from_first_need() -> None:
    """Both go through decision.decide_from_store: a Secret created on first need that the cache does not
    show yet counts for explain as it does for /inject."""
    store = make_store([make_dynakube()], [make_namespace()])
    store.init_secret_cache.track()
    store.replace(secret_cache.INIT_CONFIG, [])
    store.replace(secret_cache.INIT_ENDPOINT, [])
    pod = make_pod()
    settings = pods.Settings(image="init:1", version="0.1.0")
    review = decode(orjson.dumps(make_review(pod)))
    for known in (None, lambda namespace: frozenset({CONFIG})):
        answer = handlers.inject(review, store, settings, known)
        report = explain(pod, store, settings, "shop", known=known)
        assert (report["outcome"], tuple(report["reasons"]), report["patch"]) == (
            answer.outcome,
            answer.reasons,
            answer.ops,
        )
    assert report["outcome"] == pods.INJECTED
