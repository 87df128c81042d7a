"""The ``/inject`` decision for one pod from the cache: the inputs of ``mutation.pod.decide`` assembled in one
place.

The admission edge (``admission.handlers.inject``) and ``explain`` (the CLI and ``POST /debug/decision``) both
decide through ``decide_from_store``, so what ``explain`` reports is what the webhook answers. No I/O: it reads
the Store only (``mutation`` may not import the cache, so this sits above both).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from webhook import dynakube as dk
from webhook.mutation import bootstrapper
from webhook.mutation import pod as pods
from webhook.state.store import Store
from webhook.tolerant import as_map

Known = Callable[[str], frozenset[str]]


def namespace_of(pod: Mapping[str, Any]) -> str:
    """The namespace a pod manifest names ("" when none)."""
    return str(as_map(pod.get("metadata")).get("namespace") or "")


def contract_for(store: Store, configured: str, dynakube: Mapping[str, Any] | None) -> str:
    """The injection contract a DynaKube's pods get: the configured one, or with ``auto`` v1.10 when the
    DynaKube's operator wrote ``<dynakube>-bootstrapper-config`` in the DynaKube's namespace, else v1.4."""
    if configured != pods.CONTRACT_AUTO:
        return configured
    if dynakube is None:
        return pods.CONTRACT_V1_4
    source = bootstrapper.source_name(dk.name(dynakube), bootstrapper.CONFIG_SECRET)
    return bootstrapper.CONTRACT if store.secret(source) is not None else pods.CONTRACT_V1_4


def decide_from_store(
    pod: Mapping[str, Any],
    store: Store,
    settings: pods.Settings,
    *,
    namespace: str = "",
    known: Known | None = None,
) -> pods.Result:
    """Decide for ``pod`` with what the Store holds of its namespace: the Namespace, the DynaKube its label
    names, the cluster ID, the cached owners and the init Secrets.

    ``namespace``: the pod's namespace (the admission request's; default the pod's ``metadata.namespace``).
    ``known(namespace)``: init Secrets created on first need that the cache may not show yet.
    """
    ns_name = namespace or namespace_of(pod)
    ns, dynakube = store.pod_state(ns_name)
    secrets = store.init_secrets(ns_name)
    extra = known(ns_name) if known is not None else None
    if extra:
        secrets = secrets | extra
    return pods.decide(
        pod,
        ns,
        dynakube,
        settings,
        namespace_name=ns_name,
        cluster_id=store.cluster_id,
        lookup=lambda kind, owner: store.owner_meta(ns_name, kind, owner),
        secrets=secrets,
        contract=contract_for(store, settings.contract, dynakube),
    )
