"""DynaKube checks of Dynatrace Operator v1.10.2 that differ from v1.4 or are new (``pkg/api/validation/dynakube/``
at tag v1.10.2): one small function per check, ``(object read as v1beta6, context) -> message | None``.

The check order is ``v110_order``; the checks whose condition and words are unchanged since v1.4 are reused
from their modules there. Resource attributes, telemetry ingest and databases are in ``v110_more``.
"""

from __future__ import annotations

from webhook.tolerant import as_list, as_map, as_str
from webhook.validation import gourl, hub, images, latest, module_checks, name, namespaces
from webhook.validation.base import Context, DynaKube

INVALID_CHARSET = "\n\t\r\x00"  # upstream's sanitize.InvalidCommandLineCharset
_FORBIDDEN = "Make sure to remove forbidden characters (newline, tab, carriage return, null) from the"

KUBERNETES_MONITORING_DEPENDENCY = (
    "KubernetesMonitoring has been disabled during Operator install. That is a dependency for KSPM to work. "
    "Redeploy the Operator via Helm with all the necessary resources enabled."
)
DUPLICATE_ARGUMENT = (
    "%s has been provided multiple times. Only --set-host-property and --set-host-tag arguments may be provided "
    "multiple times."
)
SAME_HOST_TAG = "Providing the same tag(s) (%s) multiple times with --set-host-tag is not allowed."
HOST_ID_SOURCE = "Setting --set-host-id-source in CloudNativFullstack mode is not allowed."
INVALID_API_URL = (
    "The DynaKube's specification has an invalid API URL value set.\n\tMake sure you correctly specify the URL in "
    "your custom resource (including the /api postfix).\n\t"
)
AG_PVC_AND_EPHEMERAL = (
    " DynaKube specifies a PVC for the ActiveGate while ephemeral volume is also enabled. These settings are "
    "mutually exclusive, please choose only one."
)
NAME_NOT_DNS1035 = (
    "The DynaKube name violates DNS-1035, a DNS-1035 label must consist of lower case alphanumeric characters or "
    "'-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_TOO_LONG = (
    "The length limit for the name of a DynaKube is %d, because it is the base for the name of resources related "
    "to the DynaKube. (example: dkName-activegate-<some-hash>).\n    The limit is necessary because kubernetes "
    "uses the name of some resources (example: StatefulSet) for the label value, which has a limit of 63 "
    "characters. (see https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/"
    "#syntax-and-character-set)"
)
_SHORTER = ".\n    When using %s, some resources require the DynaKube name to be shorter than usual."
# upstream: 63 - 10 - 1 (StatefulSet) or 63 - 5 - 1 (DaemonSet), minus the resource's suffix
NAME_LIMITS = (
    ("extensions", 52 - len("-extension-controller")),
    ("OpenTelemetry collectors", 52 - len("-otel-collector")),
    ("KSPM", 57 - len("-node-config-collector")),
)
EEC_IMAGE = (
    "DynaKube's specification enables extensions, make sure you correctly specify the ExtensionExecutionController "
    "image."
)
EEC_PVC_AND_EPHEMERAL = (
    "DynaKube specifies a PVC for the extension controller while ephemeral volume is also enabled. These settings "
    "are mutually exclusive, please choose only one."
)
KSPM_WITHOUT_KUBERNETES_MONITORING = (
    "The Dynakube's specification specifies KSPM, but requires an ActiveGate with `kubernetes-monitoring` enabled "
    "and the `automatic-kubernetes-api-monitoring` feature flag set to `true`."
)
KSPM_ROOT_PATH = "The Dynakube's specification specifies KSPM, use either '/' or specific path(s) on the MappedHostPath list."
KSPM_RELATIVE_PATH = (
    "The Dynakube's specification specifies KSPM, relative path found on the MappedHostPath list. Use absolute "
    "paths only. Relative path: %s"
)
LOG_MONITORING_IMAGE = "The Dynakube's specification specifies standalone Log monitoring, but no image repository/tag is configured."
OVERRIDE_WITHOUT_PUBLIC_REGISTRY = (
    'The publicRegistryOverride field is set, but the feature flag "feature.dynatrace.com/use-public-registry" '
    "is not enabled. Either enable the feature flag or remove the publicRegistryOverride field."
)
INVALID_NETWORK_ZONE = (
    f"The DynaKube's specification has an invalid Network Zone value set. {_FORBIDDEN} Network Zone value in "
    "your custom resource."
)
INVALID_HOST_GROUP = (
    "The DynaKube's specification has an invalid Host Group value set using the oneAgent.hostGroup property. "
    f"{_FORBIDDEN} Host Group value in your custom resource."
)
INVALID_NO_PROXY = (
    "The DynaKube's specification has an invalid value set using the feature.dynatrace.com/no-proxy annotation. "
    f"{_FORBIDDEN} value in your custom resource."
)
CLASSIC_WITH_PUBLIC_REGISTRY = (
    "The DynaKube's specification uses classicFullStack, which is not compatible with the public registry feature "
    "or platform tokens. Consider upgrading to cloudNativeFullStack."
)
INVALID_ONEAGENT_ARGUMENT = f"The DynaKube's OneAgent specification contains invalid arguments. {_FORBIDDEN} value in your custom resource."
INVALID_LOGMON_ARGUMENT = (
    "The DynaKube' spec.templates.logMonitoring.args contains invalid arguments. "
    f"{_FORBIDDEN} value in your custom resource."
)
CODE_MODULES_IMAGE = (
    "The DynaKube specification enables node image pull, but neither a code modules image is set nor a public "
    "registry is used."
)
MUTATED_TENANT = (
    "The DynaKube's specification mutated the tenant in the API URL although it is immutable. Please delete the "
    "CR and then apply a new one"
)


