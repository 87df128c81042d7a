"""Request-level handlers: a decoded Review and the cached state in, an Answer out. No I/O here.

Each handler is total: whatever the review holds, it returns an Answer. ``/inject`` never denies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from webhook import dynakube as dk
from webhook import validation
from webhook.admission.review import Answer, Review, allowed, denied, patched
from webhook.decision import Known, decide_from_store
from webhook.mutation import namespace as namespaces
from webhook.mutation import pod as pods
from webhook.state.kinds import PLATFORM_TOKEN, TOKEN_KEYS
from webhook.state.store import DYNAKUBES, ISTIO_API, SECRETS, Store
from webhook.tolerant import as_map

log = logging.getLogger(__name__)


def _kind(review: Review) -> str:
    kind = review.request.get("kind")
    return str(kind.get("kind", "")) if isinstance(kind, Mapping) else ""


def pod_namespace(review: Review) -> str:
    """The namespace of the pod under review (the request's, else the object's)."""
    meta = review.object.get("metadata") if isinstance(review.object, dict) else None
    return review.namespace or (str(meta.get("namespace") or "") if isinstance(meta, Mapping) else "")


def inject(
    review: Review,
    store: Store,
    settings: pods.Settings,
    known: Known | None = None,
) -> Answer:
    """``/inject``. ``known(namespace)``: init Secrets created on first need that the cache may not show yet."""
    obj = review.object
    if review.operation != "CREATE":
        return allowed(
            f"operation {review.operation or 'none'} is not handled by /inject",
            outcome=pods.SKIPPED,
            reasons=(pods.SKIP_OPERATION,),
        )
    if not isinstance(obj, dict) or _kind(review) not in ("Pod", "") or obj.get("kind", "Pod") != "Pod":
        return allowed("object is not a Pod", outcome=pods.SKIPPED, reasons=(pods.SKIP_NOT_A_POD,))
    ns_name = pod_namespace(review)
    try:
        result = decide_from_store(obj, store, settings, namespace=ns_name, known=known)
    except Exception as err:  # never block a pod: admit unchanged and say why
        name = pods.pod_name(obj) or "<unnamed>"
        log.exception("injection failed for pod %s/%s", ns_name, name)
        return allowed(
            f"Failed to inject into pod: {name} because {err}",
            outcome="failed",
            reasons=(type(err).__name__,),
        )
    return patched(
        result.ops,
        result.message,
        outcome=result.outcome,
        reasons=result.reasons,
        target=result.dynakube,
        event=result.event,
    )


def _username(review: Review) -> Any:
    user = review.request.get("userInfo")
    return user.get("username") if isinstance(user, Mapping) else None


def label_namespace(
    review: Review,
    store: Store,
    operator_service_account: str = namespaces.DEFAULT_OPERATOR_SERVICE_ACCOUNT,
) -> Answer:
    """``/label-ns``: add, keep or remove the DynaKube instance label of a Namespace on CREATE and UPDATE.

    Allowed with a JSON patch, allowed unchanged, or denied (400) when two or more DynaKubes match. A change
    made by the operator's service account (in the webhook's namespace) is allowed unchanged, as upstream v1.10.
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
    fallback = review.request.get("name")
    name = namespaces.name_of(obj) or (fallback if isinstance(fallback, str) else review.namespace)
    if name != store.namespace and namespaces.from_operator(
        _username(review), store.namespace, operator_service_account
    ):
        return allowed(
            "namespace changed by the operator, which maps it itself; left unchanged",
            outcome=namespaces.SKIPPED,
            reasons=(namespaces.REASON_OPERATOR,),
        )
    if not store.is_synced(DYNAKUBES):
        # without the DynaKubes a missing match cannot be told from a missing cache: change nothing
        return allowed(
            "DynaKubes are not loaded yet; namespace left unchanged",
            outcome=namespaces.SKIPPED,
            reasons=(namespaces.REASON_CACHE_NOT_SYNCED,),
        )
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


