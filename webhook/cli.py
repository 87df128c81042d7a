"""Command line: ``dynatrace-webhook [serve]`` runs the webhook (the default); other tasks are subcommands."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from webhook import __version__
from webhook.config import (
    DEFAULT_CERTS_DIR,
    Settings,
    csi_from_env,
    env,
    init_image_from_env,
    modules_from_env,
    parse_bind,
)
from webhook.validation.modules import Modules

SUBCOMMANDS = ("serve", "explain", "certs")


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be greater than 0")
    return number


def _flag(name: str) -> bool:
    return (env(name, "false") or "false").strip().lower() in ("1", "true", "yes")


def _optional_flag(name: str) -> bool | None:
    """A boolean environment variable, or None when it is unset or empty (the program's default applies)."""
    value = env(name)
    return None if value is None else value.strip().lower() in ("1", "true", "yes")


def _modules(value: str) -> Modules:
    """Upstream's reading of modules.json: unset, empty or not an object of booleans means every module."""
    return Modules.parse(value)


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("listeners")
    g.add_argument(
        "--webhook-host", default=env("WEBHOOK_HOST", "0.0.0.0"), help="admission bind host (0.0.0.0)"
    )
    g.add_argument(
        "--webhook-port",
        type=int,
        default=int(env("WEBHOOK_PORT", "8443") or 8443),
        help="admission HTTPS port (env WEBHOOK_PORT, 8443)",
    )
    g.add_argument(
        "--health-probe-bind-address",
        default=env("HEALTH_PROBE_BIND_ADDRESS", ":10080"),
        help="health listener, host:port or :port (env HEALTH_PROBE_BIND_ADDRESS, :10080)",
    )
    g.add_argument(
        "--metrics-bind-address",
        default=env("METRICS_BIND_ADDRESS", ":8080"),
        help="metrics listener, host:port or :port; 0 disables (env METRICS_BIND_ADDRESS, :8080)",
    )
    g = p.add_argument_group("state")
    g.add_argument(
        "--relabel-namespaces",
        action="store_true",
        default=_flag("RELABEL_NAMESPACES"),
        help="relabel existing namespaces when DynaKubes change (needs RBAC patch on namespaces; "
        "not with --state-file; env RELABEL_NAMESPACES)",
    )
    g.add_argument(
        "--relabel-interval",
        type=_positive_float,
        default=300.0,
        help="seconds between full relabel passes (300)",
    )
    g.add_argument(
        "--namespace",
        default=env("POD_NAMESPACE", "dynatrace"),
        help="namespace holding the DynaKubes (env POD_NAMESPACE, dynatrace)",
    )
    g.add_argument(
        "--state-file",
        default=env("STATE_FILE"),
        help="read DynaKubes and namespaces from this YAML file instead of the Kubernetes API",
    )
    g.add_argument("--kubeconfig", default=env("KUBECONFIG"), help="kubeconfig when not running in a pod")
    g.add_argument(
        "--dynakube-api-version",
        default=env("DYNAKUBE_API_VERSION", ""),
        help="DynaKube version to watch (default: the dynatrace.com group's preferred version)",
    )
    g = p.add_argument_group("certificates")
    g.add_argument(
        "--certs-dir",
        default=env("CERTS_DIR", DEFAULT_CERTS_DIR),
        help=f"directory with tls.crt and tls.key ({DEFAULT_CERTS_DIR})",
    )
    g.add_argument("--cert-name", default="tls.crt")
    g.add_argument("--key-name", default="tls.key")
    g.add_argument(
        "--cert-mode",
        choices=("self-managed", "files", "dev"),
        default=env("CERT_MODE"),
        help="self-managed: keep a CA and certificate in a Secret and the caBundle in step; files: serve the "
        "files in --certs-dir; dev: generate a local CA and certificate there "
        "(env CERT_MODE; default: dev with --state-file, else files)",
    )
    _cert_arguments(p)
    g = p.add_argument_group("injection")
    g.add_argument(
        "--init-image",
        default=init_image_from_env(),
        help="image of the injected dynatrace-operator init container: a Dynatrace Operator image of the v1.4 "
        "contract (env DT_OPERATOR_IMAGE or INIT_IMAGE; default %(default)s)",
    )
    g.add_argument(
        "--csi-driver",
        action=argparse.BooleanOptionalAction,
        default=csi_from_env(),
        help="the Dynatrace CSI driver is installed: OneAgent binaries come from a CSI volume, else the init "
        "container downloads them (env CSI_DRIVER, or upstream's modules.json; default on)",
    )
    g.add_argument(
        "--events",
        action=argparse.BooleanOptionalAction,
        default=(env("EVENTS", "true") or "true").strip().lower() in ("1", "true", "yes"),
        help="record a Warning Event on the owner of a pod admitted without OneAgent because the DynaKube's "
        "connection info is incomplete or the DynaKube is missing (needs RBAC create/patch on events; not "
        "with --state-file; env EVENTS, default on)",
    )
    g.add_argument(
        "--init-secrets",
        action=argparse.BooleanOptionalAction,
        default=(env("INIT_SECRETS", "true") or "true").strip().lower() in ("1", "true", "yes"),
        help="create and update the init Secrets (dynatrace-dynakube-config, "
        "dynatrace-metadata-enrichment-endpoint) in every namespace mapped to a DynaKube, leader only (needs "
        "RBAC on secrets; not with --state-file; env INIT_SECRETS, default on)",
    )
    g.add_argument(
        "--init-secrets-resync",
        type=_positive_float,
        default=300.0,
        help="seconds between full passes of the initsecrets controller (300)",
    )
    g = p.add_argument_group("validation")
    g.add_argument(
        "--modules",
        type=_modules,
        # upstream's operator reads the variable "modules.json" (from its install-config ConfigMap)
        default=modules_from_env(),
        metavar="JSON",
        help="modules of the operator installation, upstream's modules.json, e.g. "
        '\'{"csiDriver": false, "activeGate": true, ...}\'; DynaKubes and EdgeConnects needing a missing one are '
        "denied (env MODULES_JSON or modules.json; default: every module)",
    )
    g = p.add_argument_group("automatic reinjection")
    g.add_argument(
        "--reinject",
        action=argparse.BooleanOptionalAction,
        default=None,  # None: env REINJECT, else on (settings_from tells the default from an explicit request)
        help="find pods that would get OneAgent now but did not and restart their workloads, once per cause: "
        "pods admitted while their namespace's init Secret was missing (a cause of the webhook's own) always; "
        "pods admitted while connection info was incomplete, or never seen by the webhook, for DynaKubes "
        "annotated feature.dynatrace.com/automatic-reinjection=true; report pods never seen by the webhook "
        "(needs RBAC on pods and workloads; not with --state-file; env REINJECT, default on)",
    )
    g.add_argument(
        "--reinject-dry-run",
        action="store_true",
        default=_flag("REINJECT_DRY_RUN"),
        help="report what --reinject would restart (log, Events, metrics) without restarting; implies --reinject "
        "(env REINJECT_DRY_RUN)",
    )
    g.add_argument(
        "--reinject-rate",
        type=_positive_float,
        default=env("REINJECT_RATE", "10"),  # argparse passes string defaults through type
        help="workloads restarted per minute at most (env REINJECT_RATE, 10)",
    )
    g.add_argument(
        "--reinject-resync",
        type=_positive_float,
        default=env("REINJECT_RESYNC", "600"),
        help="seconds between full scans of the mapped namespaces for pods to restart or never seen by the "
        "webhook (env REINJECT_RESYNC, 600)",
    )
    g = p.add_argument_group("serving")
    g.add_argument("--keep-alive", type=float, default=120.0, help="idle keep-alive seconds (120)")
    g.add_argument(
        "--shutdown-delay",
        type=float,
        default=float(env("SHUTDOWN_DELAY", "0") or 0),
        help="seconds between readiness going false on SIGTERM and the listeners closing (0)",
    )
    g.add_argument("--graceful-timeout", type=float, default=25.0, help="seconds in-flight requests get (25)")
    g.add_argument(
        "--limit-concurrency",
        type=int,
        default=None,
        help="connections+requests above which the admission server answers 503",
    )
    g.add_argument(
        "--read-timeout",
        type=_positive_float,
        default=10.0,
        help="seconds a client gets to send a request body once its headers are in; then 408 (10)",
    )
    g.add_argument(
        "--header-timeout",
        type=_positive_float,
        default=10.0,
        help="seconds a connection gets for its TLS handshake and for each request's headers; then it is "
        "closed (10)",
    )
    g.add_argument(
        "--log-level", default=env("LOG_LEVEL", "info"), choices=("debug", "info", "warning", "error")
    )
    g.add_argument("--log-format", default=env("LOG_FORMAT", "json"), choices=("json", "text"))
    g.add_argument(
        "--debug-endpoints",
        action="store_true",
        default=_flag("DEBUG_ENDPOINTS"),
        help="serve POST /debug/decision on the health listener (env DEBUG_ENDPOINTS=true)",
    )


def _duration(text: str) -> dt.timedelta:
    from webhook.tls.certs import parse_duration

    try:
        return parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").split(",") if n.strip()]


def _cert_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("self-managed certificates (--cert-mode self-managed)")
    g.add_argument(
        "--service-name",
        default=env("SERVICE_NAME", "dynatrace-webhook"),
        help="Service in front of the webhook, for the certificate's names (env SERVICE_NAME)",
    )
    g.add_argument(
        "--cert-extra-san",
        action="append",
        default=_names(env("CERT_EXTRA_SANS")),
        metavar="NAME",
        help="another DNS name or IP address for the certificate; repeatable (env CERT_EXTRA_SANS, commas)",
    )
    g.add_argument(
        "--cert-secret-name",
        default=env("CERT_SECRET_NAME", "dynatrace-webhook-certs"),
        help="Secret holding the CA and certificate, in --namespace (dynatrace-webhook-certs)",
    )
    g.add_argument(
        "--mutating-webhook-config",
        action="append",
        default=_names(env("MUTATING_WEBHOOK_CONFIGS")),
        metavar="NAME",
        help="MutatingWebhookConfiguration whose caBundle to keep; repeatable (env MUTATING_WEBHOOK_CONFIGS)",
    )
    g.add_argument(
        "--validating-webhook-config",
        action="append",
        default=_names(env("VALIDATING_WEBHOOK_CONFIGS")),
        metavar="NAME",
        help="ValidatingWebhookConfiguration whose caBundle to keep; repeatable "
        "(env VALIDATING_WEBHOOK_CONFIGS)",
    )
    for flag, default, text in (
        ("--ca-validity", "365d", "lifetime of a new CA"),
        ("--ca-renew-before", "30d", "roll the CA when less than this remains"),
        ("--cert-validity", "7d", "lifetime of a new serving certificate"),
        ("--cert-renew-before", "12h", "renew the serving certificate when less than this remains"),
        (
            "--ca-bundle-propagation-delay",
            "30s",
            "after a CA roll, how long the caBundle must have trusted "
            "the new CA before a certificate signed by it is served",
        ),
        ("--cert-check-interval", "5m", "how often the Secret and caBundles are checked"),
    ):
        g.add_argument(
            flag, type=_duration, default=_duration(default), metavar="DURATION", help=f"{text} ({default})"
        )


def _check_cert_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.cert_renew_before >= args.cert_validity:
        parser.error("--cert-renew-before must be shorter than --cert-validity")
    if args.ca_renew_before >= args.ca_validity:
        parser.error("--ca-renew-before must be shorter than --ca-validity")


def settings_from(args: argparse.Namespace) -> Settings:
    state_file = Path(args.state_file) if args.state_file else None
    # --reinject/--no-reinject, else env REINJECT, else on; "asked" is None when only the default says so
    asked = args.reinject if args.reinject is not None else _optional_flag("REINJECT")
    reinject = True if asked is None else asked
    return Settings(
        namespace=args.namespace,
        webhook_host=args.webhook_host,
        webhook_port=args.webhook_port,
        health_bind=parse_bind(args.health_probe_bind_address),
        metrics_bind=parse_bind(args.metrics_bind_address),
        certs_dir=Path(args.certs_dir),
        cert_name=args.cert_name,
        key_name=args.key_name,
        cert_mode=args.cert_mode or ("dev" if state_file else "files"),
        state_file=state_file,
        kubeconfig=args.kubeconfig,
        dynakube_api_version=args.dynakube_api_version,
        init_image=args.init_image,
        csi_driver=args.csi_driver,
        keep_alive=args.keep_alive,
        shutdown_delay=args.shutdown_delay,
        graceful_timeout=args.graceful_timeout,
        limit_concurrency=args.limit_concurrency,
        read_timeout=args.read_timeout,
        header_timeout=args.header_timeout,
        log_level=args.log_level,
        log_format=args.log_format,
        debug_endpoints=args.debug_endpoints,
        relabel_namespaces=args.relabel_namespaces,
        relabel_interval=args.relabel_interval,
        events=args.events,
        init_secrets=args.init_secrets,
        init_secrets_resync=args.init_secrets_resync,
        reinject=reinject or args.reinject_dry_run,
        reinject_explicit=bool(asked) or args.reinject_dry_run,
        reinject_dry_run=args.reinject_dry_run,
        reinject_rate=args.reinject_rate,
        reinject_resync=args.reinject_resync,
        service_name=args.service_name,
        cert_extra_sans=tuple(args.cert_extra_san),
        cert_secret_name=args.cert_secret_name,
        mutating_webhook_configs=tuple(args.mutating_webhook_config),
        validating_webhook_configs=tuple(args.validating_webhook_config),
        ca_validity=args.ca_validity,
        ca_renew_before=args.ca_renew_before,
        cert_validity=args.cert_validity,
        cert_renew_before=args.cert_renew_before,
        ca_bundle_propagation_delay=args.ca_bundle_propagation_delay,
        cert_check_interval=args.cert_check_interval.total_seconds(),
        modules=args.modules,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dynatrace-webhook", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the webhook (the default when no subcommand is given)")
    _serve_arguments(serve)
    explain = sub.add_parser("explain", help="show why a pod would (not) be injected, check by check")
    explain.add_argument("pod", help="pod manifest, YAML or JSON; - for standard input")
    explain.add_argument("--state-file", default=env("STATE_FILE"), help="state YAML (default: the cluster)")
    explain.add_argument("--kubeconfig", default=env("KUBECONFIG"))
    explain.add_argument(
        "--namespace", default=env("POD_NAMESPACE", "dynatrace"), help="namespace of the DynaKubes"
    )
    explain.add_argument("--dynakube-api-version", default=env("DYNAKUBE_API_VERSION", ""))
    explain.add_argument(
        "-n", "--pod-namespace", default="", help="the pod's namespace (default: its metadata)"
    )
    explain.add_argument("--init-image", default=init_image_from_env())
    explain.add_argument("--csi-driver", action=argparse.BooleanOptionalAction, default=csi_from_env())
    explain.add_argument("-o", "--output", choices=("text", "json"), default="text")
    sub.add_parser(
        "certs",
        add_help=False,
        help="generate, inspect and check certificates (dynatrace-webhook certs --help)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*SUBCOMMANDS, "-h", "--help", "--version"):
        argv.insert(0, "serve")
    if argv[0] == "certs":
        from certs.cli import main as certs_main

        return certs_main(argv[1:], prog="dynatrace-webhook certs")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        _check_cert_arguments(parser, args)
    if args.command == "explain":
        from webhook.explain_cli import run_explain

        return run_explain(args)
    from webhook.server import run

    return run(settings_from(args))
