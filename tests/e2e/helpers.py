"""Building blocks of the e2e tier: object bodies, raw API calls the ``Api`` protocol has no method for
(dry-run, server-side apply, response headers), and polling.

Every object a test creates carries ``RUN_LABEL=<run id>``, so a run can be told apart from anything else in
the cluster, and is deleted by the fixture that created it.
"""

from __future__ import annotations

import base64
import re
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from webhook.kube.api import ApiError, list_items
from webhook.kube.client import KubeApi

RUN_LABEL = "e2e.dynatrace.com/run"
FIELD_MANAGER = "dynatrace-webhook-e2e"
DYNAKUBE_VERSION = "v1beta2"

CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
ADMISSION = "/apis/admissionregistration.k8s.io/v1"
MWC = f"{ADMISSION}/mutatingwebhookconfigurations"
VWC = f"{ADMISSION}/validatingwebhookconfigurations"
CONFIG_PATHS = {"MutatingWebhookConfiguration": MWC, "ValidatingWebhookConfiguration": VWC}
NAMESPACES = "/api/v1/namespaces"
SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
API_URL = "https://abc12345.live.dynatrace.com/api"
INJECTED = "oneagent.dynatrace.com/injected"
REASON = "oneagent.dynatrace.com/reason"
INSTANCE_LABEL = "dynakube.internal.dynatrace.com/instance"
INIT_CONTAINER = "dynatrace-operator"  # the init container an injected pod gets (upstream v1.4's name)
HOSTS = [{"protocol": "https", "host": "10.96.12.34", "port": 443}]


# --- polling ---
def wait(
    predicate: Callable[[], Any], timeout: float = 60, what: str = "condition", interval: float = 0.5
) -> Any:
    """Call ``predicate`` until it returns something truthy (returned); API and HTTP errors count as "not yet".

    On timeout the last error, if any, is part of the message: a test that times out says what it saw.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except (ApiError, httpx.HTTPError) as err:
            last = err
        if time.monotonic() >= deadline:
            seen = f" (last error: {last})" if last else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{seen}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def short_id() -> str:
    return uuid.uuid4().hex[:6]


# --- raw calls ---
def dry_run_create(kube: KubeApi, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST with ``dryRun=All``: admission (webhooks included) and validation run, nothing is stored."""
    return kube._json("POST", path, [("dryRun", "All")], body=body)


def apply(kube: KubeApi, path: str, body: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    """Server-side apply (PATCH application/apply-patch+yaml; JSON is YAML) with strict field validation,
    so an unknown or duplicate field is an error instead of being dropped silently."""
    query = [("fieldManager", FIELD_MANAGER), ("force", "true"), ("fieldValidation", "Strict")]
    if dry_run:
        query.append(("dryRun", "All"))
    return kube._json("PATCH", path, query, body=body, content_type="application/apply-patch+yaml")


_WARNING = re.compile(r'^\s*(\d{3})\s+(\S+)\s+"((?:[^"\\]|\\.)*)"')


def parse_warning(value: str) -> str:
    """The text of one RFC 7234 ``Warning`` header value as kube-apiserver writes it: ``299 - "text"``."""
    match = _WARNING.match(value)
    if not match:
        return value
    return re.sub(r"\\(.)", r"\1", match.group(3))


def create_with_warnings(
    kube: KubeApi, path: str, body: dict[str, Any], *, dry_run: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """POST an object (``dry_run``: with ``dryRun=All``); return it and the warnings the API server sent back in
    ``Warning`` headers.

    Admission webhook warnings reach clients only as response headers; ``KubeApi.create`` drops headers,
    so this reads the raw urllib3 response. urllib3 keeps repeated headers apart (``getlist``); joining
    them with ``get`` would split warnings that contain commas wrongly.
    """
    response = kube._call("POST", path, [("dryRun", "All")] if dry_run else None, body=body)
    try:
        data = response.data
        values = response.headers.getlist("Warning")
    finally:
        response.release_conn()
    return (orjson.loads(data) if data else {}), [parse_warning(v) for v in values]


def delete_quietly(kube: KubeApi, path: str) -> str | None:
    """Delete; already gone is fine (a namespace's objects go with it). Any other failure, an API error or a
    broken connection, is returned as text rather than raised, so that a teardown goes on deleting the rest."""
    try:
        kube.delete(path)
    except ApiError as err:
        if err.status == 404:
            return None
        return f"{path}: {err}"
    except Exception as err:  # urllib3/ssl errors: the API server went away or the connection broke
        return f"{path}: {type(err).__name__}: {err}"
    return None


def exists(kube: KubeApi, path: str) -> bool:
    try:
        kube.get(path)
    except ApiError as err:
        if err.status == 404:
            return False
        raise
    return True


def can_i(
    kube: KubeApi, user: str, groups: list[str], verb: str, resource: str, *, group: str = "", **extra: str
) -> bool:
    """A SubjectAccessReview: may ``user`` do ``verb`` on ``resource``? ``extra``: namespace, name, subresource."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": groups,
            "resourceAttributes": {"verb": verb, "group": group, "resource": resource, **extra},
        },
    }
    result = kube.create(SUBJECT_ACCESS_REVIEWS, review)
    return bool((result.get("status") or {}).get("allowed"))


# --- bodies ---
def labels(run: str, **more: str) -> dict[str, str]:
    return {RUN_LABEL: run, **more}


def namespace_body(name: str, run: str, **more: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels(run, **more)},
    }


def dynakube_body(
    name: str,
    namespace: str,
    run: str,
    *,
    selector: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A cloudNativeFullStack DynaKube; ``selector`` is its namespaceSelector (None: every namespace)."""
    mode: dict[str, Any] = {} if selector is None else {"namespaceSelector": selector}
    body: dict[str, Any] = {
        "apiVersion": f"dynatrace.com/{DYNAKUBE_VERSION}",
        "kind": "DynaKube",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(run)},
        "spec": {
            "apiUrl": API_URL,
            "networkZone": f"zone-{name}",
            "oneAgent": {"cloudNativeFullStack": mode},
        },
    }
    if annotations:
        body["metadata"]["annotations"] = annotations
    if spec:
        body["spec"].update(spec)
    return body


def dynakube_status(hosts: list[dict[str, Any]]) -> dict[str, Any]:
    """A status as the operator writes it; without ``hosts`` the connection info is incomplete."""
    return {
        "status": {
            "kubeSystemUUID": "5a0c6c1e-3f7a-4d43-9a3e-2f0f1b7f9e11",
            "oneAgent": {"connectionInfoStatus": {"tenantUUID": "abc12345", "communicationHosts": hosts}},
            "codeModules": {"version": "1.299.50.20240930-123456"},
        }
    }


def dynakubes_path(namespace: str) -> str:
    return f"/apis/dynatrace.com/{DYNAKUBE_VERSION}/namespaces/{namespace}/dynakubes"


def pod_body(name: str, run: str, **more: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels(run, **more)},
        "spec": {"containers": [{"name": "app", "image": PAUSE_IMAGE}]},
    }


