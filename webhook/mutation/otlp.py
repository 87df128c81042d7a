"""The v1.10 contract's OTLP exporter configuration (pure): what the Dynatrace Operator v1.10.2 webhook's OTLP
handler adds to a pod after the injection handler (UPSTREAM-v1.5-v1.10.md sections 4, 5 and 6.4).

It runs when the DynaKube's ``spec.otlpExporterConfiguration.signals`` names ``traces``, ``metrics`` or
``logs``, the pod's namespace matches ``spec.otlpExporterConfiguration.namespaceSelector`` and the pod opts in
(``otlp-exporter-configuration.dynatrace.com/inject``, default: the DynaKube's ``automatic-injection``).
Every container not excluded and without ``OTEL_EXPORTER_OTLP_*`` env of its own (unless ``overrideEnvVars``)
gets the exporter env; the token comes from the replicated Secret ``dynatrace-otlp-exporter-config`` through a
``secretKeyRef``, never a value. A missing Secret is a plain annotation (the injection's changes stay); the
other reasons are upstream ``MutatorError``s: the pod restored, only the OTLP annotations written.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from webhook import dynakube as dk
from webhook import selectors
from webhook.mutation import attributes as at
from webhook.mutation import podspec as ps
from webhook.mutation.context import PodContext
from webhook.mutation.patch import Patch
from webhook.tolerant import as_list as _list
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

CONFIG_SECRET = "dynatrace-otlp-exporter-config"
CERTS_SECRET = "dynatrace-otlp-exporter-certs"
SECRETS = (CONFIG_SECRET, CERTS_SECRET)
SOURCE_SUFFIX = {CONFIG_SECRET: "-otlp-exporter-config", CERTS_SECRET: "-otlp-exporter-certs"}
TOKEN_KEY = "dataIngestToken"
CERT_KEY = "activegate-tls.crt"

VOLUME_CERTS = "otlp-dynatrace-certs"
CERTS_PATH = "/etc/dynatrace/ssl"
SIGNALS = ("traces", "metrics", "logs")
PROTOCOL = "http/protobuf"

PREFIX = "otlp-exporter-configuration.dynatrace.com/"
ANNOTATION_INJECT = PREFIX + "inject"
ANNOTATION_INJECTED = PREFIX + "injected"
ANNOTATION_REASON = PREFIX + "reason"
KEYS = (ANNOTATION_INJECTED, ANNOTATION_REASON)
FF_SET_NO_PROXY = "feature.dynatrace.com/otlp-exporter-configuration-set-no-proxy"
FF_AUTOMATIC_TLS = "feature.dynatrace.com/automatic-tls-certificate"

REASON_NO_CONFIG_SECRET = "NoOTLPExporterConfigSecret"
REASON_NO_CERT_SECRET = "NoOTLPExporterActiveGateCertSecret"
REASON_NO_ENDPOINT = "IngestEndpointUnavailable"
REASON_CONFLICTING_VOLUME_TYPE = "ConflictingVolumeType"
PLAIN_REASONS = (REASON_NO_CONFIG_SECRET, REASON_NO_CERT_SECRET)  # the injection's changes stay

TOKEN_ENV = "DT_API_TOKEN"
RESOURCE_ATTRIBUTES_ENV = "OTEL_RESOURCE_ATTRIBUTES"
TEMPORALITY_ENV = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
# a container with any of these is left as it is (unless overrideEnvVars)
OWN_ENV = frozenset(
    {
        f"OTEL_EXPORTER_OTLP_{signal}{what}"
        for signal in ("", "TRACES_", "METRICS_", "LOGS_")
        for what in ("ENDPOINT", "HEADERS", "CERTIFICATE", "PROTOCOL")
    }
    | {TEMPORALITY_ENV}
)


_REFERENCE = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_]*\)")  # a dependent env var: $(NAME)


def source_name(dynakube_name: str, secret: str) -> str:
    """The operator's Secret in the DynaKube's namespace that ``secret`` is replicated from."""
    return dynakube_name + SOURCE_SUFFIX[secret]


@dataclass(frozen=True)
class View:
    """What the OTLP exporter needs of a DynaKube, worked out once per DynaKube object."""

    name: str
    signals: tuple[str, ...]
    selector: Any
    automatic: bool
    override: bool
    needs_certs: bool
    activegate: bool
    activegate_host: str
    base_url: str  # "" when the ActiveGate has no tenant UUID to build it from
    no_proxy: bool
    attributes: Mapping[str, Any]


def _build_view(dynakube: Mapping[str, Any]) -> View:
    from webhook.mutation.bootstrapper import second_gen  # the same API URL mapping

    spec = dk.spec(dynakube)
    config = _map(spec.get("otlpExporterConfiguration"))
    named = _map(config.get("signals"))
    signals = tuple(s for s in SIGNALS if s in named and named[s] is not None)
    ag = dk.activegate_enabled(dynakube)
    ag_ca = ag and (
        bool(_map(spec.get("activeGate")).get("tlsSecretName"))
        or ps.parse_bool(dk.feature(dynakube, FF_AUTOMATIC_TLS, ""), True)
    )
    host = f"{dk.name(dynakube)}-activegate.{dk.namespace(dynakube)}"
    tenant = dk.tenant_uuid(dynakube)
    if ag:
        base = f"https://{host}/e/{tenant}/api/v2/otlp" if tenant else ""
    else:
        base = second_gen(dk.api_url(dynakube)).rstrip("/") + "/v2/otlp"
    return View(
        name=dk.name(dynakube),
        signals=signals,
        selector=config.get("namespaceSelector") or {},
        automatic=dk.automatic_injection(dynakube),
        override=config.get("overrideEnvVars") is True,
        needs_certs=ag_ca or bool(dk.trusted_cas(dynakube)),
        activegate=ag,
        activegate_host=host,
        base_url=base,
        no_proxy=ps.parse_bool(dk.feature(dynakube, FF_SET_NO_PROXY, ""), True),
        attributes={
            **_map(spec.get("resourceAttributes")),
            **_map(config.get("additionalResourceAttributes")),
        },
    )


def view(dynakube: Mapping[str, Any]) -> View:
    return dk.per_object(dynakube, "otlp", _build_view)


def selected(ctx: PodContext, dynakube: Mapping[str, Any]) -> bool:
    """The OTLP handler runs for the pod: signals configured, namespace selected, pod opted in."""
    v = view(dynakube)
    if not v.signals:
        return False
    try:
        if not selectors.matches(v.selector, ctx.namespace_labels):
            return False
    except selectors.InvalidSelector:
        return False
    return ps.parse_bool(ctx.annotations.get(ANNOTATION_INJECT), v.automatic)


def wanted(dynakube: Mapping[str, Any], namespace_labels: Mapping[str, Any]) -> tuple[str, ...]:
    """The OTLP exporter's Secrets a namespace's pods need (the pods' opt-in aside): none unless signals are
    configured and the namespace is selected."""
    v = view(dynakube)
    if not v.signals:
        return ()
    try:
        if not selectors.matches(v.selector, namespace_labels):
            return ()
    except selectors.InvalidSelector:
        return ()
    return SECRETS if v.needs_certs else (CONFIG_SECRET,)


def gate(ctx: PodContext, v: View, secrets: Collection[str] | None) -> tuple[str, str]:
    """(reason, message) of the first OTLP check that fails, in upstream's order; ("", "") when none does."""
    present = SECRETS if secrets is None else secrets
    if CONFIG_SECRET not in present:
        return REASON_NO_CONFIG_SECRET, _missing(ctx, v, CONFIG_SECRET)
    if v.needs_certs and CERTS_SECRET not in present:
        return REASON_NO_CERT_SECRET, _missing(ctx, v, CERTS_SECRET)
    if not v.base_url:
        return (
            REASON_NO_ENDPOINT,
            f"DynaKube {v.name!r} has no tenant UUID for the ActiveGate's OTLP endpoint",
        )
    for volume in _list(ctx.spec.get("volumes")):
        volume = _map(volume)
        if (
            volume.get("name") == VOLUME_CERTS
            and _map(volume.get("secret")).get("secretName") != CERTS_SECRET
        ):
            return (
                REASON_CONFLICTING_VOLUME_TYPE,
                f"user-provided {VOLUME_CERTS} volume cannot be mounted due to invalid configuration",
            )
    return "", ""


def _missing(ctx: PodContext, v: View, secret: str) -> str:
    return (
        f"secret {secret} is not in namespace {ctx.namespace_name!r} and its source "
        f"{source_name(v.name, secret)} is not known"
    )


def annotate(patch: Patch, reason: str) -> None:
    """``…/injected: "false"`` and ``…/reason``."""
    patch.set_in_map(("metadata", "annotations"), ANNOTATION_INJECTED, "false")
    patch.set_in_map(("metadata", "annotations"), ANNOTATION_REASON, reason)


def exporter_env(v: View) -> list[dict[str, Any]]:
    """The exporter env every injected container gets, in upstream's order (before NO_PROXY and the
    resource attributes)."""
    env: list[dict[str, Any]] = [
        {"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": CONFIG_SECRET, "key": TOKEN_KEY}}}
    ]
    for signal in v.signals:
        prefix = f"OTEL_EXPORTER_OTLP_{signal.upper()}_"
        env += [
            ps.value_env(prefix + "ENDPOINT", f"{v.base_url}/v1/{signal}"),
            ps.value_env(prefix + "PROTOCOL", PROTOCOL),
            ps.value_env(prefix + "HEADERS", f"authorization=Api-Token $({TOKEN_ENV})"),
        ]
        if v.needs_certs:
            env.append(ps.value_env(prefix + "CERTIFICATE", f"{CERTS_PATH}/{CERT_KEY}"))
        if signal == "metrics":
            env.append(ps.value_env(TEMPORALITY_ENV, "delta"))
    return env


