"""Read-only views of DynaKube custom resources (plain dicts, API versions v1beta1 to v1beta6).

The fields the webhook reads have the same place from v1beta3 (operator 1.3/1.4) to v1beta6 (operator 1.8 and
later, the version current operators store): the renames between them (``spec.activeGate.persistentVolumeClaim``
to ``volumeClaimTemplate``, ``spec.extensions`` to ``spec.extensions.prometheus``) touch nothing injection reads
except "is ``spec.extensions`` set", which holds for both shapes. v1beta1 keeps the app-injection
``namespaceSelector`` at the top of ``spec``. One status field went away: from operator v1.9 the OneAgent
connection info has no ``communicationHosts`` (``has_communication_endpoints`` says how that is read).

Every accessor tolerates missing fields and wrong types: a malformed DynaKube must never make an admission
fail, it makes the webhook skip with a reason instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

INSTANCE_LABEL = "dynakube.internal.dynatrace.com/instance"

CLOUD_NATIVE = "cloudNativeFullStack"
APP_MONITORING = "applicationMonitoring"
CLASSIC = "classicFullStack"
HOST_MONITORING = "hostMonitoring"
MODES = (CLOUD_NATIVE, APP_MONITORING, CLASSIC, HOST_MONITORING)
INJECTION_MODES = (CLOUD_NATIVE, APP_MONITORING)

FEATURE_AUTOMATIC_INJECTION = "feature.dynatrace.com/automatic-injection"
FEATURE_FAILURE_POLICY = "feature.dynatrace.com/injection-failure-policy"
FEATURE_IGNORED_NAMESPACES = "feature.dynatrace.com/ignored-namespaces"
FEATURE_READONLY_VOLUME = "feature.dynatrace.com/injection-readonly-volume"
FEATURE_SECCOMP = "feature.dynatrace.com/init-container-seccomp-profile"
FEATURE_LABEL_VERSION_DETECTION = "feature.dynatrace.com/label-version-detection"
FEATURE_INITIAL_CONNECT_RETRY = "feature.dynatrace.com/oneagent-initial-connect-retry-ms"
FEATURE_CSI_MOUNT_TIMEOUT = "feature.dynatrace.com/max-csi-mount-timeout"


def name(dk: Mapping[str, Any]) -> str:
    return _str(_map(dk.get("metadata")).get("name"))


def namespace(dk: Mapping[str, Any]) -> str:
    return _str(_map(dk.get("metadata")).get("namespace"))


def annotations_of(dk: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(_map(dk.get("metadata")).get("annotations"))


def spec(dk: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(dk.get("spec"))


def status(dk: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(dk.get("status"))


def api_version(dk: Mapping[str, Any]) -> str:
    return _str(dk.get("apiVersion"))


def modes(dk: Mapping[str, Any]) -> list[str]:
    """The OneAgent modes configured (normally zero or one; more is a validation error)."""
    one_agent = _map(spec(dk).get("oneAgent"))
    return [m for m in MODES if one_agent.get(m) is not None]


def mode(dk: Mapping[str, Any]) -> str:
    found = modes(dk)
    return found[0] if found else ""


def mode_spec(dk: Mapping[str, Any]) -> Mapping[str, Any]:
    m = mode(dk)
    return _map(_map(spec(dk).get("oneAgent")).get(m)) if m else {}


def injection_enabled(dk: Mapping[str, Any]) -> bool:
    return mode(dk) in INJECTION_MODES


def namespace_selector(dk: Mapping[str, Any]) -> Any:
    """The app-injection namespace selector: under the mode from v1beta2 on, top-level ``spec`` in v1beta1."""
    selector = mode_spec(dk).get("namespaceSelector")
    if selector is None and api_version(dk).endswith("/v1beta1"):
        selector = spec(dk).get("namespaceSelector")
    return selector


def metadata_enrichment_selector(dk: Mapping[str, Any]) -> Any:
    """``spec.metadataEnrichment.namespaceSelector`` when metadata enrichment is enabled, else None."""
    enrichment = _map(spec(dk).get("metadataEnrichment"))
    if enrichment.get("enabled") is True:
        return enrichment.get("namespaceSelector") or {}
    return None


def network_zone(dk: Mapping[str, Any]) -> str:
    return _str(spec(dk).get("networkZone"))


def api_url(dk: Mapping[str, Any]) -> str:
    return _str(spec(dk).get("apiUrl"))


def code_modules_image(dk: Mapping[str, Any]) -> str:
    return _str(mode_spec(dk).get("codeModulesImage"))


def code_modules_version(dk: Mapping[str, Any]) -> str:
    return _str(_map(status(dk).get("codeModules")).get("version"))


def code_modules_image_id(dk: Mapping[str, Any]) -> str:
    return _str(_map(status(dk).get("codeModules")).get("imageID"))


def kube_system_uuid(dk: Mapping[str, Any]) -> str:
    return _str(status(dk).get("kubeSystemUUID"))


def cluster_name(dk: Mapping[str, Any]) -> str:
    return _str(status(dk).get("kubernetesClusterName"))


def cluster_me_id(dk: Mapping[str, Any]) -> str:
    return _str(status(dk).get("kubernetesClusterMEID"))


def metadata_enrichment_enabled(dk: Mapping[str, Any]) -> bool:
    return _map(spec(dk).get("metadataEnrichment")).get("enabled") is True


def metadata_enrichment_rules(dk: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``status.metadataEnrichment.rules`` (written by the operator from the tenant's settings)."""
    rules = _map(status(dk).get("metadataEnrichment")).get("rules")
    return [r for r in rules if isinstance(r, Mapping)] if isinstance(rules, list) else []


