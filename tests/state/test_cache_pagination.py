"""Paginated lists (limit/continue) and metadata-only lists and watches, against the fake API and, through the
real client (``KubeApi``), the loopback API server."""

from __future__ import annotations

import threading

import pytest

from tests.state.test_reflector import NoWait, ns
from tests.support.apiserver import ApiServer
from tests.support.fakeapi import FakeApi
from webhook.kube.api import ApiError
from webhook.kube.client import KubeApi, continue_token_of, load_api_client
from webhook.state.kinds import DYNAKUBE_KIND, NAMESPACE_KIND, Kind
from webhook.state.reflector import ListRestarts, Reflector
from webhook.state.store import NAMESPACES, Store

NS = "/api/v1/namespaces"


def seeded(count: int) -> FakeApi:
    api = FakeApi()
    for i in range(count):
        api.seed(NS, ns(f"ns-{i:04d}", team=f"t{i % 3}"))
    return api


def names(store: Store) -> list[str]:
    return sorted(n["metadata"]["name"] for n in store.namespaces())


def reflector(api, store: Store, page_size: int = 10, **kw) -> Reflector:
    return Reflector(api, store, NAMESPACE_KIND, page_size=page_size, backoff=NoWait(), **kw)


def test_list_is_read_in_pages_and_the_store_swaps_once_at_the_end():
    api = seeded(25)
    store = Store("dynatrace")
    r = reflector(api, store)
    r.list_once()
    assert names(store) == [f"ns-{i:04d}" for i in range(25)]
    assert [(p["limit"], bool(p["continue"]), p["metadata_only"]) for p in api.pages] == [
        (10, False, True),
        (10, True, True),
        (10, True, True),
    ]
    assert r.pages == 3 and r.resource_version == str(api.resource_version)
    # the pages came from one snapshot: every page reports the first page's resourceVersion
    assert store.is_synced(NAMESPACES)


def test_changes_between_pages_do_not_leak_into_the_list_and_the_watch_delivers_them():
    api = seeded(25)
    store = Store("dynatrace")
    api.script("LIST", NS, None, lambda: (api.delete(f"{NS}/ns-0024"), api.seed(NS, ns("late"))))
    r = reflector(api, store)
    r.run(max_cycles=1)  # list (3 pages from the first snapshot), then the watch replays both changes
    assert "late" in names(store) and "ns-0024" not in names(store)
    assert len(names(store)) == 25


def test_expiredcontinue_token_of_restarts_the_list_from_scratch_and_deleted_objects_are_gone():
    api = seeded(25)
    store = Store("dynatrace")
    store.replace(NAMESPACES, [ns("stale-from-before")])  # what a previous list had cached
    events: list[str] = []

    def churn_and_compact() -> None:
        api.delete(f"{NS}/ns-0003")  # on a page already read
        api.delete(f"{NS}/ns-0020")  # on a page not read yet
        api.seed(NS, ns("zz-new"))
        api.compact()  # the snapshot the continue token points at is gone: 410

    api.script("LIST", NS, None, churn_and_compact)
    r = reflector(api, store, on_event=lambda resource, kind, obj: events.append(kind))
    r.list_once()
    assert r.restarts == 1 and events == ["relist", "listed"]
    # the second list started without a continue token and saw the new state only
    assert [bool(p["continue"]) for p in api.pages] == [False, True, False, True, True]
    expected = sorted({f"ns-{i:04d}" for i in range(25)} - {"ns-0003", "ns-0020"} | {"zz-new"})
    assert names(store) == expected
    assert store.namespace_object("stale-from-before") is None
    r.run(max_cycles=1)  # and the watch resumes from the second list's resourceVersion
    assert names(store) == expected
    assert [w["resourceVersion"] for w in api.watches] == [str(api.resource_version)]


def testcontinue_token_of_expiring_every_time_backs_off_instead_of_spinning():
    api = seeded(25)
    store = Store("dynatrace")
    store.replace(NAMESPACES, [ns("cached")])
    added = iter(range(100))

    def change_and_compact() -> None:
        api.seed(NS, ns(f"churn-{next(added)}"))
        api.compact()

    for _ in range(4):
        api.script("LIST", NS, None, change_and_compact)
    r = reflector(api, store, list_restarts=3)
    with pytest.raises(ListRestarts):
        r.list_once()
    assert r.restarts == 4
    for _ in range(2):
        api.script("LIST", NS, None, change_and_compact)
    r = reflector(api, store, list_restarts=1)
    r.run(max_cycles=1)  # the failure goes through the backoff; the Store keeps serving what it had
    assert len(r.backoff.delays) == 1 and r.reconnects == 1
    assert names(store) == ["cached"]


def test_410_on_the_first_page_is_a_failure_with_backoff_not_an_immediate_relist():
    api = seeded(3)
    api.script("LIST", NS, ApiError(410, "gone"))
    r = reflector(api, Store("dynatrace"))
    r.run(max_cycles=1)
    assert r.reconnects == 1 and len(r.backoff.delays) == 1


