"""List+watch of one resource into the Store, the way client-go's reflector does it.

- list in pages of 500 (``limit``/``continue``), transform each object as it arrives, swap the result into the
  Store at once, remember the list's resourceVersion; a 410 on a continue request lists again from the start;
  a resource the Store keeps in a cache of its own shape (``Store.parts()``: owners, init Secrets, inputs) gets
  the items streamed into ``Store.replace`` page by page instead;
- watch from that resourceVersion, apply ADDED/MODIFIED/DELETED, follow BOOKMARKs;
- a watch that ends (server timeout, cut stream) is resumed from the last resourceVersion seen;
- 410 Gone (as an HTTP error or an ERROR event) means that resourceVersion is too old: relist;
- any other failure: wait with capped exponential backoff and jitter (or the server's Retry-After), retry;
- meanwhile the Store keeps serving the last known state.

The API is reached through a ``Client`` (two methods), so this logic runs against a scripted fake in tests.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from webhook.kube.api import ApiError, ContinueExpired, Items, Stopped, pages
from webhook.state.kinds import Kind, Obj
from webhook.state.store import Store

log = logging.getLogger(__name__)


class Client(Protocol):
    """The part of ``webhook.kube.api.Api`` a reflector needs."""

    def list_page(
        self,
        path: str,
        *,
        limit: int,
        continue_token: str = "",
        label_selector: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
        resource_version: str = "",
    ) -> tuple[Items, str, str]:
        """One page of a list: (items, resourceVersion of the list, continue token; "" on the last page).
        ``resource_version``: served from a state not older than it (the API server says when it is too large)."""
        ...

    def watch(
        self,
        path: str,
        resource_version: str,
        timeout_seconds: int,
        *,
        label_selector: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Yield watch events ({"type": ..., "object": ...}) until the server ends the watch."""
        ...


@dataclass
class Backoff:
    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5  # up to +50 %
    current: float = 0.0

    def next(self, retry_after: float | None = None) -> float:
        self.current = self.initial if not self.current else min(self.cap, self.current * self.factor)
        delay = self.current * (1 + random.random() * self.jitter)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap * 4))
        return delay

    def reset(self) -> None:
        self.current = 0.0


class Gone(Exception):
    pass


TOO_LARGE = "Too large resource version"  # kube-apiserver's words (cause ResourceVersionTooLarge)


def store_went_back(status: int, message: str) -> bool:
    """The API server's store is behind the resourceVersion we asked for (an etcd restored from a backup, a
    rebuilt control plane behind the same address): no watch from it will ever start. client-go's
    ``isTooLargeResourceVersionError``: relist from scratch, at once."""
    return TOO_LARGE.lower() in message.lower() or (status == 504 and "ResourceVersionTooLarge" in message)


class ListRestarts(Exception):
    """The continue token of a paginated list expired more often than ``list_restarts`` allows in a row."""


PAGE_SIZE = 500


