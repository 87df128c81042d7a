"""The owner and Secret caches: transform at arrival, paged lists, selectors, metadata-only, readiness."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest

from tests.support.fakeapi import FakeApi
from webhook.kube.api import ApiError
from webhook.state import owners
from webhook.state import secrets as secret_cache
from webhook.state.cluster import KubeState
from webhook.state.slices import SliceReflector
from webhook.state.slices import reflectors as slice_reflectors
from webhook.state.store import DYNAKUBES, NAMESPACES, Store


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def replicaset(namespace: str, name: str, owner: tuple[str, str, str] | None = None, **meta: Any) -> dict:
    refs = []
    if owner is not None:
        refs = [{"apiVersion": owner[0], "kind": owner[1], "name": owner[2], "controller": True, "uid": "u"}]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": refs, **meta},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }


def secret(namespace: str, name: str, data: dict[str, str], **labels: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {k: b64(v) for k, v in data.items()},
    }


DEPLOYMENT = ("apps/v1", "Deployment")


@pytest.mark.parametrize(
    ("name", "owner", "stored"),
    [
        ("web-5d7f8", ("apps/v1", "Deployment", "web"), ""),  # the usual case: nothing stored
        ("web-5d7f8", ("apps/v1", "Deployment", "other"), "other"),
        ("web-5d7f8", ("argoproj.io/v1alpha1", "Rollout", "web"), ("argoproj.io/v1alpha1", "Rollout", "web")),
        ("bare", None, None),
    ],
)
def test_owner_encoding_round_trips(name: str, owner: Any, stored: Any) -> None:
    obj = replicaset("ns", name, owner)
    assert owners.compact("ReplicaSet", name, obj["metadata"]) == stored
    cache = owners.OwnerCache()
    cache.upsert(owners.REPLICASETS, obj)
    expected_refs = (
        []
        if owner is None
        else [{"apiVersion": owner[0], "kind": owner[1], "name": owner[2], "controller": True}]
    )
    assert cache.owner_meta("ns", "ReplicaSet", name) == {"name": name, "ownerReferences": expected_refs}


def test_owner_cache_answers_none_when_not_cached() -> None:
    store = Store("dynatrace")
    store.upsert(owners.JOBS, {"metadata": {"namespace": "ns", "name": "nightly-2890", "ownerReferences": [
        {"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "controller": True}]}})  # fmt: skip
    assert store.owner_meta("ns", "Job", "nightly-2890") == {
        "name": "nightly-2890",
        "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "controller": True}
        ],
    }
    assert store.owner_meta("ns", "Job", "unknown") is None
    assert store.owner_meta("other", "Job", "nightly-2890") is None
    assert store.owner_meta("ns", "Deployment", "web") is None  # top-level kinds are not cached
    store.delete(owners.JOBS, {"metadata": {"namespace": "ns", "name": "nightly-2890"}})
    assert store.owner_meta("ns", "Job", "nightly-2890") is None


def test_non_controller_references_are_ignored() -> None:
    meta = {"ownerReferences": [{"kind": "Deployment", "name": "x", "apiVersion": "apps/v1"}, "junk"]}
    assert owners.compact("ReplicaSet", "x-1", meta) is None


def test_init_secrets_untracked_report_both_names() -> None:
    store = Store("dynatrace")
    assert store.init_secrets("anything") == frozenset(secret_cache.ALL_NAMES)
    assert store.init_secret_cache.synced


def test_init_secret_cache_keeps_a_summary_not_the_data() -> None:
    cache = secret_cache.InitSecretCache()
    cache.track()
    assert not cache.synced and cache.names("app") == frozenset()
    big = secret(
        "app",
        "dynatrace-dynakube-config",
        {"config": "x" * 10_000},
        **{"app.kubernetes.io/managed-by": "dynatrace-webhook"},
    )
    big["metadata"]["annotations"] = {"internal.operator.dynatrace.com/template-hash": "123"}
    big["metadata"]["resourceVersion"] = "7"
    cache.replace(secret_cache.INIT_CONFIG, [big, secret("app", "unrelated", {})])
    cache.replace(secret_cache.INIT_ENDPOINT, [])
    assert cache.synced
    assert cache.names("app") == frozenset({"dynatrace-dynakube-config"})
    summary = cache.get("app", "dynatrace-dynakube-config")
    assert summary is not None and summary.ours and summary.template_hash == "123"
    assert summary.resource_version == "7" and len(summary.digest) == 24
    assert "x" * 100 not in repr(summary)
    cache.delete(secret_cache.INIT_CONFIG, big)
    assert cache.names("app") == frozenset()


def test_input_cache_keeps_only_the_keys_read() -> None:
    cache = secret_cache.InputCache()
    cache.upsert(
        secret_cache.INPUT_SECRETS, secret("dynatrace", "dk", {"apiToken": "a", "unrelated": "big" * 100})
    )
    cache.upsert(
        secret_cache.INPUT_CONFIGMAPS, {"metadata": {"name": "cas"}, "data": {"certs": "PEM", "x": "y"}}
    )
    assert cache.secrets == {"dk": {"apiToken": "a"}}
    assert cache.config_maps == {"cas": {"certs": "PEM"}}
    cache.delete(secret_cache.INPUT_SECRETS, {"metadata": {"name": "dk"}})
    assert cache.secrets == {}


def test_paged_metadata_only_list_then_watch() -> None:
    api = FakeApi()
    for i in range(5):
        api.seed(
            f"/apis/apps/v1/namespaces/ns{i % 2}/replicasets",
            replicaset(f"ns{i % 2}", f"web{i}-abc", (*DEPLOYMENT, f"web{i}")),
        )
    store = Store("dynatrace")
    seen: list[dict] = []
    original = api.list_page

    def spy(path: str, **kw: Any) -> Any:
        items, rv, token = original(path, **kw)
        seen.extend(items)
        return items, rv, token

    api.list_page = spy  # type: ignore[method-assign]
    reflector = SliceReflector(
        api, store, owners.REPLICASETS, "/apis/apps/v1/replicasets", metadata_only=True, page_size=2
    )
    reflector.run(max_cycles=1)
    pages = [c for c in api.calls if c[0] == "LIST"]
    assert len(pages) == 3  # 2 + 2 + 1
    assert all(item["kind"] == "PartialObjectMetadata" and "spec" not in item for item in seen)
    assert store.owners.count(owners.REPLICASETS) == 5
    assert store.owner_meta("ns1", "ReplicaSet", "web3-abc")["ownerReferences"][0]["name"] == "web3"  # type: ignore[index]
    api.seed("/apis/apps/v1/namespaces/ns1/replicasets", replicaset("ns1", "late-xyz", (*DEPLOYMENT, "late")))
    reflector.run(max_cycles=1)
    assert store.owner_meta("ns1", "ReplicaSet", "late-xyz") is not None


def test_field_selected_init_secret_watch_and_readiness() -> None:
    api = FakeApi()
    api.seed("/api/v1/namespaces/a/secrets", secret("a", "dynatrace-dynakube-config", {"config": "{}"}))
    api.seed("/api/v1/namespaces/a/secrets", secret("a", "other", {"config": "{}"}))
    store = Store("dynatrace")
    store.replace(DYNAKUBES, [])
    store.replace(NAMESPACES, [])
    store.init_secret_cache.track()
    assert not store.synced  # tracked, not yet listed
    config = SliceReflector(
        api,
        store,
        secret_cache.INIT_CONFIG,
        "/api/v1/secrets",
        field_selector="metadata.name=dynatrace-dynakube-config",
    )
    endpoint = SliceReflector(
        api,
        store,
        secret_cache.INIT_ENDPOINT,
        "/api/v1/secrets",
        field_selector="metadata.name=dynatrace-metadata-enrichment-endpoint",
    )
    config.run(max_cycles=1)
    assert not store.synced
    endpoint.run(max_cycles=1)
    assert store.synced
    assert store.init_secrets("a") == frozenset({"dynatrace-dynakube-config"})
    api.seed("/api/v1/namespaces/b/secrets", secret("b", "dynatrace-metadata-enrichment-endpoint", {}))
    api.seed("/api/v1/namespaces/b/secrets", secret("b", "noise", {}))
    endpoint.run(max_cycles=1)
    assert store.init_secrets("b") == frozenset({"dynatrace-metadata-enrichment-endpoint"})
    api.delete("/api/v1/namespaces/a/secrets/dynatrace-dynakube-config")
    config.run(max_cycles=1)
    assert store.init_secrets("a") == frozenset()


def test_a_failure_mid_list_keeps_the_previous_state_and_an_expired_continue_lists_again() -> None:
    api = FakeApi()
    for i in range(4):
        api.seed("/apis/batch/v1/namespaces/ns/jobs", {"metadata": {"name": f"j{i}", "namespace": "ns"}})
    store = Store("dynatrace")
    store.upsert(owners.JOBS, {"metadata": {"name": "old", "namespace": "ns"}})
    reflector = SliceReflector(
        api, store, owners.JOBS, "/apis/batch/v1/jobs", metadata_only=True, page_size=2
    )
    reflector.backoff.initial = reflector.backoff.cap = 0.0
    calls = 0
    fail_on: dict[int, ApiError] = {2: ApiError(500, "etcd timeout"), 4: ApiError(410, "continue expired")}
    original = api.list_page

    def failing(path: str, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls in fail_on:
            raise fail_on[calls]
        return original(path, **kw)

    api.list_page = failing  # type: ignore[method-assign]
    reflector.run(max_cycles=1)  # page 2 fails: the cache is left as it was
    assert store.owner_meta("ns", "Job", "old") is not None and store.owner_meta("ns", "Job", "j0") is None
    assert reflector.reconnects == 1
    # the next list: page 2 answers 410 (continue token expired), the list starts again from page 1
    reflector.run(max_cycles=1)
    assert reflector.restarts == 1 and calls == 6
    assert store.owner_meta("ns", "Job", "old") is None and store.owner_meta("ns", "Job", "j3") is not None


def test_the_cache_lists_owners_and_inputs_once_the_store_is_synced() -> None:
    """KubeState starts the init-Secret caches with the kinds, and the owner and input caches on the "listed"
    event that makes the Store synced (no poll); every cache reports its sync."""
    api = FakeApi()
    api.seed(
        "/api/v1/namespaces/dynatrace/configmaps", {"metadata": {"name": "cas"}, "data": {"certs": "PEM"}}
    )
    store = Store("dynatrace")
    later = {*owners.RESOURCES, secret_cache.INPUT_SECRETS, secret_cache.INPUT_CONFIGMAPS}
    synced_when_listed: dict[str, bool] = {}
    listed: set[str] = set()
    done, everything = threading.Event(), threading.Event()

    def on_event(resource: str, kind: str, obj: object) -> None:
        if kind != "listed":
            return
        listed.add(resource)
        if resource in later and resource not in synced_when_listed:
            synced_when_listed[resource] = store.synced
            if set(synced_when_listed) == later:
                done.set()
        if listed >= set(store.synced_resources()):  # every cache has said so
            everything.set()

    kube = KubeState(store, api, dynakube_api_version="v1beta3", slices=True, inputs=True, on_event=on_event)
    kube.start()
    try:
        assert done.wait(10), synced_when_listed
        assert synced_when_listed == dict.fromkeys(later, True)
        assert store.inputs.config_maps == {"cas": {"certs": "PEM"}}
        assert everything.wait(10), (listed, store.synced_resources())
        reported = store.synced_resources()
        assert set(reported) >= {*later, *secret_cache.INIT_RESOURCES, DYNAKUBES, NAMESPACES}
        assert all(reported.values()), reported
    finally:
        kube.stop()


def test_secrets_outside_the_webhook_namespace_are_read_only_by_name() -> None:
    """The least-privilege promise the chart's RBAC relies on: every list and watch of Secrets across
    namespaces carries ``fieldSelector=metadata.name=<init Secret>`` (the API server authorizes it against
    ``resourceNames``); every other Secret read is in the webhook's own namespace."""
    api = FakeApi()
    requests: list[tuple[str, str]] = []
    list_page, watch = api.list_page, api.watch

    def listing(path: str, **kw: Any) -> Any:
        requests.append((path, kw.get("field_selector", "")))
        return list_page(path, **kw)

    def watching(path: str, *args: Any, **kw: Any) -> Any:
        requests.append((path, kw.get("field_selector", "")))
        return watch(path, *args, **kw)

    api.list_page, api.watch = listing, watching  # type: ignore[method-assign]
    store = Store("dynatrace")
    store.replace(DYNAKUBES, [])
    store.replace(NAMESPACES, [])
    stop = threading.Event()
    first, later = slice_reflectors(api, store, stop=stop, inputs=True)
    reflectors = [*first, *later]
    for reflector in reflectors:
        threading.Thread(target=reflector.run, daemon=True).start()
    try:
        for _ in range(500):
            if all(r.relists for r in reflectors) and len({p for p, _ in requests if "secrets" in p}) >= 2:
                break
            threading.Event().wait(0.01)
    finally:
        stop.set()
    own = "/api/v1/namespaces/dynatrace/secrets"
    # the Store's own kinds (list+watch by KubeState): Secrets of the webhook's namespace only
    paths = [k.concrete(namespace="dynatrace", dynakube_version="v1beta3").path for k in store.kinds()]
    assert [p for p in paths if p.endswith("/secrets")] == [own]
    secret_reads = sorted({r for r in requests if r[0].endswith("/secrets")})
    assert secret_reads == sorted(
        [(own, ""), *(("/api/v1/secrets", f"metadata.name={name}") for name in secret_cache.ALL_NAMES)]
    )


