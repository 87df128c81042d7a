"""One process, three listeners (admission over TLS, health, metrics) in one event loop.

Start-up: state source, certificate, then listeners; the health listener answers from the first moment
(``/readyz`` 503 until the cache has synced and a valid certificate is loaded). SIGTERM or SIGINT: readiness
goes false, after ``--shutdown-delay`` the listeners stop accepting, in-flight requests finish, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import uvicorn

from webhook import dynakube as dk
from webhook import logs
from webhook.admission import guard, handlers, skipevents
from webhook.admission.app import VALIDATE_ALIASES, Route, admission_app
from webhook.admission.review import Answer, Review
from webhook.config import Settings
from webhook.controllers import events
from webhook.controllers.initsecrets import ACTIONS
from webhook.explain import explain
from webhook.manager import LEASE_NAME, Manager
from webhook.metrics import Metrics
from webhook.mutation import pod as pods
from webhook.mutation.initsecrets import INIT_SECRETS
from webhook.mutation.pod import REASON_MISSING_INIT_SECRET, connection_info_reasons
from webhook.observe import health_app, metrics_app
from webhook.state import owners as owner_cache
from webhook.state.local import LocalState
from webhook.state.store import NAMESPACES, Store
from webhook.tls.certs import ensure_dev_certificates
from webhook.tls.serving import CertificateWatcher
from webhook.tolerant import as_map, as_str
from webhook.validation.modules import describe as describe_modules

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the Webhook, which owns all three, and bounds TLS handshakes."""

    handshake_timeout: float | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: Any = None) -> None:
        if self.handshake_timeout is None:
            return await super().startup(sockets)
        with guard.handshake_timeout(asyncio.get_running_loop(), self.handshake_timeout):
            return await super().startup(sockets)


