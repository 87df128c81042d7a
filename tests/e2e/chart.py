"""The Helm chart as the e2e tier uses it: rendered with helm-python-sdk, objects addressed by API path, and
webhook configurations made harmless where their Service cannot be reached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip(
    "helm_python", reason="helm-python-sdk renders the chart (pip install -e '.[dev]')"
)

CHART = Path(__file__).resolve().parents[2] / "charts" / "dynatrace-webhook"
PLURALS = {
    "ServiceAccount": "serviceaccounts",
    "Service": "services",
    "Deployment": "deployments",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "NetworkPolicy": "networkpolicies",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
    "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
    "CustomResourceDefinition": "customresourcedefinitions",
}
CLUSTER_SCOPED = {
    "ClusterRole",
    "ClusterRoleBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "CustomResourceDefinition",
}
APPLIED_FOR_REAL = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
WEBHOOK_CONFIGS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
CERT_SECRET = "dynatrace-webhook-certs"  # the chart's default --cert-secret-name


def render(release: str, namespace: str) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values={}, name=release, namespace=namespace)
    docs: list[dict[str, Any]] = []
    for path in sorted(rendered):
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(rendered[path]) if d]
    return docs


def object_path(obj: dict[str, Any], namespace: str) -> str:
    kind = obj["kind"]
    assert kind in PLURALS, f"the chart renders a {kind}: add its resource name to PLURALS in {__file__}"
    group_version = obj["apiVersion"]
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    scope = "" if kind in CLUSTER_SCOPED else f"/namespaces/{obj['metadata'].get('namespace') or namespace}"
    return f"{base}{scope}/{PLURALS[kind]}/{obj['metadata']['name']}"


def never_called(config: dict[str, Any], run: str) -> dict[str, Any]:
    """The configuration with an objectSelector requirement no object meets, on top of the chart's own."""
    never = {"key": f"e2e.dynatrace.com/never-{run}", "operator": "Exists"}
    webhooks = []
    for webhook in config["webhooks"]:
        selector = dict(webhook.get("objectSelector") or {})
        selector["matchExpressions"] = [*selector.get("matchExpressions", []), never]
        webhooks.append({**webhook, "objectSelector": selector})
    return {**config, "webhooks": webhooks}


def apply_rbac(kube: Any, cleanup: Any, docs: list[dict[str, Any]], namespace: str) -> None:
    """Server-side apply the ServiceAccount and RBAC objects of a render for real, deleted at teardown."""
    from tests.e2e.helpers import apply

    for obj in docs:
        if obj["kind"] in APPLIED_FOR_REAL:
            apply(kube, cleanup.add(object_path(obj, namespace)), obj)