def resource_attributes(attributes: Mapping[str, str], container: str, existing: str) -> str:
    """``OTEL_RESOURCE_ATTRIBUTES``: ours (by key, values URL-query-escaped but for the ``$(K8S_…)``
    references Kubernetes expands, the container's name), then the container's own value re-appended last (its
    keys win)."""
    own = {part.split("=", 1)[0] for part in existing.split(",") if "=" in part}
    ours = {**attributes, "k8s.container.name": container}
    parts = [f"{k}={_escape(v)}" for k, v in sorted(ours.items()) if k and v and k not in own]
    if existing:
        parts.append(existing)
    return ",".join(parts)


def _escape(value: str) -> str:
    return value if _REFERENCE.fullmatch(value) else quote_plus(value)


def container_env(
    v: View, container: Mapping[str, Any], attributes: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]], int]:
    """(env to append, replacements by index, the index of the container's own ``OTEL_RESOURCE_ATTRIBUTES``
    that moves to the end, or -1) for one container. The ``K8S_…`` field refs come before the attributes that
    reference them."""
    env = _list(container.get("env"))
    index = {_str(_map(e).get("name")): i for i, e in enumerate(env)}
    added: list[dict[str, Any]] = []
    replaced: dict[int, dict[str, Any]] = {}

    def put(entry: dict[str, Any]) -> None:
        if entry["name"] in index:
            if v.override and _map(env[index[entry["name"]]]) != entry:
                replaced[index[entry["name"]]] = entry
        else:
            added.append(entry)

    for entry in exporter_env(v):
        put(entry)
    if v.activegate and v.no_proxy:
        current = _map(env[index["NO_PROXY"]]) if "NO_PROXY" in index else {}
        value = _str(current.get("value"))
        if "valueFrom" not in current and v.activegate_host not in value.split(","):
            entry = ps.value_env("NO_PROXY", f"{value},{v.activegate_host}" if value else v.activegate_host)
            if "NO_PROXY" in index:
                replaced[index["NO_PROXY"]] = entry
            else:
                added.append(entry)
    for entry in at.pod_env():
        if entry["name"] not in index:
            added.append(entry)
    moved = -1
    current = _map(env[index[RESOURCE_ATTRIBUTES_ENV]]) if RESOURCE_ATTRIBUTES_ENV in index else {}
    if "valueFrom" not in current:
        value = resource_attributes(attributes, _str(container.get("name")), _str(current.get("value")))
        moved = index.get(RESOURCE_ATTRIBUTES_ENV, -1)
        added.append(ps.value_env(RESOURCE_ATTRIBUTES_ENV, value))
    return added, replaced, moved


