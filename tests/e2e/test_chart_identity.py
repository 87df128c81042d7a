"""The webhook running as the chart's ServiceAccount: what the chart's RBAC grants is enough for what the webhook
really does, not only for a list of permissions written down (test_chart_objects.py asks SubjectAccessReviews).

The chart's ServiceAccount and roles are applied for real, and so are its webhook configurations (with an
objectSelector nothing matches: their Service cannot be reached here). The webhook gets a token of that
ServiceAccount (TokenRequest) and starts the way the chart's Deployment starts it, self-managed certificates
included: it lists and watches DynaKubes and namespaces, creates its certificate Secret, writes the caBundle of
the chart's configurations and, behind a configuration of the test's own, records an Event for a pod it
admits without OneAgent. A request the roles do not allow shows up as a 403 in its log and fails the test.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from tests.e2e.chart import CERT_SECRET, WEBHOOK_CONFIGS, apply_rbac, never_called, object_path, render
from tests.e2e.helpers import (
    INSTANCE_LABEL,
    NAMESPACES,
    POD_RULE,
    REASON,
    RUN_LABEL,
    annotations_of,
    apply,
    can_i,
    dry_run_create,
    hook,
    pod_body,
    wait,
)
from webhook.kubeapi import list_items

ADMISSION_GROUP = "admissionregistration.k8s.io"


def token_kubeconfig(kube, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig for a ServiceAccount: the cluster of KUBECONFIG (its current context), a bound token from
    the TokenRequest API (one hour)."""
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    token = kube.create(f"{NAMESPACES}/{namespace}/serviceaccounts/{account}/token", request)["status"][
        "token"
    ]
    source = Path(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    config = yaml.safe_load(source.read_text())
    contexts = {c["name"]: c["context"] for c in config["contexts"]}
    context = contexts.get(config.get("current-context")) or next(iter(contexts.values()))
    (cluster,) = [c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"]]
    if "certificate-authority" in cluster:  # a relative file path would not resolve from elsewhere
        cluster = {**cluster, "certificate-authority": str(source.parent / cluster["certificate-authority"])}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "e2e", "cluster": cluster}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": account}}],
                "current-context": "e2e",
            }
        )
    )
    return path


def test_webhook_runs_with_the_chart_rbac_alone(
    kube,
    run_id,
    cleanup,
    webhook_namespace,
    webhook_host,
    namespace,
    dynakube,
    start_webhook,
    register_webhook,
    tmp_path,
):
    ns = webhook_namespace
    docs = render(f"e2e-{run_id}", ns)
    apply_rbac(kube, cleanup, docs, ns)
    for obj in docs:
        if obj["kind"] in WEBHOOK_CONFIGS:
            apply(kube, cleanup.add(object_path(obj, ns)), never_called(obj, run_id))
    (account,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    (fullname,) = [d["metadata"]["name"] for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
    secret = f"{NAMESPACES}/{ns}/secrets/{CERT_SECRET}"
    cleanup.add(secret)

    pending = dynakube(
        "pending", selector={"matchLabels": {RUN_LABEL: run_id, "e2e.dynatrace.com/app": "x"}}, hosts=[]
    )
    app = namespace("app", **{INSTANCE_LABEL: pending["metadata"]["name"], "e2e.dynatrace.com/app": "x"})
    kubeconfig = token_kubeconfig(kube, ns, account, tmp_path / "chart-sa.kubeconfig")

    # RBAC grants reach the authorizer a moment after the apply: wait for them, so that a 403 the webhook
    # meets afterwards is a permission the chart lacks
    user = f"system:serviceaccount:{ns}:{account}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    wait(
        lambda: (
            can_i(kube, user, groups, "watch", "namespaces")
            and can_i(kube, user, groups, "create", "secrets", namespace=ns)
            and can_i(kube, user, groups, "create", "events", namespace=ns)
            and can_i(
                kube,
                user,
                groups,
                "patch",
                "validatingwebhookconfigurations",
                group=ADMISSION_GROUP,
                name=fullname,
            )
        ),
        what=f"the chart's grants of {user} in effect",
    )
    webhook = start_webhook(
        "--kubeconfig",
        str(kubeconfig),
        "--cert-secret-name",
        CERT_SECRET,
        "--cert-extra-san",
        webhook_host,
        "--service-name",
        fullname,
        "--mutating-webhook-config",
        fullname,
        "--validating-webhook-config",
        fullname,
        self_managed=True,
    )  # ready: cache synced as the ServiceAccount, Secret created, caBundles of the chart's configurations written
    stored = kube.get(secret)
    ca_pem = base64.b64decode(stored["data"]["ca.crt"])
    for obj in docs:
        if obj["kind"] in WEBHOOK_CONFIGS:
            bundles = [
                w["clientConfig"].get("caBundle") or "" for w in kube.get(object_path(obj, ns))["webhooks"]
            ]
            assert all(ca_pem.strip() in base64.b64decode(b) for b in bundles), (obj["kind"], bundles)

    register_webhook(
        "MutatingWebhookConfiguration",
        "dynatrace-webhook-e2e-chart-sa",
        [
            hook(
                "webhook.pod.dynatrace.com",
                webhook.url("/inject"),
                [POD_RULE],
                ca_pem=ca_pem,
                failure_policy="Ignore",
                namespace_selector={"matchLabels": {RUN_LABEL: run_id}},
            )
        ],
    )
    pods = f"{NAMESPACES}/{app}/pods"
    wait(
        lambda: (
            annotations_of(dry_run_create(kube, pods, pod_body("probe", run_id))).get(REASON)
            == "EmptyConnectionInfo"
        ),
        what="the API server calling /inject",
    )
    kube.create(pods, pod_body("skipped", run_id))

    def skip_event() -> list[dict]:
        items = list_items(kube, f"{NAMESPACES}/{ns}/events")
        return [
            e
            for e in items
            if e.get("reason") == "OneAgentInjectionSkipped"
            and (e.get("involvedObject") or {}).get("name") == pending["metadata"]["name"]
        ]

    wait(skip_event, what="the skip Event, written as the chart's ServiceAccount")
    forbidden = [
        line
        for line in webhook.log.read_text().splitlines()
        if "HTTP 403" in line or "forbidden" in line.lower()
    ]
    assert not forbidden, forbidden