def activegate_enabled(dk: Mapping[str, Any]) -> bool:
    """Any ActiveGate capability, or extensions or KSPM (which run an ActiveGate)."""
    ag = _map(spec(dk).get("activeGate"))
    capabilities = ag.get("capabilities")
    return bool(capabilities if isinstance(capabilities, list) else None) or any(
        spec(dk).get(key) is not None for key in ("extensions", "kspm")
    )


def activegate_tls_secret(dk: Mapping[str, Any]) -> str:
    return _str(_map(spec(dk).get("activeGate")).get("tlsSecretName"))


def trusted_cas(dk: Mapping[str, Any]) -> str:
    return _str(spec(dk).get("trustedCAs"))


def istio_enabled(dk: Mapping[str, Any]) -> bool:
    return spec(dk).get("enableIstio") is True


def _connection_info(dk: Mapping[str, Any], component: str) -> Mapping[str, Any]:
    return _map(_map(status(dk).get(component)).get("connectionInfoStatus"))


def tenant_uuid(dk: Mapping[str, Any]) -> str:
    return _str(_connection_info(dk, "oneAgent").get("tenantUUID")) or _str(
        _connection_info(dk, "activeGate").get("tenantUUID")
    )


def communication_hosts(dk: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Usable communication hosts: entries with a host; malformed entries are ignored."""
    hosts = _connection_info(dk, "oneAgent").get("communicationHosts")
    if not isinstance(hosts, list):
        return []
    return [h for h in hosts if isinstance(h, Mapping) and _str(h.get("host"))]


def oneagent_endpoints(dk: Mapping[str, Any]) -> str:
    """``status.oneAgent.connectionInfoStatus.endpoints``: the tenant's ``formattedCommunicationEndpoints`` as
    the operator stored them (``;``-separated URLs); "" when absent, blank or not a string."""
    return _str(_connection_info(dk, "oneAgent").get("endpoints")).strip()


def has_communication_endpoints(dk: Mapping[str, Any]) -> bool:
    """Whether OneAgents have somewhere to connect, as the status the operator wrote says it.

    - Operators v1.4 to v1.8 write ``communicationHosts``, parsed from the same connection-info answer as
      ``endpoints``. A list with entries can only be theirs, and then its usable hosts decide (as v1.4 does).
    - From v1.9 the stored DynaKube (v1beta6) has no ``communicationHosts``; read as v1beta4/v1beta5 the
      conversion sets an empty list (which ``omitempty`` then leaves out of the JSON). The v1.10 operator
      itself checks ``endpoints``. So without entries, ``endpoints`` decides. An older operator with no hosts
      got no endpoints either (both come from one answer of the tenant), so it reads the same.
    """
    hosts = _connection_info(dk, "oneAgent").get("communicationHosts")
    if isinstance(hosts, list) and hosts:
        return bool(communication_hosts(dk))
    return bool(oneagent_endpoints(dk))


def feature(dk: Mapping[str, Any], key: str, default: str) -> str:
    value = annotations_of(dk).get(key)
    return value if isinstance(value, str) else default


def automatic_injection(dk: Mapping[str, Any]) -> bool:
    return feature(dk, FEATURE_AUTOMATIC_INJECTION, "true").lower() != "false"


def failure_policy(dk: Mapping[str, Any]) -> str:
    return "fail" if feature(dk, FEATURE_FAILURE_POLICY, "silent") == "fail" else "silent"


def default_ignored_namespaces(dk_namespace: str) -> list[str]:
    """Upstream's default for ``feature.dynatrace.com/ignored-namespaces`` (v1.3/v1.4)."""
    return [f"^{dk_namespace}$", "^kube-.*", "^openshift(-.*)?"]


def parse_ignored_namespaces(raw: Any, dk_namespace: str) -> tuple[list[str], str]:
    """The regular expressions of ``feature.dynatrace.com/ignored-namespaces`` and an error ("" when none).

    Absent or empty: the default list for the DynaKube's namespace. A value that is not a JSON list of strings
    falls back to the default, as upstream does, and the error says why so that the caller can log it. ``[]``
    is valid and ignores nothing.
    """
    default = default_ignored_namespaces(dk_namespace)
    if raw is None or raw == "":
        return default, ""
    if not isinstance(raw, str):
        return default, f"{FEATURE_IGNORED_NAMESPACES} must be a string holding a JSON list of regexes"
    try:
        value = json.loads(raw)
    except ValueError as err:
        return default, f"{FEATURE_IGNORED_NAMESPACES} is not valid JSON ({err}); using the default"
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        return default, f"{FEATURE_IGNORED_NAMESPACES} must be a JSON list of strings; using the default"
    return value, ""


T = TypeVar("T")
# Derived views of cached DynaKubes, per object. The Store replaces a DynaKube's dict whenever it changes and
# never edits one in place, so a view computed once stays right for the life of its dict. Each entry keeps its
# dict alive, so the id cannot be reused by another object while the entry exists.
_views: dict[tuple[int, str], tuple[Mapping[str, Any], Any]] = {}
_VIEWS_MAX = 1024


def per_object(dk: Mapping[str, Any], kind: str, build: Callable[[Mapping[str, Any]], T]) -> T:
    """``build(dk)``, computed once per DynaKube dict and ``kind`` of view (DynaKube dicts are immutable)."""
    key = (id(dk), kind)
    hit = _views.get(key)
    if hit is not None and hit[0] is dk:
        return cast(T, hit[1])
    value = build(dk)
    if len(_views) >= _VIEWS_MAX:
        _views.clear()
    _views[key] = (dk, value)
    return value
