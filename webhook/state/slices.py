"""The watches behind the owner and Secret caches: list in pages, transform at arrival, watch with selectors.

``SliceReflector`` is the Store's ``Reflector`` (same paged list, 410-restart, watch, resume, relist and
backoff) for a ``Kind`` whose objects the Store reduces in a cache of its own shape (``Store.parts()``): the
items reach the cache as a stream, page by page, so a list of 50 000 ReplicaSets never sits in memory at once:
each item is reduced to what its cache keeps as it arrives. Lists and watches carry a ``fieldSelector`` and,
for metadata-only caches, ask for ``PartialObjectMetadata``.

``start(...)`` attaches the watches to a Store (each in a daemon thread):

- the two init Secrets, cluster-wide, one watch per name (``metadata.name=<name>``): always, the admission
  path reads them; the Store is not ready before both are listed;
- ReplicaSets, Jobs and ReplicationControllers, metadata-only: always (metadata enrichment's owner walk);
  readiness does not wait for them;
- Secrets and ConfigMaps in the DynaKubes' namespace (``inputs=True``): only for the init-Secrets
  controller, which generates from them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from webhook.mutation import initsecrets as gen
from webhook.state import owners
from webhook.state import secrets as secret_cache
from webhook.state.kinds import Kind
from webhook.state.reflector import PAGE_SIZE, Client, Reflector
from webhook.state.store import Store

log = logging.getLogger(__name__)


def _kept_by_the_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    # never called: the Store's parts (owners, init Secrets, inputs) reduce what they keep themselves
    return dict(obj)


def kind(resource: str, path: str, *, field_selector: str = "", metadata_only: bool = False) -> Kind:
    """The ``Kind`` spec of one of these watches (listed and watched by the Store's ``Reflector``; the
    readiness of the init Secrets is ``InitSecretCache.synced``, not the kind's)."""
    return Kind(
        resource,
        path,
        _kept_by_the_part,
        metadata_only=metadata_only,
        field_selector=field_selector,
        by_namespace=True,
        sync_required=False,
    )


class SliceReflector(Reflector):
    """The Store's ``Reflector`` for one of these caches: the same paged list (a 410 on a continue request
    lists again from the start), watch, resume, relist and backoff; the items stream into the cache."""

    def __init__(
        self,
        api: Client,
        store: Store,
        resource: str,
        path: str,
        *,
        field_selector: str = "",
        metadata_only: bool = False,
        page_size: int = PAGE_SIZE,
        **kw: Any,
    ) -> None:
        spec = kind(resource, path, field_selector=field_selector, metadata_only=metadata_only)
        super().__init__(api, store, spec, page_size=page_size, **kw)


def reflectors(
    api: Client,
    store: Store,
    *,
    stop: threading.Event,
    inputs: bool = False,
    on_event: Callable[[str, str, Mapping[str, Any] | None], None] | None = None,
    page_size: int = PAGE_SIZE,
) -> tuple[list[SliceReflector], list[SliceReflector]]:
    """Attach the cache watches to ``store`` (see the module docstring for which): (the init-Secret reflectors,
    to run now: readiness waits for them; the owner and input reflectors, to run once the Store is ready)."""
    store.init_secret_cache.track()
    specs: list[tuple[str, str, str, bool]] = [
        (resource, "/api/v1/secrets", f"metadata.name={name}", False)
        for resource, name in secret_cache.INIT_RESOURCES.items()
    ]
    specs += [(resource, path, "", True) for resource, (_, path) in owners.RESOURCES.items()]
    if inputs:
        base = f"/api/v1/namespaces/{store.namespace}"
        specs += [
            (secret_cache.INPUT_SECRETS, f"{base}/secrets", "", False),
            (secret_cache.INPUT_CONFIGMAPS, f"{base}/configmaps", "", False),
        ]
    made = []
    for resource, path, selector, metadata_only in specs:
        store.attach(resource)
        made.append(
            SliceReflector(
                api,
                store,
                resource,
                path,
                field_selector=selector,
                metadata_only=metadata_only,
                page_size=page_size,
                on_event=on_event,
                stop=stop,
            )
        )
    log.info(
        "watching init Secrets %s in all namespaces, owners (%s) metadata-only%s",
        ", ".join(gen.INIT_SECRETS),
        ", ".join(sorted(owners.CACHED_KINDS)),
        f", Secrets and ConfigMaps in {store.namespace}" if inputs else "",
    )
    first = [r for r in made if r.resource in secret_cache.INIT_RESOURCES]
    return first, [r for r in made if r.resource not in secret_cache.INIT_RESOURCES]
