"""Namespace selectors (``namespace_selector.go``): the OneAgent selector is a valid label selector, and no
namespace is selected by two DynaKubes (upstream's namespace mapper on the cached namespaces and DynaKubes);
our extra warning on an invalid metadata-enrichment selector."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webhook.tolerant import as_map, as_str
from webhook.validation import hub, labels
from webhook.validation.base import Context, DynaKube

SELECTOR_PATH = "spec.namespaceSelector"
INVALID_SELECTOR = "The DynaKube's namespaceSelector contains matchLabels that are not conform to spec."
CONFLICT = (
    "The DynaKube's specification tries to inject into namespaces where another Dynakube already injects into, "
    "which is not supported.\nMake sure the namespaceSelector doesn't conflict with other Dynakubes "
    "namespaceSelector"
)


def invalid_namespace_selector(dk: DynaKube, ctx: Context) -> str | None:
    errors = labels.selector_errors(hub.oneagent_namespace_selector(dk), SELECTOR_PATH)
    if errors:
        return f"{INVALID_SELECTOR} ([{' '.join(errors)}])"
    return None


def invalid_enrichment_selector(dk: DynaKube, ctx: Context) -> str | None:
    """Our warning (v1.4 does not check it): such a selector makes upstream's namespace mapping fail."""
    path = "spec.metadataEnrichment.namespaceSelector"
    errors = labels.selector_errors(hub.enrichment_namespace_selector(dk), path)
    if errors:
        return f"{path} is not a valid label selector, so it selects no namespace: {'; '.join(errors)}"
    return None


class _Matcher:
    def __init__(self, dk: DynaKube) -> None:
        self.name = hub.name(dk)
        self.ignored = hub.ignored_namespace_patterns(dk)
        # an absent selector is the empty one, which selects every namespace
        self.oneagent = (hub.oneagent_namespace_selector(dk) or {}) if hub.app_injection(dk) else None
        self.enrichment = (
            (hub.enrichment_namespace_selector(dk) or {}) if hub.metadata_enrichment(dk) else None
        )
        self.takes_part = hub.app_injection(dk) or hub.metadata_enrichment(dk)

    def valid(self) -> bool:
        return not any(
            labels.selector_errors(s, "") for s in (self.oneagent, self.enrichment) if s is not None
        )

    def matches(self, namespace_name: str, namespace_labels: Mapping[str, Any]) -> bool:
        if not self.takes_part or hub.ignores(self.ignored, namespace_name):
            return False
        if self.oneagent is not None and labels.matches(self.oneagent, namespace_labels):
            return True
        return self.enrichment is not None and labels.matches(self.enrichment, namespace_labels)


def conflicts(
    dk: DynaKube, dynakubes: Sequence[DynaKube], namespaces: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The namespaces two DynaKubes select (this object replacing its cached self), or [] when a selector of any
    DynaKube is invalid (upstream's scan gives up and passes)."""
    own = hub.name(dk)
    ordered = [dk if hub.name(d) == own else hub.to_hub(d) for d in dynakubes]
    if not any(hub.name(d) == own for d in dynakubes):
        ordered.append(dk)
    matchers = [_Matcher(d) for d in ordered]
    if not all(m.valid() for m in matchers):
        return []
    found = []
    for namespace in namespaces:
        meta = as_map(namespace.get("metadata"))
        ns_name, ns_labels = as_str(meta.get("name")), as_map(meta.get("labels"))
        if sum(1 for m in matchers if m.matches(ns_name, ns_labels)) > 1:
            found.append(ns_name)
    return found


def conflicting_namespace_selector(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.app_injection(dk) and not hub.metadata_enrichment(dk):
        return None
    found = conflicts(dk, ctx.dynakubes, ctx.namespaces)
    if not found:
        return None
    listed = ", ".join(sorted(found)[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    return f"{CONFLICT}\nNamespaces selected by more than one DynaKube: {listed}."
