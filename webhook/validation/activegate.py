"""spec.activeGate (``activegate.go``): known, unique capabilities; a memory limit (warning)."""

from __future__ import annotations

from webhook.tolerant import as_map
from webhook.validation import hub
from webhook.validation.base import Context, DynaKube

CAPABILITIES = ("routing", "kubernetes-monitoring", "metrics-ingest", "dynatrace-api")

INVALID_CAPABILITY = (
    "The DynaKube's specification tries to use an invalid capability in ActiveGate section, invalid "
    "capability=%s.\nMake sure you correctly specify the ActiveGate capabilities in your custom resource.\n"
)
DUPLICATE_CAPABILITY = (
    "The DynaKube's specification tries to specify duplicate capabilities in the ActiveGate section, duplicate "
    "capability=%s.\nMake sure you don't duplicate an Activegate capability in your custom resource.\n"
)
MISSING_MEMORY_LIMIT = "ActiveGate specification missing memory limits. Can cause excess memory usage."


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def invalid_capability(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.activegate_enabled(dk):
        return None
    for capability in hub.capabilities(dk):
        if capability not in CAPABILITIES:
            return INVALID_CAPABILITY % _text(capability) + f"Valid capabilities: {', '.join(CAPABILITIES)}."
    return None


def duplicate_capability(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.activegate_enabled(dk):
        return None
    seen: list[object] = []
    for capability in hub.capabilities(dk):
        if capability in seen:
            return DUPLICATE_CAPABILITY % _text(capability)
        seen.append(capability)
    return None


def missing_memory_limit(dk: DynaKube, ctx: Context) -> str | None:
    """Warning. Any ``limits`` map, even one without ``memory``, suppresses it (as upstream)."""
    resources = as_map(as_map(hub.spec(dk).get("activeGate")).get("resources"))
    if hub.activegate_enabled(dk) and resources.get("limits") is None:
        return MISSING_MEMORY_LIMIT
    return None
