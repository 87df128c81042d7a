"""The promise "no Kubernetes API call on the admission path, ever", checked in the API server's audit log.

The webhook runs with an identity of its own (``kubeconfig-webhook``, CN ``dynatrace-webhook``); the audit log
records every request at level Metadata. While a batch of admissions goes through the webhook (pods created
directly and by Deployments, injected, skipped for incomplete connection info, mapped to a missing DynaKube,
unmapped; namespaces through /label-ns; DynaKubes through /validate) the webhook's identity asks the API
server nothing, apart from its watches (the cache) and the Events and Leases its background threads write.

Needs a separate identity for the webhook and a readable audit log: with a plain KUBECONFIG (kind, say) this
test skips with the reason; the rest of the tier runs.
"""

from __future__ import annotations

from tests.e2e.audit import describe, is_background
from tests.e2e.helpers import (
    DYNAKUBE_RULE,
    HOSTS,
    INJECTED,
    INSTANCE_LABEL,
    NAMESPACE_RULE,
    NAMESPACES,
    REASON,
    RUN_LABEL,
    annotations_of,
    create_operator_init_secrets,
    deployment_body,
    dry_run_create,
    dynakube_body,
    dynakubes_path,
    hook,
    is_injected,
    labels_of,
    namespace_body,
    pod_body,
    pod_hook,
    wait,
    webhook_events,
)
from webhook.kube.api import ApiError, list_items

PODS_PER_NAMESPACE = 10
REPLICAS = 5
WORKLOAD = "e2e.dynatrace.com/workload"
APP = "e2e.dynatrace.com/app"


