"""Every option of ``dynatrace-webhook serve``, declared once: flag, environment variables, type, default, help.

``OPTIONS`` is the one declaration. From it come the command line (``add_arguments``), the values of
``Settings`` (``settings_values``; ``default`` gives ``Settings`` its field defaults) and the README's flags
table (``markdown_table``; ``python -m webhook.options --write README.md`` regenerates it). An option's value:
the flag when given, else its first environment variable that is set and not empty, else its default.
Environment variables keep upstream's names where upstream has one (``POD_NAMESPACE``, ``DT_OPERATOR_IMAGE``,
``modules.json``); any other is the flag's name in capitals (``--relabel-interval``: ``RELABEL_INTERVAL``).

Help texts are written once for both readers: ``code`` in backticks is shown as is in the README and without
the backticks in ``--help``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from webhook.validation.modules import Modules

DEFAULT_CERTS_DIR = "/tmp/k8s-webhook-server/serving-certs"  # upstream's default
# the Dynatrace Operator image whose ``init`` completes what the webhook injects (a release of the v1.4 contract)
DEFAULT_INIT_IMAGE = "public.ecr.aws/dynatrace/dynatrace-operator:v1.4.2"
# the Dynatrace Operator image whose ``bootstrap`` completes what the v1.10 contract injects
DEFAULT_BOOTSTRAPPER_IMAGE = "public.ecr.aws/dynatrace/dynatrace-operator:v1.10.2"
CONTRACTS = ("auto", "v1.4", "v1.10")

# str, int, float: as named; positive: a float > 0; switch: ``--x`` (off by default); bool: ``--x/--no-x``;
# duration: ``365d``, ``12h``, ``1h30m``...; names: repeatable, comma-separated in the environment;
# modules: upstream's modules.json
Kind = Literal["str", "int", "float", "positive", "switch", "bool", "duration", "names", "modules"]
TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no")


@dataclass(frozen=True)
class Option:
    flag: str
    group: str
    help: str
    default: Any = None
    kind: Kind = "str"
    env: tuple[str, ...] = ()  # () = the flag's name in capitals
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    setting_name: str = ""  # the Settings field; "" = the flag's name with underscores
    setting: Callable[[Any], Any] | None = None  # the parsed value -> the Settings value (identity)
    shown: str = ""  # the default as --help and the README show it, when not the value itself
    see: str = ""  # README only: where to read more
    # a bool's value when none of its environment variables holds a boolean word, read from other variables
    fallback: Callable[[Mapping[str, str]], Any] | None = None

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def env_names(self) -> tuple[str, ...]:
        return self.env or (self.dest.upper(),)

    @property
    def settings_field(self) -> str:
        return self.setting_name or self.dest

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.flag, f"--no-{self.flag[2:]}") if self.kind == "bool" else (self.flag,)


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


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _seconds(value: dt.timedelta) -> float:
    return value.total_seconds()


def _csi_from_modules(environ: Mapping[str, str]) -> bool:
    """``--csi-driver`` without ``CSI_DRIVER``: the ``csiDriver`` module of the modules' environment variable
    (one reading for injection and validation)."""
    return Modules.parse(first_env(option("--modules"), environ)).csi_driver


_SELF_MANAGED = "self-managed certificates (--cert-mode self-managed)"

OPTIONS: tuple[Option, ...] = (
    # listeners
    Option("--webhook-host", "listeners", "admission bind host", "0.0.0.0"),
    Option("--webhook-port", "listeners", "HTTPS admission port", 8443, "int"),
    Option(
        "--health-probe-bind-address",
        "listeners",
        "health listener (`host:port` or `:port`)",
        ":10080",
        setting_name="health_bind",
        setting=parse_bind,
    ),
    Option(
        "--metrics-bind-address",
        "listeners",
        "metrics listener (`host:port` or `:port`); `0` disables it",
        ":8080",
        setting_name="metrics_bind",
        setting=parse_bind,
    ),
    # state
    Option("--namespace", "state", "namespace holding the DynaKubes", "dynatrace", env=("POD_NAMESPACE",)),
    Option(
        "--state-file",
        "state",
        "read DynaKubes and Namespaces from this YAML file instead of the Kubernetes API",
        setting=_path,
    ),
    Option("--kubeconfig", "state", "kubeconfig when not running in a pod"),
    Option(
        "--dynakube-api-version",
        "state",
        "DynaKube version to watch",
        "",
        shown="the `dynatrace.com` group's preferred version",
    ),
    Option(
        "--relabel-namespaces",
        "state",
        "relabel existing namespaces when DynaKubes change (needs RBAC patch on namespaces; not with "
        "`--state-file`)",
        False,
        "switch",
    ),
    Option("--relabel-interval", "state", "seconds between full relabel passes", 300.0, "positive"),
    Option(
        "--operator-service-account",
        "state",
        "the Dynatrace Operator's service account in `--namespace`: `/label-ns` leaves its namespace changes "
        "unchanged, as upstream v1.10 (the operator maps namespaces itself); empty: map every change",
        "dynatrace-operator",
    ),
    # certificates
    Option(
        "--certs-dir",
        "certificates",
        "directory of the serving certificate and key",
        DEFAULT_CERTS_DIR,
        setting=Path,
    ),
    Option("--cert-name", "certificates", "the certificate's file in `--certs-dir`", "tls.crt"),
    Option("--key-name", "certificates", "the key's file in `--certs-dir`", "tls.key"),
    Option(
        "--cert-mode",
        "certificates",
        "`self-managed`: keep a CA and certificate in a Secret and the caBundle in step; `files`: serve the "
        "files in `--certs-dir`; `dev`: generate a local CA and certificate there",
        choices=("self-managed", "files", "dev"),
        shown="`dev` with `--state-file`, else `files`",
        see="[Certificates](#certificates)",
    ),
    # self-managed certificates
    Option(
        "--service-name",
        _SELF_MANAGED,
        "Service in front of the webhook, for the certificate's names",
        "dynatrace-webhook",
    ),
    Option(
        "--cert-extra-san",
        _SELF_MANAGED,
        "another DNS name or IP address for the certificate; repeatable (in the environment: comma-separated)",
        (),
        "names",
        env=("CERT_EXTRA_SANS",),
        setting_name="cert_extra_sans",
    ),
    Option(
        "--cert-secret-name",
        _SELF_MANAGED,
        "Secret holding the CA and certificate, in `--namespace`",
        "dynatrace-webhook-certs",
    ),
    Option(
        "--mutating-webhook-config",
        _SELF_MANAGED,
        "MutatingWebhookConfiguration whose caBundle to keep; repeatable (in the environment: comma-separated)",
        (),
        "names",
        env=("MUTATING_WEBHOOK_CONFIGS",),
        setting_name="mutating_webhook_configs",
    ),
    Option(
        "--validating-webhook-config",
        _SELF_MANAGED,
        "ValidatingWebhookConfiguration whose caBundle to keep; repeatable (in the environment: comma-separated)",
        (),
        "names",
        env=("VALIDATING_WEBHOOK_CONFIGS",),
        setting_name="validating_webhook_configs",
    ),
    Option("--ca-validity", _SELF_MANAGED, "lifetime of a new CA", dt.timedelta(days=365), "duration"),
    Option(
        "--ca-renew-before",
        _SELF_MANAGED,
        "roll the CA when less than this remains",
        dt.timedelta(days=30),
        "duration",
    ),
    Option(
        "--cert-validity",
        _SELF_MANAGED,
        "lifetime of a new serving certificate",
        dt.timedelta(days=7),
        "duration",
    ),
    Option(
        "--cert-renew-before",
        _SELF_MANAGED,
        "renew the serving certificate when less than this remains",
        dt.timedelta(hours=12),
        "duration",
    ),
    Option(
        "--ca-bundle-propagation-delay",
        _SELF_MANAGED,
        "after a CA roll, how long the caBundle must have trusted the new CA before a certificate signed by it "
        "is served",
        dt.timedelta(seconds=30),
        "duration",
    ),
    Option(
        "--cert-check-interval",
        _SELF_MANAGED,
        "how often the Secret and caBundles are checked",
        dt.timedelta(minutes=5),
        "duration",
        setting=_seconds,
    ),
    # injection
    Option(
        "--init-image",
        "injection",
        "image of the injected `dynatrace-operator` init container: a Dynatrace Operator image of the v1.4 "
        "contract",
        DEFAULT_INIT_IMAGE,
        env=("DT_OPERATOR_IMAGE", "INIT_IMAGE"),
    ),
    # the injection contract per DynaKube (v1.4 init, v1.10 bootstrapper), and the v1.10 contract's image
    Option(
        "--contract",
        "injection",
        "the injection contract: `v1.4` (the `init` command, pairs with operators v1.4.x), `v1.10` (the "
        "bootstrapper, pairs with operators v1.10.x), or `auto`: `v1.10` for a DynaKube whose operator wrote the "
        "Secret `<dynakube>-bootstrapper-config` in the DynaKube's namespace, else `v1.4`",
        "auto",
        env=("INJECTION_CONTRACT",),
        choices=CONTRACTS,
        see="[What pairs with what](#what-pairs-with-what)",
    ),
    Option(
        "--bootstrapper-image",
        "injection",
        "image of the injected `dynatrace-operator` init container under the v1.10 contract: a Dynatrace "
        "Operator image whose `bootstrap` command implements it (v1.10.x)",
        DEFAULT_BOOTSTRAPPER_IMAGE,
    ),
    Option(
        "--csi-driver",
        "injection",
        "the Dynatrace CSI driver is installed: `oneagent-bin` is a CSI volume (else an emptyDir the init "
        "container downloads the code modules into)",
        True,
        "bool",
        shown="on, or the `csiDriver` module of `MODULES_JSON` / `modules.json`",
        fallback=_csi_from_modules,
    ),
    Option(
        "--events",
        "injection",
        "record a Warning Event on the owner of a pod admitted without OneAgent because the DynaKube's "
        "connection info is incomplete or the DynaKube is missing (needs RBAC create/patch on events.k8s.io "
        "events; not with `--state-file`)",
        True,
        "bool",
        see="[Events](#events)",
    ),
    Option(
        "--init-secrets",
        "injection",
        "create and update the init Secrets (`dynatrace-dynakube-config`, `dynatrace-metadata-enrichment-"
        "endpoint`) in every namespace mapped to a DynaKube, leader only (needs RBAC on secrets; not with "
        "`--state-file`)",
        True,
        "bool",
        see="[Init Secrets](#init-secrets)",
    ),
    Option(
        "--init-secrets-resync",
        "injection",
        "seconds between full passes of the initsecrets controller",
        300.0,
        "positive",
    ),
    Option(
        "--init-secret-timeout",
        "injection",
        "seconds a new namespace's first pod waits for the namespace's watch event and for the init Secret its "
        "admission creates on first need (each); without them by then it is admitted with `MissingInitSecret` "
        "and its workload is restarted once the Secret exists",
        1.0,
        "positive",
    ),
    # validation
    Option(
        "--modules",
        "validation",
        "the modules of the paired operator installation, upstream's `modules.json`: a JSON object of booleans "
        "`csiDriver`, `activeGate`, `oneAgent`, `extensions`, `logMonitoring`, `edgeConnect`, `supportability`, "
        "`kspm`; DynaKubes and EdgeConnects needing a missing one are denied",
        Modules(),
        "modules",
        # upstream's operator reads the variable "modules.json" (from its install-config ConfigMap)
        env=("MODULES_JSON", "modules.json"),
        metavar="JSON",
        shown="every module",
        see="[Behaviour of `/validate`](#behaviour-of-validate)",
    ),
    # automatic reinjection
    Option(
        "--reinject",
        "automatic reinjection",
        "find pods that would get OneAgent now but did not and restart their workloads, once per cause: always "
        "for the causes the webhook owns (`MissingInitSecret`), for incomplete connection info and pods never "
        "seen by the webhook only for DynaKubes annotated `feature.dynatrace.com/automatic-reinjection=true`; "
        "report pods never seen by the webhook (only with the Kubernetes API; off with `--state-file`)",
        True,
        "bool",
        see="[Automatic reinjection](#automatic-reinjection-and-pods-the-webhook-never-saw)",
    ),
    Option(
        "--reinject-dry-run",
        "automatic reinjection",
        "report what `--reinject` would restart (log, Events, metrics) without restarting; implies `--reinject`",
        False,
        "switch",
    ),
    Option(
        "--reinject-rate", "automatic reinjection", "workloads restarted per minute at most", 10.0, "positive"
    ),
    Option(
        "--reinject-resync",
        "automatic reinjection",
        "seconds between full scans of the mapped namespaces for pods to restart or never seen by the webhook",
        600.0,
        "positive",
    ),
    # serving
    Option(
        "--keep-alive",
        "serving",
        "idle keep-alive seconds, longer than kube-apiserver's idle connection pool (90 s)",
        120.0,
        "float",
    ),
    Option(
        "--shutdown-delay",
        "serving",
        "seconds between readiness going false on SIGTERM and the listeners closing",
        0.0,
        "float",
    ),
    Option("--graceful-timeout", "serving", "seconds in-flight requests get at shutdown", 25.0, "float"),
    Option(
        "--limit-concurrency",
        "serving",
        "connections+requests above which the admission listener answers 503",
        None,
        "int",
    ),
    Option(
        "--header-timeout",
        "serving",
        "seconds a connection gets to complete its TLS handshake and each request's headers; then it is closed",
        10.0,
        "positive",
    ),
    Option(
        "--read-timeout",
        "serving",
        "seconds a request gets to send its body once its headers are in; then 408",
        10.0,
        "positive",
    ),
    Option(
        "--log-level",
        "serving",
        "the lowest level logged: `debug`, `info`, `warning` or `error`",
        "info",
        choices=("debug", "info", "warning", "error"),
    ),
    Option("--log-format", "serving", "`json` lines, or `text`", "json", choices=("json", "text")),
    Option(
        "--debug-endpoints",
        "serving",
        "serve `POST /debug/decision` on the health listener",
        False,
        "switch",
    ),
)


def option(flag: str) -> Option:
    for candidate in OPTIONS:
        if candidate.flag == flag:
            return candidate
    raise KeyError(flag)


def _by_field(name: str) -> Option:
    for candidate in OPTIONS:
        if candidate.settings_field == name:
            return candidate
    raise KeyError(name)


def to_setting(opt: Option, value: Any) -> Any:
    """A parsed value as ``Settings`` holds it."""
    if opt.kind == "names":
        value = tuple(value)
    return opt.setting(value) if opt.setting else value


def default(settings_field: str) -> Any:
    """The default of the option behind a ``Settings`` field, as ``Settings`` holds it."""
    opt = _by_field(settings_field)
    return to_setting(opt, opt.default)


# --- reading values ---
def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be greater than 0")
    return number


def duration(text: str) -> dt.timedelta:
    from webhook.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


def _bool(value: str) -> bool | None:
    word = value.strip().lower()
    return True if word in TRUE else False if word in FALSE else None


_TYPES: dict[str, Callable[[str], Any]] = {
    "int": int,
    "float": float,
    "positive": positive_float,
    "duration": duration,
    "modules": Modules.parse,  # never raises: not an object of booleans means every module, as upstream
}


def first_env(opt: Option, environ: Mapping[str, str]) -> str | None:
    """The first of the option's environment variables that is set and not empty."""
    return next((environ[name] for name in opt.env_names if environ.get(name)), None)


