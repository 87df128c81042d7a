"""``/label-ns`` behind a real MutatingWebhookConfiguration: namespaces get (and lose) the DynaKube instance
label on CREATE and UPDATE; a namespace two DynaKubes select is refused.

The configuration's objectSelector matches the run's label only, so the API server sends this webhook the
namespaces this test creates and nothing else in the cluster.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    INSTANCE_LABEL,
    NAMESPACE_RULE,
    NAMESPACES,
    RUN_LABEL,
    dry_run_create,
    dynakube_body,
    dynakubes_path,
    exists,
    hook,
    labels_of,
    namespace_body,
    wait,
)
from webhook.kube.api import ApiError

APP = "e2e.dynatrace.com/app"
SHARED = "e2e.dynatrace.com/shared"
UPSTREAM_CONFLICT = (
    "namespace matches two or more DynaKubes which is unsupported. "
    "refine the labels on your namespace metadata or DynaKube/CodeModules specification"
)


def test_namespaces_are_labelled_for_their_dynakube(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    alpha, beta = f"alpha-{run_id}", f"beta-{run_id}"
    path = dynakubes_path(webhook_namespace)
    cleanup.create(
        path,
        dynakube_body(
            alpha, webhook_namespace, run_id, selector={"matchLabels": {RUN_LABEL: run_id, APP: "alpha"}}
        ),
    )
    cleanup.create(
        path,
        dynakube_body(
            beta,
            webhook_namespace,
            run_id,
            selector={
                "matchExpressions": [
                    {"key": RUN_LABEL, "operator": "In", "values": [run_id]},
                    {"key": SHARED, "operator": "Exists"},
                ]
            },
        ),
    )
    webhook = start_webhook()  # ready: its cache holds both DynaKubes
    register_webhook(
        "MutatingWebhookConfiguration",
        "dynatrace-webhook-e2e-label-ns",
        [
            hook(
                "webhook.ns.dynatrace.com",
                webhook.url("/label-ns"),
                [NAMESPACE_RULE],
                ca_pem=webhook.ca.cert_pem,
                object_selector={"matchLabels": {RUN_LABEL: run_id}},
            )
        ],
    )
    wait(
        lambda: labels_of(
            dry_run_create(kube, NAMESPACES, namespace_body(f"probe-{run_id}", run_id, **{APP: "alpha"}))
        ).get(INSTANCE_LABEL),
        what="the API server calling /label-ns",
    )

    # CREATE: selected by alpha only
    create_namespace(kube, cleanup, f"app-alpha-{run_id}", run_id, **{APP: "alpha"})
    assert labels_of(kube.get(f"{NAMESPACES}/app-alpha-{run_id}")).get(INSTANCE_LABEL) == alpha

    # CREATE: selected by alpha and beta -> refused with upstream's message
    both = f"app-both-{run_id}"
    with pytest.raises(ApiError) as caught:
        cleanup.create(NAMESPACES, namespace_body(both, run_id, **{APP: "alpha", SHARED: "yes"}))
    assert caught.value.status == 400, caught.value
    assert UPSTREAM_CONFLICT in str(caught.value), caught.value
    assert f"{alpha}, {beta}" in str(caught.value)
    assert not exists(kube, f"{NAMESPACES}/{both}")

    # UPDATE: labels change -> the instance label follows, and goes when nothing selects the namespace
    plain = f"app-plain-{run_id}"
    create_namespace(kube, cleanup, plain, run_id)
    assert INSTANCE_LABEL not in labels_of(kube.get(f"{NAMESPACES}/{plain}"))
    updated = kube.patch(f"{NAMESPACES}/{plain}", {"metadata": {"labels": {SHARED: "yes"}}})
    assert labels_of(updated).get(INSTANCE_LABEL) == beta
    updated = kube.patch(f"{NAMESPACES}/{plain}", {"metadata": {"labels": {SHARED: None}}})
    assert INSTANCE_LABEL not in labels_of(updated), labels_of(updated)