def test_relist_reuses_the_cached_copy_of_unchanged_objects():
    api = seeded(12)
    store = Store("dynatrace")
    r = reflector(api, store)
    r.list_once()
    before = {n["metadata"]["name"]: n for n in store.namespaces()}
    api.patch(f"{NS}/ns-0005", {"metadata": {"labels": {"team": "changed"}}})
    r.list_once()
    after = {n["metadata"]["name"]: n for n in store.namespaces()}
    assert after["ns-0004"] is before["ns-0004"]
    assert after["ns-0005"] is not before["ns-0005"]
    assert after["ns-0005"]["metadata"]["labels"]["team"] == "changed"


def test_watch_is_metadata_only_for_namespaces_and_whole_for_dynakubes():
    api = seeded(2)
    dk_kind = DYNAKUBE_KIND.concrete(namespace="dynatrace", dynakube_version="v1beta2")
    api.seed(
        dk_kind.path, {"apiVersion": "dynatrace.com/v1beta2", "kind": "DynaKube", "metadata": {"name": "d"}}
    )
    store = Store("dynatrace")
    reflector(api, store).run(max_cycles=1)
    api.patch(f"{NS}/ns-0001", {"metadata": {"labels": {"team": "x"}}})
    reflector(api, store).run(max_cycles=1)
    Reflector(api, store, dk_kind, backoff=NoWait()).run(max_cycles=1)
    assert store.namespace_object("ns-0001")["metadata"]["labels"]["team"] == "x"
    assert store.namespace_object("ns-0001")["kind"] == "Namespace"
    assert {(w["path"], w["metadata_only"]) for w in api.watches} == {(NS, True), (dk_kind.path, False)}
    assert store.dynakube("d") is not None


def test_selectors_of_a_kind_reach_the_list_and_the_watch():
    api = FakeApi()
    path = "/api/v1/namespaces/dynatrace/secrets"
    for name in ("wanted", "other"):
        api.seed(path, {"metadata": {"name": name, "labels": {"a": "1"}}, "data": {"k": "dg=="}})
    kind = Kind(
        "secrets",
        path,
        lambda obj: {"metadata": {"name": obj["metadata"]["name"]}, "data": obj.get("data")},
        label_selector="a=1",
        field_selector="metadata.name=wanted",
    )
    store = Store("dynatrace", kinds=[kind])
    Reflector(api, store, kind, backoff=NoWait()).run(max_cycles=1)
    assert [o["metadata"]["name"] for o in store.objects("secrets")] == ["wanted"]
    assert api.pages[0]["fieldSelector"] == "metadata.name=wanted"
    assert api.watches[0]["labelSelector"] == "a=1"


# --- through the official client and HTTP ---


@pytest.fixture()
def loopback(tmp_path):
    api = seeded(1203)
    server = ApiServer(api)
    try:
        yield api, server, KubeApi(load_api_client(str(server.kubeconfig(tmp_path / "kubeconfig"))))
    finally:
        server.close()


def test_http_pages_of_500_as_partial_object_metadata(loopback):
    api, server, client = loopback
    store = Store("dynatrace")
    r = Reflector(client, store, NAMESPACE_KIND, backoff=NoWait())
    r.list_once()
    assert len(store.namespaces()) == 1203 and r.pages == 3
    gets = [(path, accept) for path, accept in server.accepts if path.startswith(NS)]
    assert [path.split("?", 1)[1].split("&")[0] for path, _ in gets] == ["limit=500"] * 3
    assert all("as=PartialObjectMetadataList;g=meta.k8s.io;v=v1" in accept for _, accept in gets)
    assert store.namespace_object("ns-0007") == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "ns-0007",
            "resourceVersion": api.objects[f"{NS}/ns-0007"]["metadata"]["resourceVersion"],
            "labels": {"team": "t1"},
        },
    }


def test_http_the_next_page_is_requested_before_this_one_is_taken(loopback):
    api, _server, client = loopback
    fetch = client.prefetching(NS, limit=500, metadata_only=True)
    asked = threading.Event()
    api.script("LIST", NS, None, asked.set)  # runs when the second page's request is served
    items, _, token = fetch("")
    assert len(items) == 500 and token
    assert asked.wait(10)  # requested while the caller still holds the first page
    pages = [items]
    while token:
        items, _, token = fetch(token)
        pages.append(items)
    assert [len(p) for p in pages] == [500, 500, 203]
    assert len([p for p in api.pages if p["path"] == NS]) == 3  # nothing read beyond the last page


@pytest.mark.parametrize(
    ("data", "token"),
    [
        (b'{"kind":"List","metadata":{"resourceVersion":"7","continue":"abc"},"items":[]}', "abc"),
        (b'{"kind":"List","metadata":{"resourceVersion":"7"},"items":[]}', ""),
        # the items first: the token is not read off the head (the page is then parsed before the next)
        (b'{"items":[{"metadata":{"continue":"x"}}],"metadata":{"continue":"abc"}}', ""),
        (b'{"kind":"List","metadata": {"continue": "abc"},"items":[]}', ""),
        (b"", ""),
    ],
)
def testcontinue_token_of_read_off_the_head_of_a_list(data, token):
    assert continue_token_of(data) == token