def env_default(opt: Option, environ: Mapping[str, str]) -> Any:
    """The option's value without its flag. Text is returned as text: argparse converts a default given as
    text with the option's type, so an invalid value is refused naming the flag."""
    text = first_env(opt, environ)
    if opt.kind in ("switch", "bool"):
        value = None if text is None else _bool(text)
        if value is not None:
            return value
        if opt.fallback is not None:
            return opt.fallback(environ)
        return opt.default if text is None else False  # set, but not a boolean word: off, as always
    if text is None:
        return list(opt.default) if opt.kind == "names" else opt.default
    return _names(text) if opt.kind == "names" else text


class _Repeated(argparse.Action):
    """A repeatable flag whose first use replaces the environment's list (flag before environment)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest, None)
        items = [] if current is self.default else list(current or ())
        items.append(values)
        setattr(namespace, self.dest, items)


def _plain(text: str) -> str:
    return text.replace("`", "")


def help_text(opt: Option) -> str:
    env = ", ".join(opt.env_names)
    return _plain(f"{opt.help} (env {env}; default {shown_default(opt)})").replace("%", "%%")


def _add(target: Any, opt: Option, environ: Mapping[str, str]) -> None:
    kwargs: dict[str, Any] = {"default": env_default(opt, environ)}
    if opt.kind == "switch":
        kwargs["action"] = "store_true"
    elif opt.kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    elif opt.kind == "names":
        kwargs.update(action=_Repeated, metavar=opt.metavar or "NAME")
    else:
        kwargs["type"] = _TYPES.get(opt.kind, str)
        kwargs["metavar"] = opt.metavar or ("DURATION" if opt.kind == "duration" else None)
    if opt.choices:
        kwargs["choices"] = opt.choices
    action = target.add_argument(opt.flag, **kwargs)
    action.help = help_text(opt)  # after: BooleanOptionalAction would append a second default to it


def add_arguments(
    parser: argparse.ArgumentParser,
    flags: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """The options (all, in groups; or the named ones, without groups) as arguments of ``parser``."""
    environ = os.environ if environ is None else environ
    if flags is not None:
        for flag in flags:
            _add(parser, option(flag), environ)
        return
    groups: dict[str, Any] = {}
    for opt in OPTIONS:
        if opt.group not in groups:
            groups[opt.group] = parser.add_argument_group(opt.group)
        _add(groups[opt.group], opt, environ)


def settings_values(args: argparse.Namespace) -> dict[str, Any]:
    """``Settings`` fields from parsed arguments, each as ``Settings`` holds it."""
    return {opt.settings_field: to_setting(opt, getattr(args, opt.dest)) for opt in OPTIONS}


# --- the README's flags table ---
def _format(value: Any) -> str:
    if value is None or value == () or value == "":
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dt.timedelta):
        from webhook.durations import format_duration

        return format_duration(value)
    return str(value)


def shown_default(opt: Option) -> str:
    if opt.shown:
        return opt.shown
    text = _format(opt.default)
    return text if text in ("none", "on", "off") else f"`{text}`"


def markdown_table(options: Sequence[Option] = OPTIONS) -> str:
    rows = ["| flag | env | default | meaning |", "|---|---|---|---|"]
    for opt in options:
        flags = ", ".join(f"`{f}`" for f in opt.flags)
        env = ", ".join(f"`{name}`" for name in opt.env_names)
        meaning = f"{opt.help}; see {opt.see}" if opt.see else opt.help
        rows.append(f"| {flags} | {env} | {shown_default(opt)} | {meaning} |")
    return "\n".join(rows) + "\n"


BEGIN = "<!-- flags: generated from webhook/options.py by `python -m webhook.options --write README.md` -->\n"
END = "<!-- end of flags -->\n"


def replace_table(text: str, table: str | None = None) -> str:
    """``text`` with the part between the markers replaced by the flags table."""
    match = re.search(re.escape(BEGIN) + r"(.*?)" + re.escape(END), text, re.DOTALL)
    if match is None:
        raise ValueError("the flags table's markers are missing")
    return text[: match.start(1)] + (table or markdown_table()) + text[match.end(1) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m webhook.options",
        description="Print the README's flags table, or write it into a file.",
    )
    parser.add_argument("--write", metavar="FILE", help="replace the table between the markers in FILE")
    args = parser.parse_args(argv)
    if args.write:
        path = Path(args.write)
        path.write_text(replace_table(path.read_text()))
    else:
        sys.stdout.write(markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