def _invalid_chars(text: str) -> bool:
    return any(c in text for c in INVALID_CHARSET)


# --- modules (modules.go) ---


def activegate_module_disabled(dk: DynaKube, ctx: Context) -> str | None:
    if latest.activegate_enabled(dk) and not ctx.modules.active_gate:
        return module_checks.module_disabled("ActiveGate")
    if latest.kubernetes_monitoring(dk) and not ctx.modules.kubernetes_monitoring:
        return module_checks.module_disabled("KubernetesMonitoring")
    return None


def extensions_module_disabled(dk: DynaKube, ctx: Context) -> str | None:
    if latest.extensions_enabled(dk) and not ctx.modules.extensions:
        return module_checks.module_disabled("Extensions")
    return None


def kspm_module_disabled(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.kspm(dk):
        return None
    found = [] if ctx.modules.kspm else [module_checks.module_disabled("KSPM")]
    if not ctx.modules.kubernetes_monitoring:
        found.append(KUBERNETES_MONITORING_DEPENDENCY)
    return ",".join(found) or None


# --- OneAgent (oneagent.go, hostgroup.go) ---


def _arguments_map(dk: DynaKube) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for argument in latest.oneagent_arguments(dk):
        key, value = latest.split_argument(argument)
        found.setdefault(key, []).append(value)
    return found


def duplicate_oneagent_arguments(dk: DynaKube, ctx: Context) -> str | None:
    for key, values in _arguments_map(dk).items():
        if key not in ("--set-host-property", "--set-host-tag") and len(values) > 1:
            return DUPLICATE_ARGUMENT % key
        if key == "--set-host-tag":
            twice = [v for i, v in enumerate(values) if values[:i].count(v) == 1]
            if twice:
                return SAME_HOST_TAG % f"[{' '.join(twice)}]"
    return None


def host_id_source_argument(dk: DynaKube, ctx: Context) -> str | None:
    if hub.has(dk, hub.CNFS) and "--set-host-id-source" in _arguments_map(dk):
        return HOST_ID_SOURCE
    return None


def invalid_oneagent_arguments(dk: DynaKube, ctx: Context) -> str | None:
    return INVALID_ONEAGENT_ARGUMENT if any(map(_invalid_chars, latest.oneagent_arguments(dk))) else None


def invalid_host_group(dk: DynaKube, ctx: Context) -> str | None:
    host_group = as_str(as_map(hub.spec(dk).get("oneAgent")).get("hostGroup"))
    return INVALID_HOST_GROUP if _invalid_chars(host_group) else None


def missing_code_modules_image(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.app_injection(dk) or not latest.flag(dk, latest.FF_NODE_IMAGE_PULL, False):
        return None
    if latest.code_modules_image(dk) or latest.public_registry(dk):
        return None
    return CODE_MODULES_IMAGE


# --- apiUrl (api_url.go) ---


def invalid_api_url(dk: DynaKube, ctx: Context) -> str | None:
    url = hub.api_url(dk)
    parsed = gourl.try_parse(url)
    if parsed is None:
        return INVALID_API_URL
    if ".apps." in parsed.hostname:
        return None  # a third-generation host needs no /api
    if not url.endswith("/api") or not [p for p in parsed.hostname.split(".") if p]:
        return INVALID_API_URL
    return None


def _tenant(url: str) -> str:
    parsed = gourl.try_parse(url)
    if parsed is None:
        return url
    host = parsed.hostname
    dot = host.find(".")
    return host[:dot] if dot > 0 else host


def mutated_tenant(dk: DynaKube, ctx: Context) -> str | None:
    """UPDATE only: the tenant (first label of the apiUrl's host) must not change."""
    if ctx.old is None:
        return None
    return MUTATED_TENANT if _tenant(hub.api_url(ctx.old)) != _tenant(hub.api_url(dk)) else None


# --- ActiveGate (activegate.go) ---


def activegate_pvc_with_ephemeral_volume(dk: DynaKube, ctx: Context) -> str | None:
    ag = latest.activegate(dk)
    if ag.get("useEphemeralVolume") is True and ag.get("volumeClaimTemplate") is not None:
        return AG_PVC_AND_EPHEMERAL
    return None


# --- namespaces, name, images ---


def conflicting_namespace_selector(dk: DynaKube, ctx: Context) -> str | None:
    if not (hub.app_injection(dk) or latest.metadata_enrichment(dk) or latest.otlp_enabled(dk)):
        return None
    found = namespaces.conflicts(dk, ctx.dynakubes, ctx.namespaces, otlp=True)
    return namespaces.CONFLICT if found else None


def name_invalid(dk: DynaKube, ctx: Context) -> str | None:
    dk_name = hub.name(dk)
    if not dk_name:
        return None
    limit, suffix = name.MAX_NAME_LENGTH, ""
    enabled = (latest.extensions_enabled(dk), latest.telemetry_ingest(dk), hub.kspm(dk))
    for (feature, feature_limit), on in zip(NAME_LIMITS, enabled, strict=True):
        if on:
            limit, suffix = min(limit, feature_limit), _SHORTER % feature
    if len(dk_name.encode()) > limit:
        return NAME_TOO_LONG % limit + suffix
    return None if name.is_dns1035_label(dk_name) else NAME_NOT_DNS1035


def unparsable_image(dk: DynaKube, ctx: Context) -> str | None:
    sections = (
        ("ActiveGate", as_str(latest.activegate(dk).get("image"))),
        ("OneAgent", hub.oneagent_image(dk)),
    )
    messages = []
    for section, image in sections:
        if image:
            try:
                images.parse_reference(image)
            except images.BadReference:
                messages.append(images.UNPARSABLE_IMAGE % section)
    return ";".join(messages) or None


# --- extensions (eec.go), KSPM (kspm.go), log monitoring (logmonitoring.go) ---


def _eec(dk: DynaKube) -> dict[str, object]:
    return dict(as_map(hub.templates(dk).get("extensionExecutionController")))


def eec_image_missing(dk: DynaKube, ctx: Context) -> str | None:
    if not latest.extensions_enabled(dk) or latest.public_registry(dk):
        return None
    return EEC_IMAGE if hub.image_ref_incomplete(_eec(dk)) else None


def eec_pvc_with_ephemeral_volume(dk: DynaKube, ctx: Context) -> str | None:
    eec = _eec(dk)
    if not latest.extensions_enabled(dk):
        return None
    if eec.get("useEphemeralVolume") is True and eec.get("persistentVolumeClaim") is not None:
        return EEC_PVC_AND_EPHEMERAL
    return None


def kspm_without_kubernetes_monitoring(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.kspm(dk):
        return None
    if latest.kubernetes_monitoring(dk) and latest.flag(dk, latest.FF_AUTOMATIC_K8S_API_MONITORING, True):
        return None
    return KSPM_WITHOUT_KUBERNETES_MONITORING


def kspm_root_with_other_paths(dk: DynaKube, ctx: Context) -> str | None:
    paths = latest.kspm_host_paths(dk)
    return KSPM_ROOT_PATH if hub.kspm(dk) and "/" in paths and len(paths) > 1 else None


def kspm_relative_path(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.kspm(dk):
        return None
    relative = next((p for p in latest.kspm_host_paths(dk) if not p.startswith("/")), None)
    return KSPM_RELATIVE_PATH % relative if relative is not None else None


def missing_log_monitoring_image(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.log_monitoring_standalone(dk) or latest.public_registry(dk):
        return None
    template = hub.templates(dk).get("logMonitoring")
    return LOG_MONITORING_IMAGE if template is None or hub.image_ref_incomplete(template) else None


def invalid_logmon_arguments(dk: DynaKube, ctx: Context) -> str | None:
    args = as_list(as_map(hub.templates(dk).get("logMonitoring")).get("args"))
    return INVALID_LOGMON_ARGUMENT if any(_invalid_chars(as_str(a)) for a in args) else None


# --- public registry (public_registry.go), network zone, no-proxy ---


def override_without_public_registry(dk: DynaKube, ctx: Context) -> str | None:
    override = as_str(hub.spec(dk).get("publicRegistryOverride"))
    return OVERRIDE_WITHOUT_PUBLIC_REGISTRY if override and not latest.public_registry(dk) else None


def classic_with_public_registry(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.has(dk, hub.CLASSIC):
        return None
    if as_str(hub.spec(dk).get("publicRegistryOverride")) or latest.public_registry(dk):
        return CLASSIC_WITH_PUBLIC_REGISTRY
    return None


def invalid_network_zone(dk: DynaKube, ctx: Context) -> str | None:
    return INVALID_NETWORK_ZONE if _invalid_chars(as_str(hub.spec(dk).get("networkZone"))) else None


def invalid_no_proxy(dk: DynaKube, ctx: Context) -> str | None:
    no_proxy = as_str(hub.annotations_of(dk).get(latest.FF_NO_PROXY))
    return INVALID_NO_PROXY if _invalid_chars(no_proxy) else None
