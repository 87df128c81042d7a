"""The webhook running as the chart's ServiceAccount: what the chart's RBAC grants is enough for what the webhook
really does, not only for a list of permissions written down (test_chart_objects.py asks SubjectAccessReviews).

The chart's ServiceAccount and roles are applied for real, and so are its webhook configurations (with an
objectSelector nothing matches: their Service cannot be reached here). The webhook gets a token of that
ServiceAccount (TokenRequest) and starts the way the chart's Deployment starts it, self-managed certificates
included: it lists and watches DynaKubes and namespaces, creates its certificate Secret, writes the caBundle of
the chart's configurations and, behind a configuration of the test's own, records an Event for a pod it
admits without OneAgent. A request the roles do not allow shows up as a 403 in its log and fails the test.

A second test shows the least privilege on Secrets: outside the release namespace the ServiceAccount reads the
two init Secrets by name only (the API server authorizes a list or watch with ``fieldSelector=metadata.name``
against ``resourceNames``), and that is enough for the webhook's init-Secret cache, its initsecrets controller
and its automatic reinjection, all on by default; a list of all Secrets, or of another namespace's, is 403.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from tests.e2e.chart import CERT_SECRET, WEBHOOK_CONFIGS, apply_rbac, never_called, object_path, render
from tests.e2e.helpers import (
    HOSTS,
    INIT_SECRETS,
    INSTANCE_LABEL,
    NAMESPACES,
    POD_RULE,
    REASON,
    RUN_LABEL,
    annotations_of,
    apply,
    can_i,
    create_operator_init_secrets,
    dry_run_create,
    exists,
    hook,
    is_injected,
    pod_body,
    pod_hook,
    wait,
    webhook_events,
)
from tests.e2e.tokens import create_tokens
from webhook.kube.api import ApiError
from webhook.kube.client import KubeApi, load_api_client

ADMISSION_GROUP = "admissionregistration.k8s.io"
APP = "e2e.dynatrace.com/app"


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
            and can_i(kube, user, groups, "create", "events", group="events.k8s.io", namespace=ns)
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
        return [
            e
            for e in webhook_events(kube, ns)
            if e.get("reason") == "OneAgentInjectionSkipped"
            and (e.get("regarding") or {}).get("name") == pending["metadata"]["name"]
        ]

    wait(skip_event, what="the skip Event, written as the chart's ServiceAccount")
    assert not forbidden_lines(webhook.log), forbidden_lines(webhook.log)


def forbidden_lines(log: Path) -> list[str]:
    return [
        line for line in log.read_text().splitlines() if "HTTP 403" in line or "forbidden" in line.lower()
    ]


def status_of(call) -> int:
    try:
        call()
    except ApiError as err:
        return err.status
    return 200


def test_outside_its_namespace_the_chart_reads_only_the_init_secrets_by_name(
    kube,
    run_id,
    cleanup,
    webhook_namespace,
    namespace,
    dynakube,
    start_webhook,
    register_webhook,
    tmp_path,
):
    ns = webhook_namespace
    docs = render(f"e2e-{run_id}", ns)  # default values: initSecrets, events and reinject on
    apply_rbac(kube, cleanup, docs, ns)
    (account,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    user = f"system:serviceaccount:{ns}:{account}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]

    # a DynaKube with complete connection info and its tokens Secret (the init Secrets are generated from it)
    ready = dynakube("ready", selector={"matchLabels": {RUN_LABEL: run_id, APP: "x"}}, hosts=HOSTS)
    dk_name = ready["metadata"]["name"]
    create_tokens(cleanup, ns, dk_name, run_id)
    # mapped before the webhook starts, the init Secrets there as an operator leaves them: the initial list
    early = namespace("early", **{INSTANCE_LABEL: dk_name, APP: "x"})
    create_operator_init_secrets(cleanup, early, run_id)
    kubeconfig = token_kubeconfig(kube, ns, account, tmp_path / "chart-sa.kubeconfig")
    wait(
        lambda: (
            all(
                can_i(kube, user, groups, verb, "secrets", name=name)
                for verb in ("list", "watch")
                for name in INIT_SECRETS
            )
            and can_i(kube, user, groups, "create", "secrets", namespace=early)
            and can_i(kube, user, groups, "list", "pods", namespace=early)
        ),
        what=f"the chart's grants of {user} in effect",
    )

    webhook = start_webhook("--kubeconfig", str(kubeconfig))  # ready: the init Secrets listed by name
    # a pod that never reached a webhook (none registered yet): automatic reinjection, on by default, finds it
    # in its first scan as the ServiceAccount (pods, namespaces, events)
    kube.create(f"{NAMESPACES}/{early}/pods", pod_body("unseen", run_id))
    register_webhook(
        "MutatingWebhookConfiguration", "dynatrace-webhook-e2e-chart-secrets", [pod_hook(webhook, run_id)]
    )

    # (1) its caches work under the chart's RBAC: a pod where the init Secrets exist is injected
    early_pods = f"{NAMESPACES}/{early}/pods"
    wait(lambda: is_injected(dry_run_create(kube, early_pods, pod_body("probe", run_id))), what="/inject")
    pod = kube.create(early_pods, pod_body("app", run_id))
    assert is_injected(pod), annotations_of(pod)
    mounted = {v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v}
    assert "dynatrace-dynakube-config" in mounted, mounted

    # a namespace mapped now: the initsecrets controller creates its Secret as the ServiceAccount, the watch by
    # name brings it into the cache, and the next pod there is injected
    late = namespace("late", **{INSTANCE_LABEL: dk_name, APP: "x"})
    cleanup.add(f"{NAMESPACES}/{late}/secrets/dynatrace-dynakube-config")
    wait(
        lambda: exists(kube, f"{NAMESPACES}/{late}/secrets/dynatrace-dynakube-config"),
        what=f"the Secret in {late}",
    )
    late_pods = f"{NAMESPACES}/{late}/pods"
    wait(
        lambda: is_injected(dry_run_create(kube, late_pods, pod_body("probe", run_id))),
        what=f"/inject in {late}",
    )

    # (2) with the same token, no other Secret outside the release namespace can be read
    as_webhook = KubeApi(load_api_client(str(kubeconfig)), request_timeout=15)
    assert status_of(lambda: as_webhook.get("/api/v1/secrets")) == 403
    assert status_of(lambda: as_webhook.get(f"{NAMESPACES}/{early}/secrets")) == 403
    assert status_of(lambda: as_webhook.get(f"{NAMESPACES}/{early}/secrets/{INIT_SECRETS[0]}")) == 403
    assert (
        status_of(lambda: as_webhook.get(f"{NAMESPACES}/{ns}/secrets")) == 200
    )  # its own namespace: the Role
    # what the cache asks, by name, is allowed cluster-wide
    items, _, _ = as_webhook.list_page("/api/v1/secrets", field_selector=f"metadata.name={INIT_SECRETS[0]}")
    assert {early, late} <= {i["metadata"]["namespace"] for i in items}

    def reinjection_event() -> list[dict]:
        return [e for e in webhook_events(kube, early) if (e.get("regarding") or {}).get("name") == "unseen"]

    (event,) = wait(reinjection_event, timeout=60, what="reinjection's report of the unseen pod")
    assert event["reason"] in ("OneAgentReinjectionSkipped", "PodsNotSeenByWebhook"), event
    assert "never seen by the webhook" in event["note"], event
    assert not forbidden_lines(webhook.log), forbidden_lines(webhook.log)
