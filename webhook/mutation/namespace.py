"""The ``/label-ns`` decision for namespaces (pure, no I/O).

A namespace belongs to the DynaKube whose app-injection ``namespaceSelector`` (or, when metadata enrichment is
enabled, ``spec.metadataEnrichment.namespaceSelector``) selects it; the label
``dynakube.internal.dynatrace.com/instance=<name>`` records that, and the ``/inject`` webhook reads it.

Rules (upstream's namespace mapper, v1.3/v1.4):
- the webhook's own namespace is never labelled;
- a change made by the operator's service account (``system:serviceaccount:<webhook namespace>:<name>``,
  default name ``dynatrace-operator``) is answered allowed, unchanged (upstream v1.10: the operator maps
  namespaces itself from the DynaKube's side);
- a DynaKube ignores the namespaces matched by its ``feature.dynatrace.com/ignored-namespaces`` patterns. The
  patterns are searched anywhere in the name (``re.search``), as Go's ``regexp.MatchString`` does; the
  defaults carry their own ``^``/``$`` anchors. A pattern that does not compile is skipped (and logged);
- a DynaKube only takes part when it injects (``cloudNativeFullStack`` or ``applicationMonitoring``) or has
  metadata enrichment enabled; an absent or empty selector selects every namespace; an invalid selector
  selects nothing (and is logged);
- exactly one DynaKube matches: the label names it; none matches: a label naming a DynaKube that no longer
  matches it (or no longer exists) is removed; two or more match: the request is denied.

The same functions serve the background relabeler (``webhook.controllers.relabel``) and the namespace-conflict check of
``/validate``, so all three agree on what "matches" means.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook import dynakube as dk
from webhook.mutation.patch import Op, Patch
from webhook.selectors import InvalidSelector, Selector, validate

log = logging.getLogger(__name__)

CONFLICT_MESSAGE = (
    "namespace matches two or more DynaKubes which is unsupported. "
    "refine the labels on your namespace metadata or DynaKube/CodeModules specification"
)

# outcomes (bounded: they label metrics)
LABELED = "labeled"
UNLABELED = "unlabeled"
UNCHANGED = "unchanged"
DENIED = "denied"
SKIPPED = "skipped"

# reasons (bounded)
REASON_UNSUPPORTED_OPERATION = "UnsupportedOperation"
REASON_NOT_A_NAMESPACE = "NotANamespace"
REASON_WEBHOOK_NAMESPACE = "WebhookNamespace"
REASON_CACHE_NOT_SYNCED = "CacheNotSynced"
REASON_IGNORED = "IgnoredNamespace"
REASON_MATCH = "MatchingDynaKube"
REASON_NO_MATCH = "NoMatchingDynaKube"
REASON_CONFLICT = "ConflictingDynaKubes"
REASON_OPERATOR = "OperatorServiceAccount"

# the Dynatrace Operator's service account; its namespace changes are not mapped (upstream v1.10)
DEFAULT_OPERATOR_SERVICE_ACCOUNT = "dynatrace-operator"

LABELS_PATH = ("metadata", "labels")

# Warnings about a broken DynaKube come on every namespace request; log each distinct one once.
_warned: set[tuple[str, str]] = set()
_WARNED_MAX = 1024


def _warn_once(dynakube_name: str, message: str) -> None:
    key = (dynakube_name, message)
    if key in _warned:
        return
    if len(_warned) >= _WARNED_MAX:
        _warned.clear()
    _warned.add(key)
    log.warning("DynaKube %r: %s", dynakube_name, message)


@functools.lru_cache(maxsize=256)
def _ignore_rules(raw: str | None, dk_namespace: str) -> tuple[tuple[re.Pattern[str], ...], tuple[str, ...]]:
    """Compiled ignored-namespaces patterns for one annotation value, and the problems found on the way."""
    patterns, error = dk.parse_ignored_namespaces(raw, dk_namespace)
    problems = [error] if error else []
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as err:
            problems.append(f"ignored-namespaces pattern {pattern!r} is not a valid regex ({err}); skipped")
    return tuple(compiled), tuple(problems)


def takes_part(dynakube: Mapping[str, Any]) -> bool:
    """A DynaKube that maps namespaces: it injects OneAgent or enriches metadata."""
    return dk.injection_enabled(dynakube) or dk.metadata_enrichment_selector(dynakube) is not None


@dataclass(frozen=True)
class Rules:
    """What one DynaKube needs to decide about any namespace, worked out once (``rules_of``)."""

    name: str
    takes_part: bool
    ignore: tuple[re.Pattern[str], ...] = ()
    selectors: tuple[Selector, ...] = ()  # valid selectors only; None or {} selects every namespace

    def ignores(self, namespace_name: str) -> bool:
        return any(pattern.search(namespace_name) for pattern in self.ignore)

    def selects(self, labels: Mapping[str, Any]) -> bool:
        return any(selector.matches(labels) for selector in self.selectors)

    def evaluate(self, namespace_name: str, labels: Mapping[str, Any]) -> tuple[bool, bool, bool]:
        """(takes part, ignores the namespace, selects it)."""
        if not self.takes_part:
            return False, False, False
        if self.ignores(namespace_name):
            return True, True, False
        return True, False, self.selects(labels)

    def matches(self, namespace_name: str, labels: Mapping[str, Any]) -> bool:
        return self.evaluate(namespace_name, labels)[2]


# Rules by DynaKube object identity. The Store replaces DynaKube dicts and never edits them, so an object seen
# again is unchanged; the entry keeps the object alive, so its id cannot be reused while cached.
_rules_cache: dict[int, tuple[Mapping[str, Any], str, Rules]] = {}
_RULES_CACHE_MAX = 256


def rules_of(dynakube: Mapping[str, Any], webhook_namespace: str = "") -> Rules:
    """The Rules of a DynaKube (cached per object: treat DynaKube dicts as immutable once passed here)."""
    hit = _rules_cache.get(id(dynakube))
    if hit is not None and hit[0] is dynakube and hit[1] == webhook_namespace:
        return hit[2]
    rules = _rules(dynakube, webhook_namespace)
    if len(_rules_cache) >= _RULES_CACHE_MAX:
        _rules_cache.clear()
    _rules_cache[id(dynakube)] = (dynakube, webhook_namespace, rules)
    return rules


def _rules(dynakube: Mapping[str, Any], webhook_namespace: str) -> Rules:
    """Work out the Rules; problems (bad patterns, invalid selectors) are logged once each."""
    name = dk.name(dynakube)
    if not takes_part(dynakube):
        return Rules(name, False)
    raw = dk.annotations_of(dynakube).get(dk.FEATURE_IGNORED_NAMESPACES)
    if raw is not None and not isinstance(raw, str):
        raw = repr(raw)  # hashable; parse_ignored_namespaces reports it as not a JSON list
    compiled, problems = _ignore_rules(raw, dk.namespace(dynakube) or webhook_namespace)
    for problem in problems:
        _warn_once(name, problem)
    candidates = []
    if dk.injection_enabled(dynakube):
        candidates.append(("namespaceSelector", dk.namespace_selector(dynakube)))
    enrichment = dk.metadata_enrichment_selector(dynakube)
    if enrichment is not None:
        candidates.append(("metadataEnrichment.namespaceSelector", enrichment))
    selectors = []
    for what, selector in candidates:
        try:
            validate(selector)
        except InvalidSelector as err:
            _warn_once(name, f"invalid {what} selects no namespace: {err}")
            continue
        selectors.append(Selector(selector))
    return Rules(name, True, compiled, tuple(selectors))


def is_ignored(dynakube: Mapping[str, Any], namespace_name: str, webhook_namespace: str = "") -> bool:
    """True when the DynaKube's ignored-namespaces patterns match ``namespace_name`` (searched anywhere)."""
    return rules_of(dynakube, webhook_namespace).ignores(namespace_name)


