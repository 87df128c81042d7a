"""spec.extensions (``eec.go``): the ExtensionExecutionController image and storage; a warning when another
DynaKube with the same apiUrl also enables extensions."""

from __future__ import annotations

from webhook.tolerant import as_map
from webhook.validation import hub
from webhook.validation.base import Context, DynaKube

EEC_IMAGE = (
    "DynaKube's specification enables the Prometheus feature, make sure you correctly specify the "
    "ExtensionExecutionController image."
)
EEC_PVC_AND_EPHEMERAL = (
    "DynaKube specifies a PVC for the extension controller while ephemeral volume is also enabled. These settings "
    "are mutually exclusive, please choose only one."
)
SAME_API_URL = (
    "You are already using a Dynakube ('%s') that enables extensions. Having multiple Dynakubes with same "
    "'.spec.apiUrl' and '.spec.extensions' enabled can have severe side-effects on \u201csum\u201d and "
    "\u201ccount\u201d metrics and cause double-billing."
)


def _eec(dk: DynaKube) -> dict[str, object]:
    return dict(as_map(hub.templates(dk).get("extensionExecutionController")))


def eec_image_missing(dk: DynaKube, ctx: Context) -> str | None:
    if hub.extensions(dk) and hub.image_ref_incomplete(_eec(dk)):
        return EEC_IMAGE
    return None


def eec_pvc_with_ephemeral_volume(dk: DynaKube, ctx: Context) -> str | None:
    eec = _eec(dk)
    if (
        hub.extensions(dk)
        and eec.get("useEphemeralVolume") is True
        and eec.get("persistentVolumeClaim") is not None
    ):
        return EEC_PVC_AND_EPHEMERAL
    return None


def same_api_url_for_extensions(dk: DynaKube, ctx: Context) -> str | None:
    """Warning."""
    if not hub.extensions(dk):
        return None
    own, url = hub.name(dk), hub.api_url(dk)
    for other in map(hub.to_hub, ctx.dynakubes):
        if hub.name(other) != own and hub.extensions(other) and hub.api_url(other) == url:
            return SAME_API_URL % hub.name(other)
    return None