def test_http_410_mid_pagination_restarts_and_the_watch_resumes(loopback):
    api, server, client = loopback
    store = Store("dynatrace")
    api.script("LIST", NS, None, lambda: (api.delete(f"{NS}/ns-1000"), api.compact()))
    r = Reflector(client, store, NAMESPACE_KIND, backoff=NoWait(), watch_timeout=1)
    r.run(max_cycles=1)
    assert r.restarts == 1 and r.pages == 4  # one page, 410, then three pages again
    assert len(store.namespaces()) == 1202 and store.namespace_object("ns-1000") is None
    api.seed(NS, ns("after"))
    r.run(max_cycles=1)
    assert store.namespace_object("after") is not None
    watch_accepts = [a for p, a in server.accepts if "watch=true" in p]
    assert watch_accepts and all("as=PartialObjectMetadata;g=meta.k8s.io;v=v1" in a for a in watch_accepts)


def test_stop_during_a_list_leaves_the_store_as_it_was_and_ends_the_loop():
    api = seeded(25)
    store = Store("dynatrace")
    store.replace(NAMESPACES, [ns("cached")])
    r = reflector(api, store)
    api.script("LIST", NS, None, r.stop.set)  # the stop arrives while the second page is read
    r.run(max_cycles=5)
    assert names(store) == ["cached"]
    assert [c[0] for c in api.calls if c[0] != "POST"] == ["LIST", "LIST"]  # no third page, no watch


def test_a_list_without_resource_version_is_watched_from_any_version_not_relisted_in_a_loop():
    class NoVersion(FakeApi):
        def list_page(self, path, **kw):
            items, _, token = super().list_page(path, **kw)
            return items, "", token

    api = NoVersion()
    api.seed(NS, ns("a"))
    r = reflector(api, Store("dynatrace"))
    r.run(max_cycles=2)
    # the watch from "any version" delivered the object with its resourceVersion: the next cycle resumes it
    assert [c[0] for c in api.calls if c[0] != "POST"] == ["LIST", "WATCH", "WATCH"]
    assert r.resource_version


def _rules_dynakube(*sources: str) -> dict:
    rules = [{"type": "ANNOTATION", "source": s, "target": s.replace("/", ".")} for s in sources]
    return {"metadata": {"name": "dk"}, "status": {"metadataEnrichment": {"rules": rules}}}


def test_annotations_named_by_enrichment_rules_are_kept_and_new_rules_relist_namespaces():
    api = FakeApi()
    annotations = {"owner": "team-a", "cost": "cc-1", "unrelated": "x", "metadata.dynatrace.com/a": "1"}
    api.seed(NS, {"metadata": {"name": "shop", "annotations": annotations}})
    store = Store("dynatrace")
    store.replace("dynakubes", [_rules_dynakube("owner")])
    r = reflector(api, store)
    r.run(max_cycles=1)
    kept = store.namespace_object("shop")["metadata"]["annotations"]
    assert kept == {"metadata.dynatrace.com/a": "1", "owner": "team-a"}

    store.upsert("dynakubes", _rules_dynakube("owner", "cost"))  # a rule names another annotation
    api.patch(f"{NS}/shop", {"metadata": {"labels": {"x": "1"}}})  # any event: the watch sees the request
    r.run(max_cycles=2)
    kept = store.namespace_object("shop")["metadata"]["annotations"]
    assert kept == {"metadata.dynatrace.com/a": "1", "owner": "team-a", "cost": "cc-1"}
    assert [c[0] for c in api.calls if c[0] == "LIST"] == ["LIST", "LIST"]

    store.upsert("dynakubes", _rules_dynakube("owner"))  # fewer keys: nothing to fetch again
    assert not store.take_relist(NAMESPACES)


def test_namespaces_listed_before_the_dynakubes_are_listed_again_without_reusing_cached_copies():
    api = FakeApi()
    api.seed(NS, {"metadata": {"name": "shop", "annotations": {"owner": "team-a"}}})
    store = Store("dynatrace")
    r = reflector(api, store)
    r.list_once()
    assert "annotations" not in store.namespace_object("shop")["metadata"]
    store.replace("dynakubes", [_rules_dynakube("owner")])
    assert store.take_relist(NAMESPACES)
    r.list_once()  # same resourceVersion, but what the cache keeps changed: transformed again
    assert store.namespace_object("shop")["metadata"]["annotations"] == {"owner": "team-a"}


def test_kube_system_keeps_its_uid_as_the_cluster_id():
    store = Store("dynatrace")
    store.replace(
        NAMESPACES,
        [{"metadata": {"name": "kube-system", "uid": "c1"}}, {"metadata": {"name": "shop", "uid": "u2"}}],
    )
    assert store.cluster_id == "c1"
    assert "uid" not in store.namespace_object("shop")["metadata"]
