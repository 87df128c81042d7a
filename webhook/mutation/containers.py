"""Which user containers the mutators change, and the per-container env and mounts they add (pure).

A container that already mounts something else at a path the injection needs is left alone: a duplicate mount
path makes a pod the API server rejects (v1.4 would add it anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.mutation import enrichment as md
from webhook.mutation import oneagent as oa
from webhook.mutation import podspec as ps
from webhook.mutation.patch import Patch
from webhook.tolerant import as_map as _map


@dataclass
class Plan:
    """Which containers each mutator touches, after dropping containers whose mount paths are taken."""

    containers: list[Mapping[str, Any]]
    oneagent: list[int]
    enrichment: list[int]
    info: list[int]  # new containers, for CONTAINER_INFO
    taken: list[int]  # left alone: a path the injection mounts holds something else
    install_path: str


def plan(
    pod: Mapping[str, Any],
    eligible: list[int],
    containers: list[Mapping[str, Any]],
    oa_view: oa.View | None,
    with_enrichment: bool,
) -> Plan:
    path = oa.install_path(ps.annotations_of(pod))
    plan = Plan(containers, [], [], [], [], path)
    for i in eligible:
        c = containers[i]
        oa_needed = oa_view is not None and not oa.is_injected(c)
        md_needed = with_enrichment and not md.is_injected(c)
        wanted = (oa.container_mounts(oa_view, path, c["name"]) if oa_needed and oa_view else []) + (
            md.container_mounts(c["name"]) if md_needed else []
        )
        present = ps.mounts_by_path(c)
        if any(m["mountPath"] in present and not ps.same_mount(present[m["mountPath"]], m) for m in wanted):
            plan.taken.append(i)
            continue
        if oa_needed:
            plan.oneagent.append(i)
        if md_needed:
            plan.enrichment.append(i)
        if not (oa.is_injected(c) or md.is_injected(c)):
            plan.info.append(i)
    return plan


def _add_mounts(patch: Patch, index: int, container: Mapping[str, Any], mounts: list[dict[str, Any]]) -> None:
    present = ps.mounts_by_path(container)
    for m in mounts:
        if m["mountPath"] not in present:
            patch.append(("spec", "containers", index, "volumeMounts"), m)


def apply(patch: Patch, plan: Plan, oa_view: oa.View, metadata: str, namespace: Mapping[str, Any]) -> None:
    """The planned env and mounts: OneAgent's first, then enrichment's, per container (v1.4's order)."""
    ns_annotations = _map(_map(namespace.get("metadata")).get("annotations"))
    containers = plan.containers
    for i in plan.oneagent:
        oa.add_to_container(
            patch,
            i,
            containers[i],
            oa_view,
            path=plan.install_path,
            metadata=metadata,
            namespace_annotations=ns_annotations,
        )
    for i in sorted(set(plan.oneagent) | set(plan.enrichment)):
        name = containers[i]["name"]
        mounts = oa.container_mounts(oa_view, plan.install_path, name) if i in plan.oneagent else []
        if i in plan.enrichment:
            mounts += md.container_mounts(name)
        _add_mounts(patch, i, containers[i], mounts)
