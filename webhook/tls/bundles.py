"""Step 2 of the self-managed certificates' reconcile (``webhook.tls.manager``): one webhook configuration's
caBundle made to trust the Secret's CAs, with a JSON patch that first tests the configuration's
resourceVersion; the configuration is read before the Secret (the manager's docstring says why).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from webhook.kube.api import ApiError
from webhook.tls import certs
from webhook.tls.material import CONFLICTS, Material, b64, fingerprints, unb64

if TYPE_CHECKING:
    from webhook.tls.manager import CertManager, Outcome

log = logging.getLogger("webhook.tls.manager")

NOT_FOUND_RETRY = 10.0  # seconds until a missing webhook configuration is looked for again


def sync_bundle(
    manager: CertManager, kind: str, path: str, outcome: Outcome
) -> tuple[Material, set[str] | None] | None:
    """Make every webhook of one configuration trust the Secret's CAs.

    Returns the Secret as read after the configuration, and the fingerprints of the CAs every webhook of
    the configuration trusts now (None: it has no webhooks); None when the configuration does not exist.
    """
    name = path.rsplit("/", 1)[1]
    for _ in range(5):
        try:
            config = manager.api.get(path)
        except ApiError as err:
            if err.status == 404:
                manager.count("ca_bundle_patches", kind, "not_found")
                log.warning(
                    "self-managed certificates: %s webhook configuration %s not found; looking again soon",
                    kind,
                    name,
                )
                # at install time the Deployment may start before its webhook configurations exist: look
                # again within seconds, not a whole check interval, so the caBundle is not left empty
                outcome.retry_in = min(outcome.retry_in or NOT_FOUND_RETRY, NOT_FOUND_RETRY)
                return None
            manager.count("ca_bundle_patches", kind, "error")
            raise
        material = manager.read()  # after the configuration: see the module docstring
        if material is None or material.ca is None:
            raise RuntimeError(f"Secret {manager.policy.secret_name} vanished or lost its CA; starting over")
        now = manager.clock()
        bundle = material.bundle(now)
        ops: list[dict[str, Any]] = []
        in_all: set[str] | None = None
        for i, webhook in enumerate(config.get("webhooks") or []):
            client = webhook.get("clientConfig") if isinstance(webhook, dict) else None
            current = unb64(client.get("caBundle")) if isinstance(client, dict) else b""
            found = fingerprints(current)
            in_all = found if in_all is None else in_all & found
            if current.strip() == bundle.strip():
                continue
            op: dict[str, Any]
            if isinstance(client, dict):
                op = {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": b64(bundle)}
            else:
                op = {
                    "op": "add",
                    "path": f"/webhooks/{i}/clientConfig",
                    "value": {"caBundle": b64(bundle)},
                }
            ops.append(op)
        if not ops:
            manager.count("ca_bundle_patches", kind, "unchanged")
            return material, in_all
        version = (config.get("metadata") or {}).get("resourceVersion")
        test = [{"op": "test", "path": "/metadata/resourceVersion", "value": version}] if version else []
        try:
            manager.api.patch(path, test + ops, "json")
        except ApiError as err:
            if err.status in CONFLICTS:
                manager.count("ca_bundle_patches", kind, "conflict")
                continue
            manager.count("ca_bundle_patches", kind, "error")
            raise
        manager.count("ca_bundle_patches", kind, "patched")
        outcome.actions.append(
            f"caBundle of {kind} webhook configuration {name} updated ({len(ops)} webhook(s))"
        )
        return material, {certs.fingerprint(c) for c in material.cas(now)}
    raise RuntimeError(f"{kind} webhook configuration {name}: too many conflicting patches, retrying later")
