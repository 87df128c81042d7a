"""List+watch of one resource into the Store, the way client-go's reflector does it.

- list, store everything, remember the list's resourceVersion;
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from webhook.kubeapi import ApiError
from webhook.state.store import Store

log = logging.getLogger(__name__)


class Client(Protocol):
    """The part of ``webhook.kubeapi.Api`` a reflector needs."""

    def list(self, path: str, label_selector: str = "") -> tuple[list[dict[str, Any]], str]:
        """Return (items, resourceVersion of the list)."""
        ...

    def watch(self, path: str, resource_version: str, timeout_seconds: int) -> Iterator[dict[str, Any]]:
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


class Reflector:
    def __init__(
        self,
        client: Client,
        store: Store,
        resource: str,
        path: str,
        *,
        watch_timeout: int = 300,
        backoff: Backoff | None = None,
        on_event: Callable[[str, str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.resource = resource
        self.path = path
        self.watch_timeout = watch_timeout
        self.backoff = backoff or Backoff()
        self.on_event = on_event or (lambda resource, kind: None)
        self.stop = stop or threading.Event()
        self.resource_version = ""
        self.relists = 0
        self.reconnects = 0
        self.healthy = False

    def run(self, max_cycles: int | None = None) -> None:
        """Loop until ``stop`` is set (or ``max_cycles`` list/watch attempts, for tests)."""
        cycles = 0
        while not self.stop.is_set() and (max_cycles is None or cycles < max_cycles):
            cycles += 1
            try:
                if not self.resource_version:
                    self._list()
                self._watch()
                self.backoff.reset()
            except Gone:
                log.info("%s: resourceVersion %s expired, relisting", self.resource, self.resource_version)
                self.resource_version = ""
                self.on_event(self.resource, "relist")
            except ApiError as err:
                if err.status == 410:
                    self.resource_version = ""
                    self.on_event(self.resource, "relist")
                    continue
                self._fail(err, err.retry_after)
            except Exception as err:  # the connection or anything below it: retry, never die
                self._fail(err, None)

    def _fail(self, err: Exception, retry_after: float | None) -> None:
        self.healthy = False
        self.reconnects += 1
        self.on_event(self.resource, "reconnect")
        delay = self.backoff.next(retry_after)
        log.warning("%s: %s; retrying in %.1fs (serving the last known state)", self.resource, err, delay)
        self.stop.wait(delay)

    def _list(self) -> None:
        items, resource_version = self.client.list(self.path)
        self.store.replace(self.resource, items)
        self.resource_version = resource_version
        self.relists += 1
        self.healthy = True
        log.info("%s: listed %d object(s) at resourceVersion %s", self.resource, len(items), resource_version)

    def _watch(self) -> None:
        for event in self.client.watch(self.path, self.resource_version, self.watch_timeout):
            if self.stop.is_set():
                return
            self.healthy = True
            kind = event.get("type")
            obj = event.get("object")
            if not isinstance(obj, Mapping):
                continue
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise ApiError(int(obj.get("code") or 500), str(obj.get("message", "")))
            meta = obj.get("metadata")
            rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
            if kind in ("ADDED", "MODIFIED"):
                self.store.upsert(self.resource, obj)
            elif kind == "DELETED":
                self.store.delete(self.resource, obj)
            elif kind == "BOOKMARK":
                self.store.touch(self.resource)
            else:
                continue
            if isinstance(rv, str) and rv:
                self.resource_version = rv
            self.on_event(self.resource, kind)
