"""The admission routes as the server serves them: ``/inject``, ``/label-ns`` and ``/validate`` (+ aliases).

Every answer comes from the cache at once, but for a new namespace's first pods:

- the API server admits pods only in namespaces that exist, so a namespace the synced cache does not know is on
  its way in the watch: the admission waits for that watch event (``namespace_event`` wakes it);
- an init Secret the namespace lacks is created on first need (``webhook.provision``: the admission path's one
  write), and the pod is decided again.

Each wait is at most ``--init-secret-timeout``; then the pod is answered with what the cache holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from webhook.admission import handlers, skipevents
from webhook.admission.review import Answer, Review
from webhook.admission.routes import VALIDATE_ALIASES, Route
from webhook.config import Settings
from webhook.metrics import Metrics
from webhook.mutation import pod as pods
from webhook.mutation.bootstrapper import CONTRACT as bootstrapper_contract
from webhook.mutation.bootstrapper import REASON_NO_BOOTSTRAPPER_CONFIG
from webhook.mutation.otlp import PLAIN_REASONS as OTLP_SECRET_REASONS
from webhook.mutation.pod import REASON_MISSING_INIT_SECRET
from webhook.state.store import NAMESPACES, Store
from webhook.tolerant import as_map, as_str

# a Secret the pod's namespace lacks, which the admission creates on first need (v1.4: an init Secret; v1.10:
# a bootstrapper or OTLP exporter Secret replicated from the operator's source)
FIRST_NEED_REASONS = frozenset(
    (REASON_MISSING_INIT_SECRET, REASON_NO_BOOTSTRAPPER_CONFIG, *OTLP_SECRET_REASONS)
)


def _first_need(reasons: Sequence[str]) -> bool:
    return not FIRST_NEED_REASONS.isdisjoint(reasons)


class Admissions:
    def __init__(self, settings: Settings, store: Store, metrics: Metrics) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.injection = pods.Settings(
            image=settings.init_image,
            version=settings.version,
            csi=settings.csi_driver,
            contract=settings.contract,
            images={bootstrapper_contract: settings.bootstrapper_image},
        )
        self.first_need: Any = None  # webhook.provision.initsecrets.FirstNeed in cluster mode
        self.events: Any = None  # webhook.controllers.events.Recorder in cluster mode
        self.watching = False  # the cache is fed by list+watch (not a state file)
        self.loop: asyncio.AbstractEventLoop | None = None  # where the admissions run
        # admissions of pods whose namespace the cache does not hold yet, by namespace (event loop only)
        self.waiters: dict[str, list[asyncio.Future[None]]] = {}

    def routes(self) -> dict[str, Route]:
        # pods and namespaces: no decision reads managedFields, which are half of what the API server sends
        inject = Route("inject", self.inject, lean=True)
        label = Route(
            "label-ns",
            lambda review: handlers.label_namespace(
                review, self.store, self.settings.operator_service_account
            ),
            lean=True,
        )
        validate = Route(
            "validate", lambda review: handlers.validate(review, self.store, self.settings.modules)
        )
        routes = {"/inject": inject, "/label-ns": label, "/validate": validate}
        routes.update(dict.fromkeys(VALIDATE_ALIASES, validate))
        return routes

    # --- /inject ---
    @property
    def known(self) -> Callable[[str], frozenset[str]] | None:
        """Init Secrets created on first need that the cache may not show yet (None without first need)."""
        return self.first_need.known if self.first_need is not None else None

    def decide(self, review: Review) -> Answer:
        return handlers.inject(review, self.store, self.injection, self.known)

    def inject(self, review: Review) -> Answer | Awaitable[Answer]:
        """Answered from the cache at once, but for a new namespace's first pods (``first_pod``)."""
        answer = self.decide(review)
        reasons = answer.reasons
        if self.watching and (
            (reasons == (pods.SKIP_NAMESPACE_UNKNOWN,) and self.store.synced)
            or (_first_need(reasons) and self.first_need is not None and not review.dry_run)
        ):
            return self.first_pod(review, answer)
        return self.answered(review, answer)

    async def first_pod(self, review: Review, answer: Answer) -> Answer:
        """Wait for the namespace's watch event when the cache does not know it; create an init Secret the
        namespace lacks (not on dry run); decide again after each."""
        namespace = handlers.pod_namespace(review)
        if pods.SKIP_NAMESPACE_UNKNOWN in answer.reasons:
            await self.namespace_arrives(namespace, self.settings.init_secret_timeout)
            answer = self.decide(review)
        if _first_need(answer.reasons) and self.first_need is not None and not review.dry_run:
            await self.first_need.ensure(namespace)
            answer = self.decide(review)
        return self.answered(review, answer)

    def answered(self, review: Review, answer: Answer) -> Answer:
        if _first_need(answer.reasons):
            self.metrics.init_secret_missing.inc()
        if self.events is not None:
            skipevents.record(self.events, review, answer, self.store)  # put_nowait at most: never waits
        return answer

    # --- a namespace on its way ---
    async def namespace_arrives(self, name: str, timeout: float) -> None:
        future = asyncio.get_running_loop().create_future()
        waiters = self.waiters.setdefault(name, [])
        waiters.append(future)
        try:
            if self.store.namespace_object(name) is None:  # it may have arrived meanwhile
                await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            waiters.remove(future)
            if not waiters:
                self.waiters.pop(name, None)

    def namespace_event(self, resource: str, obj: Mapping[str, Any] | None) -> None:
        """From a watch thread, after the Store has the object: wake the admissions waiting for a namespace."""
        if resource != NAMESPACES or obj is None or not self.waiters or self.loop is None:
            return
        name = as_str(as_map(obj.get("metadata")).get("name"))
        if name in self.waiters:
            self.loop.call_soon_threadsafe(self._arrived, name)

    def _arrived(self, name: str) -> None:
        for future in self.waiters.get(name, ()):
            if not future.done():
                future.set_result(None)
