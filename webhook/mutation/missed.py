"""Pods the webhook never saw: pure, so ``explain`` and the reinjection controller share one rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook import dynakube as dk
from webhook.mutation.pod import (
    ANNOTATION_DYNAKUBE_INJECTED,
    ANNOTATION_DYNATRACE_INJECT,
    ANNOTATION_INJECTED,
    ANNOTATION_ONEAGENT_INJECT,
    OPENSHIFT_DEBUG_ANNOTATIONS,
)
from webhook.selectors import InvalidSelector
from webhook.selectors import matches as selector_matches
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

ANNOTATION_ENRICHMENT_INJECTED = "metadata-enrichment.dynatrace.com/injected"
INJECTION_ANNOTATIONS = (ANNOTATION_INJECTED, ANNOTATION_DYNAKUBE_INJECTED, ANNOTATION_ENRICHMENT_INJECTED)


def never_seen(meta: Mapping[str, Any], ns_labels: Mapping[str, Any], dynakube: Mapping[str, Any]) -> bool:
    """The webhook would have changed this pod (annotated at least), yet it carries no injection annotation.

    Conservative: a pod the webhook might have left unchanged (opted out, OneAgent off, OpenShift debug pod,
    a DynaKube mode without injection, an unselected namespace or an invalid selector) is never reported."""
    annotations = _map(meta.get("annotations"))
    if any(key in annotations for key in INJECTION_ANNOTATIONS) or meta.get("deletionTimestamp"):
        return False
    if _str(annotations.get(ANNOTATION_DYNATRACE_INJECT)).strip().lower() == "false":
        return False
    if all(key in annotations for key in OPENSHIFT_DEBUG_ANNOTATIONS):
        return False
    default = "true" if dk.automatic_injection(dynakube) else "false"
    if (_str(annotations.get(ANNOTATION_ONEAGENT_INJECT)) or default).strip().lower() == "false":
        return False
    if not dk.injection_enabled(dynakube):
        return False
    try:
        return selector_matches(dk.namespace_selector(dynakube), ns_labels)
    except (InvalidSelector, TypeError, KeyError, AttributeError):
        return False
