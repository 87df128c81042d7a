"""``/validate`` behind a real ValidatingWebhookConfiguration: what kubectl users see.

Errors come back as the API server's Forbidden error carrying the webhook's numbered summary; warnings come
back in ``Warning`` response headers of a successful request.
"""

from __future__ import annotations

import base64
import re

import pytest

from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    DYNAKUBE_RULE,
    RUN_LABEL,
    create_with_warnings,
    dry_run_create,
    dynakube_body,
    dynakubes_path,
    exists,
    hook,
    wait,
)
from tests.validation import upstream_messages as up
from webhook.kube.api import ApiError

APP = "e2e.dynatrace.com/app"


def selector(run: str, app: str) -> dict:
    return {"matchLabels": {RUN_LABEL: run, APP: app}}


def denial(kube, path: str, body: dict, expect: str):
    """A dry-run create's denial carrying ``expect``, or None while the request is still admitted."""
    try:
        dry_run_create(kube, path, body)
    except ApiError as err:
        if expect in str(err):
            return err
        raise
    return None


@pytest.fixture()
def validating(kube, run_id, webhook_namespace, start_webhook, register_webhook):
    """The webhook and a configuration sending DynaKube CREATE/UPDATE in the run's namespace to /validate.

    failurePolicy Fail: a webhook the API server cannot call fails the request, so an admitted DynaKube
    below was admitted by the webhook. The namespaceSelector keeps every other namespace out.
    """
    webhook = start_webhook()
    register_webhook(
        "ValidatingWebhookConfiguration",
        "dynatrace-webhook-e2e-validate",
        [
            hook(
                "webhook.dynakube.dynatrace.com",
                webhook.url("/validate"),
                [DYNAKUBE_RULE],
                ca_pem=webhook.ca.cert_pem,
                namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": webhook_namespace}},
                mutating=False,
            )
        ],
    )
    return webhook


def invalid_dynakube(name: str, namespace: str, run: str) -> dict:
    """Two errors: the example apiUrl, and a name that is no DNS-1035 label (the API server accepts the dot of
    a DNS subdomain). Not two OneAgent modes: like upstream, /validate reads a v1beta2 object converted to
    v1beta3, which keeps one mode."""
    body = dynakube_body(name, namespace, run, selector=selector(run, "bad"))
    body["spec"]["apiUrl"] = "https://ENVIRONMENTID.live.dynatrace.com/api"
    return body


def test_invalid_dynakube_is_denied_with_the_error_summary(
    kube, run_id, cleanup, webhook_namespace, validating
):
    path = dynakubes_path(webhook_namespace)
    name = f"bad.{run_id}"
    body = invalid_dynakube(name, webhook_namespace, run_id)
    wait(
        lambda: denial(kube, path, body, "error(s) found in the DynaKube"),
        what="the API server calling /validate",
    )

    cleanup.add(f"{path}/{name}")  # in case it is admitted after all
    with pytest.raises(ApiError) as caught:
        kube.create(path, body)
    err = caught.value
    assert err.status == 403, err
    message = str(err)
    assert "webhook.dynakube.dynatrace.com" in message  # the API server names the webhook that denied
    assert "2 error(s) found in the DynaKube" in message, message
    assert f" 1. {up.E8.splitlines()[0]}" in message, message  # upstream's words, in upstream's order
    assert f" 2. {up.E21.splitlines()[0]}" in message, message
    assert not exists(kube, f"{path}/{name}")


def test_warnings_reach_the_client_in_warning_headers(kube, run_id, cleanup, webhook_namespace, validating):
    path = dynakubes_path(webhook_namespace)
    name = f"warned-{run_id}"
    body = dynakube_body(
        name,
        webhook_namespace,
        run_id,
        selector=selector(run_id, "warned"),
        annotations={
            "feature.dynatrace.com/e2e-unknown-flag": "true",
            "feature.dynatrace.com/oneagent-ignore-proxy": "true",
        },
    )
    # wait with an invalid twin: a denial proves the configuration is in use
    wait(
        lambda: denial(
            kube, path, invalid_dynakube(f"probe-{run_id}", webhook_namespace, run_id), "error(s) found"
        ),
        what="the API server calling /validate",
    )

    cleanup.add(f"{path}/{name}")
    created, warnings = create_with_warnings(kube, path, body)
    assert created["metadata"]["name"] == name
    assert any(
        w.startswith("Unknown feature flags in metadata.annotations: feature.dynatrace.com/e2e-unknown-flag")
        for w in warnings
    ), warnings
    assert up.M_W4 % "feature.dynatrace.com/oneagent-ignore-proxy" in warnings, warnings
    assert exists(kube, f"{path}/{name}")

    # UPDATE goes through /validate too: the tenant in apiUrl is immutable
    with pytest.raises(ApiError) as caught:
        kube.patch(f"{path}/{name}", {"spec": {"apiUrl": "https://zyx98765.live.dynatrace.com/api"}})
    assert caught.value.status == 403
    assert "1 error(s) found in the DynaKube" in str(caught.value)
    assert up.U1 in str(caught.value)
    assert kube.get(f"{path}/{name}")["spec"]["apiUrl"] == body["spec"]["apiUrl"]


