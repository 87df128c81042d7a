"""The init-Secrets controller: ``dynatrace-dynakube-config`` and ``dynatrace-metadata-enrichment-endpoint``
exist in every namespace mapped to a DynaKube before a pod there needs them.

Level-triggered, per namespace (``reconcile(namespace)``), from the cache only (``webhook.state``): the
namespace's DynaKube (label ``dynakube.internal.dynatrace.com/instance``), the DynaKube's inputs (tokens,
proxy, ActiveGate TLS Secrets; trustedCAs ConfigMap) and the init Secrets already there. For each of the two
names it decides one step:

- wanted (the DynaKube has an app-injection mode, resp. metadata enrichment on) and missing: **create**;
- wanted, ours (label ``app.kubernetes.io/managed-by: dynatrace-webhook``) and different from what the
  inputs give now (data digest or labels): **update** (PUT with the cached resourceVersion: a copy changed
  meanwhile answers 409 and is reconciled again from the newer cache);
- a copy without our label belongs to someone else, normally the Dynatrace Operator, which writes the same
  Secret with its own labels and is authoritative: **left alone**, never updated or deleted. When the operator
  updates our copy it replaces our labels, and the copy becomes its own;
- ours and no longer wanted, as the contract's cleanup (§5.3) says: the DynaKube that created it
  (``app.kubernetes.io/created-by``) is gone, or no longer has an app-injection mode (config) or enrichment
  (endpoint): **delete**. A namespace that merely stops being mapped keeps its Secrets, as upstream does;
- inputs missing (no tokens Secret, a proxy ``valueFrom`` Secret without ``proxy``, ...): **failed**, logged,
  a Warning Event on the DynaKube, retried with backoff.

``InitSecrets`` runs it on the reconcile loop (``webhook.controllers.loop``), keyed by namespace, plus one
key for a pass that queues every namespace. It is a leader-only Runnable of the Manager (``webhook.manager``):
started when this replica wins the one Lease, stopped when it loses it, and ``leading()`` is checked before
every namespace. A namespace's watch event (the one that maps it) and an init Secret's event queue that
namespace at once; a pass runs when it starts, when a DynaKube or an input changes or a cache (re)lists, and
every ``resync`` seconds. Writes are rate-limited by the queue (a namespace is reconciled when a token is
there); an API error backs that namespace off exponentially with jitter (the queue's retry). Missing
inputs are not retried blindly: the change that brings them (a watch event) queues the namespaces again.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from webhook import dynakube as dk
from webhook.controllers.loop import Backoff, Loop, Result, TokenBucket
from webhook.kube.api import Api, ApiError
from webhook.mutation import initsecrets as gen
from webhook.provision import flights as flight
from webhook.state.secrets import INIT_RESOURCES
from webhook.state.store import NAMESPACES, Store
from webhook.tolerant import as_map, as_str

log = logging.getLogger(__name__)

EVENT_FAILED = "InitSecretFailed"
ACTION_WRITE = "WriteSecret"  # the Event's action

CREATE, UPDATE, DELETE, FAILED, FOREIGN, KEEP = (
    "created",
    "updated",
    "deleted",
    "failed",
    "foreign",
    "unchanged",
)
ACTIONS = (CREATE, UPDATE, DELETE, FAILED)


@dataclass(frozen=True)
class Config:
    enabled: bool = True
    operator_version: str = ""  # app.kubernetes.io/version on the config Secret
    csi_mode: bool = True  # config.csiMode: the CSI driver is installed (--modules, upstream's modules.json)
    resync: float = 300.0  # seconds between full passes
    writes_per_second: float = 5.0
    burst: int = 20
    backoff_initial: float = 2.0  # an API error backs the namespace off: 2 s, 4 s, ... (+-20 %)
    backoff_cap: float = 300.0


class Step(NamedTuple):
    action: str  # CREATE, UPDATE, DELETE, FAILED, FOREIGN or KEEP
    name: str  # the Secret
    body: dict[str, Any] | None = None  # for CREATE and UPDATE
    detail: str = ""  # why (FAILED: the error; DELETE: the cleanup trigger)
    dynakube: str = ""


def _labels(store: Store, namespace: str) -> Mapping[str, Any]:
    return as_map(as_map(as_map(store.namespace_object(namespace)).get("metadata")).get("labels"))


def _terminating(store: Store, namespace: str) -> bool:
    obj = as_map(store.namespace_object(namespace))
    return bool(as_map(obj.get("metadata")).get("deletionTimestamp")) or (
        as_str(as_map(obj.get("status")).get("phase")) == "Terminating"
    )


class Planner:
    """Decides the steps for a namespace from the cache; generated data is memoised per DynaKube until the
    next ``forget()`` (called on every change), so a pass over 5 000 namespaces generates once per DynaKube."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self._memo: dict[tuple[str, str], tuple[dict[str, str], str] | gen.InputError] = {}

    def forget(self) -> None:
        self._memo = {}

    def _generated(self, dynakube: Mapping[str, Any], name: str) -> tuple[dict[str, str], str]:
        """(decoded data, digest of the encoded data); raises InputError."""
        memo = self._memo
        key = (dk.name(dynakube), name)
        found = memo.get(key)
        if found is None:
            inputs = self.store.inputs.inputs(
                dynakube, operator_version=self.config.operator_version, csi_mode=self.config.csi_mode
            )
            try:
                data = gen.config_data(inputs) if name == gen.CONFIG_SECRET else gen.endpoint_data(inputs)
                found = (data, gen.data_digest(gen.encode(data)))
            except gen.InputError as err:
                found = err
            memo[key] = found
        if isinstance(found, gen.InputError):
            # the one memoised error, raised afresh: raising it again as it is would chain every earlier
            # raise's frames (and what they hold) onto its traceback, one per namespace of a pass
            raise found.with_traceback(None)
        return found

    def keys(self) -> set[str]:
        """Every namespace to reconcile: the mapped ones, and those holding a copy of ours."""
        keys = {
            as_str(as_map(n.get("metadata")).get("name"))
            for n in self.store.namespaces()
            if as_map(as_map(n.get("metadata")).get("labels")).get(dk.INSTANCE_LABEL)
        }
        cache = self.store.init_secret_cache
        for name in gen.INIT_SECRETS:
            installation = self.store.namespace
            keys.update(
                ns for ns in cache.namespaces(name) if (c := cache.get(ns, name)) and c.ours_in(installation)
            )
        keys.discard("")
        return keys

    def plan(self, namespace: str) -> list[Step]:
        store = self.store
        if _terminating(store, namespace):
            return []  # its deletion takes its Secrets with it: nothing to create, update or clean up
        mapped = as_str(_labels(store, namespace).get(dk.INSTANCE_LABEL))
        dynakube = store.dynakube(mapped) if mapped else None
        wanted = gen.wanted(dynakube) if dynakube is not None else ()
        steps = []
        for name in gen.INIT_SECRETS:
            cached = store.init_secret_cache.get(namespace, name)
            if name in wanted and dynakube is not None:
                steps.append(self._wanted(namespace, name, dynakube, cached))
            elif cached is not None and cached.ours_in(store.namespace):
                steps.append(self._cleanup(name, cached.label_map.get(gen.LABEL_CREATED_BY, "")))
            elif cached is not None:
                steps.append(Step(FOREIGN, name))
        return steps

    def _wanted(self, namespace: str, name: str, dynakube: Mapping[str, Any], cached: Any) -> Step:
        owner = dk.name(dynakube)
        if cached is not None and not cached.ours_in(self.store.namespace):
            return Step(FOREIGN, name, dynakube=owner)
        try:
            data, digest = self._generated(dynakube, name)
        except gen.InputError as err:
            return Step(FAILED, name, detail=str(err), dynakube=owner)
        component = "webhook" if name == gen.CONFIG_SECRET else "activegate"
        version = self.config.operator_version if name == gen.CONFIG_SECRET else ""
        labels = gen.labels(dynakube, component, version)
        if cached is not None and cached.digest == digest and cached.label_map == labels:
            return Step(KEEP, name, dynakube=owner)
        body = gen.mark_installation(gen.secret_from(name, namespace, labels, data), self.store.namespace)
        if cached is None:
            return Step(CREATE, name, body, dynakube=owner)
        body["metadata"]["resourceVersion"] = cached.resource_version
        return Step(UPDATE, name, body, dynakube=owner)

    def _cleanup(self, name: str, created_by: str) -> Step:
        creator = self.store.dynakube(created_by) if created_by else None
        if creator is None:
            return Step(DELETE, name, detail=f"DynaKube {created_by!r} is gone", dynakube=created_by)
        if name not in gen.wanted(creator):
            what = "an app-injection mode" if name == gen.CONFIG_SECRET else "metadata enrichment"
            return Step(
                DELETE, name, detail=f"DynaKube {created_by!r} no longer has {what}", dynakube=created_by
            )
        return Step(
            KEEP, name, detail="namespace no longer mapped; kept as upstream does", dynakube=created_by
        )


