"""``--relabel-namespaces`` against a real API server: namespaces that already exist follow their DynaKube's
namespaceSelector as it changes, through the webhook's merge PATCHes (with the cached resourceVersion as a
precondition), without the namespaces being touched by anybody else.

The relabeler works on every namespace of the cluster: where namespaces this session did not create carry
the instance label (a cluster with an operator of its own), it would remove their labels, so the test skips.
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import INSTANCE_LABEL, NAMESPACES, RUN_LABEL, dynakubes_path, labels_of, wait
from webhook.kube.api import list_items

APP = "e2e.dynatrace.com/app"


def test_existing_namespaces_follow_the_dynakube_selector(
    kube, session_run, run_id, webhook_namespace, namespace, dynakube, start_webhook
):
    labelled = list_items(kube, NAMESPACES, label_selector=INSTANCE_LABEL)
    others = [
        n["metadata"]["name"] for n in labelled if not labels_of(n).get(RUN_LABEL, "").startswith(session_run)
    ]
    if others:
        pytest.skip(f"--relabel-namespaces would change namespaces this session did not create: {others[:5]}")
    first = namespace("first", **{APP: "first"})
    second = namespace("second", **{APP: "second"})
    start_webhook("--relabel-namespaces")

    def instance(name: str) -> str | None:
        return labels_of(kube.get(f"{NAMESPACES}/{name}")).get(INSTANCE_LABEL)

    # a DynaKube appears: the namespace it selects is labelled, the other one is not
    name = dynakube("relabel", selector={"matchLabels": {RUN_LABEL: run_id, APP: "first"}})["metadata"][
        "name"
    ]
    wait(lambda: instance(first) == name, what=f"{first} labelled for {name}")
    assert instance(second) is None

    # its selector changes: the label moves to the namespace it selects now
    kube.patch(
        f"{dynakubes_path(webhook_namespace)}/{name}",
        {
            "spec": {
                "oneAgent": {"cloudNativeFullStack": {"namespaceSelector": {"matchLabels": {APP: "second"}}}}
            }
        },
    )
    wait(lambda: instance(second) == name and instance(first) is None, what=f"the label moved to {second}")
    assert labels_of(kube.get(f"{NAMESPACES}/{first}")).get(APP) == "first"  # other labels untouched

    # the DynaKube goes: its label goes too
    kube.delete(f"{dynakubes_path(webhook_namespace)}/{name}")
    wait(lambda: instance(second) is None, what=f"the label removed from {second}")
