"""Which /inject answers get a Kubernetes Event, and on what object.

``record_skip`` runs after every /inject answer: for the few that deserve an Event it hands one to an
``EventSink`` (the rate-limited recorder of ``webhook.controllers.events``), whose ``record`` only queues it. Pods
skipped because the DynaKube's connection info is incomplete (EmptyConnectionInfo, EmptyTenantUUID,
UnknownCodeModule) or because the namespace is mapped to a DynaKube that does not exist (MissingDynakube) get
one, recorded on the pod's controlling owner (a pod created by a controller has no name yet), or, for a pod
without one, on the DynaKube in the webhook's namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from webhook import dynakube as dk
from webhook.admission.review import Answer, Review
from webhook.mutation import pod as pods
from webhook.state.store import Store

REASON_SKIPPED = "OneAgentInjectionSkipped"
WARNING = "Warning"
EVENT_REASONS = frozenset((*pods.CONNECTION_INFO_REASONS, pods.SKIP_MISSING_DYNAKUBE))
DEFAULT_DYNAKUBE_API_VERSION = "dynatrace.com/v1beta2"


class EventSink(Protocol):
    def record(
        self, involved: Mapping[str, str], reason: str, message: str, event_type: str = WARNING
    ) -> bool: ...


def _controller(pod: Mapping[str, Any], namespace: str) -> dict[str, str] | None:
    meta = pod.get("metadata")
    owners = meta.get("ownerReferences") if isinstance(meta, Mapping) else None
    for owner in owners if isinstance(owners, list) else ():
        if isinstance(owner, Mapping) and owner.get("controller") is True:
            ref = {k: owner.get(k) for k in ("apiVersion", "kind", "name", "uid")}
            if all(isinstance(v, str) and v for v in (ref["apiVersion"], ref["kind"], ref["name"])):
                return {**{k: str(v) for k, v in ref.items() if isinstance(v, str)}, "namespace": namespace}
    return None


def skip_event(review: Review, answer: Answer, store: Store) -> tuple[dict[str, str], str] | None:
    """(involvedObject, message) for an /inject answer that deserves an Event, else None.

    Dry-run admissions get none: nothing was created."""
    if answer.outcome != pods.SKIPPED or review.dry_run or not answer.reasons:
        return None
    reasons = [r for r in answer.reasons if r in EVENT_REASONS]
    if not reasons:
        return None
    pod = review.object if isinstance(review.object, Mapping) else {}
    meta = pod.get("metadata")
    namespace = review.namespace or (str(meta.get("namespace") or "") if isinstance(meta, Mapping) else "")
    name = answer.target
    dynakube = store.dynakube(name) if name else None
    if pods.SKIP_MISSING_DYNAKUBE in reasons:
        message = (
            f"OneAgent not injected: namespace {namespace!r} is mapped to DynaKube {name!r}, which does not "
            f"exist (network zone unknown; reason {pods.SKIP_MISSING_DYNAKUBE})"
        )
    else:
        zone = dk.network_zone(dynakube) if dynakube else ""
        message = (
            f"OneAgent not injected: DynaKube {name!r} (network zone {zone or '(default)'!r}) has incomplete "
            f"connection info ({', '.join(reasons)}); pods created before it is complete run without OneAgent"
        )
    involved = _controller(pod, namespace)
    if involved is None:
        involved = {
            "apiVersion": (dk.api_version(dynakube) if dynakube else "") or _any_api_version(store),
            "kind": "DynaKube",
            "name": name,
            "namespace": store.namespace,
        }
        uid = ((dynakube or {}).get("metadata") or {}).get("uid")
        if isinstance(uid, str) and uid:
            involved["uid"] = uid
    return involved, message


def _any_api_version(store: Store) -> str:
    for obj in store.dynakubes():
        version = dk.api_version(obj)
        if version:
            return version
    return DEFAULT_DYNAKUBE_API_VERSION


def record_skip(recorder: EventSink, review: Review, answer: Answer, store: Store) -> None:
    """The hook after /inject: cheap for every answer that is not one of the skips above."""
    if answer.outcome != pods.SKIPPED:
        return
    event = skip_event(review, answer, store)
    if event is not None:
        recorder.record(event[0], REASON_SKIPPED, event[1])
