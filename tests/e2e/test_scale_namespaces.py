"""A few thousand namespaces: the webhook's initial list (pages of it, where the cache lists in pages) holds
all of them, it gets ready, and it answers for the namespace that comes last in the API server's order.

``E2E_SCALE_NAMESPACES`` sets the count (3000). The namespaces are created and deleted concurrently; the
test runs after the rest of the tier (``e2e_last``), as the controller manager finalizes their deletion for a
while afterwards.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.e2e.helpers import (
    HOSTS,
    INSTANCE_LABEL,
    NAMESPACES,
    REASON,
    RUN_LABEL,
    annotations_of,
    dry_run_create,
    is_injected,
    namespace_body,
    pod_body,
    pod_hook,
    wait,
)
from webhook.kube.api import ApiError, list_items

COUNT = int(os.environ.get("E2E_SCALE_NAMESPACES", "3000"))


@pytest.mark.e2e_last
def test_webhook_lists_thousands_of_namespaces_and_answers_for_the_last(
    kube, run_id, cleanup, dynakube, start_webhook, register_webhook
):
    ready = dynakube("scale", selector={"matchLabels": {RUN_LABEL: run_id}}, hosts=HOSTS)["metadata"]["name"]
    names = [f"scale-{run_id}-{i:05d}" for i in range(COUNT)]  # the API server lists in name order
    started = time.monotonic()
    cleanup.create_many(NAMESPACES, [namespace_body(n, run_id, **{INSTANCE_LABEL: ready}) for n in names])
    created_in = time.monotonic() - started
    items = list_items(kube, NAMESPACES, label_selector=f"{RUN_LABEL}={run_id}")
    assert len([n for n in items if n["metadata"]["name"].startswith(f"scale-{run_id}-")]) == COUNT

    started = time.monotonic()
    webhook = start_webhook()  # ready: its cache holds every namespace
    ready_in = time.monotonic() - started
    register_webhook(
        "MutatingWebhookConfiguration", "dynatrace-webhook-e2e-scale", [pod_hook(webhook, run_id)]
    )

    def answers_for(namespace: str) -> bool:
        # the ServiceAccount admission plugin refuses pods until the namespace has its default ServiceAccount;
        # the controller manager has thousands to create, so the test creates this one (409: already there)
        try:
            kube.create(
                f"{NAMESPACES}/{namespace}/serviceaccounts",
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
            )
        except ApiError as err:
            if err.status != 409:
                raise
        pod = dry_run_create(kube, f"{NAMESPACES}/{namespace}/pods", pod_body("probe", run_id))
        # the namespace is known and mapped: injected, or (no init Secret in it yet) skipped for that reason
        return is_injected(pod) or annotations_of(pod).get(REASON) == "MissingInitSecret"

    started = time.monotonic()
    wait(lambda: answers_for(names[-1]), what=f"/inject answering for the last of {COUNT} namespaces")
    assert answers_for(names[0])
    answered_in = time.monotonic() - started
    print(
        f"{COUNT} namespaces created in {created_in:.1f}s; webhook ready {ready_in:.1f}s after its start; "
        f"/inject answered for the last and the first {answered_in:.1f}s later"
    )
