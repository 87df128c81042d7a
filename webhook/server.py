"""One process, three listeners (admission over TLS, health, metrics) in one event loop.

Start-up: state source, certificate, then listeners; the health listener answers from the first moment
(``/readyz`` 503 until the cache has synced and a valid certificate is loaded). SIGTERM or SIGINT: readiness
goes false, after ``--shutdown-delay`` the listeners stop accepting, in-flight requests finish, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import signal
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from webhook import dynakube as dk
from webhook import logs
from webhook.admit import Admissions
from webhook.background import Background
from webhook.config import Settings
from webhook.manager import Manager
from webhook.metrics import Metrics
from webhook.mutation.pod import connection_info_reasons
from webhook.state import owners as owner_cache
from webhook.state.store import Store
from webhook.tls.serving import CertificateWatcher

if TYPE_CHECKING:
    from webhook.listener import Listener
    from webhook.state.local import LocalState

log = logging.getLogger(__name__)


class Webhook:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.store = Store(settings.namespace)
        self.watcher = CertificateWatcher(
            settings.cert_file, settings.key_file, on_reload=self._cert_reloaded
        )
        self.admissions = Admissions(settings, self.store, self.metrics)
        self.draining = False
        self.servers: list[Listener] = []
        self.local: LocalState | None = None
        self._stopping = asyncio.Event()
        self._api: Any = None
        self._settled = False  # settle() ran (cluster mode: once the cache has synced)
        self.background: Background | None = None  # cluster mode
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
        reinjector = self.background.reinjector if self.background is not None else None
        if reinjector is not None:
            m.reinjection_pending.set(reinjector.pending_count())
            m.reinjection_leader.set(1 if reinjector.leader else 0)
            m.missed_pods.clear()
            for (namespace, dynakube), count in reinjector.missed().items():
                m.missed_pods.labels(namespace, dynakube).set(count)
        if self.background is not None and self.background.init_secrets is not None:
            m.init_secrets_leader.set(1 if self.background.init_secrets.leader else 0)
        m.leader.set(1 if self.manager is not None and self.manager.leader else 0)
        m.cache_objects.labels("init-secrets").set(self.store.init_secret_cache.count())
        for resource in owner_cache.RESOURCES:
            m.cache_objects.labels(resource).set(self.store.owners.count(resource))

    def settle(self) -> None:
        """Once (event loop): ``settle()``."""
        if not self._settled:
            self._settled = True
            settle()

    def _cert_reloaded(self, ok: bool) -> None:
        self.metrics.cert_reloads.labels("success" if ok else "failure").inc()

    def _watch_event(self, resource: str, kind: str, obj: Mapping[str, Any] | None = None) -> None:
        """Called from the watch threads, with the object of an ADDED, MODIFIED or DELETED event."""
        if kind == "listed" and not self._settled and self.store.synced:
            loop = self.admissions.loop
            if loop is not None:  # once readiness has been answered: the collection pauses the loop
                loop.call_soon_threadsafe(loop.call_later, SETTLE_DELAY, self.settle)
        self.admissions.namespace_event(resource, obj)
        self.metrics.watch_events.labels(resource, kind.lower()).inc()
        parts = self.background
        if parts is None:
            return
        if parts.relabeler is not None:
            parts.relabeler.on_event(resource, kind, obj)
        if parts.reinjector is not None:
            parts.reinjector.on_event(resource, kind, obj)
        if parts.init_secrets is not None and resource not in owner_cache.RESOURCES:
            parts.init_secrets.on_event(resource, kind, obj)

    # --- lifecycle ---
    def kube_api(self) -> Any:
        """One API client for the cache, certificates and controllers (created on first use)."""
        if self._api is None:
            from webhook.kube.client import KubeApi, load_api_client

            self._api = KubeApi(load_api_client(self.settings.kubeconfig))
        return self._api

    def start_background(self) -> None:
        """The state file (local mode), or the Manager and every Runnable (``webhook.background``)."""
        s = self.settings
        if s.state_file is not None:
            from webhook.state.local import LocalState

            self.local = LocalState(s.state_file, self.store)
            ok = self.local.load()
            self.metrics.state_reloads.labels("success" if ok else "failure").inc()
            # reinjection (on by default) and relabeling only act on a cluster: nothing runs with a state file
            if s.relabel_namespaces:
                log.warning("--relabel-namespaces needs the Kubernetes API; ignored with --state-file")
            return
        self.background = self.background_of(self.kube_api())
        self.manager = self.background.build_manager()
        self.manager.start()

    def background_of(self, api: Any) -> Background:
        return Background(
            self.settings,
            api,
            self.store,
            self.metrics,
            self.admissions,
            on_event=self._watch_event,
            ready=lambda: all(self.readiness().values()),
            on_certificate=self.watcher.poll,
        )

    def start_cert_manager(self) -> None:
        self.background = self.background_of(self.kube_api())
        self.background.cert_manager_of(self.background.api).start()

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

    def listeners(self) -> tuple[Listener, list[Listener]]:
        """The admission listener and the side listeners (health, metrics), with their apps."""
        from webhook import listener
        from webhook.admission import app as admission_apps
        from webhook.observe import health_app, metrics_app

        s = self.settings
        admission = listener.Listener(
            listener.config(
                s,
                self.metrics,
                "admission",
                admission_apps.admission_app(
                    self.admissions.routes(),
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
        injection = self.admissions.injection
        admissions = self.admissions

        def debug(pod: Any, ns: str) -> dict[str, Any]:  # as /inject decides: first-need Secrets count too
            from webhook.explain import explain

            return explain(pod, self.store, injection, ns, admissions.known)

        debug_app = debug if s.debug_endpoints else None
        health = health_app(self.readiness, debug_app)
        side = [listener.Listener(listener.config(s, self.metrics, "health", health, *s.health_bind))]
        if s.metrics_bind[1]:
            scrape = metrics_app(self.metrics, self.refresh_metrics)
            side.append(
                listener.Listener(listener.config(s, self.metrics, "metrics", scrape, *s.metrics_bind))
            )
        return admission, side

    async def run(self) -> int:
        s = self.settings
        loop = self.admissions.loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        # the cache's lists first: what the listeners import and build meanwhile overlaps their round trips
        self.start_background()
        if s.cert_mode == "dev":
            from webhook.tls.certs import ensure_dev_certificates

            ca = ensure_dev_certificates(s.certs_dir, s.dev_names)
            log.info("development certificate for %s; CA at %s", ", ".join(s.dev_names), ca)
        from webhook.validation import modules

        log.info("validation: %s of the operator installation", modules.describe(s.modules))
        importlib.import_module("webhook.validation.dynakube")  # the checks, loaded before /validate serves
        self.watcher.poll()
        tasks = [asyncio.create_task(self._poll(s.cert_poll_interval, self.watcher.poll))]
        if self.local is not None:
            tasks.append(asyncio.create_task(self._poll(s.state_poll_interval, self._poll_state)))
        admission, side = self.listeners()
        self.servers.extend([admission, *side])
        serving = [asyncio.create_task(server.serve()) for server in side]
        while not self.watcher.loaded and not self._stopping.is_set():
            log.warning("waiting for a certificate in %s", s.certs_dir)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), s.cert_poll_interval)
            self.watcher.poll()
        if not self._stopping.is_set():
            serving.append(asyncio.create_task(admission.serve()))
        if self.local is not None:  # the state is loaded; in cluster mode, once the cache has synced
            self.settle()
        else:  # and at the latest after a while, should the cache not sync
            loop.call_later(SETTLE_AT_THE_LATEST, self.settle)
        results = await asyncio.gather(*serving, return_exceptions=True)
        self._stopping.set()
        for task in tasks:
            task.cancel()
        if self.admissions.first_need is not None:
            self.admissions.first_need.close()
        if self.manager is not None:  # the writers, then the Lease, then the rest in reverse (Events last)
            await asyncio.to_thread(self.manager.stop)
        failed = [r for r in results if isinstance(r, BaseException)]
        for err in failed:
            log.error("listener failed: %s", err)
        if any(server.started is False and not self.draining for server in self.servers):
            return 1
        log.info("stopped")
        return 1 if failed else 0


SETTLE_DELAY = 1.0  # seconds from the cache's sync to settle()
SETTLE_AT_THE_LATEST = 60.0  # seconds from the start, should the cache not sync


def settle() -> None:
    """Everything made during start-up lives as long as the process: collected once, then kept out of the
    collector's way, and the collector (off during start-up, see ``webhook.cli``) on again; the heap the
    lists' pages passed through is handed back to the system."""
    gc.collect()
    gc.freeze()
    gc.enable()
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)  # glibc
    except (AttributeError, OSError):
        pass


def run(settings: Settings) -> int:
    logs.setup(settings.log_level, settings.log_format)
    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on Windows)
        return asyncio.run(Webhook(settings).run())
    return uvloop.run(Webhook(settings).run())
