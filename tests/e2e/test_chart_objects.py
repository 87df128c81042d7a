"""The Helm chart's objects against a real API server, and the permissions its RBAC really grants.

tests/charts/test_chart.py validates the renders offline against the OpenAPI schema; the API server is the final
word (defaulting, cross-field validation, admission, feature gates, CRD structural-schema rules). Here:

1. every object of the default render (per-run release and namespace) is server-side applied as a dry run
   with strict field validation: nothing is stored, but an unknown, duplicate or invalid field is an error;
2. the ServiceAccount, RBAC objects and webhook configurations are applied for real (the configurations with
   an objectSelector no object matches: no Deployment runs, nothing must be sent to their Service), and the
   stored configurations keep what the chart rendered;
3. SubjectAccessReviews show what the ServiceAccount may and may not do.
"""

from __future__ import annotations

import contextlib

from tests.e2e.chart import (
    APPLIED_FOR_REAL,
    CERT_SECRET,
    WEBHOOK_CONFIGS,
    apply_rbac,
    never_called,
    object_path,
    render,
)
from tests.e2e.helpers import apply, can_i, wait
from webhook.kube.api import ApiError


def test_api_server_accepts_chart_objects_and_rbac_grants_what_the_webhook_needs(
    kube, run_id, cleanup, webhook_namespace
):
    ns = webhook_namespace
    docs = render(f"e2e-{run_id}", ns)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ServiceAccount", *APPLIED_FOR_REAL, *WEBHOOK_CONFIGS} <= kinds, kinds

    # 1. every object, as rendered: a dry run stores nothing (the CRD of the cluster stays as it is)
    rejected = {}
    for obj in docs:
        try:
            apply(kube, object_path(obj, ns), obj, dry_run=True)
        except ApiError as err:
            rejected[f"{obj['kind']}/{obj['metadata']['name']}"] = str(err)
    assert not rejected, rejected

    # 2. RBAC and webhook configurations for real, deleted at teardown (namespaced ones go with the namespace)
    apply_rbac(kube, cleanup, docs, ns)
    for obj in docs:
        if obj["kind"] in WEBHOOK_CONFIGS:
            sent = never_called(obj, run_id)
            stored = apply(kube, cleanup.add(object_path(obj, ns)), sent)
            for rendered, kept in zip(sent["webhooks"], stored["webhooks"], strict=True):
                for key, value in rendered.items():
                    assert kept.get(key) == value, f"{obj['kind']} webhook {rendered['name']}: {key} changed"
                assert "caBundle" not in kept["clientConfig"]  # self-managed: the webhook writes it

    # 3. what the ServiceAccount may do
    (account,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    (fullname,) = [d["metadata"]["name"] for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
    user = f"system:serviceaccount:{ns}:{account}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    admission = "admissionregistration.k8s.io"
    allowed: list[tuple[str, str, dict[str, str]]] = [
        ("list", "dynakubes", {"group": "dynatrace.com", "namespace": ns}),
        ("watch", "dynakubes", {"group": "dynatrace.com", "namespace": ns}),
        ("list", "namespaces", {}),
        ("watch", "namespaces", {}),
        ("create", "events", {"group": "events.k8s.io", "namespace": ns}),
        # features.events (default on): Events on the owners of skipped pods, in their namespaces
        ("create", "events", {"group": "events.k8s.io", "namespace": "default"}),
        ("patch", "events", {"group": "events.k8s.io", "namespace": "default"}),
        # the cache of the namespace's Secrets /validate reads spec.proxy.valueFrom from
        ("list", "secrets", {"namespace": ns}),
        ("watch", "secrets", {"namespace": ns}),
        ("get", "secrets", {"namespace": ns, "name": CERT_SECRET}),
        ("update", "secrets", {"namespace": ns, "name": CERT_SECRET}),
        ("create", "secrets", {"namespace": ns}),
        # the init Secret cache (all namespaces, a list+watch per name) and features.initSecrets (default on),
        # by name
        ("list", "secrets", {"name": "dynatrace-dynakube-config"}),
        ("watch", "secrets", {"name": "dynatrace-metadata-enrichment-endpoint"}),
        ("list", "secrets", {"namespace": "default", "name": "dynatrace-metadata-enrichment-endpoint"}),
        ("create", "secrets", {"namespace": "default"}),
        ("update", "secrets", {"namespace": "default", "name": "dynatrace-dynakube-config"}),
        ("delete", "secrets", {"namespace": "default", "name": "dynatrace-metadata-enrichment-endpoint"}),
        ("list", "replicasets", {"group": "apps"}),
        ("watch", "jobs", {"group": "batch"}),
        ("list", "configmaps", {"namespace": ns}),
        ("get", "mutatingwebhookconfigurations", {"group": admission, "name": fullname}),
        ("patch", "mutatingwebhookconfigurations", {"group": admission, "name": fullname}),
        ("patch", "validatingwebhookconfigurations", {"group": admission, "name": fullname}),
        # features.reinject (default on): pods' metadata, namespaces' managedFields, restarts
        ("list", "pods", {"namespace": "default"}),
        ("get", "namespaces", {}),
        ("get", "replicasets", {"group": "apps", "namespace": "default"}),
        ("patch", "deployments", {"group": "apps", "namespace": "default"}),
    ]
    denied: list[tuple[str, str, dict[str, str]]] = [
        ("delete", "secrets", {"namespace": ns, "name": CERT_SECRET}),
        ("get", "secrets", {"namespace": ns, "name": "another-secret"}),
        # no Secret outside the release namespace but the init Secrets, and those by name only
        ("list", "secrets", {}),
        ("watch", "secrets", {}),
        ("list", "secrets", {"namespace": "default"}),
        ("watch", "secrets", {"namespace": "default"}),
        ("list", "secrets", {"name": "another-secret"}),
        ("get", "secrets", {"namespace": "default", "name": "dynatrace-dynakube-config"}),
        ("update", "secrets", {"namespace": "default", "name": "another-secret"}),
        ("delete", "secrets", {"namespace": "default", "name": "another-secret"}),
        ("list", "configmaps", {"namespace": "default"}),
        ("list", "dynakubes", {"group": "dynatrace.com", "namespace": "default"}),
        ("update", "dynakubes", {"group": "dynatrace.com", "namespace": ns}),
        ("patch", "namespaces", {}),  # only with features.relabelNamespaces
        ("create", "deployments", {"group": "apps", "namespace": ns}),
        ("patch", "mutatingwebhookconfigurations", {"group": admission, "name": "another-webhook"}),
        ("create", "pods", {"namespace": ns}),
        ("create", "events", {"namespace": "default"}),  # core Events: all are written on events.k8s.io
    ]

    def check(cases: list[tuple[str, str, dict[str, str]]], want: bool) -> list[str]:
        return [
            f"{verb} {resource} {extra}"
            for verb, resource, extra in cases
            if can_i(kube, user, groups, verb, resource, **extra) is not want
        ]

    # the RBAC authorizer reads roles from its informers: grants show up a moment after the apply
    with contextlib.suppress(AssertionError):
        wait(lambda: not check(allowed, True), timeout=30, what=f"the grants of {user}")
    missing = check(allowed, True)
    assert not missing, f"{user} may not do what the webhook needs: {missing}"
    assert not check(denied, False), f"{user} may do more than the webhook needs"
