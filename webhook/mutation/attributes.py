"""The v1.10 contract's pod attributes (pure): what the bootstrapper init container gets as ``--attribute``
and ``--attribute-container``, and the JSON annotation ``metadata.dynatrace.com`` (upstream
``pkg/webhook/mutation/pod/attributes@v1.10.2``).

Layers, lowest to highest precedence: the deprecated ``dt.kubernetes.*`` (when enabled), the workload, the pod,
the cluster, the enrichment rules, the DynaKube's resource attributes (keys sanitized), the namespace's
``metadata.dynatrace.com/*`` annotations, the pod's. The JSON annotation holds workload, rules, DynaKube,
namespace and pod layers. Upstream writes the ``--attribute`` arguments in Go map order (random per run);
here they are sorted by key, so one pod always gets the same arguments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.mutation import podspec as ps
from webhook.tolerant import as_map as _map

POD_NAME_ENV, POD_UID_ENV, NODE_NAME_ENV = "K8S_PODNAME", "K8S_PODUID", "K8S_NODE_NAME"
JSON_ANNOTATION = "metadata.dynatrace.com"
NAMESPACE_KEY_PREFIX = "k8s.namespace."
_INVALID_KEY_CHARS = re.compile(r"[^a-zA-Z0-9\-_.]")
_INVALID_KEY_BOUNDARIES = re.compile(r"(?:^[^a-zA-Z0-9]+)|(?:[^a-zA-Z0-9]+$)")


def sanitize_key(key: str) -> str:
    """Upstream ``resourceattributes.SanitizeKey``: invalid characters to ``_``, non-alphanumeric ends cut."""
    return _INVALID_KEY_BOUNDARIES.sub("", _INVALID_KEY_CHARS.sub("_", key))


def pod_env() -> list[dict[str, Any]]:
    """The init container's field refs the ``$(K8S_…)`` attribute values point at."""
    return [
        ps.field_env(POD_NAME_ENV, "metadata.name"),
        ps.field_env(POD_UID_ENV, "metadata.uid"),
        ps.field_env(NODE_NAME_ENV, "spec.nodeName"),
    ]


def _strings(value: Any) -> dict[str, str]:
    return {k: v for k, v in _map(value).items() if isinstance(k, str) and isinstance(v, str)}


def rules(
    rule_list: list[Mapping[str, Any]], labels: Mapping[str, Any], annotations: Mapping[str, Any]
) -> dict[str, str]:
    """Enrichment rules from the DynaKube status: explicit targets, first resolving rule wins; empty targets
    as ``k8s.namespace.<type lowercased>.<source>``, last wins (v1.10.1+)."""
    out: dict[str, str] = {}
    for rule in rule_list:
        kind, source, target = rule.get("type"), rule.get("source"), rule.get("target") or ""
        if not isinstance(source, str) or not isinstance(kind, str):
            continue
        if kind in ("LABEL", "K8S_NAMESPACE_LABEL"):
            value = labels.get(source)
        elif kind in ("ANNOTATION", "K8S_NAMESPACE_ANNOTATION"):
            value = annotations.get(source)
        elif kind == "CUSTOM":
            value = source
        else:
            continue
        if not isinstance(value, str):
            continue
        if not target:
            out[NAMESPACE_KEY_PREFIX + kind.lower() + "." + source] = value
        elif target not in out:
            out[target] = value
    return out


def prefixed(annotations: Mapping[str, Any]) -> dict[str, str]:
    """``metadata.dynatrace.com/<k>`` annotations as ``<k>``."""
    return {
        k[len(ps.METADATA_PREFIX) :]: v
        for k, v in annotations.items()
        if isinstance(k, str) and k.startswith(ps.METADATA_PREFIX) and isinstance(v, str)
    }


@dataclass(frozen=True)
class PodAttributes:
    deprecated: dict[str, str]
    workload: dict[str, str]
    pod: dict[str, str]
    cluster: dict[str, str]
    rules: dict[str, str]
    dynakube: dict[str, str]
    namespace: dict[str, str]
    pod_annotations: dict[str, str]

    def all(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for layer in (
            self.deprecated,
            self.workload,
            self.pod,
            self.cluster,
            self.rules,
            self.dynakube,
            self.namespace,
            self.pod_annotations,
        ):
            out.update(layer)
        return out

    def for_annotation(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for layer in (self.workload, self.rules, self.dynakube, self.namespace, self.pod_annotations):
            out.update(layer)
        return out

    def args(self) -> list[str]:
        """``--attribute=<k>=<v>`` for each non-empty key and value, by key."""
        return [f"--attribute={k}={v}" for k, v in sorted(self.all().items()) if k and v]


def pod_attributes(
    *,
    workload: tuple[str, str],
    namespace_name: str,
    status: Mapping[str, Any],
    rule_values: dict[str, str],
    dynakube_attributes: Mapping[str, Any],
    namespace_annotations: Mapping[str, Any],
    pod_annotations: Mapping[str, Any],
    deprecated: bool,
) -> PodAttributes:
    kind, name = workload
    work = {"k8s.workload.kind": kind.lower(), "k8s.workload.name": name}
    cluster = {
        "k8s.cluster.uid": str(status.get("kubeSystemUUID") or ""),
        "k8s.cluster.name": str(status.get("kubernetesClusterName") or ""),
        "dt.entity.kubernetes_cluster": str(status.get("kubernetesClusterMEID") or ""),
    }
    old = (
        {
            "dt.kubernetes.workload.kind": work["k8s.workload.kind"],
            "dt.kubernetes.workload.name": name,
            "dt.kubernetes.cluster.id": cluster["k8s.cluster.uid"],
        }
        if deprecated
        else {}
    )
    sanitized = {}
    for key, value in _strings(dynakube_attributes).items():
        clean = sanitize_key(key)
        if clean:
            sanitized[clean] = value
    return PodAttributes(
        deprecated=old,
        workload=work,
        pod={
            "k8s.pod.name": f"$({POD_NAME_ENV})",
            "k8s.pod.uid": f"$({POD_UID_ENV})",
            "k8s.node.name": f"$({NODE_NAME_ENV})",
            "k8s.namespace.name": namespace_name,
        },
        cluster=cluster,
        rules=rule_values,
        dynakube=sanitized,
        namespace=prefixed(namespace_annotations),
        pod_annotations=prefixed(pod_annotations),
    )


def container_info(container: Mapping[str, Any]) -> dict[str, str]:
    """``--attribute-container`` JSON of one container (upstream ``NewContainerInfo``; empty fields left out),
    keys in the order Go writes the struct."""
    image = container.get("image")
    image = image if isinstance(image, str) else ""
    registry, slash, repo = image.partition("/")
    if not slash:
        registry, repo = "", registry
    repo, at, digest = repo.partition("@")
    repository, colon, tag = repo.partition(":")
    out = {
        "container_image.registry": registry,
        "container_image.repository": repository,
        "container_image.tags": tag if colon else "",
        "container_image.digest": digest if at else "",
        "k8s.container.name": str(container.get("name") or ""),
    }
    return {k: v for k, v in out.items() if v}


def container_arg(container: Mapping[str, Any]) -> str:
    return "--attribute-container=" + ps.go_json(container_info(container), sort_keys=False)