class WriteFailed(Exception):
    """An API write failed; the loop backs the namespace off."""


class _Exists(Exception):
    """A create answered 409: the Secret is there."""


class _Gone(Exception):
    """A write answered 404: the namespace (or the copy to update) no longer exists."""


FLIGHT_WAIT = 10.0  # seconds a reconcile waits for an admission's create of the same Secret

_PASS = ""  # the loop key of a pass over every namespace (no namespace has an empty name)


class InitSecrets:
    def __init__(
        self,
        api: Api,
        store: Store,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        leading: Callable[[], bool] = lambda: True,
        recorder: Any = None,
        on_count: Callable[[str, str], None] | None = None,
        is_synced: Callable[[], bool] | None = None,
        rand: Callable[[], float] = random.random,
        flights: flight.Flights | None = None,
    ) -> None:
        self.api = api
        self.store = store
        self.config = config
        self.clock = clock
        self.recorder = recorder  # webhook.controllers.events.Recorder, or None
        self.on_count = on_count
        self.is_synced = is_synced or (lambda: store.synced and all(store.inputs.synced.values()))
        self.leading = leading  # the Manager's: this replica holds the Lease
        self.planner = Planner(store, config)
        # creates in flight in this process, shared with the admissions that create on first need
        self.flights = flights or flight.Flights()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.running = False
        self._reported: dict[tuple[str, str], str] = {}  # (DynaKube, Secret) -> the last input error logged
        self.loop: Loop[str] = Loop(
            "initsecrets",
            self._reconcile,
            clock=clock,
            backoff=Backoff(base=config.backoff_initial, cap=config.backoff_cap),
            rand=rand,
            # writes are rate-limited by the queue: a namespace is reconciled when a token is there
            limiter=TokenBucket(config.writes_per_second * 60.0, clock, burst=float(config.burst)),
            limited=lambda key: key != _PASS,
        )

    # --- signals (any thread) ---
    def on_event(self, resource: str, kind: str, obj: Mapping[str, Any] | None = None) -> None:
        """A watch-event callback. A namespace's event (the one that maps it, above all) queues that namespace
        at once, and an init Secret's event its namespace; any other change to what the Secrets depend on
        (a DynaKube, an input Secret or ConfigMap, a relist) queues a pass over every namespace."""
        if not self.running:
            return
        if obj is not None and resource in (NAMESPACES, *INIT_RESOURCES):
            meta = as_map(obj.get("metadata"))
            namespace = as_str(meta.get("name") if resource == NAMESPACES else meta.get("namespace"))
            # only a namespace with something to write, ahead of a pass: one just mapped waits for nothing
            if namespace and self.is_synced() and self.needs_writes(namespace):
                self.loop.add(namespace, front=True)
            return
        self.planner.forget()
        self.loop.add(_PASS)

    # --- the loop ---
    def _reconcile(self, key: str) -> Result | None:
        if not self.leading():
            return None  # the Manager stops this controller; the next leader's pass queues everything again
        if key == _PASS:
            return self.full_pass()
        return self.reconcile(key)

    def needs_writes(self, namespace: str) -> bool:
        """Planned in memory: something to create, update or delete there. Only such namespaces are queued,
        so a stream of events about others (a mass deletion's thousands) neither costs tokens nor waits ahead."""
        return any(step.action not in (KEEP, FOREIGN) for step in self.planner.plan(namespace))

    def full_pass(self) -> Result | None:
        """Queue every namespace; again every ``resync``. Before the caches are synced, nothing: their list
        is an event that queues the pass again."""
        if not self.is_synced():
            return None
        backing_off = self.loop.failures
        for namespace in sorted(self.planner.keys()):
            if namespace in backing_off:  # queued already, for when its backoff ends
                continue
            if self.needs_writes(namespace):
                self.loop.add(namespace)  # planned in memory: only namespaces with something to write wait
        return Result(requeue_after=self.config.resync)

    def process(self) -> int:
        """Run what is due now (tests drive the loop by hand with a fake clock)."""
        return self.loop.process()

    # --- one namespace ---
    def reconcile(self, namespace: str) -> Result | None:
        """Apply the planned steps; raises WriteFailed on an API error (the loop backs off)."""
        for step in self.planner.plan(namespace):
            if step.action in (KEEP, FOREIGN):
                continue
            if step.action == FAILED:
                self._failed(namespace, step, step.detail)
                continue  # retried when the inputs change (a watch event), or at the next resync
            self._write(namespace, step)
        return None

    def _write(self, namespace: str, step: Step) -> None:
        if step.action == CREATE:
            key = (namespace, step.name)
            if self.flights.present(namespace, (step.name,), ()):
                return  # created here on first need; the watch brings it
            future, ours = self.flights.start(key)
            if not ours:  # an admission's create is in flight: its outcome is this reconcile's
                try:
                    outcome = future.result(timeout=FLIGHT_WAIT)
                except TimeoutError:
                    raise WriteFailed(f"{step.name} create: still in flight after {FLIGHT_WAIT:g}s") from None
                if outcome == flight.FAILED:  # retried with this namespace's backoff
                    raise WriteFailed(f"{step.name} create failed on first need")
                return
            result = flight.FAILED
            try:
                self._send(namespace, step)
                result = flight.CREATED
            except _Exists:
                result = flight.EXISTS
            except _Gone:
                pass  # the namespace is gone: the key ends, no backoff
            finally:
                self.flights.finish(key, future, result)
            return
        with contextlib.suppress(_Gone):  # the copy or its namespace is gone: the key ends, no backoff
            self._send(namespace, step)

    def _send(self, namespace: str, step: Step) -> None:
        collection = f"/api/v1/namespaces/{namespace}/secrets"
        try:
            if step.action == CREATE:
                assert step.body is not None
                self.api.create(collection, step.body)
            elif step.action == UPDATE:
                assert step.body is not None
                self.api.replace(f"{collection}/{step.name}", step.body)
            else:
                self.api.delete(f"{collection}/{step.name}")
        except ApiError as err:
            if step.action == CREATE and err.status == 409:
                log.info("init Secret %s/%s: created by someone else meanwhile", namespace, step.name)
                raise _Exists() from None
            if err.status == 404:  # the namespace (or the copy) is gone: nothing left to reconcile there
                if step.action == DELETE:
                    return
                log.info("init Secret %s/%s not %s: %s", namespace, step.name, step.action, err)
                raise _Gone() from None
            if err.status == 409:  # stale resourceVersion: the watch brings the newer copy and its event
                return
            self._failed(namespace, step, str(err))
            raise WriteFailed(f"{step.name} {step.action}: {err}") from None
        except Exception as err:  # the connection: back off and retry
            self._failed(namespace, step, str(err))
            raise WriteFailed(f"{step.name} {step.action}: {err}") from None
        self._count(step.action, step.name)
        self._reported.pop((step.dynakube, step.name), None)
        extra = f" ({step.detail})" if step.detail else ""
        log.info(
            "init Secret %s/%s %s for DynaKube %s%s", namespace, step.name, step.action, step.dynakube, extra
        )

    def _failed(self, namespace: str, step: Step, error: str) -> None:
        self._count(FAILED, step.name)
        key = (step.dynakube, step.name)
        if self._reported.get(key) != error:  # one line per DynaKube and error, not one per namespace
            self._reported[key] = error
            log.warning("init Secret %s/%s not written: %s", namespace, step.name, error)
        if self.recorder is not None and step.dynakube:
            regarding = {
                "apiVersion": dk.api_version(self.store.dynakube(step.dynakube) or {})
                or "dynatrace.com/v1beta3",
                "kind": "DynaKube",
                "name": step.dynakube,
                "namespace": self.store.namespace,
            }
            message = f"Secret {step.name} not written: {error}"
            self.recorder.record(regarding, EVENT_FAILED, message, action=ACTION_WRITE)

    def _count(self, action: str, name: str) -> None:
        self.counts[(action, name)] += 1
        if self.on_count is not None:
            self.on_count(action, name)

    # --- lifecycle ---
    name = "initsecrets"

    def start(self, thread: bool = True) -> None:
        """Begin (this replica leads): a pass over every namespace, then events (``thread``: run the loop)."""
        if not self.config.enabled or self.running:
            return
        log.info("init Secrets controller on: at most %g writes/s", self.config.writes_per_second)
        self.running = True
        self.planner.forget()
        self.loop.add(_PASS)
        if thread:
            self.loop.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (leadership lost, or the process stops); a running reconcile finishes first."""
        self.running = False
        self.loop.stop(timeout)

    @property
    def leader(self) -> bool:
        return self.running and self.leading()
