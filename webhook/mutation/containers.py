"""Which user containers the mutators change, and the per-container env and mounts they add (pure).

A container that already mounts something else at a path the injection needs is left alone: a duplicate mount
path makes a pod the API server rejects (v1.4 would add it anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webhook.mutation import enrichment as md
from webhook.mutation import oneagent as oa
from webhook.mutation import podspec as ps
from webhook.mutation.context import PodContext
from webhook.mutation.patch import Patch


@dataclass
class Plan:
    """Which containers each mutator touches, after dropping containers whose mount paths are taken."""

    oneagent: list[int]
    enrichment: list[int]
    info: list[int]  # new containers, for CONTAINER_INFO
    taken: list[int]  # left alone: a path the injection mounts holds something else
    install_path: str
    mounts: dict[int, list[dict[str, Any]]]  # the mounts each changed container gets (not present yet)


def plan(ctx: PodContext, oa_view: oa.View | None, with_enrichment: bool) -> Plan:
    path = oa.install_path(ctx.annotations)
    plan = Plan([], [], [], [], path, {})
    containers, mounts = ctx.containers, ctx.mounts
    for i in ctx.eligible:
        c = containers[i]
        present = mounts[i]
        names = {n for m in present.values() if type(n := m.get("name")) is str}
        oa_done = ps.VOLUME_BIN in names and ps.VOLUME_SHARE in names and oa.has_injected_env(c)
        md_done = ps.VOLUME_ENRICHMENT in names or ps.VOLUME_ENRICHMENT_ENDPOINT in names
        oa_needed = oa_view is not None and not oa_done
        md_needed = with_enrichment and not md_done
        wanted = oa.container_mounts(oa_view, path, c["name"]) if oa_needed and oa_view else []
        if md_needed:
            wanted += md.container_mounts(c["name"])
        missing = []
        for m in wanted:
            found = present.get(m["mountPath"])
            if found is None:
                missing.append(m)
            elif not ps.same_mount(found, m):
                break
        else:
            if oa_needed:
                plan.oneagent.append(i)
            if md_needed:
                plan.enrichment.append(i)
            if not (oa_done or md_done):
                plan.info.append(i)
            plan.mounts[i] = missing
            continue
        plan.taken.append(i)
    return plan


def apply(patch: Patch, plan: Plan, oa_view: oa.View, metadata: str, ctx: PodContext) -> None:
    """The planned env and mounts: OneAgent's first, then enrichment's, per container (v1.4's order)."""
    containers = ctx.containers
    for i in plan.oneagent:
        oa.add_to_container(
            patch,
            i,
            containers[i],
            oa_view,
            path=plan.install_path,
            metadata=metadata,
            namespace_annotations=ctx.namespace_annotations,
        )
    for i in sorted(set(plan.oneagent) | set(plan.enrichment)):
        patch.extend(("spec", "containers", i, "volumeMounts"), plan.mounts[i])
