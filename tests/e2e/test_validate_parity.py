"""``/validate`` parity with the Dynatrace Operator v1.4 through a real API server: upstream's words in the
denial, a proxy Secret read from the webhook's cache, an UPDATE, the modules flag, and EdgeConnects on both
served versions (v1alpha1 and v1alpha2).

The webhook runs with every module but the CSI driver (``--modules``), so a cloudNativeFullStack DynaKube is
denied and the others use hostMonitoring.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import (
    API_URL,
    CRD,
    DYNAKUBE_RULE,
    RUN_LABEL,
    create_with_warnings,
    delete_quietly,
    dry_run_create,
    dynakube_body,
    dynakubes_path,
    exists,
    hook,
    rule,
    wait,
)
from tests.validation import upstream_messages as up
from webhook.kube.api import ApiError, list_items
from webhook.validation import edgeconnect_v110

HERE = Path(__file__).parent
EDGECONNECT_CRD = "edgeconnects.dynatrace.com"
SSO_ENDPOINT = "https://sso.dynatrace.com/sso/oauth2/token"
EDGECONNECT_RULE = rule("dynatrace.com", "edgeconnects", ["CREATE", "UPDATE"], "Namespaced", version="*")
MODULES = {
    "csiDriver": False,
    "activeGate": True,
    "oneAgent": True,
    "extensions": True,
    "logMonitoring": True,
    "edgeConnect": True,
    "supportability": True,
    "kspm": True,
}


def summary(kind: str, *messages: str) -> str:
    return f"\n{len(messages)} error(s) found in the {kind}" + "".join(
        f"\n {i}. {m}" for i, m in enumerate(messages, 1)
    )


def denial_message(err: ApiError) -> str:
    """The webhook's message inside the API server's Forbidden error."""
    text = str(err)
    marker = "denied the request: "
    assert marker in text, text
    return text.split(marker, 1)[1]


def denied(kube, path: str, body: dict) -> ApiError | None:
    try:
        dry_run_create(kube, path, body)
    except ApiError as err:
        return err
    return None


@pytest.fixture(scope="module")
def edgeconnect_crd(kube) -> Iterator[None]:
    """The EdgeConnect CRD from edgeconnect-crd.yaml when the cluster has none; deleted at the end only when
    created here and no EdgeConnect is left."""
    path = f"{CRD}/{EDGECONNECT_CRD}"
    created = False
    if not exists(kube, path):
        kube.create(CRD, yaml.safe_load((HERE / "edgeconnect-crd.yaml").read_text()))
        created = True
    for version in ("v1alpha1", "v1alpha2"):
        wait(
            lambda version=version: any(
                r["name"] == "edgeconnects" for r in kube.get(f"/apis/dynatrace.com/{version}")["resources"]
            ),
            what=f"dynatrace.com/{version} edgeconnects served",
        )
    yield
    if created:
        items = list_items(kube, "/apis/dynatrace.com/v1alpha2/edgeconnects")
        if not items:
            delete_quietly(kube, path)


@pytest.fixture()
def parity(kube, run_id, webhook_namespace, start_webhook, register_webhook, edgeconnect_crd):
    webhook = start_webhook("--modules", json.dumps(MODULES))
    only_here = {"matchLabels": {"kubernetes.io/metadata.name": webhook_namespace}}
    register_webhook(
        "ValidatingWebhookConfiguration",
        "dynatrace-webhook-e2e-parity",
        [
            hook(
                "webhook.dynakube.dynatrace.com",
                webhook.url("/validate-dynatrace-com-v1beta3-dynakube"),
                [DYNAKUBE_RULE],
                ca_pem=webhook.ca.cert_pem,
                namespace_selector=only_here,
                mutating=False,
            ),
            hook(
                "webhook.edgeconnect.dynatrace.com",
                webhook.url("/validate-dynatrace-com-v1alpha2-edgeconnect"),
                [EDGECONNECT_RULE],
                ca_pem=webhook.ca.cert_pem,
                namespace_selector=only_here,
                mutating=False,
            ),
        ],
    )
    path = dynakubes_path(webhook_namespace)
    probe = dynakube_body(f"probe-{run_id}", webhook_namespace, run_id)  # cloudNativeFullStack: E1
    wait(lambda: denied(kube, path, probe), what="the API server calling /validate")
    return webhook


def host_monitoring(name: str, namespace: str, run: str, **spec) -> dict:
    body = dynakube_body(name, namespace, run, spec=spec)
    body["spec"]["oneAgent"] = {"hostMonitoring": {}}
    return body


def test_denial_in_upstreams_words(kube, run_id, webhook_namespace, parity):
    path = dynakubes_path(webhook_namespace)
    cnfs = dynakube_body(f"cnfs-{run_id}", webhook_namespace, run_id)
    err = denied(kube, path, cnfs)
    assert err is not None and err.status == 403, err
    assert denial_message(err) == summary("DynaKube", up.E1)

    body = host_monitoring(
        f"bad-{run_id}", webhook_namespace, run_id, proxy={"value": "http://u:p&s@proxy:3128"}
    )
    body["spec"]["oneAgent"]["hostMonitoring"]["version"] = "1.0"
    body["spec"]["apiUrl"] = "https://abc12345.apps.dynatrace.com/api"
    err = denied(kube, path, body)
    assert err is not None and err.status == 403, err
    assert denial_message(err) == summary("DynaKube", up.E7, up.E10, up.M14b)


def test_proxy_secret_from_the_cache(kube, run_id, cleanup, webhook_namespace, parity):
    secrets = f"/api/v1/namespaces/{webhook_namespace}/secrets"
    name = f"proxy-{run_id}"

    def secret(value: str) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "labels": {RUN_LABEL: run_id}},
            "data": {"proxy": base64.b64encode(value.encode()).decode()},
        }

    path = dynakubes_path(webhook_namespace)
    body = host_monitoring(f"px-{run_id}", webhook_namespace, run_id, proxy={"valueFrom": name})
    err = denied(kube, path, body)
    assert err is not None
    assert denial_message(err) == summary(
        "DynaKube", f'{up.M14c}: failed to get proxy from {name} secret: secrets "{name}" not found'
    )
    cleanup.create(secrets, secret("http://user:p&ss@proxy:3128"))
    wait(
        lambda: (
            (e := denied(kube, path, body)) is not None and denial_message(e) == summary("DynaKube", up.M14b)
        ),
        what="the Secret in the webhook's cache",
    )
    kube.replace(
        f"{secrets}/{name}",
        {**secret("http://user:pass@proxy:3128"), "metadata": kube.get(f"{secrets}/{name}")["metadata"]},
    )
    wait(lambda: denied(kube, path, body) is None, what="the changed Secret in the webhook's cache")


def test_update_and_warnings(kube, run_id, cleanup, webhook_namespace, parity):
    path = dynakubes_path(webhook_namespace)
    name = f"upd-{run_id}"
    body = host_monitoring(name, webhook_namespace, run_id)
    body["metadata"]["annotations"] = {"feature.dynatrace.com/oneagent-ignore-proxy": "true"}
    cleanup.add(f"{path}/{name}")
    created, warnings = create_with_warnings(kube, path, body)
    assert created["metadata"]["name"] == name
    assert warnings == [up.M_W4 % "feature.dynatrace.com/oneagent-ignore-proxy"]

    with pytest.raises(ApiError) as caught:
        kube.patch(f"{path}/{name}", {"spec": {"apiUrl": API_URL.replace("abc12345", "zyx98765")}})
    assert caught.value.status == 403
    assert denial_message(caught.value) == summary("DynaKube", up.U1)
    assert kube.get(f"{path}/{name}")["spec"]["apiUrl"] == API_URL
    # a change that keeps the apiUrl is admitted
    kube.patch(f"{path}/{name}", {"spec": {"networkZone": "eu-2"}})


@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
def test_edgeconnect(kube, run_id, cleanup, webhook_namespace, parity, version):
    path = f"/apis/dynatrace.com/{version}/namespaces/{webhook_namespace}/edgeconnects"
    name = f"ec-{version}-{run_id}"

    def edgeconnect(**spec) -> dict:
        base = {
            "apiServer": "abc12345.apps.dynatrace.com",
            "serviceAccountName": "dynatrace-edgeconnect",  # the real CRD's default (this minimal CRD has none)
            "oauth": {
                "clientSecret": "ec-client",
                "endpoint": SSO_ENDPOINT,
                "resource": "urn:dtenvironment:abc12345",
            },
        }
        return {
            "apiVersion": f"dynatrace.com/{version}",
            "kind": "EdgeConnect",
            "metadata": {"name": name, "namespace": webhook_namespace, "labels": {RUN_LABEL: run_id}},
            "spec": {**base, **spec},
        }

    # v1.10.2's checks for both versions: the port makes Go read a scheme; the suffix check passes
    bad = edgeconnect(apiServer="abc12345.apps.dynatrace.com:443", serviceAccountName="")
    err = wait(lambda: denied(kube, path, bad), what="the API server calling /validate for EdgeConnects")
    assert err.status == 403
    assert denial_message(err) == summary("EdgeConnect", edgeconnect_v110.PROTOCOL_IN_API_SERVER, up.C5)

    oauth = {"clientSecret": "ec-client", "endpoint": SSO_ENDPOINT, "resource": "r", "provisioner": True}
    cleanup.create(path, edgeconnect(oauth=oauth, hostPatterns=["*.internal.example.com"]))
    with pytest.raises(ApiError) as caught:
        kube.patch(
            f"{path}/{name}",
            {
                "spec": {
                    "hostPatterns": None,
                    "oauth": {"provisioner": False},
                    "kubernetesAutomation": {"enabled": True},
                }
            },
        )
    assert caught.value.status == 403
    assert denial_message(caught.value) == summary("EdgeConnect", up.C6)


def test_v1beta6_gets_the_v110_checks(kube, run_id, webhook_namespace, parity):
    """A v1beta6 DynaKube through the API server (the CRD stores v1beta6): v1.10.2's checks and words."""
    from webhook.validation import v110

    path = f"/apis/dynatrace.com/v1beta6/namespaces/{webhook_namespace}/dynakubes"

    def body(name: str, **spec) -> dict:
        return {
            "apiVersion": "dynatrace.com/v1beta6",
            "kind": "DynaKube",
            "metadata": {"name": f"{name}-{run_id}", "namespace": webhook_namespace},
            "spec": {"apiUrl": "https://abc12345.apps.dynatrace.com", **spec},
        }

    # a third-generation apiUrl without /api and an empty extensions section: fine for v1.10.2
    assert denied(kube, path, body("v6-ok", extensions={})) is None
    err = denied(kube, path, body("v6-bad", networkZone="a\tb"))
    assert err is not None and err.status == 403, err
    assert denial_message(err) == summary("DynaKube", v110.INVALID_NETWORK_ZONE)
