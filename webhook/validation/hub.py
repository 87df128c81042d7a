"""The DynaKube as upstream's checks see it: converted to the hub version, and the predicates derived from it.

Upstream (v1.4) converts v1beta1 and v1beta2 objects to v1beta3 before validating; ``to_hub`` does the same on
plain dicts (later versions are read as v1beta3). The predicates follow ``pkg/api/v1beta3/dynakube/*_props.go``.
Every reader tolerates missing fields and wrong types.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from webhook.tolerant import as_list, as_map, as_str

CNFS = "cloudNativeFullStack"
APPMON = "applicationMonitoring"
CLASSIC = "classicFullStack"
HOSTMON = "hostMonitoring"
MODES = (CNFS, APPMON, CLASSIC, HOSTMON)
# v1beta1/v1beta2 -> v1beta3 keeps the first present of these
_CONVERSION_ORDER = (HOSTMON, CLASSIC, CNFS, APPMON)

FF_PREFIX = "feature.dynatrace.com/"
FF_IGNORED_NAMESPACES = FF_PREFIX + "ignored-namespaces"
FF_METADATA_ENRICHMENT = FF_PREFIX + "metadata-enrichment"

DynaKube = Mapping[str, Any]


def _version(dk: DynaKube) -> str:
    return as_str(dk.get("apiVersion")).rpartition("/")[2]


def to_hub(dk: DynaKube) -> DynaKube:
    """The object as v1beta3 sees it (a new dict for v1beta1/v1beta2; other versions are returned as they are)."""
    version = _version(dk)
    if version not in ("v1beta1", "v1beta2"):
        return dk
    spec = dict(as_map(dk.get("spec")))
    one_agent = as_map(spec.get("oneAgent"))
    kept = next((m for m in _CONVERSION_ORDER if one_agent.get(m) is not None), "")
    spec["oneAgent"] = {k: v for k, v in one_agent.items() if k not in MODES or k == kept}
    for dropped in ("logMonitoring", "kspm", "extensions", "templates"):
        spec.pop(dropped, None)
    if version == "v1beta1":
        annotations = as_map(as_map(dk.get("metadata")).get("annotations"))
        injects = kept in (CNFS, APPMON)
        enabled = injects and annotations.get(FF_METADATA_ENRICHMENT) != "false"
        enrichment: dict[str, Any] = {"enabled": enabled}
        selector = spec.pop("namespaceSelector", None)
        if as_map(selector):
            enrichment["namespaceSelector"] = selector
            if injects:
                spec["oneAgent"][kept] = {**as_map(one_agent.get(kept)), "namespaceSelector": selector}
        spec["metadataEnrichment"] = enrichment
        spec.pop("routing", None)
        spec.pop("kubernetesMonitoring", None)
    return {**dk, "spec": spec}


def spec(dk: DynaKube) -> Mapping[str, Any]:
    return as_map(dk.get("spec"))


def name(dk: DynaKube) -> str:
    return as_str(as_map(dk.get("metadata")).get("name"))


def namespace(dk: DynaKube) -> str:
    return as_str(as_map(dk.get("metadata")).get("namespace"))


def annotations_of(dk: DynaKube) -> Mapping[str, Any]:
    return as_map(as_map(dk.get("metadata")).get("annotations"))


def api_url(dk: DynaKube) -> str:
    return as_str(spec(dk).get("apiUrl"))


def present_modes(dk: DynaKube) -> list[str]:
    one_agent = as_map(spec(dk).get("oneAgent"))
    return [m for m in MODES if one_agent.get(m) is not None]


def has(dk: DynaKube, mode: str) -> bool:
    return as_map(spec(dk).get("oneAgent")).get(mode) is not None


def mode_spec(dk: DynaKube, mode: str) -> Mapping[str, Any]:
    return as_map(as_map(spec(dk).get("oneAgent")).get(mode))


def host_agent(dk: DynaKube) -> bool:
    return has(dk, CLASSIC) or has(dk, CNFS) or has(dk, HOSTMON)


def app_injection(dk: DynaKube) -> bool:
    return has(dk, CNFS) or has(dk, APPMON)


def capabilities(dk: DynaKube) -> list[Any]:
    return as_list(as_map(spec(dk).get("activeGate")).get("capabilities"))


def extensions(dk: DynaKube) -> bool:
    return spec(dk).get("extensions") is not None


def activegate_enabled(dk: DynaKube) -> bool:
    return bool(capabilities(dk)) or extensions(dk)


def log_monitoring(dk: DynaKube) -> bool:
    return spec(dk).get("logMonitoring") is not None


def log_monitoring_standalone(dk: DynaKube) -> bool:
    return log_monitoring(dk) and not host_agent(dk)


def kspm(dk: DynaKube) -> bool:
    return spec(dk).get("kspm") is not None


def metadata_enrichment(dk: DynaKube) -> bool:
    return as_map(spec(dk).get("metadataEnrichment")).get("enabled") is True


def templates(dk: DynaKube) -> Mapping[str, Any]:
    return as_map(spec(dk).get("templates"))


def _first(dk: DynaKube, order: tuple[str, ...], field: str) -> Any:
    """The field of the first present mode in ``order`` (that mode's value even when the field is unset)."""
    for mode in order:
        if has(dk, mode):
            return mode_spec(dk, mode).get(field)
    return None


def oneagent_version(dk: DynaKube) -> str:
    return as_str(_first(dk, (CLASSIC, CNFS, APPMON, HOSTMON), "version"))


def oneagent_image(dk: DynaKube) -> str:
    return as_str(_first(dk, (CLASSIC, HOSTMON, CNFS), "image"))


def oneagent_env(dk: DynaKube) -> list[Any]:
    return as_list(_first(dk, (CNFS, CLASSIC, HOSTMON), "env"))


def oneagent_args(dk: DynaKube) -> list[Any]:
    for mode in (CNFS, CLASSIC, HOSTMON):
        if has(dk, mode) and mode_spec(dk, mode).get("args") is not None:
            return as_list(mode_spec(dk, mode).get("args"))
    return []


def node_selector(dk: DynaKube) -> Mapping[str, Any]:
    for mode in (CLASSIC, HOSTMON, CNFS):
        if has(dk, mode):
            return as_map(mode_spec(dk, mode).get("nodeSelector"))
    if log_monitoring_standalone(dk):
        return as_map(as_map(templates(dk).get("logMonitoring")).get("nodeSelector"))
    return {}


def oneagent_namespace_selector(dk: DynaKube) -> Any:
    for mode in (CNFS, APPMON):
        if has(dk, mode):
            return mode_spec(dk, mode).get("namespaceSelector")
    return None


def enrichment_namespace_selector(dk: DynaKube) -> Any:
    return as_map(spec(dk).get("metadataEnrichment")).get("namespaceSelector")


def env_entry(env: list[Any], entry_name: str) -> Mapping[str, Any] | None:
    """The first env entry with this name."""
    return next((as_map(e) for e in env if as_map(e).get("name") == entry_name), None)


def image_ref_incomplete(template: Any) -> bool:
    """``imageRef.repository`` or ``imageRef.tag`` of a template is empty."""
    ref = as_map(as_map(template).get("imageRef"))
    return not as_str(ref.get("repository")) or not as_str(ref.get("tag"))


def ignored_namespace_patterns(dk: DynaKube) -> list[re.Pattern[str] | None]:
    """``feature.dynatrace.com/ignored-namespaces``; a pattern that does not compile is None (never matches)."""
    raw = annotations_of(dk).get(FF_IGNORED_NAMESPACES)
    return list(_ignored(raw if isinstance(raw, str) else None, namespace(dk)))


@functools.lru_cache(maxsize=256)
def _ignored(raw: str | None, dk_namespace: str) -> tuple[re.Pattern[str] | None, ...]:
    patterns: Any = None
    if raw:
        if raw.strip() == "null":
            return ()
        try:
            patterns = json.loads(raw)
        except ValueError:
            patterns = None
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        patterns = [f"^{dk_namespace}$", "^kube-.*", "^openshift(-.*)?", "^gke-.*", "^gmp-.*"]
    compiled = [_compile(p) for p in patterns]
    valid = [p.pattern for p in compiled if p is not None]
    if len(valid) > 1 and not any(_BACKREFERENCE.search(p) for p in valid):
        # one search instead of one per pattern; patterns that cannot be joined (inline flags, duplicate
        # group names) or whose back-references would be renumbered are searched one by one
        joined = _compile("|".join(f"(?:{p})" for p in valid))
        if joined is not None:
            return (joined,)
    return tuple(compiled)


_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")


def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def ignores(patterns: list[re.Pattern[str] | None], namespace_name: str) -> bool:
    return any(p is not None and p.search(namespace_name) for p in patterns)
