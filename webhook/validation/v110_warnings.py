"""Warnings of Dynatrace Operator v1.10.2 that differ from v1.4 or are new (``pkg/api/validation/dynakube/``)."""

from __future__ import annotations

from webhook.tolerant import as_map
from webhook.validation import hub, latest, v110_more
from webhook.validation.base import Context, DynaKube

MAX_UNAVAILABLE_WITH_ROLLING_UPDATE = (
    'The DynaKube specification uses both the deprecated annotation "oneagent-max-unavailable" and a '
    "rollingUpdate configuration. Please use only the rollingUpdate configuration."
)
DEPRECATED_AUTO_UPDATE = (
    "AutoUpdate field is deprecated. The feature is still available by configuring the DynaTrace tenant. Please "
    "visit our documentation for more details."
)
DEPRECATED_VERSION = 'version field is deprecated. Please use "%s" field instead to set a version.'
DEPRECATED_VERSION_IGNORED = "version field is deprecated and ignored. Please remove the version field from the DynaKube specification."
DEPRECATED_FLAGS = "Using deprecated feature flags: "
UNKNOWN_FLAGS = "Using unknown feature flags: %s. Please remove them from Dynakube specification."
IGNORED_OTEL_TEMPLATE = (
    "The Dynakube's `spec.templates.otelCollector` section is skipped as the `spec.telemetryIngest` section is not "
    "configured. Consider either removing `spec.templates.otelCollector.imageRef` or enabling "
    "`spec.telemetryIngest`."
)
SAME_API_URL = (
    "You are already using a Dynakube ('%s') that enables extensions. Having multiple Dynakubes with same "
    "'.spec.apiUrl' and '.spec.extensions' enabled can have severe side-effects on “sum” and “count” metrics and "
    "cause double-billing."
)
NO_MAPPED_HOST_PATHS = "The Dynakube's specification specifies KSPM, but no MappedHostPaths are configured."
EXTENSIONS_WITHOUT_KUBERNETES_MONITORING = (
    "The Dynakube is configured with extensions without an ActiveGate with `kubernetes-monitoring` enabled or the "
    "`automatic-kubernetes-api-monitoring` feature flag. You need to ensure that Kubernetes monitoring is setup "
    "for this cluster."
)
ENRICHMENT_DISABLED_FOR_INJECTION = (
    "metadataEnrichment.enabled is set to false, but OneAgent injection is enabled "
    "(applicationMonitoring/cloudNativeFullstack). Metadata enrichment will still be applied and this setting is "
    "ignored."
)
NODE_IMAGE_PULL_WITHOUT_CSI = (
    "The `feature.dynatrace.com/node-image-pull` annotation is set, but the CSI driver is not available on this "
    "cluster. This feature flag only affects the behavior of the CSI driver, so it will have no effect. Other "
    "previous `node-image-pull` related behavior has been defaulted."
)
PAAS_TOKEN_IGNORED = (
    "The 'paasToken' token in the spec.tokens secret is deprecated. It will be ignored because the 'apiToken' "
    "field in the secret contains a platform token, which will be used for authentication."
)
PAAS_TOKEN_USED = (
    "The 'paasToken' token in the spec.tokens secret is deprecated. It will be used for authentication because the "
    "'apiToken' field in the secret does not contain a platform token."
)
PUBLIC_REGISTRY_FLAG_IGNORED = (
    'The feature flag "feature.dynatrace.com/use-public-registry" is set, but it is ignored because a platform '
    "token is in use. The public registry endpoint is used automatically with platform tokens."
)
ROLLING_UPDATE_OLD_KUBERNETES = (
    "ActiveGate rollingUpdate setting requires Kubernetes version 1.35 or higher. The current cluster version is "
    "below 1.35, so the rollingUpdate setting will be ignored."
)
MIN_MINOR_FOR_ROLLING_UPDATE = 35
PAAS_TOKEN_KEY = "paasToken"
FF = hub.FF_PREFIX
DEPRECATED = tuple(
    FF + f
    for f in (
        "oneagent-ignore-proxy",
        "activegate-updates",
        "disable-activegate-updates",
        "oneagent-max-unavailable",
        "k8s-app-enabled",
    )
)
KNOWN = frozenset(
    [
        FF + f
        for f in ("no-proxy", "use-eec-legacy-mounts", "use-public-registry", "disable-activegate-updates")
    ]
    + [FF + f for f in ("activegate-ignore-proxy", "activegate-updates", "activegate-apparmor")]
    + [FF + "automatic-kubernetes-api-monitoring", FF + "automatic-kubernetes-api-monitoring-cluster-name"]
    + [FF + f for f in ("k8s-app-enabled", "automatic-tls-certificate", "max-csi-mount-attempts")]
    + [FF + f for f in ("max-csi-mount-timeout", "enable-attributes-dt.kubernetes", "ignored-namespaces")]
    + [FF + f for f in ("automatic-injection", "label-version-detection", "injection-failure-policy")]
    + [
        FF + f
        for f in ("init-container-seccomp-profile", "oneagent-ignore-proxy", "oneagent-max-unavailable")
    ]
    + [
        FF + f
        for f in ("oneagent-initial-connect-retry-ms", "oneagent-privileged", "oneagent-skip-liveness-probe")
    ]
    + [FF + "node-image-pull", latest.TECHNOLOGIES, FF + "otlp-exporter-configuration-set-no-proxy"]
)