def deployment_body(
    name: str, run: str, *, replicas: int = 1, label: str = "e2e.dynatrace.com/workload"
) -> dict[str, Any]:
    """A Deployment of ``replicas`` pause pods; its pods carry ``RUN_LABEL`` and ``label=name`` (list them with
    the selector ``f"{label}={name}"``). The controller manager creates them; no kubelet runs them."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {RUN_LABEL: run}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {label: name}},
            "template": {
                "metadata": {"labels": {RUN_LABEL: run, label: name}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "app", "image": PAUSE_IMAGE}],
                },
            },
        },
    }


def rule(group: str, resource: str, operations: list[str], scope: str, version: str = "v1") -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": [version],
        "operations": operations,
        "resources": [resource],
        "scope": scope,
    }


POD_RULE = rule("", "pods", ["CREATE"], "Namespaced")
NAMESPACE_RULE = rule("", "namespaces", ["CREATE", "UPDATE"], "Cluster")
DYNAKUBE_RULE = rule("dynatrace.com", "dynakubes", ["CREATE", "UPDATE"], "Namespaced", version="*")


def hook(
    name: str,
    url: str,
    rules: list[dict[str, Any]],
    *,
    ca_pem: bytes | None,
    failure_policy: str = "Fail",
    namespace_selector: dict[str, Any] | None = None,
    object_selector: dict[str, Any] | None = None,
    mutating: bool = True,
) -> dict[str, Any]:
    """One webhook entry calling ``url``; without ``ca_pem`` the clientConfig has no caBundle."""
    client: dict[str, Any] = {"url": url}
    if ca_pem is not None:
        client["caBundle"] = base64.b64encode(ca_pem).decode()
    entry: dict[str, Any] = {
        "name": name,
        "admissionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": client,
        "rules": rules,
        "failurePolicy": failure_policy,
        "sideEffects": "NoneOnDryRun",
        "timeoutSeconds": 10,
    }
    if mutating:
        entry["reinvocationPolicy"] = "IfNeeded"
    if namespace_selector is not None:
        entry["namespaceSelector"] = namespace_selector
    if object_selector is not None:
        entry["objectSelector"] = object_selector
    return entry


def pod_hook(webhook: Any, run: str) -> dict[str, Any]:
    """The pod webhook as the chart registers it (failurePolicy Ignore), for one run's namespaces only."""
    return hook(
        "webhook.pod.dynatrace.com",
        webhook.url("/inject"),
        [POD_RULE],
        ca_pem=webhook.ca.cert_pem,
        failure_policy="Ignore",
        namespace_selector={"matchLabels": {RUN_LABEL: run}},
    )


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def init_containers(pod: dict[str, Any]) -> list[str]:
    return [c["name"] for c in (pod.get("spec") or {}).get("initContainers") or []]


def is_injected(pod: dict[str, Any]) -> bool:
    return annotations_of(pod).get(INJECTED) == "true" and INIT_CONTAINER in init_containers(pod)


INIT_SECRETS = ("dynatrace-dynakube-config", "dynatrace-metadata-enrichment-endpoint")


def create_operator_init_secrets(cleanup: Any, namespace: str, run: str) -> None:
    """The two init Secrets in ``namespace`` as a Dynatrace Operator next to the webhook leaves them (no
    ``managed-by: dynatrace-webhook`` label: the webhook's controller leaves such copies alone). An injection
    mounts them only once the webhook's cache holds them."""
    for name in INIT_SECRETS:
        cleanup.create(
            f"{NAMESPACES}/{namespace}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": name,
                    "labels": labels(run, **{"app.kubernetes.io/component": "webhook"}),
                },
                "stringData": {"config": "{}"} if name == INIT_SECRETS[0] else {"endpoint.properties": ""},
            },
        )


def webhook_events(kube: KubeApi, namespace: str) -> list[dict[str, Any]]:
    """The webhook's Events in ``namespace``, read where it writes them: ``events.k8s.io/v1``, reporting
    controller ``dynatrace-webhook`` (``regarding``, ``note``, ``action``, ``series``)."""
    items = list_items(kube, f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")
    return [e for e in items if e.get("reportingController") == "dynatrace-webhook"]
