"""Kubernetes Events (``events.k8s.io/v1``) for what the webhook and its controllers did or left undone,
recorded off the admission path.

Every Event of the process goes through one ``Recorder`` and one API group, written the way client-go's
``tools/events`` broadcaster writes them (upstream's webhook records with it since v1.9): ``regarding`` (the
object), ``reason``, ``note`` (the message), ``action``, ``type``, ``eventTime`` (MicroTime, the first
occurrence), ``reportingController`` (``dynatrace-webhook``) and ``reportingInstance``
(``dynatrace-webhook-<pod name>``, as controller-runtime names it); the name is ``<regarding name>.<hex Unix
nanoseconds>``. A repeat is a ``series``: ``{count, lastObservedTime}`` PATCHed (strategic merge) onto the Event
written first; when that Event is gone (Events have a TTL) a new one is created carrying the series.

``Recorder.record`` only puts the event on a bounded queue (``put_nowait``): when the queue is full the event is
dropped and counted, so an admission never waits for the API. A reconcile loop (``webhook.controllers.loop``)
takes events off the queue every ``tick`` seconds and writes them:

- identical events (same regarding object, type, reason, action and note) seen again within ``window``
  seconds (6 minutes, client-go's series end) are one Event; its series is PATCHed at most once per
  ``flush_interval`` (30 s), however many occurrences repeat it;
- every API write (create or patch) takes a token from a bucket of ``burst`` (25) tokens refilled at one per
  ``refill_seconds`` (5 s): a burst of 25 distinct events is written at once, then at most 12 writes a
  minute. Writes that find no token wait in the cache for the next token; nothing is retried otherwise;
- an API error is logged and counted, never raised; a 404 on a PATCH writes a new Event with the series.

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
import re
import socket
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
API_VERSION = "events.k8s.io/v1"
WARNING = "Warning"
RESULTS = ("sent", "aggregated", "dropped", "failed")
_FLUSH = "flush"  # one key: a pass writes whatever is due
MAX_NOTE = 1024  # bytes kube-apiserver accepts in an Event's note (it rejects longer ones)
MAX_FIELD = 128  # bytes it accepts in action, reason and reportingInstance
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

# the regarding object as a sorted tuple of items: hashable, so it can be part of the aggregation key
Regarding = tuple[tuple[str, str], ...]
Key = tuple[Regarding, str, str, str, str]  # (regarding, type, reason, action, note)


def _cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-8 bytes (the API server counts bytes), never splitting a character."""
    raw = text.encode()
    return text if len(raw) <= limit else raw[:limit].decode(errors="ignore")


@dataclass(frozen=True)
class Occurrence:
    regarding: Regarding
    reason: str
    note: str
    event_type: str
    action: str
    at: float  # clock() when recorded

    @property
    def key(self) -> Key:
        return (self.regarding, self.event_type, self.reason, self.action, self.note)

    @property
    def namespace(self) -> str:
        return dict(self.regarding).get("namespace", "") or "default"


@dataclass
class _Entry:
    """One Event as written (or to be written) to the API."""

    first: Occurrence
    name: str  # metadata.name, fixed when the series starts
    count: int = 1
    last_seen: float = 0.0
    attempted: bool = False  # a write was tried: the first one is due at once, later ones once per interval
    exists: bool = False  # the API holds the Event: a repeat PATCHes its series
    written_count: int = 0  # the count the API holds
    last_write: float = field(default=float("-inf"))

    @property
    def dirty(self) -> bool:
        return self.count != self.written_count


def rfc3339(at: float) -> str:
    """A Unix time as the API server writes times (RFC 3339, seconds, UTC)."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(at: float) -> str:
    """A Unix time as a MicroTime (RFC 3339 with microseconds, UTC), as ``eventTime`` is written."""
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reporting_instance() -> str:
    """``dynatrace-webhook-<host name>``, as controller-runtime's recorder names the instance (the host name is
    the pod's name: POD_NAME from the downward API when set)."""
    host = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or socket.gethostname()
    return _cut(f"{COMPONENT}-{host}", MAX_FIELD)


def event_name(regarding_name: str, nanos: int) -> str:
    """client-go's ``GenerateEventName``: ``<name>.<hex nanoseconds>``, or a UUID when that is no valid name."""
    name = f"{regarding_name}.{nanos:x}"
    return name if len(name) <= 253 and _SUBDOMAIN.fullmatch(name) else str(uuid.uuid4())


