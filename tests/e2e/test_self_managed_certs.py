"""``--cert-mode self-managed`` against a real API server: the webhook creates its CA and serving certificate
in a Secret, writes the caBundle of its webhook configurations itself, and the API server then calls it.

The configurations are created first, without a caBundle (as the Helm chart renders them in this mode); the
webhook finds them by name (``--mutating-webhook-config``/``--validating-webhook-config``).
"""

from __future__ import annotations

import base64
import socket
import ssl

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.e2e.conftest import create_namespace
from tests.e2e.helpers import (
    DYNAKUBE_RULE,
    HOSTS,
    INSTANCE_LABEL,
    MWC,
    POD_RULE,
    RUN_LABEL,
    VWC,
    annotations_of,
    dry_run_create,
    dynakube_body,
    dynakube_status,
    dynakubes_path,
    free_port,
    hook,
    is_injected,
    labels_of,
    pod_body,
    wait,
)
from tests.e2e.tokens import create_tokens
from tests.validation import upstream_messages as up
from webhook.kube.api import ApiError
from webhook.tls import certs

CONFIG = "dynatrace-webhook-e2e-self-managed"


def ca_bundles(kube, path: str) -> list[bytes]:
    """The decoded caBundle of every webhook of a configuration (b"" where there is none)."""
    return [
        base64.b64decode((w.get("clientConfig") or {}).get("caBundle") or "")
        for w in kube.get(path).get("webhooks") or []
    ]


def test_webhook_writes_its_ca_bundle_and_is_called_with_it(
    kube, run_id, cleanup, webhook_namespace, webhook_host, start_webhook, register_webhook
):
    ns = webhook_namespace
    dynakube = f"ready-{run_id}"
    create_tokens(cleanup, ns, dynakube, run_id)  # the init Secret is generated from it
    cleanup.create(
        dynakubes_path(ns), dynakube_body(dynakube, ns, run_id, selector={"matchLabels": {RUN_LABEL: run_id}})
    )
    kube.patch(f"{dynakubes_path(ns)}/{dynakube}/status", dynakube_status(HOSTS))
    app = f"app-{run_id}"
    create_namespace(kube, cleanup, app, run_id, **{INSTANCE_LABEL: dynakube})

    port = free_port()
    url = f"https://{webhook_host}:{port}"
    # failurePolicy Ignore: until the caBundle is written the API server cannot verify the webhook
    mutating = register_webhook(
        "MutatingWebhookConfiguration",
        CONFIG,
        [
            hook(
                "webhook.pod.dynatrace.com",
                f"{url}/inject",
                [POD_RULE],
                ca_pem=None,
                failure_policy="Ignore",
                namespace_selector={"matchLabels": {RUN_LABEL: run_id}},
            )
        ],
    )
    validating = register_webhook(
        "ValidatingWebhookConfiguration",
        CONFIG,
        [
            hook(
                "webhook.dynakube.dynatrace.com",
                f"{url}/validate",
                [DYNAKUBE_RULE],
                ca_pem=None,
                failure_policy="Ignore",
                namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": ns}},
                mutating=False,
            )
        ],
    )
    assert ca_bundles(kube, f"{MWC}/{mutating}") == [b""]

    secret_name = f"e2e-certs-{run_id}"
    cleanup.add(f"/api/v1/namespaces/{ns}/secrets/{secret_name}")
    start_webhook(
        "--cert-extra-san",
        webhook_host,
        "--cert-secret-name",
        secret_name,
        "--mutating-webhook-config",
        mutating,
        "--validating-webhook-config",
        validating,
        self_managed=True,
        port=port,
    )  # ready: the serving certificate is installed, which happens only once the caBundles trust its CA

    secret = kube.get(f"/api/v1/namespaces/{ns}/secrets/{secret_name}")
    assert labels_of(secret).get("app.kubernetes.io/managed-by") == "dynatrace-webhook"
    ca_pem = base64.b64decode(secret["data"]["ca.crt"])
    ca = x509.load_pem_x509_certificate(ca_pem)
    leaf = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    assert certs.issued_by(leaf, ca)
    assert webhook_host in certs.san_names(leaf)
    for path in (f"{MWC}/{mutating}", f"{VWC}/{validating}"):
        bundles = ca_bundles(kube, path)
        assert bundles and all(
            certs.fingerprint(ca) in {certs.fingerprint(c) for c in x509.load_pem_x509_certificates(b)}
            for b in bundles
        ), path

    # what the API server does: verify the served certificate against the caBundle, by IP address
    context = ssl.create_default_context(cadata=ca_pem.decode())
    with (
        socket.create_connection((webhook_host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=webhook_host) as tls,
    ):
        served = tls.getpeercert(binary_form=True)
    assert served == leaf.public_bytes(Encoding.DER)

    # and the API server calls it: a pod is injected ...
    pods = f"/api/v1/namespaces/{app}/pods"
    wait(
        lambda: is_injected(dry_run_create(kube, pods, pod_body("probe", run_id))),
        what="the API server calling /inject with the written caBundle",
    )
    pod = kube.create(pods, pod_body("injected", run_id))
    assert is_injected(pod), annotations_of(pod)

    # ... and an invalid DynaKube denied (failurePolicy Ignore: only a webhook that was reached can deny)
    invalid = dynakube_body(
        f"bad-{run_id}", ns, run_id, selector={"matchLabels": {RUN_LABEL: run_id, "x": "y"}}
    )
    invalid["spec"]["apiUrl"] = ""

    def denied() -> bool:
        try:
            dry_run_create(kube, dynakubes_path(ns), invalid)
        except ApiError as err:
            assert "error(s) found in the DynaKube" in str(err), err
            assert up.E8.splitlines()[0] in str(err), err  # the missing apiUrl, in upstream's words
            return True
        return False

    wait(denied, what="the API server calling /validate with the written caBundle")
