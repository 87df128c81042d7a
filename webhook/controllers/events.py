"""Kubernetes Events for pods the webhook admitted without OneAgent, recorded off the admission path.

``Recorder.record`` only puts the event on a bounded queue (``put_nowait``): when the queue is full the event is
dropped and counted, so an admission never waits for the API. A reconcile loop (``webhook.controllers.loop``) takes events off
the queue every ``tick`` seconds and writes them the way client-go's event recorder does:

- identical events (same involvedObject, type, reason and message) seen again within ``window`` seconds
  (10 minutes) are merged into the Event already written: its ``count`` and ``lastTimestamp`` are PATCHed at
  most once per ``flush_interval`` (30 s), however many admissions repeat it;
- every API write (create or patch) takes a token from a bucket of ``burst`` (25) tokens refilled at one per
  ``refill_seconds`` (5 s): a burst of 25 distinct events is written at once, then at most 12 writes a
  minute. Writes that find no token wait in the cache for the next token; nothing is retried otherwise;
- an API error is logged and counted, never raised; a 404 on a PATCH (the Event expired, events have a TTL)
  writes a new Event with the accumulated count.

Results are reported through ``on_count(result)``: ``sent`` (an Event created), ``aggregated`` (an occurrence
merged into an existing Event), ``dropped`` (queue full, or a not-yet-written event evicted from the cache)
and ``failed`` (an API write failed).

Which /inject answers get an Event, and on what object, is decided at the edge
(``webhook.admission.skipevents``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import queue
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.controllers.loop import Loop, Result, TokenBucket
from webhook.kube.api import Api, ApiError

log = logging.getLogger(__name__)

COMPONENT = "dynatrace-webhook"
WARNING = "Warning"
RESULTS = ("sent", "aggregated", "dropped", "failed")
_FLUSH = "flush"  # one key: a pass writes whatever is due
MAX_MESSAGE = 1024  # what kube-apiserver accepts in an Event message (it rejects longer ones)

# involvedObject as a sorted tuple of items: hashable, so it can be part of the aggregation key
Involved = tuple[tuple[str, str], ...]
Key = tuple[Involved, str, str, str]  # (involvedObject, type, reason, message)


@dataclass(frozen=True)
class Occurrence:
    involved: Involved
    reason: str
    message: str
    event_type: str
    at: float  # clock() when recorded

    @property
    def key(self) -> Key:
        return (self.involved, self.event_type, self.reason, self.message)

    @property
    def namespace(self) -> str:
        return dict(self.involved).get("namespace", "") or "default"


@dataclass
class _Entry:
    """One Event as written (or to be written) to the API."""

    first: Occurrence
    count: int = 1
    last_seen: float = 0.0
    name: str = ""  # metadata.name once created
    written_count: int = 0  # the count the API holds
    last_write: float = field(default=float("-inf"))

    @property
    def created(self) -> bool:
        return bool(self.name)

    @property
    def dirty(self) -> bool:
        return self.count != self.written_count


def rfc3339(at: float) -> str:
    """A Unix time as the API server writes times (RFC 3339, seconds, UTC)."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reporting_instance() -> str:
    """The pod name (POD_NAME from the downward API, or HOSTNAME in a pod)."""
    return (os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or COMPONENT)[:128]


