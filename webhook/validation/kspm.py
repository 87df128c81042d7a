"""spec.kspm (``kspm.go``): one ActiveGate replica with ``kubernetes-monitoring``, and a node collector image."""

from __future__ import annotations

from webhook.tolerant import as_map
from webhook.validation import hub
from webhook.validation.base import Context, DynaKube

TOO_MANY_REPLICAS = (
    "The Dynakube's specification specifies KSPM, but has more than one ActiveGate replica. Only one ActiveGate "
    "replica is allowed in combination with KSPM."
)
MISSING_KUBERNETES_MONITORING = 'The Dynakube\'s specification specifies KSPM, but "kubernetes-monitoring" is not enabled on the Activegate.'
MISSING_IMAGE = "The Dynakube's specification specifies KSPM, but no image repository/tag is configured."


def too_many_activegate_replicas(dk: DynaKube, ctx: Context) -> str | None:
    replicas = as_map(hub.spec(dk).get("activeGate")).get("replicas")
    count = replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else 1
    return TOO_MANY_REPLICAS if hub.kspm(dk) and count > 1 else None


def missing_kubernetes_monitoring(dk: DynaKube, ctx: Context) -> str | None:
    if hub.kspm(dk) and "kubernetes-monitoring" not in hub.capabilities(dk):
        return MISSING_KUBERNETES_MONITORING
    return None


def missing_node_collector_image(dk: DynaKube, ctx: Context) -> str | None:
    if hub.kspm(dk) and hub.image_ref_incomplete(hub.templates(dk).get("kspmNodeConfigurationCollector")):
        return MISSING_IMAGE
    return None
