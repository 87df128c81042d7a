"""Cluster mode's background half, wired as a list: the Manager (``webhook.manager``) and its Runnables.

Always: API discovery, the cache (every reflector), the certificate manager (self-managed mode), the Events
recorder. Behind the one Lease: the init Secrets, automatic reinjection, namespace relabeling. The admissions'
first need shares the init Secrets' flight registry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from webhook.admit import Admissions
from webhook.config import Settings
from webhook.controllers import events
from webhook.controllers.initsecrets import ACTIONS
from webhook.manager import LEASE_NAME, Manager
from webhook.metrics import Metrics
from webhook.mutation.initsecrets import INIT_SECRETS
from webhook.state.store import Store


class Background:
    def __init__(
        self,
        settings: Settings,
        api: Any,
        store: Store,
        metrics: Metrics,
        admissions: Admissions,
        *,
        on_event: Callable[[str, str, Mapping[str, Any] | None], None],
        ready: Callable[[], bool],
        on_certificate: Callable[[], Any],
    ) -> None:
        self.settings = settings
        self.api = api
        self.store = store
        self.metrics = metrics
        self.admissions = admissions
        self.on_event = on_event  # every watch event, from the watch threads
        self.ready = ready  # this replica serves admissions
        self.on_certificate = on_certificate  # a new certificate is on disk
        self.discovery: Any = None
        self._kube: Any = None
        self.cert_manager: Any = None
        self.init_secrets: Any = None
        self.reinjector: Any = None
        self.relabeler: Any = None
        self.recorder: Any = None  # webhook.controllers.events.Recorder, shared

    def build_manager(self) -> Manager:
        """Every background part of cluster mode, in start order; the writers behind the one Lease."""
        from webhook.controllers.leader import LeaderElector
        from webhook.state.cluster import KubeState
        from webhook.state.discovery import Discovery

        s, api = self.settings, self.api
        manager = Manager(LeaderElector(api, s.namespace, LEASE_NAME, clock=time.time))
        self.admissions.watching = True
        self.discovery = Discovery(api, self.store)
        manager.add(self.discovery)
        self._kube = KubeState(
            self.store,
            api,
            dynakube_api_version=s.dynakube_api_version,
            on_event=self.on_event,
            slices=True,
            inputs=s.init_secrets,
        )
        manager.add(self._kube)
        if s.cert_mode == "self-managed":
            manager.add(self.cert_manager_of(api))
        if s.events or s.reinject:  # one Events recorder for everyone: skipped pods, reinjection
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
        from webhook.kube.client import KubeApi, load_api_client
        from webhook.provision.flights import Flights
        from webhook.provision.initsecrets import ALL_SECRETS, RESULTS, FirstNeed
        from webhook.provision.initsecrets import Config as FirstNeedConfig

        s = self.settings
        for name in INIT_SECRETS:
            for action in ACTIONS:
                self.metrics.init_secrets.labels(action, name)
        for name in ALL_SECRETS:
            for result in RESULTS:
                self.metrics.init_secret_first_need.labels(result, name)
        flights = Flights()  # one create per namespace and Secret in this process, admissions or controller
        self.init_secrets = InitSecrets(
            api,
            self.store,
            Config(operator_version=s.version, csi_mode=s.modules.csi_driver, resync=s.init_secrets_resync),
            leading=leading,
            recorder=self.recorder,
            on_count=lambda action, name: self.metrics.init_secrets.labels(action, name).inc(),
            flights=flights,
        )
        # a client of its own: the admission path's one write never waits behind the watches' connections
        self.admissions.first_need = FirstNeed(
            KubeApi(load_api_client(s.kubeconfig), request_timeout=5.0),
            self.store,
            FirstNeedConfig(
                operator_version=s.version,
                csi_mode=s.modules.csi_driver,
                budget=s.init_secret_timeout,
                contract=s.contract,
            ),
            flights,
            on_result=lambda result, name: self.metrics.init_secret_first_need.labels(result, name).inc(),
        )
        return self.init_secrets

    def reinjection(self, api: Any, leading: Callable[[], bool]) -> Any:
        """Automatic reinjection (leader only)."""
        from webhook.controllers.reinject.controller import Reinjector
        from webhook.controllers.reinject.verdict import Config

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
            ready=self.ready,
            recorder=self.recorder,
        )
        return self.reinjector

    def events_recorder(self, api: Any) -> Any:
        """The Events recorder everyone shares: Warnings on the owners of skipped pods (``--events``, on by
        default) and reinjection's Events on the workloads it restarts or reports."""
        for result in events.RESULTS:
            self.metrics.events.labels(result)
        self.recorder = events.Recorder(api, on_count=lambda result: self.metrics.events.labels(result).inc())
        if self.settings.events:
            self.admissions.events = self.recorder
        return self.recorder

    def cert_manager_of(self, api: Any) -> Any:
        """Self-managed certificates: the Secret, caBundles and certs dir kept in step."""
        from webhook.tls.manager import from_settings

        self.cert_manager = from_settings(self.settings, api, self.metrics, on_installed=self.on_certificate)
        return self.cert_manager