def _secret_reader(store: Store, namespace: str) -> Callable[[str], validation.SecretRead]:
    """What the proxy check reads: the cached Secrets of the webhook's namespace (upstream may GET only there)."""

    def read(name: str) -> validation.SecretRead:
        if namespace != store.namespace:
            return validation.SecretRead(
                error=f'secrets "{name}" is forbidden: the webhook reads Secrets in namespace '
                f'"{store.namespace}" only'
            )
        if not store.is_synced(SECRETS):
            return validation.SecretRead(error=f'secrets "{name}": the Secret cache is not loaded yet')
        secret = store.secret(name)
        if secret is None:
            return validation.SecretRead(error=f'secrets "{name}" not found')
        return validation.SecretRead(data=as_map(secret.get("data")))

    return read


def _tokens_reader(store: Store, namespace: str) -> Callable[[str], validation.TokensRead | None]:
    """What the token checks read of a tokens Secret: its key names and whether its API token is a platform token,
    from the cache of the webhook's namespace (None: not readable, as upstream's failed GET)."""

    def read(name: str) -> validation.TokensRead | None:
        secret = store.secret(name) if namespace == store.namespace and store.is_synced(SECRETS) else None
        if secret is None:
            return None
        keys = secret.get(TOKEN_KEYS)
        return validation.TokensRead(
            frozenset(k for k in keys if isinstance(k, str)) if isinstance(keys, list) else frozenset(),
            secret.get(PLATFORM_TOKEN) is True,
        )

    return read


def _object_namespace(review: Review, obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return review.namespace or (str(meta.get("namespace") or "") if isinstance(meta, Mapping) else "")


def validate(review: Review, store: Store, modules: validation.Modules | None = None) -> Answer:
    """``/validate`` and its upstream paths: DynaKubes and EdgeConnects, told apart by the request's kind."""
    kind = _kind(review)
    obj = review.object
    if kind == "EdgeConnect" or (kind == "" and isinstance(obj, dict) and obj.get("kind") == "EdgeConnect"):
        return validate_edgeconnect(review, modules or validation.Modules())
    return validate_dynakube(review, store, modules or validation.Modules())


def validate_edgeconnect(review: Review, modules: validation.Modules) -> Answer:
    """EdgeConnect CREATE and UPDATE: the checks of the release chosen by the object's version
    (``validation.dynakube.edgeconnect_checks_for``) on the new object, no warnings."""
    if review.operation not in ("CREATE", "UPDATE"):
        return allowed(outcome="skipped", reasons=("UnsupportedOperation",))
    obj = review.object
    if not isinstance(obj, dict):
        message = f"{review.operation} request has no EdgeConnect object; send it as request.object"
        return denied(validation.summary([message], "EdgeConnect"), code=400, reasons=("NoObject",))
    result = validation.validate_edgeconnect(
        obj, validation.Context(operation=review.operation, modules=modules)
    )
    if result.errors:
        return denied(
            validation.summary(result.errors, "EdgeConnect"),
            code=403,
            reasons=tuple(result.failed),
            target=dk.name(obj),
        )
    return allowed(outcome="allowed", target=dk.name(obj))


def validate_dynakube(review: Review, store: Store, modules: validation.Modules | None = None) -> Answer:
    """DynaKube CREATE and UPDATE. Errors deny (403 Forbidden, as upstream's controller-runtime ``Denied``) with
    the numbered summary; warnings go to ``response.warnings``, also on a denial. DELETE is always allowed.

    Everything the checks read comes from the cache: the DynaKubes and Secrets of the webhook's namespace (for
    an object in another namespace upstream's list and get are forbidden: the checks see none), all namespaces,
    and whether Istio's API is served."""
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
    namespace = _object_namespace(review, obj)
    context = validation.Context(
        operation=operation,
        old=old,
        dynakubes=store.dynakubes() if namespace == store.namespace else (),
        namespaces=store.namespaces(),
        webhook_namespace=store.namespace,
        modules=modules or validation.Modules(),
        secret=_secret_reader(store, namespace),
        istio=store.served.get(ISTIO_API),
        tokens=_tokens_reader(store, namespace),
        kubernetes_minor=store.kubernetes_minor,
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
