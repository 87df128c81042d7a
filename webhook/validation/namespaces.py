"""Namespace selectors (``namespace_selector.go``): the OneAgent selector is a valid label selector, and no
namespace is selected by two DynaKubes (upstream's namespace mapper on the cached namespaces and DynaKubes);
our extra warning on an invalid metadata-enrichment selector."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.selectors import Selector
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
    """What upstream's namespace mapper needs of one DynaKube (hub version), worked out once."""

    def __init__(self, dk: DynaKube, otlp: bool = False) -> None:
        self.name = hub.name(dk)
        otlp_on = otlp and _otlp_enabled(dk)
        self.takes_part = hub.app_injection(dk) or hub.metadata_enrichment(dk) or otlp_on
        self.ignored = hub.ignored_namespace_patterns(dk) if self.takes_part else []
        # an absent selector is the empty one, which selects every namespace
        selectors = []
        if hub.app_injection(dk):
            selectors.append(hub.oneagent_namespace_selector(dk) or {})
        if hub.metadata_enrichment(dk):
            selectors.append(hub.enrichment_namespace_selector(dk) or {})
        if otlp_on:
            selectors.append(
                as_map(hub.spec(dk).get("otlpExporterConfiguration")).get("namespaceSelector") or {}
            )
        self.selectors = tuple(selectors)
        self.valid = not any(labels.selector_errors(s, "") for s in self.selectors)
        # cached selectors may hold what selector_errors reads as empty (matchLabels: 1.0): the engine reads
        # them the same way
        self.predicates = tuple(Selector(s).matches for s in self.selectors) if self.valid else ()

    def candidates(self, index: Mapping[tuple[str, str], list[int]], count: int) -> Iterable[int]:
        """The namespaces (by position) this DynaKube can select: those holding the first matchLabels pair of
        each selector, or all of them when a selector has no matchLabels."""
        found: set[int] = set()
        for selector in self.selectors:
            pairs = list(as_map(as_map(selector).get("matchLabels")).items())
            if not pairs:
                return range(count)
            found.update(index.get(pairs[0], ()))
        return sorted(found)

    def matches(self, namespace_name: str, namespace_labels: Mapping[str, Any]) -> bool:
        if hub.ignores(self.ignored, namespace_name):
            return False
        return any(selects(namespace_labels) for selects in self.predicates)


# Matchers of cached DynaKubes by object identity: the Store replaces DynaKube dicts and never edits them; the
# entry keeps its object alive, so the id cannot be reused while cached.
_matchers: dict[tuple[int, bool], tuple[DynaKube, _Matcher]] = {}
_MATCHERS_MAX = 1024


def _otlp_enabled(dk: DynaKube) -> bool:
    """``spec.otlpExporterConfiguration`` exports a signal (upstream v1.8 and later map its selector too)."""
    signals = as_map(as_map(hub.spec(dk).get("otlpExporterConfiguration")).get("signals"))
    return any(signals.get(s) is not None for s in ("traces", "metrics", "logs"))


def _matcher_of_cached(dk: DynaKube, otlp: bool = False) -> _Matcher:
    hit = _matchers.get((id(dk), otlp))
    if hit is not None and hit[0] is dk:
        return hit[1]
    matcher = _Matcher(hub.to_hub(dk), otlp)
    if len(_matchers) >= _MATCHERS_MAX:
        _matchers.clear()
    _matchers[(id(dk), otlp)] = (dk, matcher)
    return matcher


@dataclass
class _Baseline:
    """Which cached DynaKubes select which cached namespace: the same for every request until the cache
    changes, so it is worked out once per cache state (the last one is kept)."""

    key: tuple[tuple[int, ...], tuple[int, ...], bool]
    keep: tuple[Sequence[DynaKube], Sequence[Mapping[str, Any]]]  # holds the ids of ``key`` alive
    entries: list[tuple[str, Mapping[str, Any]]]  # namespace name and labels, by position
    index: dict[tuple[str, str], list[int]]  # (label, value) -> positions
    selected_by: list[list[str]]  # position -> names of the cached DynaKubes selecting it
    shared: list[int]  # positions selected by two or more cached DynaKubes
    invalid: set[str]  # cached DynaKubes whose selector cannot be converted


_last: list[_Baseline] = []


def _baseline(
    dynakubes: Sequence[DynaKube], namespaces: Sequence[Mapping[str, Any]], otlp: bool = False
) -> _Baseline:
    key = (tuple(map(id, dynakubes)), tuple(map(id, namespaces)), otlp)
    if _last and _last[0].key == key:
        return _last[0]
    entries: list[tuple[str, Mapping[str, Any]]] = []
    index: dict[tuple[str, str], list[int]] = {}
    for position, namespace in enumerate(namespaces):
        meta = as_map(namespace.get("metadata"))
        ns_labels = as_map(meta.get("labels"))
        entries.append((as_str(meta.get("name")), ns_labels))
        for pair in ns_labels.items():
            if isinstance(pair[1], str):
                index.setdefault(pair, []).append(position)
    selected_by: list[list[str]] = [[] for _ in entries]
    invalid = set()
    for matcher in (_matcher_of_cached(d, otlp) for d in dynakubes):
        if not matcher.valid:
            invalid.add(matcher.name)
        elif matcher.takes_part:
            for position in matcher.candidates(index, len(entries)):
                if matcher.matches(*entries[position]):
                    selected_by[position].append(matcher.name)
    shared = [position for position, names in enumerate(selected_by) if len(names) > 1]
    baseline = _Baseline(key, (dynakubes, namespaces), entries, index, selected_by, shared, invalid)
    _last[:] = [baseline]
    return baseline


def conflicts(
    dk: DynaKube,
    dynakubes: Sequence[DynaKube],
    namespaces: Sequence[Mapping[str, Any]],
    *,
    otlp: bool = False,
) -> list[str]:
    """The namespaces two DynaKubes select (this object replacing its cached self), in the order given, or []
    when a selector of any DynaKube is invalid (upstream's scan gives up and passes). ``otlp``: the OTLP
    exporter's namespace selector selects too (upstream v1.9 and later)."""
    own = hub.name(dk)
    base = _baseline(dynakubes, namespaces, otlp)
    mine = _Matcher(dk, otlp)
    if not mine.valid or base.invalid - {own}:
        return []

    def others(position: int) -> int:
        return sum(1 for name in base.selected_by[position] if name != own)

    found = {position for position in base.shared if others(position) > 1}
    if mine.takes_part:
        for position in mine.candidates(base.index, len(base.entries)):
            if position not in found and others(position) and mine.matches(*base.entries[position]):
                found.add(position)
    return [base.entries[position][0] for position in sorted(found)]


def conflicting_namespace_selector(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.app_injection(dk) and not hub.metadata_enrichment(dk):
        return None
    found = conflicts(dk, ctx.dynakubes, ctx.namespaces)
    if not found:
        return None
    listed = ", ".join(sorted(found)[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    return f"{CONFLICT}\nNamespaces selected by more than one DynaKube: {listed}."
