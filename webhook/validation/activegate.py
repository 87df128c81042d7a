"""spec.activeGate: known, unique capabilities; a memory limit (warning)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from webhook.validation.base import Context, DynaKube, as_map

CAPABILITIES = ("routing", "kubernetes-monitoring", "metrics-ingest", "dynatrace-api")


def _capabilities(dynakube: DynaKube) -> Any:
    return as_map(as_map(dynakube.get("spec")).get("activeGate")).get("capabilities")


def invalid_activegate_capability(dynakube: DynaKube, ctx: Context) -> str | None:
    capabilities = _capabilities(dynakube)
    if capabilities is None:
        return None
    if not isinstance(capabilities, list):
        return f"spec.activeGate.capabilities must be a list of capability names, from {', '.join(CAPABILITIES)}."
    invalid = [c for c in capabilities if c not in CAPABILITIES]
    if invalid:
        return (
            f"spec.activeGate.capabilities contains invalid capabilit{'ies' if len(invalid) > 1 else 'y'} "
            f"{', '.join(repr(c) for c in invalid)}. Valid capabilities are {', '.join(CAPABILITIES)}."
        )
    return None


def duplicate_activegate_capability(dynakube: DynaKube, ctx: Context) -> str | None:
    capabilities = _capabilities(dynakube)
    if not isinstance(capabilities, list):
        return None
    counts = Counter(c for c in capabilities if isinstance(c, str))
    duplicates = sorted(c for c, n in counts.items() if n > 1)
    if duplicates:
        return (
            f"spec.activeGate.capabilities lists {', '.join(duplicates)} more than once. "
            "List each capability once."
        )
    return None


def missing_activegate_memory_limit(dynakube: DynaKube, ctx: Context) -> str | None:
    """Warning. An ActiveGate is deployed when it has capabilities."""
    active_gate = as_map(as_map(dynakube.get("spec")).get("activeGate"))
    capabilities = active_gate.get("capabilities")
    if not isinstance(capabilities, list) or not capabilities:
        return None
    memory = as_map(as_map(active_gate.get("resources")).get("limits")).get("memory")
    if memory in (None, ""):
        return (
            "spec.activeGate has no memory limit, so the ActiveGate can use excess memory. "
            "Set spec.activeGate.resources.limits.memory (e.g. 1.5Gi)."
        )
    return None
