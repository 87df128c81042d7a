"""The watches behind the owner and Secret caches: list in pages, transform at arrival, watch with selectors.

``SliceReflector`` is the Store's ``Reflector`` (same watch, resume, relist and backoff) with a list that
pages (``limit``/``continue``) and hands the items to the Store as a stream, page by page, so a list of
50 000 ReplicaSets never sits in memory at once: each item is reduced to what its cache keeps as it arrives.
Lists and watches carry a ``fieldSelector`` and, for metadata-only caches, ask for ``PartialObjectMetadata``.

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
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from webhook.mutation import initsecrets as gen
from webhook.state import owners
from webhook.state import secrets as secret_cache
from webhook.state.reflector import Reflector
from webhook.state.store import Store

log = logging.getLogger(__name__)

PAGE_SIZE = 500


class PagedClient(Protocol):
    """The part of ``webhook.state.kube.KubeApi`` these watches use."""

    def list_page(
        self,
        path: str,
        *,
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        metadata_only: bool = False,
    ) -> tuple[list[dict[str, Any]], str, str]: ...

    def watch(
        self,
        path: str,
        resource_version: str,
        timeout_seconds: int,
        *,
        field_selector: str = "",
        metadata_only: bool = False,
    ) -> Iterator[dict[str, Any]]: ...


class _Scoped:
    """``reflector.Client`` for one selector and representation."""

    def __init__(self, api: PagedClient, field_selector: str, metadata_only: bool) -> None:
        self.api = api
        self.field_selector = field_selector
        self.metadata_only = metadata_only

    def list(self, path: str, label_selector: str = "") -> tuple[list[dict[str, Any]], str]:
        items, resource_version, _ = self.api.list_page(
            path, field_selector=self.field_selector, metadata_only=self.metadata_only
        )
        return items, resource_version

    def watch(self, path: str, resource_version: str, timeout_seconds: int) -> Iterator[dict[str, Any]]:
        return self.api.watch(
            path,
            resource_version,
            timeout_seconds,
            field_selector=self.field_selector,
            metadata_only=self.metadata_only,
        )


class SliceReflector(Reflector):
    def __init__(
        self,
        api: PagedClient,
        store: Store,
        resource: str,
        path: str,
        *,
        field_selector: str = "",
        metadata_only: bool = False,
        page_size: int = PAGE_SIZE,
        **kw: Any,
    ) -> None:
        super().__init__(_Scoped(api, field_selector, metadata_only), store, resource, path, **kw)
        self.api = api
        self.field_selector = field_selector
        self.metadata_only = metadata_only
        self.page_size = page_size

    def _list(self) -> None:
        state: dict[str, Any] = {"resource_version": "", "count": 0}

        def items() -> Iterator[dict[str, Any]]:
            token = ""
            while True:
                page, resource_version, token = self.api.list_page(
                    self.path,
                    field_selector=self.field_selector,
                    limit=self.page_size,
                    continue_token=token,
                    metadata_only=self.metadata_only,
                )
                state["resource_version"] = resource_version
                state["count"] += len(page)
                yield from page
                del page
                if not token:
                    return

        # the caches build a fresh map and swap it in at the end: an error mid-list (410 for an expired
        # continue token included) raises out of replace() and leaves the previous state in place
        self.store.replace(self.resource, items())
        self.resource_version = str(state["resource_version"])
        self.relists += 1
        self.healthy = True
        log.info(
            "%s: listed %d object(s) at resourceVersion %s",
            self.resource,
            state["count"],
            self.resource_version,
        )


def start(
    api: PagedClient,
    store: Store,
    *,
    stop: threading.Event,
    inputs: bool = False,
    on_event: Callable[[str, str], None] | None = None,
    page_size: int = PAGE_SIZE,
) -> list[SliceReflector]:
    """Attach the cache watches to ``store`` and start them; see the module docstring for which."""
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
    reflectors = []
    for resource, path, selector, metadata_only in specs:
        reflector = SliceReflector(
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
        reflectors.append(reflector)
        threading.Thread(target=reflector.run, name=f"watch-{resource}", daemon=True).start()
    log.info(
        "watching init Secrets %s in all namespaces, owners (%s) metadata-only%s",
        ", ".join(gen.INIT_SECRETS),
        ", ".join(sorted(owners.CACHED_KINDS)),
        f", Secrets and ConfigMaps in {store.namespace}" if inputs else "",
    )
    return reflectors
