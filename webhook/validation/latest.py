"""The DynaKube as the v1.10 checks see it: converted to v1beta6 (upstream v1.10.2's hub), and its predicates.

Upstream v1.10.2 converts v1beta4 and v1beta5 objects to v1beta6 before validating (``pkg/api/v1beta5/
dynakube/convert_to.go``); ``to_latest`` does what of that the checks can see on plain dicts. The predicates
follow ``pkg/api/latest/dynakube/**/props.go`` and ``pkg/api/exp`` (feature flags). Every reader tolerates
missing fields and wrong types. As upstream, ``status.apiToken.platform`` is what the tokens Secret says
(``with_platform_token``, before the checks run): a platform token turns the public registry on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from webhook.tolerant import as_list, as_map, as_str
from webhook.validation import hub

DynaKube = Mapping[str, Any]

FF = hub.FF_PREFIX
FF_PUBLIC_REGISTRY = FF + "use-public-registry"
FF_NODE_IMAGE_PULL = FF + "node-image-pull"
FF_AUTOMATIC_K8S_API_MONITORING = FF + "automatic-kubernetes-api-monitoring"
FF_NO_PROXY = FF + "no-proxy"
FF_MAX_UNAVAILABLE = FF + "oneagent-max-unavailable"
TECHNOLOGIES = "oneagent.dynatrace.com/technologies"
AUTO_UPDATE = "conversion.internal.dynatrace.com/auto-update"
KUBERNETES_MONITORING = "kubernetes-monitoring"
DEFAULT_OTEL_COLLECTOR = {"repository": "public.ecr.aws/dynatrace/dynatrace-otel-collector", "tag": "latest"}
# the conversion keeps one OneAgent mode, the first present of these
_CONVERSION_ORDER = (hub.CLASSIC, hub.CNFS, hub.APPMON, hub.HOSTMON)
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def version(dk: DynaKube) -> str:
    return as_str(dk.get("apiVersion")).rpartition("/")[2]


def to_latest(dk: DynaKube) -> DynaKube:
    """The object as v1beta6 sees it (a new dict for v1beta4/v1beta5; v1beta6 is returned as it is)."""
    if version(dk) not in ("v1beta4", "v1beta5"):
        return dk
    spec = dict(as_map(dk.get("spec")))
    annotations = dict(hub.annotations_of(dk))
    one_agent = as_map(spec.get("oneAgent"))
    kept = next((m for m in _CONVERSION_ORDER if one_agent.get(m) is not None), "")
    spec["oneAgent"] = {k: v for k, v in one_agent.items() if k not in hub.MODES or k == kept}
    auto_update = as_map(one_agent.get(kept)).get("autoUpdate") if kept != hub.APPMON else None
    if isinstance(auto_update, bool):
        annotations[AUTO_UPDATE] = json.dumps(auto_update)
    if spec.get("extensions") is not None:
        spec["extensions"] = {"prometheus": {}}
    if spec.get("kspm") is not None:
        spec["kspm"] = {"mappedHostPaths": ["/"]}
    templates = dict(as_map(spec.get("templates")))
    otel = dict(as_map(templates.get("otelCollector")))
    if hub.image_ref_incomplete(otel) and (spec.get("telemetryIngest") is not None or "extensions" in spec):
        otel["imageRef"] = dict(DEFAULT_OTEL_COLLECTOR)  # upstream's default for a converted object
        templates["otelCollector"] = otel
        spec["templates"] = templates
    metadata = {**as_map(dk.get("metadata")), "annotations": annotations}
    return {**dk, "metadata": metadata, "spec": spec}


def go_bool(value: Any, default: bool) -> bool:
    """A feature flag read as Go's ``strconv.ParseBool``; unset, empty or unparsable: the default."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return default


def flag(dk: DynaKube, key: str, default: bool) -> bool:
    return go_bool(hub.annotations_of(dk).get(key), default)


def public_registry(dk: DynaKube) -> bool:
    """``FeatureFlags.IsPublicRegistry``: a platform token, or the feature flag."""
    return platform_token(dk) or flag(dk, FF_PUBLIC_REGISTRY, False)


