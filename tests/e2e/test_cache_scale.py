"""Against a real kube-apiserver: the cache's paginated, metadata-only lists and watches are accepted and parse,
and a webhook started in a cluster with thousands of namespaces gets ready and answers for the last one.

``E2E_SCALE_NAMESPACES`` sets how many namespaces the start-up test creates (default 2 000, created 10 at a
time); everything created carries the run label and is deleted at the end.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    HOSTS,
    INJECTED,
    INSTANCE_LABEL,
    NAMESPACES,
    annotations_of,
    create_operator_init_secrets,
    delete_quietly,
    dry_run_create,
    dynakube_body,
    dynakube_status,
    dynakubes_path,
    init_containers,
    namespace_body,
    pod_body,
    pod_hook,
    wait,
)
from webhook.state.kinds import NAMESPACE_KIND
from webhook.state.reflector import Reflector
from webhook.state.store import Store


def injected(pod: dict[str, Any]) -> bool:
    return annotations_of(pod).get(INJECTED) == "true" and bool(init_containers(pod))


SCALE = int(os.environ.get("E2E_SCALE_NAMESPACES", "2000"))
PARALLEL = 10  # the client's connection pool size


@pytest.fixture()
def many_namespaces(kube, run_id):
    """Creates namespaces ``s<run>-<i>`` concurrently; deletes them all (concurrently) at the end."""
    created: list[str] = []

    def create(count: int, **labels: str) -> list[str]:
        names = [f"s{run_id}-{i:05d}" for i in range(len(created), len(created) + count)]
        created.extend(names)
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(lambda n: kube.create(NAMESPACES, namespace_body(n, run_id, **labels)), names))
        return names

    yield create
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda n: delete_quietly(kube, f"{NAMESPACES}/{n}"), created))


def test_metadata_only_pages_and_watch_events_are_accepted_and_parse(kube, run_id, many_namespaces):
    names = many_namespaces(30, team="a")
    selector = f"e2e.dynatrace.com/run={run_id}"
    items, rv, token = kube.list_page(NAMESPACES, limit=20, label_selector=selector, metadata_only=True)
    assert len(items) == 20 and token and rv
    assert {i["kind"] for i in items} == {"PartialObjectMetadata"}
    assert all("spec" not in i and "status" not in i for i in items)
    rest, rv2, token2 = kube.list_page(
        NAMESPACES, limit=20, continue_token=token, label_selector=selector, metadata_only=True
    )
    assert len(rest) == 10 and token2 == "" and rv2 == rv  # the same snapshot
    assert sorted(i["metadata"]["name"] for i in items + rest) == names

    # the reflector's own path: a paginated list into a Store, then a metadata-only watch event
    kind = dataclasses.replace(NAMESPACE_KIND, label_selector=selector)
    store = Store("unused", kinds=[kind])
    reflector = Reflector(kube, store, kind, page_size=7, watch_timeout=5)
    reflector.list_once()
    assert reflector.pages == 5 and len(store.namespaces()) == 30
    kept = store.namespace_object(names[0])
    assert kept["metadata"]["labels"]["team"] == "a" and "uid" not in kept["metadata"]
    kube.patch(f"{NAMESPACES}/{names[0]}", {"metadata": {"labels": {"team": "b"}}})
    events: list[dict[str, Any]] = []
    stream = kube.watch(
        NAMESPACES, reflector.resource_version, 5, label_selector=selector, metadata_only=True
    )
    for event in stream:
        events.append(event)
        if event["type"] == "MODIFIED":
            break
    stream.close()
    modified = next(e for e in events if e["type"] == "MODIFIED")
    assert modified["object"]["kind"] == "PartialObjectMetadata"
    store.upsert("namespaces", modified["object"])
    assert store.namespace_object(names[0])["metadata"]["labels"]["team"] == "b"


def test_webhook_starts_with_thousands_of_namespaces_and_answers_for_the_last(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook, many_namespaces
):
    dk = f"dk-{run_id}"
    cleanup.create(dynakubes_path(webhook_namespace), dynakube_body(dk, webhook_namespace, run_id))
    kube.patch(f"{dynakubes_path(webhook_namespace)}/{dk}/status", dynakube_status(HOSTS))
    # the namespace the pod goes to: its name sorts after the bulk ones, so it is on the last page; created
    # first, because the ServiceAccount controller then has thousands of namespaces to work through
    last = f"z{run_id}-last"
    create_namespace(kube, cleanup, last, run_id, **{INSTANCE_LABEL: dk})
    create_operator_init_secrets(cleanup, last, run_id)  # the injection mounts them only when they exist
    began = time.monotonic()
    many_namespaces(SCALE, team="bulk")
    created_s = time.monotonic() - began

    started = time.monotonic()
    webhook = start_webhook()  # waits for /readyz: both caches listed
    ready_s = time.monotonic() - started
    log = webhook.log.read_text()
    listed = re.search(r"namespaces: listed (\d+) object\(s\) in (\d+) page\(s\)", log)
    assert listed, log[-3000:]
    objects, pages = int(listed[1]), int(listed[2])
    assert objects >= SCALE + 2  # ours, the webhook's and the last one, plus whatever the cluster has
    assert pages == math.ceil(objects / 500)

    register_webhook("MutatingWebhookConfiguration", "dynatrace-webhook-e2e", [pod_hook(webhook, run_id)])
    pods = f"{NAMESPACES}/{last}/pods"
    wait(lambda: injected(dry_run_create(kube, pods, pod_body("probe", run_id))), what="/inject answers")
    assert injected(kube.create(pods, pod_body("last", run_id)))
    print(f"{SCALE} namespaces created in {created_s:.1f}s; webhook ready in {ready_s:.1f}s")
