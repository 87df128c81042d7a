"""The init Secrets against a real API server: the initsecrets controller (on by default) creates
``dynatrace-dynakube-config`` in a namespace mapped to a DynaKube within seconds, labelled as its own, and
deletes it with the DynaKube; a pod created right after its namespace is injected, mounting a Secret that exists
(its admission created it on first need).
"""

from __future__ import annotations

import base64
import json
import time

from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    INSTANCE_LABEL,
    NAMESPACES,
    annotations_of,
    dry_run_create,
    dynakubes_path,
    exists,
    is_injected,
    namespace_body,
    pod_body,
    pod_hook,
    wait,
)
from tests.e2e.tokens import dynakube_with_tokens
from webhook.kube.api import ApiError

CONFIG = "dynatrace-dynakube-config"
MANAGED_BY = "app.kubernetes.io/managed-by"


def secret_path(namespace: str, name: str = CONFIG) -> str:
    return f"{NAMESPACES}/{namespace}/secrets/{name}"


def test_a_mapped_namespace_gets_the_secret_within_seconds(
    kube, run_id, cleanup, webhook_namespace, start_webhook
):
    name = f"secrets-{run_id}"
    dynakube_with_tokens(kube, cleanup, webhook_namespace, name, run_id)
    webhook = start_webhook()
    app = f"app-{run_id}"
    cleanup.create(NAMESPACES, namespace_body(app, run_id, **{INSTANCE_LABEL: name}))
    start = time.monotonic()
    wait(lambda: exists(kube, secret_path(app)), timeout=15, what=f"{CONFIG} in {app} (log: {webhook.log})")
    elapsed = time.monotonic() - start
    assert elapsed < 10, elapsed
    secret = kube.get(secret_path(app))
    labels = secret["metadata"]["labels"]
    assert labels[MANAGED_BY] == "dynatrace-webhook"
    assert labels["app.kubernetes.io/created-by"] == name
    assert secret["metadata"]["annotations"]["internal.operator.dynatrace.com/template-hash"].isdigit()
    config = json.loads(base64.b64decode(secret["data"]["config"]))
    assert (config["apiToken"], config["tenantUUID"], config["hasHost"]) == (
        "e2e-api-token",
        "abc12345",
        True,
    )

    # the DynaKube goes: so do the Secrets it made (contract §5.3)
    kube.delete(f"{dynakubes_path(webhook_namespace)}/{name}")
    wait(lambda: not exists(kube, secret_path(app)), timeout=15, what=f"{CONFIG} in {app} deleted")


def test_a_copy_someone_else_manages_is_left_alone(kube, run_id, cleanup, webhook_namespace, start_webhook):
    name = f"foreign-{run_id}"
    dynakube_with_tokens(kube, cleanup, webhook_namespace, name, run_id)
    app = f"app-{run_id}"
    create_namespace(kube, cleanup, app, run_id, **{INSTANCE_LABEL: name})
    operator_copy = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": CONFIG, "labels": {"app.kubernetes.io/component": "webhook"}},
        "data": {"config": base64.b64encode(b'{"apiToken":"from-the-operator"}').decode()},
    }
    kube.create(f"{NAMESPACES}/{app}/secrets", operator_copy)
    webhook = start_webhook()
    # a namespace mapped after the start is reconciled after every namespace the controller's first pass
    # queued, this one among them: once its Secret exists, the copy above has been looked at
    later = f"later-{run_id}"
    create_namespace(kube, cleanup, later, run_id, **{INSTANCE_LABEL: name})
    wait(
        lambda: exists(kube, secret_path(later)), timeout=30, what=f"{CONFIG} in {later} (log: {webhook.log})"
    )
    secret = kube.get(secret_path(app))
    assert MANAGED_BY not in secret["metadata"]["labels"], webhook.log.read_text()
    assert json.loads(base64.b64decode(secret["data"]["config"])) == {"apiToken": "from-the-operator"}


def test_the_first_pod_never_mounts_a_missing_secret(
    kube, run_id, cleanup, webhook_namespace, start_webhook, register_webhook
):
    name = f"race-{run_id}"
    dynakube_with_tokens(kube, cleanup, webhook_namespace, name, run_id)
    webhook = start_webhook()
    register_webhook(
        "MutatingWebhookConfiguration", "dynatrace-webhook-e2e-secrets", [pod_hook(webhook, run_id)]
    )
    probe_ns = f"probe-{run_id}"
    create_namespace(kube, cleanup, probe_ns, run_id, **{INSTANCE_LABEL: name})
    wait(
        lambda: annotations_of(
            dry_run_create(kube, f"{NAMESPACES}/{probe_ns}/pods", pod_body("probe", run_id))
        ),
        what="the API server calling /inject",
    )

    # a brand-new namespace and, as soon as the API server accepts pods there, the first pod
    app = f"app-{run_id}"
    cleanup.create(NAMESPACES, namespace_body(app, run_id, **{INSTANCE_LABEL: name}))
    pods = f"{NAMESPACES}/{app}/pods"
    deadline = time.monotonic() + 30
    while True:
        try:
            pod = kube.create(pods, pod_body("first", run_id))
            break
        except ApiError as err:  # the default ServiceAccount does not exist yet
            if time.monotonic() > deadline:
                raise
            assert err.status in (403, 404, 409, 500), err
            time.sleep(0.05)
    mounted = [
        v["secret"]["secretName"]
        for v in (pod["spec"].get("volumes") or [])
        if isinstance(v.get("secret"), dict)
    ]
    mounted = [s for s in mounted if s.startswith("dynatrace-")]
    created = pod["metadata"]["creationTimestamp"]
    for secret in mounted:
        assert exists(kube, secret_path(app, secret)), f"pod mounts {secret}, which does not exist"
        assert kube.get(secret_path(app, secret))["metadata"]["creationTimestamp"] <= created
    assert mounted == [CONFIG], f"{annotations_of(pod)} (log: {webhook.log.read_text()[-3000:]})"
    assert is_injected(pod)
    wait(lambda: exists(kube, secret_path(app)), timeout=15, what=f"{CONFIG} in {app} (log: {webhook.log})")