def test_second_dynakube_selecting_a_namespace_is_denied(
    kube, run_id, cleanup, webhook_namespace, validating
):
    path = dynakubes_path(webhook_namespace)
    shared = f"app-shared-{run_id}"
    create_namespace(kube, cleanup, shared, run_id, **{APP: "shared"})
    first = f"first-{run_id}"
    cleanup.create(path, dynakube_body(first, webhook_namespace, run_id, selector=selector(run_id, "shared")))

    # selects every namespace of the run, so the shared one too; denied once the webhook's cache holds
    # the namespace and the first DynaKube (both arrive by watch)
    second = dynakube_body(
        f"second-{run_id}", webhook_namespace, run_id, selector={"matchLabels": {RUN_LABEL: run_id}}
    )
    conflict = up.M17.splitlines()[0]
    err = wait(
        lambda: denial(kube, path, second, conflict),
        timeout=30,
        what="the namespace conflict to be seen by /validate",
    )
    assert err.status == 403
    assert f"Namespaces selected by more than one DynaKube: {shared}" in str(err), err
    # both are cloudNativeFullStack without a nodeSelector: upstream also reports the node conflict
    assert f"Conflicting DynaKubes: {first}" in str(err), err
    cleanup.add(f"{path}/second-{run_id}")
    with pytest.raises(ApiError, match="2 error\\(s\\) found in the DynaKube"):
        kube.create(path, second)


def test_token_and_cluster_version_warnings_from_the_cache(
    kube, run_id, cleanup, webhook_namespace, validating
):
    """v1.10.2's warnings that read the tokens Secret and the cluster's version: the Secret's key names and its
    platform token come from the webhook's Secret cache, the minor version from its background read of
    ``/version`` (logged once read)."""
    name = f"tok-{run_id}"
    path = f"/apis/dynatrace.com/v1beta6/namespaces/{webhook_namespace}/dynakubes"
    tokens = {"apiToken": "dt0s16.E2E.platform", "paasToken": "dt0c01.E2E.paas"}
    cleanup.create(
        f"/api/v1/namespaces/{webhook_namespace}/secrets",
        {
            "metadata": {"name": name, "labels": {RUN_LABEL: run_id}},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in tokens.items()},
        },
    )
    body = {
        "apiVersion": "dynatrace.com/v1beta6",
        "kind": "DynaKube",
        "metadata": {
            "name": name,
            "namespace": webhook_namespace,
            "labels": {RUN_LABEL: run_id},
            "annotations": {"feature.dynatrace.com/use-public-registry": "true"},
        },
        "spec": {
            "apiUrl": "https://abc12345.live.dynatrace.com/api",
            "activeGate": {
                "capabilities": ["routing"],
                "resources": {"limits": {"memory": "1Gi"}},
                "rollingUpdate": {"maxUnavailable": 1},
            },
        },
    }
    minor = int(re.findall(r"\d+", kube.get("/version")["minor"])[0])  # "36", or a provider's "33+"
    wait(
        lambda: f"Kubernetes minor version {minor}" in validating.log.read_text(),
        what="the webhook reading the cluster's version",
    )
    # the Secret reaches the cache through its watch: a dry run says when
    wait(
        lambda: up.PAAS_TOKEN_IGNORED in create_with_warnings(kube, path, body, dry_run=True)[1],
        what="the tokens Secret in the webhook's cache",
    )
    cleanup.add(f"{path}/{name}")
    created, warnings = create_with_warnings(kube, path, body)
    assert created["metadata"]["name"] == name
    assert up.PAAS_TOKEN_IGNORED in warnings, warnings
    assert up.PUBLIC_REGISTRY_FLAG_IGNORED in warnings, warnings
    assert (up.ROLLING_UPDATE_OLD_KUBERNETES in warnings) is (minor < 35), (minor, warnings)
