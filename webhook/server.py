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
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from webhook import dynakube as dk
from webhook import logs
from webhook.admission import guard, handlers, skipevents
from webhook.admission.app import (
    VALIDATE_ALIASES,
    AdmissionApp,
    Route,
    admission_fallback,
    health_app,
    metrics_app,
)
from webhook.admission.review import Answer, Review
from webhook.config import Settings
from webhook.controllers import events
from webhook.controllers.initsecrets import ACTIONS
from webhook.explain import explain
from webhook.metrics import Metrics
from webhook.mutation import pod as pods
from webhook.mutation.initsecrets import INIT_SECRETS
from webhook.mutation.pod import REASON_MISSING_INIT_SECRET, connection_info_reasons
from webhook.state import owners as owner_cache
from webhook.state.local import LocalState
from webhook.state.store import Store
from webhook.tls.certs import ensure_dev_certificates
from webhook.tls.serving import CertificateWatcher
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
        self.events: Any = None  # webhook.controllers.events.Recorder with the Kubernetes API as state source
        self.discovery: Any = (
            None  # webhook.state.discovery.Discovery with the Kubernetes API as state source
        )

    # --- readiness and metrics ---
    def readiness(self) -> dict[str, bool]:
        return {
            "cache_synced": self.store.synced,
            "certificate_valid": self.watcher.valid,
            "serving": bool(self.servers) and self.servers[0].started and not self.draining,
        }

    def refresh_metrics(self) -> None:
        m = self.metrics
        m.cache_synced.set(1 if self.store.synced else 0)
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
        m.cache_objects.labels("init-secrets").set(self.store.init_secret_cache.count())
        for resource in owner_cache.RESOURCES:
            m.cache_objects.labels(resource).set(self.store.owners.count(resource))

    def _cert_reloaded(self, ok: bool) -> None:
        self.metrics.cert_reloads.labels("success" if ok else "failure").inc()

    def _watch_event(self, resource: str, kind: str) -> None:
        """Called from the watch threads."""
        self.metrics.watch_events.labels(resource, kind.lower()).inc()
        if self.relabeler is not None:
            self.relabeler.on_event(resource, kind)
        if self.reinjector is not None:
            self.reinjector.on_event(resource, kind)
        if self.init_secrets is not None and resource not in owner_cache.RESOURCES:
            self.init_secrets.on_event(resource, kind)

    # --- the apps ---
    def _inject(self, review: Review) -> Answer:
        answer = handlers.inject(review, self.store, self.injection)
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
        """One API client for the cache, certificates, reinjection and relabeling (created on first use)."""
        if self._api is None:
            from webhook.state.kube import KubeApi, load_api_client

            self._api = KubeApi(load_api_client(self.settings.kubeconfig))
        return self._api

    def start_state(self) -> None:
        s = self.settings
        if s.state_file is not None:
            self.local = LocalState(s.state_file, self.store)
            ok = self.local.load()
            self.metrics.state_reloads.labels("success" if ok else "failure").inc()
            if s.relabel_namespaces:
                log.warning("--relabel-namespaces needs the Kubernetes API; ignored with --state-file")
            return
        from webhook.state.kube import KubeState

        if s.relabel_namespaces:
            from webhook.controllers.relabel import Relabeler

            self.relabeler = Relabeler(self.kube_api(), self.store, interval=s.relabel_interval)
        from webhook.state.discovery import Discovery

        self.discovery = Discovery(self.kube_api(), self.store)
        self.discovery.start()
        self._kube = KubeState(
            self.store,
            self.kube_api(),
            dynakube_api_version=s.dynakube_api_version,
            on_event=self._watch_event,
        )
        self._kube.start()
        from webhook.state import slices

        slices.start(
            self.kube_api(),
            self.store,
            stop=self._kube.stop,
            inputs=s.init_secrets,
            on_event=self._watch_event,
        )
        if self.relabeler is not None:
            self.relabeler.start()

    def start_init_secrets(self) -> None:
        """The initsecrets controller (on by default): a background thread, only with the Kubernetes API."""
        s = self.settings
        if not s.init_secrets or self._kube is None:
            return
        from webhook.controllers.initsecrets import Config, InitSecrets

        for action in ACTIONS:
            for name in INIT_SECRETS:
                self.metrics.init_secrets.labels(action, name)
        self.init_secrets = InitSecrets(
            self.kube_api(),
            self.store,
            Config(operator_version=s.version, csi_mode=s.modules.csi_driver, resync=s.init_secrets_resync),
            recorder=self.events,
            on_count=lambda action, name: self.metrics.init_secrets.labels(action, name).inc(),
        )
        self.init_secrets.start()

    def start_reinjector(self) -> None:
        """Automatic reinjection (on by default): a background thread, only with the Kubernetes API as state
        source; with --state-file it stays off, with a warning only when --reinject was asked for."""
        s = self.settings
        if not s.reinject:
            return
        if self._kube is None:
            if s.reinject_explicit:
                log.warning(
                    "--reinject needs the Kubernetes API as state source; it stays off with --state-file"
                )
            return
        from webhook.controllers.reinject import Reinjector
        from webhook.controllers.workloads import Config

        self.reinjector = Reinjector(
            self.kube_api(),
            self.store,
            Config(
                enabled=True,
                dry_run=s.reinject_dry_run,
                rate_per_minute=s.reinject_rate,
                resync=s.reinject_resync,
            ),
            on_count=lambda outcome, reason: self.metrics.reinjections.labels(outcome, reason).inc(),
            ready=lambda: all(self.readiness().values()),
        )
        self.reinjector.start()

    def start_events(self) -> None:
        """Events for skipped injections (on by default): a background thread, only with the Kubernetes API."""
        if not self.settings.events or self._kube is None:
            return
        for result in events.RESULTS:
            self.metrics.events.labels(result)
        self.events = events.Recorder(
            self.kube_api(), on_count=lambda result: self.metrics.events.labels(result).inc()
        )
        self.events.start()

    def start_cert_manager(self) -> None:
        """Self-managed certificates: a background thread keeps the Secret, caBundles and certs dir in step."""
        from webhook.tls.manager import from_settings

        self.cert_manager = from_settings(
            self.settings, self.kube_api(), self.metrics, on_installed=self.watcher.poll
        )
        self.cert_manager.start()

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
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        if s.cert_mode == "dev":
            ca = ensure_dev_certificates(s.certs_dir, s.dev_names)
            log.info("development certificate for %s; CA at %s", ", ".join(s.dev_names), ca)
        log.info("validation: %s of the operator installation", describe_modules(s.modules))
        self.start_state()
        if s.cert_mode == "self-managed":
            self.start_cert_manager()
        self.start_reinjector()
        self.start_events()
        self.start_init_secrets()
        self.watcher.poll()
        tasks = [asyncio.create_task(self._poll(s.cert_poll_interval, self.watcher.poll))]
        if self.local is not None:
            tasks.append(asyncio.create_task(self._poll(s.state_poll_interval, self._poll_state)))
        admission = _Server(
            self._config(
                "admission",
                AdmissionApp(
                    self.routes(),
                    self.metrics,
                    admission_fallback(),
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
        if self.reinjector is not None:
            await asyncio.to_thread(self.reinjector.stop)  # joins the thread and releases the Lease
        if self.init_secrets is not None:
            await asyncio.to_thread(self.init_secrets.stop)  # joins the thread and releases the Lease
        if self._kube is not None:
            self._kube.close()
        if self.discovery is not None:
            self.discovery.stop()
        if self.cert_manager is not None:
            self.cert_manager.stop()
        if self.relabeler is not None:
            self.relabeler.stop()
        if self.events is not None:
            await asyncio.to_thread(self.events.stop)  # writes what is queued, within the rate limit
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