class Recorder:
    def __init__(
        self,
        api: Api,
        *,
        on_count: Callable[[str], None] = lambda result: None,
        instance: str | None = None,
        queue_size: int = 1024,
        window: float = 360.0,
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
        self.instance = reporting_instance() if instance is None else _cut(instance, MAX_FIELD)
        self.window = window
        self.flush_interval = flush_interval
        self.max_entries = max_entries
        self.tick = tick
        self.clock = clock
        self.queue: queue.Queue[Occurrence] = queue.Queue(maxsize=queue_size)
        self.bucket = TokenBucket(60.0 / refill_seconds, clock, burst=burst)
        self.entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._pending: dict[Key, None] = {}  # entries with something to write, in the order they got it
        self._nanos = 0  # the last name's timestamp: names stay distinct within the process
        self.loop: Loop[str] = Loop("events", self._reconcile, on_stop=self._final_flush)
        self._started = False

    # --- the admission side: never blocks ---
    def record(
        self,
        regarding: Mapping[str, str],
        reason: str,
        message: str,
        event_type: str = WARNING,
        *,
        action: str = "",
    ) -> bool:
        """Queue an event; False when the queue is full (the event is dropped and counted). ``action``: what
        was done or left undone (machine-readable); empty: the message, as upstream's webhook writes it."""
        note = _cut(message, MAX_NOTE)
        occurrence = Occurrence(
            tuple(sorted((k, str(v)) for k, v in regarding.items() if v)),
            _cut(reason, MAX_FIELD),
            note,
            event_type,
            _cut(action or message, MAX_FIELD),
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
        if entry is not None and not entry.attempted:
            self.on_count("dropped")  # superseded before it could be written
        self._nanos = max(int(occurrence.at * 1e9), self._nanos + 1)
        name = event_name(dict(occurrence.regarding).get("name", ""), self._nanos)
        self.entries[key] = _Entry(occurrence, name, last_seen=occurrence.at)
        self.entries.move_to_end(key)
        self._pending.pop(key, None)
        self._pending[key] = None
        while len(self.entries) > self.max_entries:
            evicted_key, evicted = self.entries.popitem(last=False)
            self._pending.pop(evicted_key, None)
            if not evicted.attempted:
                self.on_count("dropped")

    def _flush(self, final: bool) -> None:
        """New Events first (oldest first), then the series updates that are due; only entries with something
        to write are looked at, so an idle recorder costs nothing."""
        now = self.clock()
        for first_writes in (True, False):
            for key in list(self._pending):
                entry = self.entries[key]
                if entry.attempted == first_writes:
                    continue
                if not first_writes and not (final or now - entry.last_write >= self.flush_interval):
                    continue
                if not self.bucket.take():
                    return
                self._write(entry, now)
                if not entry.dirty:
                    del self._pending[key]

    def body(self, entry: _Entry) -> dict[str, Any]:
        """The Event as client-go's ``makeEvent`` builds it, with the series once it repeats."""
        first = entry.first
        event: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": "Event",
            "metadata": {"name": entry.name, "namespace": first.namespace},
            "eventTime": micro_time(first.at),
            "reportingController": COMPONENT,
            "reportingInstance": self.instance,
            "action": first.action,
            "reason": first.reason,
            "regarding": dict(first.regarding),
            "note": first.note,
            "type": first.event_type,
        }
        if entry.count > 1:
            event["series"] = self._series(entry)
        return event

    @staticmethod
    def _series(entry: _Entry) -> dict[str, Any]:
        return {"count": entry.count, "lastObservedTime": micro_time(entry.last_seen)}

    def _collection(self, entry: _Entry) -> str:
        return f"/apis/{API_VERSION}/namespaces/{entry.first.namespace}/events"

    def _write(self, entry: _Entry, now: float) -> None:
        """A PATCH of the series when the API holds the Event, else (or when it is gone) a create. Either way
        the entry counts as written: a failure is not retried as such, a later occurrence tries again."""
        count, entry.attempted, entry.last_write = entry.count, True, now
        entry.written_count = count
        if entry.exists:
            try:
                self.api.patch(
                    f"{self._collection(entry)}/{entry.name}", {"series": self._series(entry)}, "strategic"
                )
                return
            except ApiError as err:
                if err.status != 404:
                    self._failed(entry, "patch", err)
                    return
            entry.exists = False  # the Event expired: a new one carries the whole series
        try:
            self.api.create(self._collection(entry), self.body(entry))
        except ApiError as err:
            self._failed(entry, "create", err)
            return
        entry.exists = True
        self.on_count("sent")

    def _failed(self, entry: _Entry, action: str, err: ApiError) -> None:
        regarding = dict(entry.first.regarding)
        log.warning(
            "event %s on %s %s/%s not recorded (%s): %s",
            entry.first.reason,
            regarding.get("kind", ""),
            regarding.get("namespace", ""),
            regarding.get("name", ""),
            action,
            err,
        )
        self.on_count("failed")