def tokens_secret(dk: DynaKube) -> str:
    """``DynaKube.Tokens()``: ``spec.tokens``, else the DynaKube's name."""
    return as_str(hub.spec(dk).get("tokens")) or as_str(as_map(dk.get("metadata")).get("name"))


def platform_token(dk: DynaKube) -> bool:
    return as_map(as_map(dk.get("status")).get("apiToken")).get("platform") is True


def with_platform_token(dk: DynaKube, platform: bool) -> DynaKube:
    """The object with ``status.apiToken.platform`` set, as upstream's validator sets it from the tokens Secret
    (false when it cannot be read) before running the checks; a new dict, the request's object is not changed."""
    status = as_map(dk.get("status"))
    return {**dk, "status": {**status, "apiToken": {**as_map(status.get("apiToken")), "platform": platform}}}


def extensions(dk: DynaKube) -> Mapping[str, Any]:
    return as_map(hub.spec(dk).get("extensions"))


def prometheus(dk: DynaKube) -> bool:
    return hub.spec(dk).get("extensions") is not None and extensions(dk).get("prometheus") is not None


def databases(dk: DynaKube) -> list[Mapping[str, Any]]:
    return [as_map(d) for d in as_list(extensions(dk).get("databases"))]


def extensions_enabled(dk: DynaKube) -> bool:
    return prometheus(dk) or bool(databases(dk))


def activegate(dk: DynaKube) -> Mapping[str, Any]:
    return as_map(hub.spec(dk).get("activeGate"))


def activegate_enabled(dk: DynaKube) -> bool:
    return bool(hub.capabilities(dk)) or extensions_enabled(dk)


def kubernetes_monitoring(dk: DynaKube) -> bool:
    return KUBERNETES_MONITORING in hub.capabilities(dk)


def telemetry_ingest(dk: DynaKube) -> bool:
    return hub.spec(dk).get("telemetryIngest") is not None


def otlp(dk: DynaKube) -> Mapping[str, Any]:
    return as_map(hub.spec(dk).get("otlpExporterConfiguration"))


def otlp_enabled(dk: DynaKube) -> bool:
    signals = as_map(otlp(dk).get("signals"))
    return any(signals.get(s) is not None for s in ("traces", "metrics", "logs"))


def metadata_enrichment(dk: DynaKube) -> bool:
    return as_map(hub.spec(dk).get("metadataEnrichment")).get("enabled") is True


def oneagent_arguments(dk: DynaKube) -> list[str]:
    return [as_str(a) for a in hub.oneagent_args(dk)]


def split_argument(argument: str) -> tuple[str, str]:
    key, _, value = argument.partition("=")
    return key, value


def code_modules_image(dk: DynaKube) -> str:
    for mode in (hub.CNFS, hub.APPMON):
        if hub.has(dk, mode):
            return as_str(hub.mode_spec(dk, mode).get("codeModulesImage"))
    return ""


def string_map(value: Any) -> dict[str, str]:
    return {as_str(k): as_str(v) for k, v in as_map(value).items()}


def global_attributes(dk: DynaKube) -> dict[str, str]:
    return string_map(hub.spec(dk).get("resourceAttributes"))


def oneagent_additional_attributes(dk: DynaKube) -> dict[str, str]:
    for mode in (hub.CNFS, hub.APPMON, hub.HOSTMON, hub.CLASSIC):
        if hub.has(dk, mode):
            return string_map(hub.mode_spec(dk, mode).get("additionalResourceAttributes"))
    return {}


def otlp_additional_attributes(dk: DynaKube) -> dict[str, str]:
    return string_map(otlp(dk).get("additionalResourceAttributes"))


def telemetry_service_name(dk: DynaKube) -> str:
    return as_str(as_map(hub.spec(dk).get("telemetryIngest")).get("serviceName"))


def effective_service_name(dk: DynaKube) -> str:
    return telemetry_service_name(dk) or hub.name(dk) + "-telemetry-ingest"


def kspm_host_paths(dk: DynaKube) -> list[str]:
    return sorted({as_str(p) for p in as_list(as_map(hub.spec(dk).get("kspm")).get("mappedHostPaths"))})