def selects(dynakube: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Whether the DynaKube's selectors select a namespace with ``labels`` (ignored namespaces aside)."""
    return rules_of(dynakube).selects(labels)


@dataclass(frozen=True)
class Desired:
    """What the instance label of one namespace should be."""

    value: str | None  # the DynaKube name, or None: no label
    matching: tuple[str, ...] = ()
    ignored: bool = False  # every DynaKube that takes part ignores this namespace

    @property
    def conflict(self) -> bool:
        return len(self.matching) > 1


def labels_of(namespace: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = namespace.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def name_of(namespace: Mapping[str, Any]) -> str:
    meta = namespace.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""


def desired(
    dynakubes: Sequence[Mapping[str, Any]],
    namespace_name: str,
    labels: Mapping[str, Any],
    webhook_namespace: str = "",
) -> Desired:
    """The instance label a namespace should carry, given every DynaKube.

    Conflicts keep the current value (the caller denies or leaves the namespace alone).
    """
    return desired_by_rules([rules_of(d, webhook_namespace) for d in dynakubes], namespace_name, labels)


def desired_by_rules(rules: Sequence[Rules], namespace_name: str, labels: Mapping[str, Any]) -> Desired:
    """``desired`` with the Rules worked out beforehand (once for many namespaces)."""
    found: list[str] = []
    taking_part = ignoring = 0
    for rule in rules:
        if not rule.name:
            continue
        part, ignores, selected = rule.evaluate(namespace_name, labels)
        taking_part += part
        ignoring += ignores
        if selected:
            found.append(rule.name)
    found.sort()
    current = labels.get(dk.INSTANCE_LABEL)
    current = current if isinstance(current, str) else None
    if len(found) == 1:
        return Desired(found[0], tuple(found))
    if len(found) > 1:
        return Desired(current, tuple(found))
    return Desired(None, (), taking_part > 0 and ignoring == taking_part)


@dataclass
class Decision:
    outcome: str
    reasons: tuple[str, ...] = ()
    message: str = ""
    dynakube: str = ""
    ops: list[Op] = field(default_factory=list)
    allowed: bool = True


def operator_username(webhook_namespace: str, service_account: str) -> str:
    """The user name the operator's service account has in a request: ``system:serviceaccount:<ns>:<name>``."""
    return f"system:serviceaccount:{webhook_namespace}:{service_account}"


def from_operator(username: Any, webhook_namespace: str, service_account: str) -> bool:
    """The request was made by the operator's service account (upstream v1.10: exact, case-sensitive match of
    ``request.userInfo.username``; no service account name configured: never)."""
    return bool(service_account) and username == operator_username(webhook_namespace, service_account)


def decide(
    namespace: Mapping[str, Any],
    dynakubes: Sequence[Mapping[str, Any]],
    *,
    webhook_namespace: str,
    namespace_name: str = "",
) -> Decision:
    """The answer for one Namespace object (CREATE or UPDATE). Total: any dict in, a Decision out."""
    name = name_of(namespace) or namespace_name
    if name and name == webhook_namespace:
        return Decision(
            SKIPPED, (REASON_WEBHOOK_NAMESPACE,), f"namespace {name} is the webhook's own namespace"
        )
    labels = labels_of(namespace)
    want = desired(dynakubes, name, labels, webhook_namespace)
    current = labels.get(dk.INSTANCE_LABEL)
    if want.conflict:
        message = f"{CONFLICT_MESSAGE} (namespace {name!r} matches DynaKubes: {', '.join(want.matching)})"
        return Decision(DENIED, (REASON_CONFLICT,), message, ", ".join(want.matching), allowed=False)
    patch = Patch(namespace)
    if want.value is not None:
        if current == want.value:
            return Decision(UNCHANGED, (REASON_MATCH,), "", want.value)
        patch.set_in_map(LABELS_PATH, dk.INSTANCE_LABEL, want.value)
        return Decision(
            LABELED,
            (REASON_MATCH,),
            f"namespace {name} is mapped to DynaKube {want.value}",
            want.value,
            patch.ops,
        )
    if dk.INSTANCE_LABEL in labels:
        patch.remove_from_map(LABELS_PATH, dk.INSTANCE_LABEL)
        return Decision(
            UNLABELED,
            (REASON_IGNORED if want.ignored else REASON_NO_MATCH,),
            f"namespace {name} no longer matches DynaKube {current}",
            str(current),
            patch.ops,
        )
    if want.ignored:
        return Decision(SKIPPED, (REASON_IGNORED,), f"namespace {name} is ignored by every DynaKube")
    return Decision(UNCHANGED, (REASON_NO_MATCH,))
