"""Namespace selectors: valid label selectors, and no namespace selected by this and another DynaKube.

The conflict check works on the cached namespaces and DynaKubes and uses the same matching as ``/label-ns``
(``webhook.mutation.namespace``): ignored namespaces, injection modes and metadata enrichment included. Only
conflicts involving the DynaKube under review count; one between two other DynaKubes does not block it.
"""

from __future__ import annotations

from typing import Any

from webhook import dynakube as dk
from webhook.mutation import namespace as mapping
from webhook.selectors import syntax_errors
from webhook.validation.base import Context, DynaKube

MAX_LISTED = 5


def _selectors(dynakube: DynaKube) -> list[tuple[str, Any]]:
    found = []
    if dk.injection_enabled(dynakube) or dk.namespace_selector(dynakube) is not None:
        where = (
            "spec.namespaceSelector"
            if dk.api_version(dynakube).endswith("/v1beta1")
            and dk.mode_spec(dynakube).get("namespaceSelector") is None
            else f"spec.oneAgent.{dk.mode(dynakube) or '<mode>'}.namespaceSelector"
        )
        found.append((where, dk.namespace_selector(dynakube)))
    enrichment = dk.spec(dynakube).get("metadataEnrichment")
    if isinstance(enrichment, dict) and enrichment.get("namespaceSelector") is not None:
        found.append(("spec.metadataEnrichment.namespaceSelector", enrichment.get("namespaceSelector")))
    return found


def invalid_namespace_selector(dynakube: DynaKube, ctx: Context) -> str | None:
    problems = []
    for where, selector in _selectors(dynakube):
        problems += [f"{where}: {e}" for e in syntax_errors(selector)]
    if problems:
        return (
            f"The namespace selector is not a valid label selector ({'; '.join(problems)}). Fix it: "
            "matchLabels maps label keys to values, matchExpressions entries have a key, an operator "
            "(In, NotIn, Exists, DoesNotExist) and, for In and NotIn, a non-empty list of values."
        )
    return None


def conflicting_namespace_selector(dynakube: DynaKube, ctx: Context) -> str | None:
    name = dk.name(dynakube)
    if not mapping.takes_part(dynakube):
        return None
    others = [
        rules
        for rules in (mapping.rules_of(d, ctx.webhook_namespace) for d in ctx.dynakubes if dk.name(d) != name)
        if rules.takes_part
    ]
    if not others:
        return None
    mine = mapping.rules_of(dynakube, ctx.webhook_namespace)
    conflicts: dict[str, list[str]] = {}  # namespace -> other DynaKubes selecting it
    for namespace in ctx.namespaces:
        ns_name = mapping.name_of(namespace)
        if not ns_name or ns_name == ctx.webhook_namespace:
            continue
        labels = mapping.labels_of(namespace)
        if not mine.matches(ns_name, labels):
            continue
        clash = [o.name for o in others if o.matches(ns_name, labels)]
        if clash:
            conflicts[ns_name] = clash
    if not conflicts:
        return None
    listed = sorted(conflicts)[:MAX_LISTED]
    more = len(conflicts) - len(listed)
    detail = ", ".join(f"{n} (also selected by {', '.join(sorted(conflicts[n]))})" for n in listed)
    if more:
        detail += f" and {more} more"
    return (
        f"The namespace selector selects namespaces that another DynaKube already selects: {detail}. "
        "A namespace can belong to one DynaKube only: narrow the namespaceSelector of this DynaKube or of "
        "the other one, or change the labels of those namespaces."
    )
