"""Reinjection over HTTP: ``KubeApi`` (the official client) against the loopback API server, so metadata-only
pages, continue tokens, 410 Gone, strategic-merge PATCH with a resourceVersion precondition and Events go
over the wire as they do in a cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.controllers.test_leader import Clock
from tests.controllers.test_reinject import (
    DK,
    Harness,
    dynakube,
    owner,
    pod,
    seed_deployment,
)
from tests.support.apiserver import ApiServer
from tests.support.events import events_in
from tests.support.fakeapi import FakeApi
from webhook.controllers.reinject.controller import Reinjector
from webhook.controllers.reinject.verdict import ANNOTATION_RESTARTED_AT, ANNOTATION_RESTARTS, Config
from webhook.kube.api import ApiError
from webhook.kube.client import KubeApi, api_client
from webhook.state.store import DYNAKUBES


@pytest.fixture()
def served() -> Iterator[tuple[FakeApi, ApiServer, KubeApi]]:
    fake = FakeApi()
    server = ApiServer(fake)
    config = client.Configuration()
    config.host = server.url
    yield fake, server, KubeApi(api_client(config), request_timeout=5)
    server.close()


def test_metadata_pages_over_http(served):
    fake, server, api = served
    for i in range(5):
        fake.seed("/api/v1/namespaces/shop/pods", pod("shop", f"p{i}", [owner("ReplicaSet", "rs")]))
    fake.seed("/api/v1/namespaces/shop/pods", {**pod("shop", "ended"), "status": {"phase": "Succeeded"}})
    names, token, pages = [], "", 0
    while True:
        items, token = api.list_metadata_page(
            "/api/v1/namespaces/shop/pods",
            limit=2,
            continue_token=token,
            field_selector="status.phase!=Succeeded,status.phase!=Failed",
        )
        pages += 1
        assert all(i["kind"] == "PartialObjectMetadata" and "status" not in i for i in items)
        names += [i["metadata"]["name"] for i in items]
        if not token:
            break
    assert names == ["p0", "p1", "p2", "p3", "p4"] and pages == 3
    sent = [p for m, p in server.requests if m == "GET"]
    assert all("limit=2" in p for p in sent) and sum("continue=" in p for p in sent) == 2

    _, token = api.list_metadata_page("/api/v1/namespaces/shop/pods", limit=2)
    fake.compact()
    with pytest.raises(ApiError) as gone:
        api.list_metadata_page("/api/v1/namespaces/shop/pods", limit=2, continue_token=token)
    assert gone.value.status == 410


def test_restart_after_a_webhook_restart_over_http(served):
    """A DynaKube complete from the start, pods skipped earlier, a missed pod: one restart each workload,
    the record written in the same PATCH, and a second process restarts nothing."""
    fake, _, api = served
    clock = Clock()
    web = seed_deployment(fake, "shop", "web", pods=2)
    missed = seed_deployment(fake, "shop", "missed", pods=1, pod_kw={"injected": None})
    for _ in range(2):
        h = Harness(fake, clock)
        h.reinjector = Reinjector(api, h.store, Config(enabled=True), clock=clock, identity=f"r{_}")
        h.store.replace(DYNAKUBES, [dynakube(complete=True)])
        h.tick()
        h.tick(700)
        missed_seen = h.reinjector.missed()  # the leader's findings (the next leader's once it stops)
        h.manager.stop()  # the process ends: the Lease is handed back
    assert fake.calls.count(("PATCH", web)) == 1
    assert fake.calls.count(("PATCH", missed)) == 1
    deployment = fake.objects[web]
    assert ANNOTATION_RESTARTED_AT in deployment["spec"]["template"]["metadata"]["annotations"]
    assert set(json.loads(deployment["metadata"]["annotations"][ANNOTATION_RESTARTS])) == {
        "EmptyConnectionInfo"
    }
    record = json.loads(fake.objects[missed]["metadata"]["annotations"][ANNOTATION_RESTARTS])
    assert set(record) == {"NotSeenByWebhook"}
    reasons = sorted(o["reason"] for o in events_in(fake, "shop"))
    # the first process restarted both; the second found them restarted already (one report each)
    assert reasons == ["OneAgentReinjection"] * 2 + ["OneAgentReinjectionSkipped"] * 2
    assert h.reinjector.skipped == {"AlreadyRestarted": 2}
    assert missed_seen == {("shop", DK): 1}


def test_server_forwards_watch_events_and_exposes_the_missed_pods_gauge(tmp_path):
    """The wiring in ``webhook.server``: Store watch events reach the controller, the metrics refresh exposes
    what it found, by namespace and DynaKube."""
    from webhook.config import Settings
    from webhook.server import Webhook

    webhook = Webhook(Settings(certs_dir=tmp_path))
    h = Harness(store=webhook.store)
    webhook.background = webhook.background_of(h.api)
    webhook.background.reinjector = h.reinjector
    seed_deployment(h.api, "shop", "web", pods=3, pod_kw={"injected": None})
    h.store.replace(DYNAKUBES, [dynakube(complete=True, opted_in=False)])
    h.tick()
    assert h.reinjector.missed() == {("shop", DK): 3}
    webhook.refresh_metrics()
    text = webhook.metrics.exposition().decode()
    assert f'dynatrace_webhook_missed_pods{{dynakube="{DK}",namespace="shop"}} 3.0' in text
    assert "dynatrace_webhook_reinjection_pending_pods 3.0" in text

    h.store.replace(DYNAKUBES, [dynakube(complete=True)])  # opted in now: the watch event starts a sync
    webhook._watch_event(DYNAKUBES, "MODIFIED")
    h.tick()
    assert h.reinjector.restarted == 1
    webhook.refresh_metrics()
    assert "dynatrace_webhook_reinjection_pending_pods 0.0" in webhook.metrics.exposition().decode()
