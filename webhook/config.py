"""Settings: one object, built once from flags and upstream's environment variables, passed down."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from webhook import __version__
from webhook.validation.modules import Modules

DEFAULT_CERTS_DIR = "/tmp/k8s-webhook-server/serving-certs"  # upstream's default
# the Dynatrace Operator image whose ``init`` completes what the webhook injects (a release of the v1.4 contract)
DEFAULT_INIT_IMAGE = "public.ecr.aws/dynatrace/dynatrace-operator:v1.4.2"


def init_image_from_env() -> str:
    """``DT_OPERATOR_IMAGE`` (upstream's name), then ``INIT_IMAGE``, then the default."""
    return os.environ.get("DT_OPERATOR_IMAGE") or os.environ.get("INIT_IMAGE") or DEFAULT_INIT_IMAGE


def modules_from_env() -> Modules:
    """The modules of the paired operator installation: env ``MODULES_JSON``, else upstream's ``modules.json``
    (the operator chart's install-config); unset or invalid: every module."""
    return Modules.parse(os.environ.get("MODULES_JSON") or os.environ.get("modules.json") or "")  # noqa: SIM112


def csi_from_env() -> bool:
    """Whether the Dynatrace CSI driver is installed: env ``CSI_DRIVER`` (true/false), else the ``csiDriver``
    module of ``modules_from_env()`` (one reading for injection and validation); unset or invalid: true."""
    flag = (os.environ.get("CSI_DRIVER") or "").strip().lower()
    if flag in ("1", "true", "yes", "0", "false", "no"):
        return flag in ("1", "true", "yes")
    return modules_from_env().csi_driver


def parse_bind(value: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``:10080`` / ``host:port`` / ``[::1]:8080`` / ``8080`` -> (host, port). Port 0 disables the listener."""
    value = value.strip()
    if value.isdigit():
        return default_host, int(value)
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bind address {value!r} is not host:port, :port or a port number")
    host = host.strip("[]") or default_host
    return host, int(port)


@dataclass(frozen=True)
class Settings:
    namespace: str = "dynatrace"
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 8443
    health_bind: tuple[str, int] = ("0.0.0.0", 10080)
    metrics_bind: tuple[str, int] = ("0.0.0.0", 8080)
    certs_dir: Path = Path(DEFAULT_CERTS_DIR)
    cert_name: str = "tls.crt"
    key_name: str = "tls.key"
    cert_mode: str = "files"  # files | dev | self-managed
    dev_names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    state_file: Path | None = None
    kubeconfig: str | None = None
    dynakube_api_version: str = ""  # "" = the group's preferred version
    init_image: str = DEFAULT_INIT_IMAGE
    csi_driver: bool = True  # the Dynatrace CSI driver is installed: oneagent-bin is a CSI volume
    version: str = __version__
    keep_alive: float = 120.0  # longer than the API server's idle connections (Go: 90 s)
    shutdown_delay: float = 0.0
    graceful_timeout: float = 25.0
    limit_concurrency: int | None = None
    read_timeout: float = (
        10.0  # request body, from the headers' end (kube-apiserver's default webhook timeout)
    )
    header_timeout: float = 10.0  # request headers, from connect or the request's first byte; TLS handshake
    cert_poll_interval: float = 2.0
    state_poll_interval: float = 1.0
    log_level: str = "info"
    log_format: str = "json"
    debug_endpoints: bool = False
    relabel_namespaces: bool = False  # relabel existing namespaces when DynaKubes change (webhook/relabel.py)
    relabel_interval: float = 300.0
    events: bool = True  # Kubernetes Events for skipped injections (webhook/events.py); needs the API
    init_secrets: bool = (
        True  # create the init Secrets in mapped namespaces (webhook/controllers/initsecrets.py)
    )
    init_secrets_resync: float = 300.0
    reinject: bool = True  # restart workloads admitted without OneAgent once the cause is gone (reinject.py)
    reinject_explicit: bool = False  # --reinject or REINJECT=true given, not only the default
    reinject_dry_run: bool = False  # only report what would be restarted
    reinject_rate: float = 10.0  # workloads restarted per minute at most
    reinject_resync: float = 600.0  # seconds between full scans of the mapped namespaces
    # self-managed certificates (webhook/certmanager.py)
    service_name: str = "dynatrace-webhook"
    cert_extra_sans: tuple[str, ...] = ()
    cert_secret_name: str = "dynatrace-webhook-certs"
    mutating_webhook_configs: tuple[str, ...] = ()
    validating_webhook_configs: tuple[str, ...] = ()
    ca_validity: dt.timedelta = dt.timedelta(days=365)
    ca_renew_before: dt.timedelta = dt.timedelta(days=30)
    cert_validity: dt.timedelta = dt.timedelta(days=7)
    cert_renew_before: dt.timedelta = dt.timedelta(hours=12)
    ca_bundle_propagation_delay: dt.timedelta = dt.timedelta(seconds=30)
    cert_check_interval: float = 300.0
    # the modules of the paired operator installation (upstream's modules.json): /validate's module checks
    modules: Modules = field(default_factory=Modules)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def cert_file(self) -> Path:
        return self.certs_dir / self.cert_name

    @property
    def key_file(self) -> Path:
        return self.certs_dir / self.key_name


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default
