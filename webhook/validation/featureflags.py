"""``feature.dynatrace.com/*`` annotations: deprecated and unknown flags (warnings).

The lists hold the flags of the operator releases this webhook follows (v1.3/v1.4) that we are sure of; a
flag missing here only costs a warning, never a denial. Extend ``KNOWN`` when a new flag is documented.
"""

from __future__ import annotations

from webhook import dynakube as dk
from webhook.validation.base import Context, DynaKube

PREFIX = "feature.dynatrace.com/"

# deprecated flag -> what to use instead
DEPRECATED = {
    PREFIX + "oneagent-ignore-proxy": "use the feature.dynatrace.com/no-proxy annotation",
    PREFIX + "activegate-ignore-proxy": "use the feature.dynatrace.com/no-proxy annotation",
    PREFIX + "disable-activegate-updates": "use feature.dynatrace.com/activegate-updates",
    PREFIX + "oneagent-max-unavailable": "use the rollingUpdate settings of the OneAgent in spec",
    PREFIX + "disable-metadata-enrichment": "use spec.metadataEnrichment.enabled (v1beta3 and later)",
    PREFIX + "metadata-enrichment": "use spec.metadataEnrichment.enabled (v1beta3 and later)",
    PREFIX + "dynatrace-api-request-threshold": "use spec.dynatraceApiRequestThreshold (v1beta2 and later)",
}

KNOWN = frozenset(
    {
        # injection (the flags this webhook reads are the first three)
        dk.FEATURE_AUTOMATIC_INJECTION,
        dk.FEATURE_FAILURE_POLICY,
        dk.FEATURE_IGNORED_NAMESPACES,
        PREFIX + "automatic-reinjection",
        PREFIX + "label-version-detection",
        PREFIX + "init-container-seccomp-profile",
        PREFIX + "ignore-unknown-state",
        # general
        PREFIX + "no-proxy",
        PREFIX + "host-availability-detection",
        # ActiveGate
        PREFIX + "activegate-updates",
        PREFIX + "activegate-apparmor",
        PREFIX + "automatic-kubernetes-api-monitoring",
        PREFIX + "automatic-kubernetes-api-monitoring-cluster-name",
        PREFIX + "k8s-app-enabled",
        PREFIX + "automatic-tls-certificate",
        # OneAgent
        PREFIX + "oneagent-initial-connect-retry-ms",
        PREFIX + "oneagent-privileged",
        PREFIX + "oneagent-skip-liveness-probe",
        *DEPRECATED,
    }
)


def _flags(dynakube: DynaKube) -> list[str]:
    return sorted(k for k in dk.annotations_of(dynakube) if isinstance(k, str) and k.startswith(PREFIX))


def deprecated_feature_flags(dynakube: DynaKube, ctx: Context) -> str | None:
    used = [f for f in _flags(dynakube) if f in DEPRECATED]
    if used:
        return "Deprecated feature flags in metadata.annotations: " + "; ".join(
            f"{f} ({DEPRECATED[f]})" for f in used
        )
    return None


def unknown_feature_flags(dynakube: DynaKube, ctx: Context) -> str | None:
    unknown = [f for f in _flags(dynakube) if f not in KNOWN]
    if unknown:
        return (
            f"Unknown feature flags in metadata.annotations: {', '.join(unknown)}. They have no effect: "
            "check their spelling or remove them."
        )
    return None
