"""spec.logMonitoring (``logmonitoring.go``): standalone log monitoring needs its image; its template is
ignored next to a OneAgent (warning)."""

from __future__ import annotations

from webhook.validation import hub
from webhook.validation.base import Context, DynaKube

MISSING_IMAGE = "The Dynakube's specification specifies standalone Log monitoring, but no image repository/tag is configured."
IGNORED_TEMPLATE = (
    "The Dynakube's `spec.templates.logMonitoring` section is skipped as the `spec.oneagent` section is also "
    "configured."
)


def missing_log_monitoring_image(dk: DynaKube, ctx: Context) -> str | None:
    if hub.log_monitoring_standalone(dk) and hub.image_ref_incomplete(hub.templates(dk).get("logMonitoring")):
        return MISSING_IMAGE
    return None


def ignored_log_monitoring_template(dk: DynaKube, ctx: Context) -> str | None:
    """Warning."""
    if hub.host_agent(dk) and hub.templates(dk).get("logMonitoring") is not None:
        return IGNORED_TEMPLATE
    return None
