"""spec.oneAgent (``oneagent.go``): version format, one mode, node-selector conflicts, CSI-dependent settings,
and the warnings about installer variables and the host group; our extra warning on ``spec.networkZone``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from webhook.tolerant import as_map, as_str
from webhook.validation import hub
from webhook.validation.base import Context, DynaKube

INVALID_VERSION = "The OneAgent's version is only valid in the format 'major.minor.patch.timestamp', e.g. 1.0.0.20240101-000000"
MULTIPLE_MODES = "The DynaKube specification attempts to use multiple OneAgent modes simultaneously, which is not supported."
NODE_SELECTOR_CONFLICT = (
    "The Dynakube specification conflicts with another Dynakube's OneAgent or Standalone-LogMonitoring. Only one "
    "Agent per node is supported.\nUse a nodeSelector to avoid this conflict. Conflicting DynaKubes: %s"
)
IMAGE_WITHOUT_CSI = (
    "The DynaKube specification attempts to enable ApplicationMonitoring mode and retrieve the respective image, "
    "but the CSI driver is not enabled."
)
VOLUME_STORAGE_CONFLICT = "The DynaKube specification specifies a read-only host file system while OneAgent has volume storage enabled."
INSTALLER_VARIABLES = (
    "The environment variables ONEAGENT_INSTALLER_SCRIPT_URL and ONEAGENT_INSTALLER_TOKEN are only relevant for an "
    "unsupported image type. Please ensure you are using a supported image."
)
HOST_GROUP_ARGUMENT = (
    "The DynaKube specification sets the host group using the --set-host-group parameter. Instead, specify the new "
    "spec.oneagent.hostGroup field. If both settings are used, the new field takes precedence over the parameter."
)

_VERSION = re.compile(r"[0-9]+.[0-9]+.[0-9]+.[0-9]{8}-[0-9]{6}")
_IDENT = re.compile(r"[0-9A-Za-z-]+")


def _number(text: str) -> bool:
    return bool(re.fullmatch(r"0|[1-9][0-9]*", text))


def _identifiers(text: str, *, numeric_rule: bool) -> bool:
    parts = text.split(".")
    if not all(_IDENT.fullmatch(p) for p in parts):
        return False
    return not numeric_rule or not any(p.isdigit() and len(p) > 1 and p[0] == "0" for p in parts)


def semver_valid(version: str) -> bool:
    """``golang.org/x/mod/semver.IsValid``: ``vMAJOR[.MINOR[.PATCH[-pre][+build]]]`` without leading zeros."""
    if not version.startswith("v"):
        return False
    core, plus, build = version[1:].partition("+")
    if plus and not _identifiers(build, numeric_rule=False):
        return False
    core, dash, pre = core.partition("-")
    if dash and not _identifiers(pre, numeric_rule=True):
        return False
    numbers = core.split(".")
    if len(numbers) > 3 or not all(_number(n) for n in numbers):
        return False
    return len(numbers) == 3 or not (plus or dash)


def version_valid(version: str) -> bool:
    parts = version.split(".")
    if len(parts) < 3 or not semver_valid("v" + ".".join(parts[:3])):
        return False
    return bool(_VERSION.fullmatch(version))


def invalid_oneagent_version(dk: DynaKube, ctx: Context) -> str | None:
    version = hub.oneagent_version(dk)
    if version and not version_valid(version):
        return INVALID_VERSION
    return None


def conflicting_oneagent_modes(dk: DynaKube, ctx: Context) -> str | None:
    return MULTIPLE_MODES if len(hub.present_modes(dk)) > 1 else None


def _overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two node selectors can pick the same node: one is empty, or one is a subset of the other."""
    if not a or not b:
        return True
    return all(b.get(k) == v for k, v in a.items()) or all(a.get(k) == v for k, v in b.items())


def _conflicts(dk: DynaKube, other: DynaKube) -> bool:
    if not _overlap(hub.node_selector(dk), hub.node_selector(other)):
        return False
    same_url = hub.api_url(dk) == hub.api_url(other)
    other_standalone = hub.log_monitoring_standalone(other)
    if hub.log_monitoring_standalone(dk) and (hub.host_agent(other) or other_standalone) and same_url:
        return True
    return hub.host_agent(dk) and (hub.host_agent(other) or (other_standalone and same_url))


def conflicting_node_selector(dk: DynaKube, ctx: Context) -> str | None:
    if not hub.host_agent(dk) and not hub.log_monitoring_standalone(dk):
        return None
    own = hub.name(dk)
    names = sorted(
        {hub.name(o) for o in map(hub.to_hub, ctx.dynakubes) if hub.name(o) != own and _conflicts(dk, o)}
    )
    if names:
        return NODE_SELECTOR_CONFLICT % ", ".join(names)
    return None


def image_without_csi(dk: DynaKube, ctx: Context) -> str | None:
    image = as_str(hub.mode_spec(dk, hub.APPMON).get("codeModulesImage"))
    if hub.has(dk, hub.APPMON) and image and not ctx.modules.csi_driver:
        return IMAGE_WITHOUT_CSI
    return None


def conflicting_volume_storage(dk: DynaKube, ctx: Context) -> str | None:
    readonly_host_fs = hub.has(dk, hub.CNFS) or (hub.has(dk, hub.HOSTMON) and ctx.modules.csi_driver)
    if not readonly_host_fs:
        return None
    entry = hub.env_entry(hub.oneagent_env(dk), "ONEAGENT_ENABLE_VOLUME_STORAGE")
    if entry is not None and entry.get("value") != "true":
        return VOLUME_STORAGE_CONFLICT
    return None


def installer_variables(dk: DynaKube, ctx: Context) -> str | None:
    """Warning."""
    env = hub.oneagent_env(dk)
    for variable in ("ONEAGENT_INSTALLER_SCRIPT_URL", "ONEAGENT_INSTALLER_TOKEN"):
        if hub.env_entry(env, variable) is not None:
            return INSTALLER_VARIABLES
    return None


def host_group_argument(dk: DynaKube, ctx: Context) -> str | None:
    """Warning."""
    for arg in hub.oneagent_args(dk):
        parts = as_str(arg).split("=")
        if len(parts) == 2 and parts[0] == "--set-host-group":
            return HOST_GROUP_ARGUMENT if parts[1] else None
    return None


FORBIDDEN_NETWORK_ZONE_CHARACTERS = {"\n": "newline", "\t": "tab", "\r": "carriage return", "\x00": "NUL"}


def invalid_network_zone(dk: DynaKube, ctx: Context) -> str | None:
    """Our warning (v1.4 has no such check): a network zone name cannot hold these characters."""
    zone = as_str(as_map(dk.get("spec")).get("networkZone"))
    bad = [label for char, label in FORBIDDEN_NETWORK_ZONE_CHARACTERS.items() if char in zone]
    if bad:
        return (
            f"spec.networkZone {zone!r} contains {', '.join(bad)}, which a network zone name cannot hold. "
            "Remove those characters from spec.networkZone."
        )
    return None