def _resource_version(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    rv = meta.get("resourceVersion") if type(meta) is dict or isinstance(meta, Mapping) else None
    return rv if isinstance(rv, str) else ""


class Reflector:
    def __init__(
        self,
        client: Client,
        store: Store,
        kind: Kind,
        *,
        page_size: int = PAGE_SIZE,
        list_restarts: int = 3,
        watch_timeout: int = 300,
        backoff: Backoff | None = None,
        on_event: Callable[[str, str, Mapping[str, Any] | None], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.kind = kind
        self.resource = kind.resource
        self.path = kind.path
        self.page_size = page_size
        self.list_restarts = list_restarts
        self.watch_timeout = watch_timeout
        self.backoff = backoff or Backoff()
        # (resource, ADDED/MODIFIED/DELETED/BOOKMARK with the object, or relist/reconnect with None)
        self.on_event = on_event or (lambda resource, kind, obj: None)
        self.stop = stop or threading.Event()
        self.resource_version = ""
        self.relists = 0
        self.restarts = 0  # lists started again because their continue token expired
        self.pages = 0
        self._generation = 0
        self.reconnects = 0
        self.healthy = False
        self._verify = False  # after a failure: is the API server's store still at least where we were?

    def run(self, max_cycles: int | None = None) -> None:
        """Loop until ``stop`` is set (or ``max_cycles`` list/watch attempts, for tests)."""
        cycles = 0
        while not self.stop.is_set() and (max_cycles is None or cycles < max_cycles):
            cycles += 1
            try:
                if self.store.take_relist(self.resource):
                    self.resource_version = ""
                if self.resource_version and self._verify:
                    self._probe()
                if not self.resource_version and not self._list():
                    continue  # stopped while listing
                self._watch()
                self.backoff.reset()
            except Gone:
                log.info("%s: resourceVersion %s expired, relisting", self.resource, self.resource_version)
                self.resource_version = ""
                self.on_event(self.resource, "relist", None)
            except ApiError as err:
                if err.status == 410 and self.resource_version:  # the watch's resourceVersion is too old
                    self.resource_version = ""
                    self.on_event(self.resource, "relist", None)
                    continue
                if self.resource_version and store_went_back(err.status, str(err)):
                    log.warning(
                        "%s: the API server's store is behind resourceVersion %s (%s); relisting",
                        self.resource,
                        self.resource_version,
                        err,
                    )
                    self.resource_version = ""
                    self.on_event(self.resource, "relist", None)
                    continue
                self._fail(err, err.retry_after)
            except Exception as err:  # the connection or anything below it: retry, never die
                self._fail(err, None)

    def _probe(self) -> None:
        """After a failure, before resuming the watch: a one-item list not older than our resourceVersion. A
        watch from a resourceVersion the store has not reached waits silently, so a store that went back in
        time is seen here (the API server answers "Too large resource version"), and we relist."""
        kind = self.kind
        try:
            self.client.list_page(
                self.path,
                limit=1,
                label_selector=kind.label_selector,
                field_selector=kind.field_selector,
                metadata_only=kind.metadata_only,
                resource_version=self.resource_version,
            )
        except ApiError as err:
            if not store_went_back(err.status, str(err)):
                raise
            log.warning(
                "%s: the API server's store is behind resourceVersion %s (%s); relisting",
                self.resource,
                self.resource_version,
                err,
            )
            self.resource_version = ""
            self.on_event(self.resource, "relist", None)
        self._verify = False

    def _fail(self, err: Exception, retry_after: float | None) -> None:
        self.healthy = False
        self._verify = True
        self.reconnects += 1
        self.on_event(self.resource, "reconnect", None)
        delay = self.backoff.next(retry_after)
        log.warning("%s: %s; retrying in %.1fs (serving the last known state)", self.resource, err, delay)
        self.stop.wait(delay)

    def list_once(self) -> None:
        """One paginated list into the Store, no watch (for one-shot readers such as ``explain``); raises."""
        self._list()

    def _list(self) -> bool:
        """A paginated list, transformed page by page, then swapped into the Store at once; False when
        ``stop`` ended it first.

        A 410 on a continue request (the snapshot the pages come from was compacted) starts the list again
        from the first page, so the Store never mixes two snapshots and objects deleted meanwhile are gone.
        Any other error leaves the Store as it was (the caller backs off and lists again).
        """
        for _attempt in range(self.list_restarts + 1):
            listing = _Listing()
            try:
                if self.resource in self._parts:
                    self._list_part(listing)
                else:
                    self._list_kind(listing)
            except _ContinueExpired:
                self.restarts += 1
                self.on_event(self.resource, "relist", None)
                log.info("%s: continue token expired mid-list; listing again from the start", self.resource)
                continue
            except _Stopped:
                return False
            self.resource_version = listing.resource_version
            self.relists += 1
            self.healthy = True
            self.on_event(
                self.resource, "listed", None
            )  # the cache holds a whole list (client-go: HasSynced)
            log.info(
                "%s: listed %d object(s) in %d page(s) at resourceVersion %s",
                self.resource,
                listing.count,
                listing.pages,
                listing.resource_version,
                extra={"resource": self.resource, "objects": listing.count, "pages": listing.pages},
            )
            return True
        raise ListRestarts(f"the list's continue token expired {self.list_restarts + 1} times in a row")

    @property
    def _parts(self) -> Collection[str]:
        parts = getattr(self.store, "parts", None)
        return parts() if parts is not None else ()

    def _pages(self, listing: _Listing) -> Iterator[Items]:
        """The pages of one list in order; raises ``_ContinueExpired`` on a 410 of a continue request and
        ``_Stopped`` when ``stop`` is set between two pages."""
        kind = self.kind
        if self.stop.is_set():
            raise _Stopped()

        args: dict[str, Any] = {
            "limit": self.page_size,
            "label_selector": kind.label_selector,
            "field_selector": kind.field_selector,
            "metadata_only": kind.metadata_only,
        }

        def fetch(token: str) -> tuple[Items, str, str]:
            return self.client.list_page(self.path, continue_token=token, **args)

        # a client that reads the next page while this one is parsed and transformed (KubeApi)
        prefetching = getattr(self.client, "prefetching", None)
        if prefetching is not None:
            fetch = prefetching(self.path, **args)
        try:
            for page in pages(fetch, proceed=lambda: not self.stop.is_set()):
                listing.pages += 1
                self.pages += 1
                listing.resource_version = listing.resource_version or page.resource_version
                listing.count += len(page.items)
                yield page.items
        except ContinueExpired:
            raise _ContinueExpired() from None
        except Stopped:
            raise _Stopped() from None

    def _list_part(self, listing: _Listing) -> None:
        """A resource the Store reduces in a cache of its own shape (owners, init Secrets, inputs): the items
        stream into ``Store.replace`` page by page; an error mid-list raises out of it, and the cache keeps
        its previous state."""
        self.store.replace(self.resource, (obj for page in self._pages(listing) for obj in page))

    def _list_kind(self, listing: _Listing) -> None:
        kind, store = self.kind, self.store
        generation = store.generation.get(self.resource, 0)
        reuse = generation == self._generation  # what the cache keeps did not change since the last list
        fresh: dict[str, Obj] = {}
        for items in self._pages(listing):
            for obj in items:
                if type(obj) is not dict:
                    continue
                key = kind.key(obj)
                if not key:
                    continue
                # an object unchanged since the cache last saw it keeps its transformed copy (a relist then
                # costs one new map, not a second copy of every object)
                previous = store.get(self.resource, key) if reuse else None
                rv = _resource_version(obj)
                if previous is not None and rv and _resource_version(previous) == rv:
                    fresh[key] = previous
                    continue
                key, kept = store.transform(self.resource, obj)
                if kept is not None:
                    fresh[key] = kept
            del items
        self._generation = generation
        listing.count = len(fresh)
        store.replace_transformed(self.resource, fresh)

    def _watch(self) -> None:
        kind = self.kind
        events = self.client.watch(
            self.path,
            self.resource_version,
            self.watch_timeout,
            label_selector=kind.label_selector,
            field_selector=kind.field_selector,
            metadata_only=kind.metadata_only,
        )
        for event in events:
            if self.stop.is_set():
                return
            if self.store.take_relist(self.resource):
                raise Gone()  # the cache keeps more of this kind now: list it again
            self.healthy = True
            kind_ = event.get("type")
            obj = event.get("object")
            if not isinstance(obj, Mapping):
                continue
            if kind_ == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                causes = (
                    (obj.get("details") or {}).get("causes")
                    if isinstance(obj.get("details"), Mapping)
                    else None
                )
                reasons = " ".join(str(c.get("reason")) for c in causes or () if isinstance(c, Mapping))
                raise ApiError(int(obj.get("code") or 500), f"{obj.get('message', '')} {reasons}".strip())
            rv = _resource_version(obj)
            if kind_ in ("ADDED", "MODIFIED"):
                self.store.upsert(self.resource, obj)
            elif kind_ == "DELETED":
                self.store.delete(self.resource, obj)
            elif kind_ == "BOOKMARK":
                self.store.touch(self.resource)
            else:
                continue
            if rv:
                self.resource_version = rv
            self.on_event(self.resource, str(kind_), obj)


@dataclass
class _Listing:
    """One list in progress: its snapshot's resourceVersion, pages and objects so far."""

    resource_version: str = ""
    pages: int = 0
    count: int = 0


class _ContinueExpired(Exception):
    pass


class _Stopped(Exception):
    pass