def max_unavailable_with_rolling_update(dk: DynaKube, ctx: Context) -> str | None:
    if latest.FF_MAX_UNAVAILABLE not in hub.annotations_of(dk):
        return None
    for mode in (hub.CLASSIC, hub.CNFS, hub.HOSTMON):
        if hub.has(dk, mode) and hub.mode_spec(dk, mode).get("rollingUpdate") is not None:
            return MAX_UNAVAILABLE_WITH_ROLLING_UPDATE
    if as_map(hub.templates(dk).get("logMonitoring")).get("rollingUpdate") is not None:
        return MAX_UNAVAILABLE_WITH_ROLLING_UPDATE
    return None


def deprecated_auto_update(dk: DynaKube, ctx: Context) -> str | None:
    host_mode = any(hub.has(dk, m) for m in (hub.CLASSIC, hub.HOSTMON, hub.CNFS))
    return DEPRECATED_AUTO_UPDATE if host_mode and v110_more.auto_update_removed(dk) else None


def deprecated_version_field(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.oneagent_version(dk):
        return None
    if latest.public_registry(dk):
        return DEPRECATED_VERSION_IGNORED
    if hub.has(dk, hub.CLASSIC):
        return DEPRECATED_VERSION % "image"
    if hub.has(dk, hub.CNFS):
        return DEPRECATED_VERSION % "image and/or codeModulesImage"
    if hub.has(dk, hub.APPMON):
        return DEPRECATED_VERSION % "codeModulesImage"
    return DEPRECATED_VERSION % "image"


def deprecated_feature_flags(dk: DynaKube, ctx: Context) -> str | None:
    annotations = hub.annotations_of(dk)
    found = [f for f in DEPRECATED if f in annotations]
    return DEPRECATED_FLAGS + ", ".join(found) if found else None


def unknown_feature_flags(dk: DynaKube, ctx: Context) -> str | None:
    found = sorted(
        a for a in hub.annotations_of(dk) if (a.startswith(FF) or a == latest.TECHNOLOGIES) and a not in KNOWN
    )
    return UNKNOWN_FLAGS % ", ".join(found) if found else None


def ignored_otel_template(dk: DynaKube, ctx: Context) -> str | None:
    ref = as_map(as_map(hub.templates(dk).get("otelCollector")).get("imageRef"))
    return IGNORED_OTEL_TEMPLATE if not latest.telemetry_ingest(dk) and any(ref.values()) else None


def same_api_url_for_extensions(dk: DynaKube, ctx: Context) -> str | None:
    if not latest.extensions_enabled(dk):
        return None
    for other in map(latest.to_latest, ctx.dynakubes):
        if hub.name(other) == hub.name(dk):
            continue
        if latest.extensions_enabled(other) and hub.api_url(other) == hub.api_url(dk):
            return SAME_API_URL % hub.name(other)
    return None


def no_mapped_host_paths(dk: DynaKube, ctx: Context) -> str | None:
    return NO_MAPPED_HOST_PATHS if hub.kspm(dk) and not latest.kspm_host_paths(dk) else None


def extensions_without_kubernetes_monitoring(dk: DynaKube, ctx: Context) -> str | None:
    if not latest.extensions_enabled(dk):
        return None
    if latest.kubernetes_monitoring(dk) and latest.flag(dk, latest.FF_AUTOMATIC_K8S_API_MONITORING, True):
        return None
    return EXTENSIONS_WITHOUT_KUBERNETES_MONITORING


def enrichment_disabled_for_injection(dk: DynaKube, ctx: Context) -> str | None:
    enabled = as_map(hub.spec(dk).get("metadataEnrichment")).get("enabled")
    return ENRICHMENT_DISABLED_FOR_INJECTION if enabled is False and hub.app_injection(dk) else None


def node_image_pull_without_csi(dk: DynaKube, ctx: Context) -> str | None:
    if ctx.modules.csi_driver or latest.FF_NODE_IMAGE_PULL not in hub.annotations_of(dk):
        return None
    return NODE_IMAGE_PULL_WITHOUT_CSI


def missing_memory_limit(dk: DynaKube, ctx: Context) -> str | None:
    limits = as_map(latest.activegate(dk).get("resources")).get("limits")
    if latest.activegate_enabled(dk) and limits is None:
        return "ActiveGate specification missing memory limits. Can cause excess memory usage."
    return None


def host_group_argument(dk: DynaKube, ctx: Context) -> str | None:
    """The first ``--set-host-group`` argument (split at the first ``=``) has a value."""
    for argument in latest.oneagent_arguments(dk):
        key, value = latest.split_argument(argument)
        if key == "--set-host-group":
            if not value:
                return None
            return (
                "The DynaKube specification sets the host group using the --set-host-group parameter. Instead, "
                "specify the new spec.oneagent.hostGroup field. If both settings are used, the new field takes "
                "precedence over the parameter."
            )
    return None


def rolling_update_with_old_kubernetes(dk: DynaKube, ctx: Context) -> str | None:
    """``activeGateRollingUpdateWithOldK8sVersion``: ``spec.activeGate.rollingUpdate`` set on a cluster whose
    minor version is below 35 (the cached version; unknown: no warning, where upstream's unknown reads as 0)."""
    if as_map(hub.spec(dk).get("activeGate")).get("rollingUpdate") is None:
        return None
    minor = ctx.kubernetes_minor
    return (
        ROLLING_UPDATE_OLD_KUBERNETES if minor is not None and minor < MIN_MINOR_FOR_ROLLING_UPDATE else None
    )


def deprecated_paas_token(dk: DynaKube, ctx: Context) -> str | None:
    """``deprecatedPaasToken``: the tokens Secret has a non-empty ``paasToken`` (unreadable Secret: nothing)."""
    tokens = ctx.tokens(latest.tokens_secret(dk))
    if tokens is None or PAAS_TOKEN_KEY not in tokens.keys:
        return None
    return PAAS_TOKEN_IGNORED if tokens.platform else PAAS_TOKEN_USED


def public_registry_flag_ignored(dk: DynaKube, ctx: Context) -> str | None:
    """``publicRegistryFlagIgnoredForPlatformToken``: the flag is present (any value) and the API token is a
    platform token."""
    if latest.FF_PUBLIC_REGISTRY not in hub.annotations_of(dk) or not latest.platform_token(dk):
        return None
    return PUBLIC_REGISTRY_FLAG_IGNORED
