"""Settings: one object, built once from the options (``webhook/options.py``: flags, environment), passed down.

A field behind an option takes its default from the option's declaration; the other fields are not
configurable.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from webhook import __version__
from webhook.options import default
from webhook.validation.modules import Modules


@dataclass(frozen=True)
class Settings:
    # listeners
    webhook_host: str = default("webhook_host")
    webhook_port: int = default("webhook_port")
    health_bind: tuple[str, int] = default("health_bind")
    metrics_bind: tuple[str, int] = default("metrics_bind")
    # state
    namespace: str = default("namespace")
    state_file: Path | None = default("state_file")
    kubeconfig: str | None = default("kubeconfig")
    dynakube_api_version: str = default("dynakube_api_version")  # "" = the group's preferred version
    relabel_namespaces: bool = default("relabel_namespaces")  # webhook/controllers/relabel.py
    relabel_interval: float = default("relabel_interval")
    operator_service_account: str = default("operator_service_account")  # /label-ns ignores its changes
    state_poll_interval: float = 1.0  # how often --state-file is checked for changes
    # certificates
    certs_dir: Path = default("certs_dir")
    cert_name: str = default("cert_name")
    key_name: str = default("key_name")
    cert_mode: str = "files"  # files | dev | self-managed; --cert-mode's default without --state-file
    dev_names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")  # the dev certificate's names
    cert_poll_interval: float = 2.0  # how often the certificate files are checked for changes
    # self-managed certificates (webhook/tls/manager.py)
    service_name: str = default("service_name")
    cert_extra_sans: tuple[str, ...] = default("cert_extra_sans")
    cert_secret_name: str = default("cert_secret_name")
    mutating_webhook_configs: tuple[str, ...] = default("mutating_webhook_configs")
    validating_webhook_configs: tuple[str, ...] = default("validating_webhook_configs")
    ca_validity: dt.timedelta = default("ca_validity")
    ca_renew_before: dt.timedelta = default("ca_renew_before")
    cert_validity: dt.timedelta = default("cert_validity")
    cert_renew_before: dt.timedelta = default("cert_renew_before")
    ca_bundle_propagation_delay: dt.timedelta = default("ca_bundle_propagation_delay")
    cert_check_interval: float = default("cert_check_interval")  # seconds
    # injection
    init_image: str = default("init_image")
    contract: str = default("contract")  # auto, v1.4 or v1.10
    bootstrapper_image: str = default("bootstrapper_image")  # the v1.10 contract's init image
    csi_driver: bool = default("csi_driver")  # the Dynatrace CSI driver is installed: oneagent-bin is CSI
    events: bool = default("events")  # webhook/controllers/events.py; needs the API
    init_secrets: bool = default("init_secrets")  # webhook/controllers/initsecrets.py; needs the API
    init_secrets_resync: float = default("init_secrets_resync")
    init_secret_timeout: float = default("init_secret_timeout")  # webhook/provision/initsecrets.py
    # validation: the modules of the paired operator installation (upstream's modules.json)
    modules: Modules = default("modules")
    # automatic reinjection (webhook/controllers/reinject.py)
    reinject: bool = default("reinject")  # also on with reinject_dry_run
    reinject_dry_run: bool = default("reinject_dry_run")
    reinject_rate: float = default("reinject_rate")  # workloads restarted per minute at most
    reinject_resync: float = default("reinject_resync")
    # serving
    keep_alive: float = default("keep_alive")
    shutdown_delay: float = default("shutdown_delay")
    graceful_timeout: float = default("graceful_timeout")
    limit_concurrency: int | None = default("limit_concurrency")
    header_timeout: float = default("header_timeout")
    read_timeout: float = default("read_timeout")
    log_level: str = default("log_level")
    log_format: str = default("log_format")
    debug_endpoints: bool = default("debug_endpoints")
    version: str = __version__

    @property
    def cert_file(self) -> Path:
        return self.certs_dir / self.cert_name

    @property
    def key_file(self) -> Path:
        return self.certs_dir / self.key_name
