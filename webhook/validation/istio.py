"""spec.enableIstio (``istio.go``): Istio's ``networking.istio.io/v1beta1`` API must be served.

Upstream asks the API server's discovery on every request; here the answer comes from ``Context.istio``,
which a background probe keeps (``None`` while not known: the check passes rather than guess).
"""

from __future__ import annotations

from webhook.validation import hub
from webhook.validation.base import Context, DynaKube

NO_ISTIO = "No resources for istio available"


def istio_unavailable(dk: DynaKube, ctx: Context) -> str | None:
    if hub.spec(dk).get("enableIstio") is True and ctx.istio is False:
        return NO_ISTIO
    return None
