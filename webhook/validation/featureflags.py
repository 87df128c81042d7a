"""``feature.dynatrace.com/*`` annotations (``featureflag.go``): the two flags v1.4 deprecates (upstream's
warning), and our extra warnings for flags deprecated in later releases and for unknown flags.

The known flags are those of the operator releases this webhook follows (v1.4 to current); a flag missing
here only costs a warning, never a denial.
"""

from __future__ import annotations

from webhook.validation import hub
from webhook.validation.base import Context, DynaKube

PREFIX = hub.FF_PREFIX
DEPRECATED_MESSAGE = "Feature flag %s is deprecated."
# upstream v1.4's deprecated flags, in its order
DEPRECATED_V14 = (PREFIX + "oneagent-ignore-proxy", PREFIX + "activegate-ignore-proxy")

# flags deprecated after v1.4 (or never documented again) -> what to use instead
DEPRECATED_LATER = {
    PREFIX + "disable-activegate-updates": "use feature.dynatrace.com/activegate-updates",
    PREFIX + "activegate-updates": "deprecated since operator v1.6",
    PREFIX + "oneagent-max-unavailable": "use the rollingUpdate settings of the OneAgent in spec",
    PREFIX + "k8s-app-enabled": "deprecated by later operator releases",
    PREFIX + "init-container-seccomp-profile": "deprecated by later operator releases",
    PREFIX + "disable-metadata-enrichment": "use spec.metadataEnrichment.enabled (v1beta3 and later)",
    PREFIX + "metadata-enrichment": "use spec.metadataEnrichment.enabled (v1beta3 and later)",
    PREFIX + "dynatrace-api-request-threshold": "use spec.dynatraceApiRequestThreshold (v1beta2 and later)",
}

KNOWN = frozenset(
    {
        *DEPRECATED_V14,
        *DEPRECATED_LATER,
        *(
            PREFIX + flag
            for flag in (
                "no-proxy",
                "use-eec-legacy-mounts",
                "use-public-registry",
                "activegate-apparmor",
                "automatic-kubernetes-api-monitoring",
                "automatic-kubernetes-api-monitoring-cluster-name",
                "automatic-tls-certificate",
                "max-csi-mount-attempts",
                "max-csi-mount-timeout",
                "enable-attributes-dt.kubernetes",
                "ignored-namespaces",
                "automatic-injection",
                "label-version-detection",
                "injection-failure-policy",
                "injection-readonly-volume",
                "oneagent-initial-connect-retry-ms",
                "oneagent-privileged",
                "oneagent-classic-nonroot",
                "oneagent-skip-liveness-probe",
                "node-image-pull",
                "otlp-exporter-configuration-set-no-proxy",
                "automatic-reinjection",
                "ignore-unknown-state",
                "host-availability-detection",
            )
        ),
    }
)


def _flags(dk: DynaKube) -> list[str]:
    return sorted(k for k in hub.annotations_of(dk) if isinstance(k, str) and k.startswith(PREFIX))


def deprecated_feature_flags(dk: DynaKube, ctx: Context) -> str | None:
    """Upstream's warning: one text per deprecated flag with a non-empty value, concatenated."""
    annotations = hub.annotations_of(dk)
    text = "".join(DEPRECATED_MESSAGE % flag for flag in DEPRECATED_V14 if annotations.get(flag))
    return text or None


def later_deprecated_feature_flags(dk: DynaKube, ctx: Context) -> str | None:
    """Our warning: flags deprecated by releases after v1.4."""
    used = [f for f in _flags(dk) if f in DEPRECATED_LATER]
    if used:
        return "Deprecated feature flags in metadata.annotations: " + "; ".join(
            f"{f} ({DEPRECATED_LATER[f]})" for f in used
        )
    return None


def unknown_feature_flags(dk: DynaKube, ctx: Context) -> str | None:
    """Our warning: flags no release knows, usually misspelt."""
    unknown = [f for f in _flags(dk) if f not in KNOWN]
    if unknown:
        return (
            f"Unknown feature flags in metadata.annotations: {', '.join(unknown)}. They have no effect: "
            "check their spelling or remove them."
        )
    return None
