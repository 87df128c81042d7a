"""Request-level handlers: a decoded Review and the cached state in, an Answer out. No I/O here.

Each handler is total: whatever the review holds, it returns an Answer. ``/inject`` never denies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from webhook import dynakube as dk
from webhook.admission import Answer, Review, allowed, patched
from webhook.mutation import pod as pods
from webhook.state.store import Store

log = logging.getLogger(__name__)

Handler = Callable[[Review], Answer]


def _kind(review: Review) -> str:
    kind = review.request.get("kind")
    return str(kind.get("kind", "")) if isinstance(kind, Mapping) else ""


def inject(review: Review, store: Store, settings: pods.Settings) -> Answer:
    obj = review.object
    if review.operation != "CREATE":
        return allowed(
            f"operation {review.operation or 'none'} is not handled by /inject",
            outcome=pods.SKIPPED,
            reasons=(pods.SKIP_OPERATION,),
        )
    if not isinstance(obj, dict) or _kind(review) not in ("Pod", "") or obj.get("kind", "Pod") != "Pod":
        return allowed("object is not a Pod", outcome=pods.SKIPPED, reasons=(pods.SKIP_NOT_A_POD,))
    meta = obj.get("metadata")
    ns_name = review.namespace or (str(meta.get("namespace") or "") if isinstance(meta, Mapping) else "")
    name = pods.pod_name(obj) or "<unnamed>"
    try:
        namespace = store.namespace_object(ns_name)
        labels = (namespace or {}).get("metadata", {}).get("labels") or {}
        dynakube_name = labels.get(dk.INSTANCE_LABEL)
        dynakube = store.dynakube(dynakube_name) if isinstance(dynakube_name, str) else None
        result = pods.decide(obj, namespace, dynakube, settings, namespace_name=ns_name)
    except Exception as err:  # never block a pod: admit unchanged and say why
        log.exception("injection failed for pod %s/%s", ns_name, name)
        return allowed(
            f"Failed to inject into pod: {name} because {err}",
            outcome="failed",
            reasons=(type(err).__name__,),
        )
    return patched(
        result.ops, result.message, outcome=result.outcome, reasons=result.reasons, target=result.dynakube
    )


def label_namespace(review: Review, store: Store) -> Answer:
    return allowed("namespace labelling is not evaluated by this version", outcome="allowed")


def validate_dynakube(review: Review, store: Store) -> Answer:
    return allowed("DynaKube validation is not evaluated by this version", outcome="allowed")


def object_name(review: Review) -> str:
    obj: Any = review.object
    if isinstance(obj, Mapping):
        return pods.pod_name(obj)
    name = review.request.get("name")
    return name if isinstance(name, str) else ""