def test_admissions_make_no_api_calls(
    kube, run_id, cleanup, webhook_namespace, namespace, dynakube, audit_log, start_webhook, register_webhook
):
    def selecting(app: str) -> dict:
        return {"matchLabels": {RUN_LABEL: run_id, APP: app}}

    ready = dynakube("ready", selector=selecting("ready"), hosts=HOSTS)["metadata"]["name"]
    pending = dynakube("pending", selector=selecting("pending"), hosts=[])["metadata"]["name"]
    spaces = {
        "ready": namespace("ready", **{APP: "ready", INSTANCE_LABEL: ready}),
        "pending": namespace("pending", **{APP: "pending", INSTANCE_LABEL: pending}),
        "missing": namespace("missing", **{INSTANCE_LABEL: f"gone-{run_id}"}),
        "plain": namespace("plain"),
    }

    before_start = audit_log.offset()
    create_operator_init_secrets(cleanup, spaces["ready"], run_id)  # as a Dynatrace Operator beside it does
    # init Secrets on, as by default (the namespaces' Secrets exist, so the admissions create nothing);
    # reinjection off: its scans read pods in the background and would blur what the window counts
    webhook = start_webhook("--no-reinject")  # ready: its cache holds the DynaKubes, namespaces, Secrets
    register_webhook(
        "MutatingWebhookConfiguration",
        "dynatrace-webhook-e2e-audit",
        [
            pod_hook(webhook, run_id),
            hook(
                "webhook.ns.dynatrace.com",
                webhook.url("/label-ns"),
                [NAMESPACE_RULE],
                ca_pem=webhook.ca.cert_pem,
                object_selector={"matchLabels": {RUN_LABEL: run_id}},
            ),
        ],
    )
    register_webhook(
        "ValidatingWebhookConfiguration",
        "dynatrace-webhook-e2e-audit",
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

    def pods(key: str) -> str:
        return f"{NAMESPACES}/{spaces[key]}/pods"

    def invalid_dynakube(name: str) -> dict:
        body = dynakube_body(name, webhook_namespace, run_id, selector={"matchLabels": {"none": name}})
        body["spec"]["apiUrl"] = ""
        return body

    def validate_denies(name: str) -> bool:
        try:
            dry_run_create(kube, dynakubes_path(webhook_namespace), invalid_dynakube(name))
        except ApiError as err:
            return "error(s) found in the DynaKube" in str(err)
        return False

    wait(lambda: is_injected(dry_run_create(kube, pods("ready"), pod_body("probe", run_id))), what="/inject")
    wait(lambda: validate_denies(f"probe-{run_id}"), what="/validate")
    wait(
        lambda: (
            labels_of(
                dry_run_create(kube, NAMESPACES, namespace_body(f"probe-{run_id}", run_id, **{APP: "ready"}))
            ).get(INSTANCE_LABEL)
            == ready
        ),
        what="/label-ns",
    )

    # the webhook has been asking the API server as its own user: the audit log tells its requests apart
    startup = audit_log.requests_of_webhook(before_start, audit_log.offset())
    assert any(e.get("verb") == "list" for e in startup), (
        f"no list by {audit_log.user} in {audit_log.path} while the webhook started: wrong identity or log?"
    )

    # --- the batch: everything below is admitted while the audit log window is open ---
    start = audit_log.offset()
    created = {key: [] for key in spaces}
    for i in range(PODS_PER_NAMESPACE):
        for key in spaces:
            created[key].append(kube.create(pods(key), pod_body(f"pod-{i}", run_id)))
    workloads = {}
    for key in ("ready", "pending"):
        name = f"app-{key}-{run_id}"
        deployments = f"/apis/apps/v1/namespaces/{spaces[key]}/deployments"
        cleanup.create(deployments, deployment_body(name, run_id, replicas=REPLICAS, label=WORKLOAD))
        workloads[key] = name
    labelled = []
    for i in range(3):
        body = namespace_body(f"labelled-{i}-{run_id}", run_id, **{APP: "ready"})
        labelled.append(cleanup.create(NAMESPACES, body))
        assert validate_denies(f"invalid-{i}-{run_id}")

    def workload_pods(key: str) -> list[dict]:
        items = list_items(kube, pods(key), label_selector=f"{WORKLOAD}={workloads[key]}")
        return items if len(items) >= REPLICAS else []

    by_controller = {
        key: wait(lambda key=key: workload_pods(key), what=f"{REPLICAS} pods of {workloads[key]}")
        for key in workloads
    }
    end = audit_log.mark(kube, start)
    # --- window closed ---

    # the batch really went through the webhook
    assert all(is_injected(p) for p in created["ready"] + by_controller["ready"])
    reasons = {
        key: {annotations_of(p).get(REASON) for p in created[key]} for key in ("pending", "missing", "plain")
    }
    assert reasons["pending"] == {"EmptyConnectionInfo"}, reasons
    assert {annotations_of(p).get(REASON) for p in by_controller["pending"]} == {"EmptyConnectionInfo"}
    # a namespace mapped to a DynaKube that does not exist, and an unmapped one: admitted unchanged
    assert not any(INJECTED in annotations_of(p) for p in created["missing"] + created["plain"]), reasons
    assert all(labels_of(n).get(INSTANCE_LABEL) == ready for n in labelled)

    # the skips were reported off the admission path, as Events the API server accepted: on the ReplicaSet
    # for the Deployment's pods, on the DynaKube (in the webhook's namespace) for bare pods
    def skip_events(namespace: str, kind: str, name: str = "") -> list[dict]:
        return [
            e
            for e in webhook_events(kube, namespace)
            if e.get("reason") == "OneAgentInjectionSkipped"
            and e.get("type") == "Warning"
            and e.get("action") == "InjectOneAgent"
            and (e.get("regarding") or {}).get("kind") == kind
            and (not name or (e.get("regarding") or {}).get("name") == name)
        ]

    wait(lambda: skip_events(spaces["pending"], "ReplicaSet"), what="the Event on the pending ReplicaSet")
    (on_dynakube,) = wait(
        lambda: skip_events(webhook_namespace, "DynaKube", pending), what=f"the Event on DynaKube {pending}"
    )
    assert "EmptyConnectionInfo" in on_dynakube["note"], on_dynakube
    assert on_dynakube["eventTime"] and on_dynakube["reportingInstance"].startswith("dynatrace-webhook-")
    (missing,) = wait(
        lambda: skip_events(webhook_namespace, "DynaKube", f"gone-{run_id}"),
        what="the Event on the missing DynaKube",
    )
    assert "MissingDynakube" in missing["note"], missing
    # upstream's MissingDynakube beside it: its message is its action too, as upstream v1.9+ writes it
    (upstream,) = wait(
        lambda: [
            e
            for e in webhook_events(kube, webhook_namespace)
            if e.get("reason") == "MissingDynakube" and e["regarding"].get("name") == f"gone-{run_id}"
        ],
        what="upstream's MissingDynakube Event",
    )
    assert upstream["action"] == upstream["note"] and upstream["type"] == "Warning", upstream
    # the core v1 view (kubectl get events) of the same Event
    (core,) = [
        e
        for e in list_items(kube, f"{NAMESPACES}/{webhook_namespace}/events")
        if e["metadata"]["name"] == missing["metadata"]["name"]
    ]
    assert (core["involvedObject"], core["message"], core["reportingComponent"]) == (
        missing["regarding"],
        missing["note"],
        "dynatrace-webhook",
    ), core

    calls = audit_log.requests_of_webhook(start, end)
    on_admission_path = [describe(e) for e in calls if not is_background(e)]
    assert not on_admission_path, (
        f"{audit_log.user} called the API server while {sum(map(len, created.values())) + 2 * REPLICAS} pods, "
        f"3 namespaces and 3 DynaKubes were admitted: {on_admission_path}"
    )


def test_audit_window_sees_requests_of_the_webhook_identity(kube, audit_log, webhook_identity):
    """The counting above is not blind: a request made with the webhook's kubeconfig inside a window is
    found there, under the webhook's user name."""
    from webhook.kube.client import KubeApi, load_api_client

    as_webhook = KubeApi(load_api_client(str(webhook_identity.kubeconfig)), request_timeout=15)
    start = audit_log.offset()
    as_webhook.get(f"{NAMESPACES}/default")
    end = audit_log.mark(kube, start)
    seen = [describe(e) for e in audit_log.requests_of_webhook(start, end)]
    assert any(s.startswith("get /api/v1/namespaces/default ") for s in seen), seen