def to_inject(v: View, ctx: PodContext) -> list[int]:
    """Eligible containers the exporter env goes to: those without OTLP env of their own (unless override)."""
    return [
        i
        for i in ctx.eligible
        if v.override or not any(_map(e).get("name") in OWN_ENV for e in _list(ctx.containers[i].get("env")))
    ]


def add(patch: Patch, ctx: PodContext, v: View, attributes: Mapping[str, str]) -> bool:
    """What the OTLP handler adds to a pod that passed ``gate``; True when a container got the exporter."""
    containers = to_inject(v, ctx)
    if v.needs_certs and containers and VOLUME_CERTS not in ctx.volume_names:
        patch.append(
            ("spec", "volumes"),
            {"name": VOLUME_CERTS, "secret": {"secretName": CERTS_SECRET, "defaultMode": 420}},
        )
    for i in containers:
        container = ctx.containers[i]
        base = ("spec", "containers", i)
        if v.needs_certs and VOLUME_CERTS not in ps.mount_names(container):
            mount = {"name": VOLUME_CERTS, "mountPath": CERTS_PATH, "readOnly": True}
            patch.append((*base, "volumeMounts"), mount)
        added, replaced, moved = container_env(v, container, attributes)
        for j, entry in sorted(replaced.items()):
            patch.replace((*base, "env", j), entry)
        if moved >= 0:  # re-appended last: after the replacements, which address the original indexes
            patch.ops.append({"op": "remove", "path": f"/spec/containers/{i}/env/{moved}"})
        patch.extend((*base, "env"), added)
    if containers:
        patch.set_in_map(("metadata", "annotations"), ANNOTATION_INJECTED, "true")
        patch.remove_from_map(("metadata", "annotations"), ANNOTATION_REASON)
    return bool(containers)
