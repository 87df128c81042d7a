"""Which /inject answers get a Kubernetes Event, and on what object.

``record`` runs after every /inject answer that is not a dry run and hands the Events it deserves to an
``EventSink`` (the rate-limited recorder of ``webhook.controllers.events``), whose ``record`` only queues them:

- the upstream Events the decision names (INJECTION-CONTRACT.md section 8), with upstream's reasons, types and
  messages (also their ``action``, as upstream v1.9+ writes them), on the DynaKube: ``Inject`` (Normal, first injection), ``UpdatePod`` (Normal, reinvocation that
  injected new containers), ``MissingDynakube`` (Warning, the namespace names a DynaKube that does not exist);
- ours, ``OneAgentInjectionSkipped`` (Warning): OneAgent left out because the DynaKube's connection info is
  incomplete (EmptyConnectionInfo, EmptyTenantUUID, UnknownCodeModule), recorded on the pod's controlling owner
  (a pod created by a controller has no name yet), or, for a pod without one, on the DynaKube.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from webhook import dynakube as dk
from webhook.admission.review import Answer, Review
from webhook.mutation import pod as pods
from webhook.ownerref import controller_of
from webhook.state.store import Store
from webhook.tolerant import as_map

REASON_SKIPPED = "OneAgentInjectionSkipped"
ACTION_INJECT = "InjectOneAgent"  # the skip Event's action (upstream's Events have their message as action)
WARNING = "Warning"
NORMAL = "Normal"
EVENT_REASONS = frozenset((*pods.CONNECTION_INFO_REASONS, pods.SKIP_MISSING_DYNAKUBE))
UPSTREAM_EVENTS = {
    pods.EVENT_INJECT: (NORMAL, "Injecting the necessary info into pod {pod} in namespace {namespace}"),
    pods.EVENT_UPDATE_POD: (NORMAL, "Updating pod {pod} in namespace {namespace} with missing containers"),
    pods.EVENT_MISSING_DYNAKUBE: (
        WARNING,
        "Namespace '{webhook_namespace}' is assigned to DynaKube instance '{dynakube}' but this instance "
        "doesn't exist",
    ),
}
DEFAULT_DYNAKUBE_API_VERSION = "dynatrace.com/v1beta2"


class EventSink(Protocol):
    def record(
        self,
        regarding: Mapping[str, str],
        reason: str,
        message: str,
        event_type: str = WARNING,
        *,
        action: str = "",
    ) -> bool: ...


def _controller(pod: Mapping[str, Any], namespace: str) -> dict[str, str] | None:
    """The pod's controlling owner as the object an Event regards (None without one, or without its apiVersion)."""
    owner = controller_of(as_map(pod.get("metadata")))
    if owner is None or not owner.api_version:
        return None
    involved = {"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name}
    if owner.uid:
        involved["uid"] = owner.uid
    involved["namespace"] = namespace
    return involved


def skip_event(review: Review, answer: Answer, store: Store) -> tuple[dict[str, str], str] | None:
    """(regarding object, message) for an /inject answer that deserves an Event, else None.

    Dry-run admissions get none: nothing was created. A pod whose DynaKube is missing gets upstream's
    ``MissingDynakube`` Event on the DynaKube (``upstream_event``) as well as this one on its owner."""
    if review.dry_run or not answer.reasons:
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
    involved = _controller(pod, namespace) or _dynakube_ref(name, dynakube, store)
    return involved, message


def _dynakube_ref(name: str, dynakube: Mapping[str, Any] | None, store: Store) -> dict[str, str]:
    involved = {
        "apiVersion": (dk.api_version(dynakube) if dynakube else "") or _any_api_version(store),
        "kind": "DynaKube",
        "name": name,
        "namespace": store.namespace,
    }
    uid = ((dynakube or {}).get("metadata") or {}).get("uid")
    if isinstance(uid, str) and uid:
        involved["uid"] = uid
    return involved


def upstream_event(
    review: Review, answer: Answer, store: Store
) -> tuple[dict[str, str], str, str, str] | None:
    """(regarding object, reason, message, type) of the upstream Event the answer names, else None."""
    if review.dry_run or answer.event not in UPSTREAM_EVENTS:
        return None
    event_type, template = UPSTREAM_EVENTS[answer.event]
    pod = review.object if isinstance(review.object, Mapping) else {}
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), Mapping) else {}
    generate_name, pod_namespace = (meta or {}).get("generateName"), (meta or {}).get("namespace")
    message = template.format(
        pod=generate_name if isinstance(generate_name, str) else "",
        namespace=pod_namespace if isinstance(pod_namespace, str) and pod_namespace else review.namespace,
        webhook_namespace=store.namespace,
        dynakube=answer.target,
    )
    dynakube = store.dynakube(answer.target) if answer.target else None
    return _dynakube_ref(answer.target, dynakube, store), answer.event, message, event_type


def _any_api_version(store: Store) -> str:
    for obj in store.dynakubes():
        version = dk.api_version(obj)
        if version:
            return version
    return DEFAULT_DYNAKUBE_API_VERSION


def record_skip(recorder: EventSink, review: Review, answer: Answer, store: Store) -> None:
    """Our ``OneAgentInjectionSkipped`` Event, for the answers above."""
    if not answer.reasons:
        return
    event = skip_event(review, answer, store)
    if event is not None:
        recorder.record(event[0], REASON_SKIPPED, event[1], action=ACTION_INJECT)


def record(recorder: EventSink, review: Review, answer: Answer, store: Store) -> None:
    """The hook after /inject: at most two ``put_nowait`` calls, nothing for most answers."""
    if review.dry_run or not (answer.event or answer.reasons):
        return
    upstream = upstream_event(review, answer, store)
    if upstream is not None:
        recorder.record(upstream[0], upstream[1], upstream[2], upstream[3])
    record_skip(recorder, review, answer, store)