class Recorder:
    def __init__(
        self,
        api: Api,
        *,
        on_count: Callable[[str], None] = lambda result: None,
        instance: str | None = None,
        queue_size: int = 1024,
        window: float = 600.0,
        flush_interval: float = 30.0,
        burst: int = 25,
        refill_seconds: float = 5.0,
        max_entries: int = 4096,
        tick: float = 0.2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if queue_size < 1 or burst < 1 or refill_seconds <= 0 or max_entries < 1:
            raise ValueError("queue_size, burst and max_entries must be >= 1 and refill_seconds > 0")
        self.api = api
        self.on_count = on_count
        self.instance = reporting_instance() if instance is None else instance
        self.window = window
        self.flush_interval = flush_interval
        self.max_entries = max_entries
        self.tick = tick
        self.clock = clock
        self.queue: queue.Queue[Occurrence] = queue.Queue(maxsize=queue_size)
        self.bucket = TokenBucket(60.0 / refill_seconds, clock, burst=burst)
        self.entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._pending: dict[Key, None] = {}  # entries with something to write, in the order they got it
        self.loop: Loop[str] = Loop("events", self._reconcile, on_stop=self._final_flush)
        self._started = False

    # --- the admission side: never blocks ---
    def record(
        self, involved: Mapping[str, str], reason: str, message: str, event_type: str = WARNING
    ) -> bool:
        """Queue an event; False when the queue is full (the event is dropped and counted)."""
        occurrence = Occurrence(
            tuple(sorted((k, str(v)) for k, v in involved.items() if v)),
            reason,
            message[:MAX_MESSAGE],
            event_type,
            self.clock(),
        )
        try:
            self.queue.put_nowait(occurrence)
        except queue.Full:
            self.on_count("dropped")
            return False
        return True

    # --- the background side ---
    def start(self) -> None:
        if not self._started:
            self._started = True
            self.loop.add(_FLUSH)
            self.loop.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (as far as the rate limit allows) and end the thread."""
        if self._started:
            self.loop.stop(timeout)

    def _reconcile(self, key: str) -> Result:
        self.process()
        return Result(requeue_after=self.tick)

    def _final_flush(self) -> None:
        with contextlib.suppress(Exception):
            self.process(final=True)

    def process(self, *, block: float = 0.0, final: bool = False) -> None:
        """Take everything queued into the cache, then write what is due. ``block``: seconds to wait for the
        first event when the queue is empty. ``final``: write pending counts regardless of the flush interval.
        """
        try:
            occurrence = self.queue.get(timeout=block) if block > 0 else self.queue.get_nowait()
        except queue.Empty:
            occurrence = None
        while occurrence is not None:
            self._ingest(occurrence)
            try:
                occurrence = self.queue.get_nowait()
            except queue.Empty:
                occurrence = None
        self._flush(final)

    def _ingest(self, occurrence: Occurrence) -> None:
        key = occurrence.key
        entry = self.entries.get(key)
        if entry is not None and occurrence.at - entry.last_seen <= self.window:
            entry.count += 1
            entry.last_seen = max(entry.last_seen, occurrence.at)
            self.entries.move_to_end(key)
            self._pending[key] = None
            self.on_count("aggregated")
            return
        if entry is not None and not entry.created:
            self.on_count("dropped")  # superseded before it could be written
        self.entries[key] = _Entry(occurrence, last_seen=occurrence.at)
        self.entries.move_to_end(key)
        self._pending.pop(key, None)
        self._pending[key] = None
        while len(self.entries) > self.max_entries:
            evicted_key, evicted = self.entries.popitem(last=False)
            self._pending.pop(evicted_key, None)
            if not evicted.created:
                self.on_count("dropped")

    def _flush(self, final: bool) -> None:
        """New Events first (oldest first), then the count updates that are due; only entries with something
        to write are looked at, so an idle recorder costs nothing."""
        now = self.clock()
        for creating in (True, False):
            for key in list(self._pending):
                entry = self.entries[key]
                if entry.created == creating:
                    continue
                if not creating and not (final or now - entry.last_write >= self.flush_interval):
                    continue
                if not self.bucket.take():
                    return
                if creating:
                    self._create(entry, now)
                else:
                    self._patch(entry, now)
                if entry.created and not entry.dirty:
                    del self._pending[key]

    def _body(self, entry: _Entry) -> dict[str, Any]:
        first = entry.first
        involved = dict(first.involved)
        name = involved.get("name", "unknown")
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name[:200]}.{uuid.uuid4().hex[:16]}", "namespace": first.namespace},
            "involvedObject": involved,
            "reason": first.reason,
            "message": first.message,
            "type": first.event_type,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
            "firstTimestamp": rfc3339(first.at),
            "lastTimestamp": rfc3339(entry.last_seen),
            "count": entry.count,
        }

    def _create(self, entry: _Entry, now: float) -> None:
        body = self._body(entry)
        count = entry.count
        try:
            created = self.api.create(f"/api/v1/namespaces/{body['metadata']['namespace']}/events", body)
        except ApiError as err:
            self._failed(entry, "create", err)
            # not retried as such: a later occurrence tries again, at most once per flush interval
            entry.name = "-"
            entry.written_count = count
            entry.last_write = now
            return
        entry.name = str((created.get("metadata") or {}).get("name") or body["metadata"]["name"])
        entry.written_count = count
        entry.last_write = now
        self.on_count("sent")

    def _patch(self, entry: _Entry, now: float) -> None:
        namespace = entry.first.namespace
        count = entry.count
        patch = {"count": count, "lastTimestamp": rfc3339(entry.last_seen)}
        if entry.name != "-":
            try:
                self.api.patch(f"/api/v1/namespaces/{namespace}/events/{entry.name}", patch)
            except ApiError as err:
                if err.status != 404:
                    self._failed(entry, "patch", err)
                    entry.written_count = count
                    entry.last_write = now
                    return
            else:
                entry.written_count = count
                entry.last_write = now
                return
        # the Event is gone (expired) or was never written: a new one carries the whole count
        entry.name = ""
        self._create(entry, now)

    def _failed(self, entry: _Entry, action: str, err: ApiError) -> None:
        involved = dict(entry.first.involved)
        log.warning(
            "event %s on %s %s/%s not recorded (%s): %s",
            entry.first.reason,
            involved.get("kind", ""),
            involved.get("namespace", ""),
            involved.get("name", ""),
            action,
            err,
        )
        self.on_count("failed")
