"""Request-level handlers: a decoded Review and the cached state in, an Answer out. No I/O here.

Each handler is total: whatever the review holds, it returns an Answer. ``/inject`` never denies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from webhook import dynakube as dk
from webhook import validation
from webhook.admission.review import Answer, Review, allowed, denied, patched
from webhook.mutation import namespace as namespaces
from webhook.mutation import pod as pods
from webhook.state.store import DYNAKUBES, Store

log = logging.getLogger(__name__)


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
        namespace, dynakube = store.pod_state(ns_name)
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
    """``/label-ns``: add, keep or remove the DynaKube instance label of a Namespace on CREATE and UPDATE.

    Allowed with a JSON patch, allowed unchanged, or denied (400) when two or more DynaKubes match.
    """
    if review.operation not in ("CREATE", "UPDATE"):
        return allowed(
            f"operation {review.operation or 'none'} is not handled by /label-ns",
            outcome=namespaces.SKIPPED,
            reasons=(namespaces.REASON_UNSUPPORTED_OPERATION,),
        )
    obj = review.object
    if (
        not isinstance(obj, dict)
        or _kind(review) not in ("Namespace", "")
        or obj.get("kind", "Namespace") != "Namespace"
    ):
        return allowed(
            "object is not a Namespace",
            outcome=namespaces.SKIPPED,
            reasons=(namespaces.REASON_NOT_A_NAMESPACE,),
        )
    if not store.is_synced(DYNAKUBES):
        # without the DynaKubes a missing match cannot be told from a missing cache: change nothing
        return allowed(
            "DynaKubes are not loaded yet; namespace left unchanged",
            outcome=namespaces.SKIPPED,
            reasons=(namespaces.REASON_CACHE_NOT_SYNCED,),
        )
    fallback = review.request.get("name")
    try:
        decision = namespaces.decide(
            obj,
            store.dynakubes(),
            webhook_namespace=store.namespace,
            namespace_name=fallback if isinstance(fallback, str) else review.namespace,
        )
    except Exception as err:  # a bug must not block namespaces: admit unchanged and say why
        log.exception("namespace mapping failed")
        return allowed(f"namespace not mapped because {err}", outcome="failed", reasons=(type(err).__name__,))
    if not decision.allowed:
        return denied(decision.message, code=400, reasons=decision.reasons, target=decision.dynakube)
    return patched(
        decision.ops,
        decision.message,
        outcome=decision.outcome,
        reasons=decision.reasons,
        target=decision.dynakube,
    )


def validate_dynakube(review: Review, store: Store) -> Answer:
    """``/validate``: DynaKube CREATE and UPDATE. Errors deny (403 Forbidden, as upstream's controller-runtime
    ``Denied``) with the numbered summary; warnings go to ``response.warnings``. DELETE is always allowed."""
    operation = review.operation
    if operation not in ("CREATE", "UPDATE"):
        return allowed(outcome="skipped", reasons=("UnsupportedOperation",))
    kind = _kind(review)
    obj = review.object
    if kind not in ("DynaKube", ""):
        return allowed(
            f"{kind} objects are not validated by /validate", outcome="skipped", reasons=("NotADynaKube",)
        )
    if not isinstance(obj, dict):
        message = f"{operation} request has no DynaKube object; send the DynaKube as request.object"
        return denied(validation.summary([message]), code=400, reasons=("NoObject",))
    old = review.old_object if operation == "UPDATE" and isinstance(review.old_object, dict) else None
    context = validation.Context(
        operation=operation,
        old=old,
        dynakubes=store.dynakubes(),
        namespaces=store.namespaces(),
        webhook_namespace=store.namespace,
    )
    result = validation.validate(obj, context)
    if result.errors:
        return denied(
            validation.summary(result.errors),
            code=403,
            warnings=result.warnings,
            reasons=tuple(result.failed),
            target=dk.name(obj),
        )
    return allowed(
        warnings=result.warnings, outcome="warned" if result.warnings else "allowed", target=dk.name(obj)
    )