class Webhook:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.store = Store(settings.namespace)
        self.watcher = CertificateWatcher(
            settings.cert_file, settings.key_file, on_reload=self._cert_reloaded
        )
        self.injection = pods.Settings(
            image=settings.init_image, version=settings.version, csi=settings.csi_driver
        )
        self.draining = False
        self.servers: list[_Server] = []
        self.local: LocalState | None = None
        self._stopping = asyncio.Event()
        self._kube: Any = None
        self.reinjector: Any = None
        self.relabeler: Any = None
        self._api: Any = None
        self.cert_manager: Any = None
        self.init_secrets: Any = None  # webhook.controllers.initsecrets.InitSecrets in cluster mode
        self.first_need: Any = None  # webhook.provision.initsecrets.FirstNeed in cluster mode
        # admissions of pods whose namespace the cache does not hold yet, by namespace (event loop only)
        self._namespace_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.watching = False  # the cache is fed by list+watch (not a state file)
        self.events: Any = None  # webhook.controllers.events.Recorder with the Kubernetes API as state source
        self.discovery: Any = (
            None  # webhook.state.discovery.Discovery with the Kubernetes API as state source
        )
        self.manager: Manager | None = None  # cluster mode: every background Runnable and the one Lease

    # --- readiness and metrics ---
    def readiness(self) -> dict[str, bool]:
        return {
            "cache_synced": self.store.synced,
            "certificate_valid": self.watcher.valid,
            "serving": bool(self.servers) and self.servers[0].started and not self.draining,
        }

    def refresh_metrics(self) -> None:
        m = self.metrics
        for resource, synced in self.store.synced_resources().items():
            m.cache_synced.labels(resource).set(1 if synced else 0)
        for resource in self.store.resources:
            m.cache_objects.labels(resource).set(self.store.count(resource))
            m.cache_last_event.labels(resource).set(self.store.last_event[resource])
        m.connection_info_complete.clear()
        for obj in self.store.dynakubes():
            complete = dk.injection_enabled(obj) and not connection_info_reasons(obj)
            m.connection_info_complete.labels(dk.name(obj), dk.network_zone(obj)).set(1 if complete else 0)
        if self.watcher.not_after is not None:
            m.cert_not_after.labels("serving").set(self.watcher.not_after.timestamp())
        if self.reinjector is not None:
            m.reinjection_pending.set(self.reinjector.pending_count())
            m.reinjection_leader.set(1 if self.reinjector.leader else 0)
            m.missed_pods.clear()
            for (namespace, dynakube), count in self.reinjector.missed().items():
                m.missed_pods.labels(namespace, dynakube).set(count)
        if self.init_secrets is not None:
            m.init_secrets_leader.set(1 if self.init_secrets.leader else 0)
        m.leader.set(1 if self.manager is not None and self.manager.leader else 0)
        m.cache_objects.labels("init-secrets").set(self.store.init_secret_cache.count())
        for resource in owner_cache.RESOURCES:
            m.cache_objects.labels(resource).set(self.store.owners.count(resource))

    def _cert_reloaded(self, ok: bool) -> None:
        self.metrics.cert_reloads.labels("success" if ok else "failure").inc()

    def _watch_event(self, resource: str, kind: str, obj: Mapping[str, Any] | None = None) -> None:
        """Called from the watch threads, with the object of an ADDED, MODIFIED or DELETED event."""
        if resource == NAMESPACES and obj is not None and self._namespace_waiters and self._loop is not None:
            name = as_str(as_map(obj.get("metadata")).get("name"))
            if name in self._namespace_waiters:
                self._loop.call_soon_threadsafe(self._namespace_arrived, name)
        self.metrics.watch_events.labels(resource, kind.lower()).inc()
        if self.relabeler is not None:
            self.relabeler.on_event(resource, kind)
        if self.reinjector is not None:
            self.reinjector.on_event(resource, kind)
        if self.init_secrets is not None and resource not in owner_cache.RESOURCES:
            self.init_secrets.on_event(resource, kind, obj)

    # --- the apps ---
    def _decide(self, review: Review) -> Answer:
        known = self.first_need.known if self.first_need is not None else None
        return handlers.inject(review, self.store, self.injection, known)

    def _inject(self, review: Review) -> Answer | Awaitable[Answer]:
        """``/inject``: answered from the cache at once, but for a pod that arrives before its namespace's
        watch event, or whose namespace lacks an init Secret (``_first_pod``)."""
        answer = self._decide(review)
        reasons = answer.reasons
        if self.watching and (
            (reasons == (pods.SKIP_NAMESPACE_UNKNOWN,) and self.store.synced)
            or (REASON_MISSING_INIT_SECRET in reasons and self.first_need is not None and not review.dry_run)
        ):
            return self._first_pod(review, answer)
        return self._answered(review, answer)

    async def _first_pod(self, review: Review, answer: Answer) -> Answer:
        """A new namespace's first pods. The API server admits pods only in namespaces that exist, so one the
        synced cache does not know is on its way in the watch: wait for it. Then an init Secret the namespace
        lacks is created (the admission path's one write). Each wait is at most ``--init-secret-timeout``."""
        namespace = handlers.pod_namespace(review)
        if pods.SKIP_NAMESPACE_UNKNOWN in answer.reasons:
            await self._namespace_arrives(namespace, self.settings.init_secret_timeout)
            answer = self._decide(review)
        if (
            REASON_MISSING_INIT_SECRET in answer.reasons
            and self.first_need is not None
            and not review.dry_run
        ):
            await self.first_need.ensure(namespace)
            answer = self._decide(review)
        return self._answered(review, answer)

    async def _namespace_arrives(self, name: str, timeout: float) -> None:
        future = asyncio.get_running_loop().create_future()
        waiters = self._namespace_waiters.setdefault(name, [])
        waiters.append(future)
        try:
            if self.store.namespace_object(name) is None:  # it may have arrived meanwhile
                await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            waiters.remove(future)
            if not waiters:
                self._namespace_waiters.pop(name, None)

    def _namespace_arrived(self, name: str) -> None:
        """On the event loop: wake the admissions waiting for ``name``."""
        for future in self._namespace_waiters.get(name, ()):
            if not future.done():
                future.set_result(None)

    def _answered(self, review: Review, answer: Answer) -> Answer:
        if REASON_MISSING_INIT_SECRET in answer.reasons:
            self.metrics.init_secret_missing.inc()
        if self.events is not None:
            skipevents.record(self.events, review, answer, self.store)  # put_nowait at most: never waits
        return answer

    def routes(self) -> dict[str, Route]:
        inject = Route("inject", self._inject)
        label = Route("label-ns", lambda review: handlers.label_namespace(review, self.store))
        validate = Route(
            "validate", lambda review: handlers.validate(review, self.store, self.settings.modules)
        )
        routes = {"/inject": inject, "/label-ns": label, "/validate": validate}
        routes.update(dict.fromkeys(VALIDATE_ALIASES, validate))
        return routes

    def _config(self, listener: str, app: Any, host: str, port: int, **kw: Any) -> uvicorn.Config:
        timeouts = self.metrics.header_timeouts.labels(listener)
        return uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=False,
            timeout_keep_alive=int(self.settings.keep_alive),
            timeout_graceful_shutdown=int(self.settings.graceful_timeout),
            http=guard.guarded_protocol(self.settings.header_timeout, timeouts.inc),
            **kw,
        )

    # --- lifecycle ---
    def kube_api(self) -> Any:
        """One API client for the cache, certificates and controllers (created on first use)."""
        if self._api is None:
            from webhook.state.kube import KubeApi, load_api_client

            self._api = KubeApi(load_api_client(self.settings.kubeconfig))
        return self._api

    def start_background(self) -> None:
        """The state file (local mode), or the Manager and every Runnable (``webhook.manager``)."""
        s = self.settings
        if s.state_file is not None:
            self.local = LocalState(s.state_file, self.store)
            ok = self.local.load()
            self.metrics.state_reloads.labels("success" if ok else "failure").inc()
            for flag, on in (("--relabel-namespaces", s.relabel_namespaces), ("--reinject", s.reinject)):
                if on:
                    log.warning("%s needs the Kubernetes API; ignored with --state-file", flag)
            return
        self.manager = self.build_manager()
        self.manager.start()

    def build_manager(self) -> Manager:
        """Every background part of cluster mode, in start order; the writers behind the one Lease."""
        from webhook.controllers.leader import LeaderElector
        from webhook.state.discovery import Discovery
        from webhook.state.kube import KubeState

        s, api = self.settings, self.kube_api()
        manager = Manager(LeaderElector(api, s.namespace, LEASE_NAME, clock=time.time))
        self.watching = True
        self.discovery = Discovery(api, self.store)
        manager.add(self.discovery)
        self._kube = KubeState(
            self.store,
            api,
            dynakube_api_version=s.dynakube_api_version,
            on_event=self._watch_event,
            slices=True,
            inputs=s.init_secrets,
        )
        manager.add(self._kube)
        if s.cert_mode == "self-managed":
            manager.add(self.cert_manager_of(api))
        if s.events:
            manager.add(self.events_recorder(api))
        if s.init_secrets:
            manager.add(self.init_secrets_controller(api, manager.leading), leader=True)
        if s.reinject:
            manager.add(self.reinjection(api, manager.leading), leader=True)
        if s.relabel_namespaces:
            from webhook.controllers.relabel import Relabeler

            self.relabeler = Relabeler(api, self.store, interval=s.relabel_interval)
            manager.add(self.relabeler, leader=True)
        return manager

    def init_secrets_controller(self, api: Any, leading: Callable[[], bool]) -> Any:
        """The initsecrets controller (leader only) and the admissions' first need, sharing one flight registry."""
        from webhook.controllers.initsecrets import Config, InitSecrets
        from webhook.provision.flights import Flights
        from webhook.provision.initsecrets import RESULTS, FirstNeed
        from webhook.provision.initsecrets import Config as FirstNeedConfig
        from webhook.state.kube import KubeApi, load_api_client

        s = self.settings
        for name in INIT_SECRETS:
            for action in ACTIONS:
                self.metrics.init_secrets.labels(action, name)
            for result in RESULTS:
                self.metrics.init_secret_first_need.labels(result, name)
        flights = Flights()  # one create per namespace and Secret in this process, admissions or controller
        self.init_secrets = InitSecrets(
            api,
            self.store,
            Config(operator_version=s.version, csi_mode=s.modules.csi_driver, resync=s.init_secrets_resync),
            leading=leading,
            recorder=self.events,
            on_count=lambda action, name: self.metrics.init_secrets.labels(action, name).inc(),
            flights=flights,
        )
        # a client of its own: the admission path's one write never waits behind the watches' connections
        self.first_need = FirstNeed(
            KubeApi(load_api_client(s.kubeconfig), request_timeout=5.0),
            self.store,
            FirstNeedConfig(
                operator_version=s.version, csi_mode=s.modules.csi_driver, budget=s.init_secret_timeout
            ),
            flights,
            on_result=lambda result, name: self.metrics.init_secret_first_need.labels(result, name).inc(),
        )
        return self.init_secrets

    def reinjection(self, api: Any, leading: Callable[[], bool]) -> Any:
        """Automatic reinjection (leader only)."""
        from webhook.controllers.reinject import Reinjector
        from webhook.controllers.workloads import Config

        s = self.settings
        self.reinjector = Reinjector(
            api,
            self.store,
            Config(
                enabled=True,
                dry_run=s.reinject_dry_run,
                rate_per_minute=s.reinject_rate,
                resync=s.reinject_resync,
            ),
            leading=leading,
            on_count=lambda outcome, reason: self.metrics.reinjections.labels(outcome, reason).inc(),
            ready=lambda: all(self.readiness().values()),
        )
        return self.reinjector

    def events_recorder(self, api: Any) -> Any:
        """Events for skipped injections (on by default)."""
        for result in events.RESULTS:
            self.metrics.events.labels(result)
        self.events = events.Recorder(api, on_count=lambda result: self.metrics.events.labels(result).inc())
        return self.events

    def cert_manager_of(self, api: Any) -> Any:
        """Self-managed certificates: the Secret, caBundles and certs dir kept in step."""
        from webhook.tls.manager import from_settings

        self.cert_manager = from_settings(self.settings, api, self.metrics, on_installed=self.watcher.poll)
        return self.cert_manager

    def start_cert_manager(self) -> None:
        self.cert_manager_of(self.kube_api()).start()

    async def _poll(self, interval: float, action: Callable[[], Any]) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
            try:
                action()
            except Exception:
                log.exception("background task failed")

    def _poll_state(self) -> None:
        if self.local is not None and self.local.poll():
            self.metrics.state_reloads.labels("success").inc()

    def request_stop(self) -> None:
        if self.draining:
            for server in self.servers:
                server.force_exit = True
            return
        log.info("stopping: readiness is now false, listeners close in %.1fs", self.settings.shutdown_delay)
        self.draining = True
        asyncio.get_running_loop().call_later(self.settings.shutdown_delay, self._close)

    def _close(self) -> None:
        self._stopping.set()
        for server in self.servers:
            server.should_exit = True

    async def run(self) -> int:
        s = self.settings
        loop = self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        if s.cert_mode == "dev":
            ca = ensure_dev_certificates(s.certs_dir, s.dev_names)
            log.info("development certificate for %s; CA at %s", ", ".join(s.dev_names), ca)
        log.info("validation: %s of the operator installation", describe_modules(s.modules))
        self.start_background()
        self.watcher.poll()
        tasks = [asyncio.create_task(self._poll(s.cert_poll_interval, self.watcher.poll))]
        if self.local is not None:
            tasks.append(asyncio.create_task(self._poll(s.state_poll_interval, self._poll_state)))
        admission = _Server(
            self._config(
                "admission",
                admission_app(
                    self.routes(),
                    self.metrics,
                    read_timeout=s.read_timeout,
                    closing=lambda: self.draining,
                ),
                s.webhook_host,
                s.webhook_port,
                ssl_context_factory=lambda config, default: self.watcher.server_context(),
                limit_concurrency=s.limit_concurrency,
            )
        )
        admission.handshake_timeout = s.header_timeout
        self.servers.append(admission)
        debug = (lambda pod, ns: explain(pod, self.store, self.injection, ns)) if s.debug_endpoints else None
        side = [_Server(self._config("health", health_app(self.readiness, debug), *s.health_bind))]
        if s.metrics_bind[1]:
            side.append(
                _Server(
                    self._config("metrics", metrics_app(self.metrics, self.refresh_metrics), *s.metrics_bind)
                )
            )
        self.servers.extend(side)
        serving = [asyncio.create_task(server.serve()) for server in side]
        while not self.watcher.loaded and not self._stopping.is_set():
            log.warning("waiting for a certificate in %s", s.certs_dir)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), s.cert_poll_interval)
            self.watcher.poll()
        if not self._stopping.is_set():
            serving.append(asyncio.create_task(admission.serve()))
        # everything made during start-up lives as long as the process: keep it out of the collector's way
        gc.collect()
        gc.freeze()
        results = await asyncio.gather(*serving, return_exceptions=True)
        self._stopping.set()
        for task in tasks:
            task.cancel()
        if self.first_need is not None:
            self.first_need.close()
        if self.manager is not None:  # the writers, then the Lease, then the rest in reverse (Events last)
            await asyncio.to_thread(self.manager.stop)
        failed = [r for r in results if isinstance(r, BaseException)]
        for err in failed:
            log.error("listener failed: %s", err)
        if any(server.started is False and not self.draining for server in self.servers):
            return 1
        log.info("stopped")
        return 1 if failed else 0


def run(settings: Settings) -> int:
    logs.setup(settings.log_level, settings.log_format)
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on Windows)
        return asyncio.run(Webhook(settings).run())
    return uvloop.run(Webhook(settings).run())
