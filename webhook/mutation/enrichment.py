"""Metadata enrichment as the v1.4 webhook applies it (INJECTION-CONTRACT.md section 7), pure.

The workload a pod belongs to is found by walking controller owner references, as upstream does, but through
``lookup(kind, name)`` (the cached metadata of an object in the pod's namespace, or None) instead of a GET per
owner: the admission path makes no API call. Where the cache does not hold an owner yet:

- the walk stops at that owner, whose kind and name the reference itself gives (a Job whose CronJob is not
  cached stays the Job; a StatefulSet, DaemonSet or ReplicationController is its own workload anyway);
- except for a ReplicaSet the pod names with its ``pod-template-hash`` label: the Deployment controller names
  its ReplicaSets ``<deployment>-<hash>`` and copies the hash into the pod template, so such a pod belongs to
  Deployment ``<deployment>``. This covers the race where a new ReplicaSet's first pods arrive before the watch
  event of the ReplicaSet itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from webhook import dynakube as dk
from webhook.mutation import podspec as ps
from webhook.mutation.context import PodContext
from webhook.mutation.patch import Patch
from webhook.ownerref import controller_of
from webhook.selectors import InvalidSelector, Selector
from webhook.selectors import validate as validate_selector
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

Lookup = Callable[[str, str], "Mapping[str, Any] | None"]

# (kind, apiVersion) pairs v1.4 follows up the owner chain
WALKED = frozenset(
    (
        ("ReplicaSet", "apps/v1"),
        ("Deployment", "apps/v1"),
        ("StatefulSet", "apps/v1"),
        ("DaemonSet", "apps/v1"),
        ("ReplicationController", "v1"),
        ("Job", "batch/v1"),
        ("CronJob", "batch/v1"),
        ("DeploymentConfig", "apps.openshift.io/v1"),
    )
)
MAX_DEPTH = 8  # owner chains are 1-3 long; a cycle in the cache must not loop
TEMPLATE_HASH_LABEL = "pod-template-hash"
ENRICHMENT_DIR = "/var/lib/dynatrace/enrichment"


def no_lookup(kind: str, name: str) -> None:
    return None


@dataclass(frozen=True)
class View:
    enabled: bool
    selector: Selector
    selector_error: str
    automatic_injection: bool
    cluster_name: str
    entity_id: str
    rules: tuple[tuple[str, str, str], ...]  # (type, source, target) with a non-empty target


def _build_view(dynakube: Mapping[str, Any]) -> View:
    selector = _map(dk.spec(dynakube).get("metadataEnrichment")).get("namespaceSelector")
    try:
        validate_selector(selector)
        error = ""
    except InvalidSelector as err:
        error = str(err)
    rules = []
    for rule in dk.metadata_enrichment_rules(dynakube):
        target = _str(rule.get("target"))
        if target:
            rules.append((_str(rule.get("type")), _str(rule.get("source")), target))
    return View(
        enabled=dk.metadata_enrichment_enabled(dynakube),
        selector=Selector(selector),
        selector_error=error,
        automatic_injection=dk.automatic_injection(dynakube),
        cluster_name=dk.cluster_name(dynakube),
        entity_id=dk.cluster_me_id(dynakube),
        rules=tuple(rules),
    )


def view(dynakube: Mapping[str, Any]) -> View:
    return dk.per_object(dynakube, "enrichment", _build_view)


def disabled_reason(v: View, pod_annotations: Mapping[str, Any], namespace_labels: Mapping[str, Any]) -> str:
    """ "" when enrichment applies to this pod, else why not."""
    if not v.enabled:
        return "MetadataEnrichmentDisabled"
    if v.selector_error or not v.selector.matches(namespace_labels):
        return "MetadataEnrichmentNamespaceNotSelected"
    if not ps.parse_bool(pod_annotations.get(ps.ANNOTATION_METADATA_INJECT), v.automatic_injection):
        return "MetadataEnrichmentOptOut"
    return ""


def is_injected(container: Mapping[str, Any]) -> bool:
    mounts = ps.mount_names(container)
    return ps.VOLUME_ENRICHMENT in mounts or ps.VOLUME_ENRICHMENT_ENDPOINT in mounts


def workload(pod: Mapping[str, Any], lookup: Lookup) -> tuple[str, str]:
    """(kind, name) of the workload owning the pod; a bare pod is its own workload."""
    meta = _map(pod.get("metadata"))
    return _walk(_str(pod.get("kind")) or "Pod", ps.name_of(meta), meta, lookup)


def workload_of(ctx: PodContext, lookup: Lookup) -> tuple[str, str]:
    """``workload`` of the pod under review."""
    return _walk(ctx.kind, ctx.name, ctx.meta, lookup)


def _walk(kind: str, name: str, meta: Mapping[str, Any], lookup: Lookup) -> tuple[str, str]:
    current: Mapping[str, Any] = meta
    for _ in range(MAX_DEPTH):
        ref = controller_of(current)
        if ref is None or (ref.kind, ref.api_version) not in WALKED:
            break
        kind, name = ref.kind, ref.name
        found = lookup(kind, name)
        if found is None:
            if current is meta and kind == "ReplicaSet":
                return _deployment_of(meta, name) or (kind, name)
            break
        current = _map(found)
    return kind, name


def _deployment_of(pod_meta: Mapping[str, Any], replica_set: str) -> tuple[str, str] | None:
    template_hash = _str(_map(pod_meta.get("labels")).get(TEMPLATE_HASH_LABEL))
    suffix = "-" + template_hash
    if template_hash and replica_set.endswith(suffix) and len(replica_set) > len(suffix):
        return "Deployment", replica_set[: -len(suffix)]
    return None


def container_mounts(container: str) -> list[dict[str, Any]]:
    return [
        ps.mount(
            ps.VOLUME_ENRICHMENT,
            f"{ENRICHMENT_DIR}/dt_metadata.properties",
            f"dt_metadata_{container}.properties",
        ),
        ps.mount(ps.VOLUME_ENRICHMENT, f"{ENRICHMENT_DIR}/dt_metadata.json", f"dt_metadata_{container}.json"),
        ps.mount(ps.VOLUME_ENRICHMENT_ENDPOINT, f"{ENRICHMENT_DIR}/endpoint"),
    ]


def add_volumes(patch: Patch, existing: set[str]) -> None:
    volumes: list[dict[str, Any]] = [
        {"name": ps.VOLUME_ENRICHMENT_ENDPOINT, "secret": {"secretName": ps.ENRICHMENT_SECRET}},
        {"name": ps.VOLUME_ENRICHMENT, "emptyDir": {}},
    ]
    added = [volume for volume in volumes if volume["name"] not in existing]
    existing.update(volume["name"] for volume in added)
    patch.extend(("spec", "volumes"), added)


def propagate(v: View, ctx: PodContext) -> dict[str, str]:
    """The ``metadata.dynatrace.com/*`` annotations copied onto the pod (never over one it has)."""
    pod_annotations = ctx.annotations
    ns_labels, ns_annotations = ctx.namespace_labels, ctx.namespace_annotations
    added: dict[str, str] = {}
    for rule_type, source, target in v.rules:
        values = ns_labels if rule_type == "LABEL" else ns_annotations if rule_type == "ANNOTATION" else None
        value = values.get(source) if values is not None else None
        key = ps.METADATA_PREFIX + target
        if isinstance(value, str) and key not in pod_annotations:
            added.setdefault(key, value)
    for key, value in ns_annotations.items():
        prefixed = isinstance(key, str) and key.startswith(ps.METADATA_PREFIX)
        if prefixed and isinstance(value, str) and key not in pod_annotations:
            added.setdefault(key, value)
    return added


def workload_annotations(pod_annotations: Mapping[str, Any], added: Mapping[str, str]) -> str:
    """``DT_WORKLOAD_ANNOTATIONS``: every ``metadata.dynatrace.com/`` annotation of the pod, prefix stripped."""
    out = {}
    for source in (pod_annotations, added):
        for key, value in source.items():
            if isinstance(key, str) and key.startswith(ps.METADATA_PREFIX) and isinstance(value, str):
                out[key[len(ps.METADATA_PREFIX) :]] = value
    return ps.go_json(out)


def init_env(v: View, kind: str, name: str, annotations_json: str) -> list[dict[str, Any]]:
    """v1.4.1 and later write the kind lowercased (v1.4.0 as returned); this pairs with v1.4.2's ``init``."""
    return [
        ps.value_env("METADATA_ENRICHMENT_INJECTED", "true"),
        ps.value_env("DT_CLUSTER_NAME", v.cluster_name),
        ps.value_env("DT_ENTITY_ID", v.entity_id),
        ps.value_env("DT_WORKLOAD_KIND", kind.lower()),
        ps.value_env("DT_WORKLOAD_NAME", name),
        ps.value_env("DT_WORKLOAD_ANNOTATIONS", annotations_json),
    ]


def init_mounts() -> list[dict[str, Any]]:
    return [ps.mount(ps.VOLUME_ENRICHMENT, "/tmp/enrichment")]