STATE = """
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: v1
kind: Secret
metadata: {name: dynatrace-dynakube-config, namespace: app}
data: {config: e30=}
---
apiVersion: v1
kind: Secret
metadata: {name: dk}
data: {apiToken: YQ==}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cas, namespace: elsewhere}
data: {certs: PEM}
---
kind: List
items:
  - apiVersion: apps/v1
    kind: ReplicaSet
    metadata:
      name: web-abc
      namespace: app
      ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, controller: true}]
"""


def test_state_file_sections(tmp_path: Any) -> None:
    from webhook.state.local import LocalState

    path = tmp_path / "state.yaml"
    path.write_text(STATE)
    store = Store("dynatrace")
    assert LocalState(path, store).load()
    assert store.init_secrets("app") == frozenset({"dynatrace-dynakube-config"})
    assert store.init_secrets("other") == frozenset()
    assert store.inputs.secrets == {"dk": {"apiToken": "a"}}
    assert store.inputs.config_maps == {}  # outside the DynaKubes' namespace
    assert store.owner_meta("app", "ReplicaSet", "web-abc") == {
        "name": "web-abc",
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "controller": True}
        ],
    }
    path.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n# no init Secrets listed\n")
    assert LocalState(path, store).load()
    assert store.init_secrets("app") == secret_cache.ALL_NAMES
    assert store.owner_meta("app", "ReplicaSet", "web-abc") is None
