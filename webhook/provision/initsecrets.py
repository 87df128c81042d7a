"""Init Secrets on first need: the admission of a pod whose namespace lacks one creates it, once.

A new app is a Namespace and its Deployment applied back to back: its first pods are admitted tens of
milliseconds after the namespace exists, long before any background controller could have written the
namespace's init Secrets. So when the decision finds an init Secret missing, the admission creates it:

- **From the cache only.** The Secret is generated (``webhook.mutation.initsecrets.build``, the generator and
  labels the initsecrets controller uses) from the cached DynaKube and its cached inputs. No read is made.
- **One create per namespace and Secret, whatever arrives at once.** Admissions that need the same Secret
  while its create is in flight wait on that one create (single flight, ``webhook.provision.flights``, shared
  with the initsecrets controller of this process). A create that succeeded, or was answered
  ``409 AlreadyExists`` (another replica or the operator was first), makes the name count as present until the
  cache shows it (``known``). A failed create is not repeated for that namespace and Secret until its backoff
  (5 s, doubling, at most 5 min) has passed.
- **Never blocking a pod.** An admission waits at most ``budget`` seconds (1 s) for the create; without an
  answer by then the pod is admitted with ``MissingInitSecret``, as on any failure, and the create goes on:
  once the Secret exists, reinjection restarts the pod's workload.

Every replica may create (the create is idempotent); no leader is needed. The initsecrets controller keeps
updating and cleaning up the Secrets this creates: they carry the same ``managed-by`` label.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from webhook import dynakube as dk
from webhook.decision import contract_for
from webhook.kube.api import Api, ApiError
from webhook.mutation import bootstrapper, otlp
from webhook.mutation import initsecrets as gen
from webhook.provision.flights import CREATED, EXISTS, FAILED, Flights
from webhook.state.store import Store
from webhook.tolerant import as_map

log = logging.getLogger(__name__)

# results (bounded: they label a metric); CREATED, EXISTS and FAILED come from the create itself
TIMEOUT = "timeout"  # no answer within the budget; the create goes on and may still succeed
BACKOFF = "backoff"  # a create failed lately: none is sent until its backoff has passed
NO_INPUTS = "inputs-missing"  # the cache lacks what the Secret is generated from (tokens, proxy, the source)
RESULTS = (CREATED, EXISTS, FAILED, TIMEOUT, BACKOFF, NO_INPUTS)


@dataclass(frozen=True)
class Config:
    operator_version: str = ""  # app.kubernetes.io/version on the config Secret (as the controller writes it)
    csi_mode: bool = True  # config.csiMode: the CSI driver is installed
    budget: float = 1.0  # seconds an admission waits for a create
    workers: int = 4  # threads sending creates (the API client is synchronous)
    contract: str = (
        "auto"  # --contract: which Secrets a namespace's pods need (v1.4 init or v1.10 bootstrapper)
    )


ALL_SECRETS = (*gen.INIT_SECRETS, *bootstrapper.SECRETS, *otlp.SECRETS)


def replica(source: Mapping[str, Any] | None, name: str, namespace: str) -> dict[str, Any]:
    """A copy of the operator's bootstrapper Secret (as the cache keeps it: labels and data) for ``namespace``
    (upstream ``k8ssecret.Replicate``: the data and labels, never updated afterwards)."""
    if source is None:
        raise gen.InputError("its source is not in the cache (created by the Dynatrace Operator v1.10)")
    meta = source.get("metadata") or {}
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if meta.get("labels"):
        metadata["labels"] = dict(meta["labels"])
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": dict(source.get("data") or {}),
    }


def create(api: Api, namespace: str, body: dict[str, Any]) -> str:
    """POST an init Secret: CREATED, EXISTS (409) or FAILED (logged)."""
    name = body["metadata"]["name"]
    try:
        api.create(f"/api/v1/namespaces/{namespace}/secrets", body)
    except ApiError as err:
        if err.status == 409:
            return EXISTS
        log.warning("init Secret %s/%s not created: %s", namespace, name, err)
        return FAILED
    except Exception as err:  # the connection
        log.warning("init Secret %s/%s not created: %s", namespace, name, err)
        return FAILED
    return CREATED


class FirstNeed:
    """Creates the init Secrets an admission finds missing; waits for them at most ``budget`` seconds."""

    def __init__(
        self,
        api: Api,
        store: Store,
        config: Config,
        flights: Flights,
        *,
        on_result: Callable[[str, str], None] | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.api = api
        self.store = store
        self.config = config
        self.flights = flights
        self.on_result = on_result
        self._executor = executor or ThreadPoolExecutor(
            config.workers, thread_name_prefix="init-secret-create"
        )
        self._reported: dict[tuple[str, str], str] = {}  # (DynaKube, Secret) -> the last input error logged
        self.results: Counter[tuple[str, str]] = Counter()

    # --- readers (the admission path) ---
    def known(self, namespace: str) -> frozenset[str]:
        """Init Secrets of ``namespace`` created (or found to exist) here that the cache may not show yet."""
        return self.flights.present(namespace, ALL_SECRETS, self.store.init_secrets(namespace))

    def wanted(self, namespace: str) -> tuple[Mapping[str, Any] | None, list[str]]:
        """The namespace's DynaKube and the init Secrets it wants there that are neither cached nor known."""
        ns, dynakube = self.store.pod_state(namespace)
        if dynakube is None:
            return None, []
        present = self.store.init_secrets(namespace) | self.known(namespace)
        if contract_for(self.store, self.config.contract, dynakube) == bootstrapper.CONTRACT:
            v = bootstrapper.view(dynakube)
            names: tuple[str, ...] = bootstrapper.SECRETS if v.needs_certs else (bootstrapper.CONFIG_SECRET,)
            names += otlp.wanted(dynakube, as_map(as_map((ns or {}).get("metadata")).get("labels")))
        else:
            names = gen.wanted(dynakube)
        return dynakube, [name for name in names if name not in present]

    # --- the create ---
    async def ensure(self, namespace: str) -> frozenset[str]:
        """Create what the namespace lacks, waiting at most ``budget`` seconds; return the names created or
        found existing that the cache does not show yet."""
        dynakube, names = self.wanted(namespace)
        if dynakube is None or not names:
            return frozenset()
        flights = {}
        for name in names:
            future = self._flight(namespace, name, dynakube)
            if future is not None:
                flights[asyncio.wrap_future(future)] = name
        if flights:
            _, pending = await asyncio.wait(flights, timeout=self.config.budget)
            for waiting in pending:  # still running: the create goes on, its answer is counted when it lands
                self._count(TIMEOUT, flights[waiting])
        return self.known(namespace)

    def _flight(self, namespace: str, name: str, dynakube: Mapping[str, Any]) -> Future[str] | None:
        """The create of ``name`` in ``namespace`` in flight, started when none is; None when none may be sent."""
        key = (namespace, name)
        if not self.flights.flying(key) and self.flights.backing_off(key):
            self._count(BACKOFF, name)
            return None
        try:
            body = self._body(name, namespace, dynakube)
        except gen.InputError as err:
            self._count(NO_INPUTS, name)
            report = (dk.name(dynakube), name)
            if self._reported.get(report) != str(err):  # one line per DynaKube and error
                self._reported[report] = str(err)
                log.warning("init Secret %s/%s not created on first need: %s", namespace, name, err)
            return None
        future, ours = self.flights.start(key)
        if ours:
            try:
                self._executor.submit(self._send, key, future, body)
            except RuntimeError:  # shut down: the pod is admitted without it
                self.flights.finish(key, future, FAILED)
        return future

    def _body(self, name: str, namespace: str, dynakube: Mapping[str, Any]) -> dict[str, Any]:
        """The Secret to create, from the cache only: generated (v1.4) or replicated (v1.10)."""
        if name in bootstrapper.SECRETS:
            source = self.store.secret(bootstrapper.source_name(dk.name(dynakube), name))
            return replica(source, name, namespace)
        if name in otlp.SECRETS:
            return replica(self.store.secret(otlp.source_name(dk.name(dynakube), name)), name, namespace)
        inputs = self.store.inputs.inputs(
            dynakube, operator_version=self.config.operator_version, csi_mode=self.config.csi_mode
        )
        return gen.mark_installation(gen.build(name, inputs, namespace), self.store.namespace)

    def _send(self, key: tuple[str, str], future: Future[str], body: dict[str, Any]) -> None:
        """In a worker thread: the create, then wake whoever waits on it."""
        result = create(self.api, key[0], body)
        if result == CREATED:
            log.info("init Secret %s/%s created on first need", *key)
        self._count(result, key[1])  # counted before anyone waiting on it wakes
        self.flights.finish(key, future, result)

    def _count(self, result: str, name: str) -> None:
        self.results[(result, name)] += 1
        if self.on_result is not None:
            self.on_result(result, name)

    def close(self) -> None:
        """Stop taking creates; those in flight finish in their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)
