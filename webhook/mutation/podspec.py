"""Names and small readers shared by the pod mutators (pure): annotations, volumes, mount paths, env, and the
Go semantics the v1.4 webhook applies to them (``strconv.ParseBool``, ``encoding/json``, ``time.Duration``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from webhook.gojson import go_json as go_json  # the mutators' JSON, as Go writes it
from webhook.tolerant import as_list as _list
from webhook.tolerant import as_map as _map

# pod annotations read
ANNOTATION_DYNATRACE_INJECT = "dynatrace.com/inject"
ANNOTATION_ONEAGENT_INJECT = "oneagent.dynatrace.com/inject"
ANNOTATION_METADATA_INJECT = "metadata-enrichment.dynatrace.com/inject"
ANNOTATION_FLAVOR = "oneagent.dynatrace.com/flavor"
ANNOTATION_TECHNOLOGIES = "oneagent.dynatrace.com/technologies"
ANNOTATION_INSTALL_PATH = "oneagent.dynatrace.com/install-path"
ANNOTATION_INSTALLER_URL = "oneagent.dynatrace.com/installer-url"
ANNOTATION_FAILURE_POLICY = "oneagent.dynatrace.com/failure-policy"
ANNOTATION_CONTAINER_INJECT = "container.inject.dynatrace.com"
OPENSHIFT_DEBUG_ANNOTATIONS = ("debug.openshift.io/source-container", "debug.openshift.io/source-resource")

# pod annotations written
ANNOTATION_INJECTED = "oneagent.dynatrace.com/injected"
ANNOTATION_REASON = "oneagent.dynatrace.com/reason"
ANNOTATION_METADATA_INJECTED = "metadata-enrichment.dynatrace.com/injected"
ANNOTATION_METADATA_REASON = "metadata-enrichment.dynatrace.com/reason"  # ours: v1.4 has no such reason
ANNOTATION_DYNAKUBE_INJECTED = "dynakube.dynatrace.com/injected"
METADATA_PREFIX = "metadata.dynatrace.com/"
ANNOTATION_WORKLOAD_KIND = METADATA_PREFIX + "k8s.workload.kind"
ANNOTATION_WORKLOAD_NAME = METADATA_PREFIX + "k8s.workload.name"

# the init container: v1.4's name, and v1.3's (also the name earlier versions of this webhook used)
INIT_CONTAINER_NAME = "dynatrace-operator"
LEGACY_INIT_CONTAINER_NAMES = ("install-oneagent",)
INIT_CONTAINER_NAMES = (INIT_CONTAINER_NAME, *LEGACY_INIT_CONTAINER_NAMES)

# volumes
VOLUME_CONFIG = "injection-config"
VOLUME_BIN = "oneagent-bin"
VOLUME_SHARE = "oneagent-share"
VOLUME_AGENT_CONF = "oneagent-agent-conf"
VOLUME_DATA_STORAGE = "oneagent-data-storage"
VOLUME_LOG = "oneagent-log"
VOLUME_ENRICHMENT = "metadata-enrichment"
VOLUME_ENRICHMENT_ENDPOINT = "metadata-enrichment-endpoint"

# the per-namespace secrets the init container reads
CONFIG_SECRET = "dynatrace-dynakube-config"
ENRICHMENT_SECRET = "dynatrace-metadata-enrichment-endpoint"
INIT_SECRETS = frozenset((CONFIG_SECRET, ENRICHMENT_SECRET))

CSI_DRIVER = "csi.oneagent.dynatrace.com"
DEFAULT_INSTALL_PATH = "/opt/dynatrace/oneagent-paas"

_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))


def parse_bool(value: Any, default: bool) -> bool:
    """Go's ``strconv.ParseBool``; anything it rejects (and a missing value) gives ``default``."""
    if type(value) is not str:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return default


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(_map(obj.get("metadata")).get("annotations"))


def annotation(annotations: Mapping[str, Any], key: str, default: str = "") -> str:
    """A non-empty string annotation, else ``default``."""
    value = annotations.get(key)
    return value if isinstance(value, str) and value else default


def pod_name(pod: Mapping[str, Any]) -> str:
    """Name, or generateName for a pod created by a controller (kube-apiserver has not named it yet)."""
    return name_of(_map(pod.get("metadata")))


def name_of(meta: Mapping[str, Any]) -> str:
    """``pod_name`` from the pod's metadata."""
    for key in ("name", "generateName"):
        value = meta.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def base_pod_name(pod: Mapping[str, Any]) -> str:
    """Up to the last dash: ``checkout-785cb95b9f-`` -> ``checkout-785cb95b9f``."""
    return base_name(pod_name(pod))


def base_name(name: str) -> str:
    """``base_pod_name`` from the pod's name."""
    return name[: name.rfind("-")] if "-" in name else name


def excluded_by(annotations: Mapping[str, Any]) -> frozenset[str]:
    """Container names that ``container.inject.dynatrace.com/<name>: "false"`` excludes (v1.4 reads the key as
    prefix + exactly one ``/``, and the value ``false`` exactly)."""
    out = set()
    for key, value in annotations.items():
        if value == "false" and isinstance(key, str) and key.startswith(ANNOTATION_CONTAINER_INJECT):
            parts = key.split("/")
            if len(parts) == 2:
                out.add(parts[1])
    return frozenset(out)


def init_index(init_containers: list[Any]) -> int:
    """Index of the injected init container (v1.4 or earlier name) in ``spec.initContainers``, else -1."""
    for i, c in enumerate(init_containers):
        if _map(c).get("name") in INIT_CONTAINER_NAMES:
            return i
    return -1


def env_names(container: Mapping[str, Any], only: frozenset[str]) -> dict[str, int]:
    """Env var name -> index of its first occurrence, for the names in ``only``."""
    env = container.get("env")
    if type(env) is list:
        # the usual list (every entry a map): the names in one pass in C, the few wanted looked up in it
        try:
            names = [e.get("name") for e in env]
            return {n: names.index(n) for n in only.intersection(names)}
        except (AttributeError, TypeError):  # an entry that is not a map, a name that is not hashable
            pass
    out: dict[str, int] = {}
    for j, e in enumerate(_list(env)):
        name = e.get("name") if type(e) is dict else None
        if type(name) is str and name in only and name not in out:
            out[name] = j
    return out


def mount_names(container: Mapping[str, Any]) -> set[str]:
    names = (_map(m).get("name") for m in _list(container.get("volumeMounts")))
    return {n for n in names if isinstance(n, str)}


def mounts_by_path(container: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for m in _list(container.get("volumeMounts")):
        path = _map(m).get("mountPath")
        if isinstance(path, str):  # other types are not hashable
            out.setdefault(path, _map(m))
    return out


# the ServiceAccount admission plugin's token volume (its name is this prefix and 5 random characters) and the
# path it mounts it at in every container and init container of a pod that automounts its token
TOKEN_VOLUME_PREFIX = "kube-api-access-"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"


def _mounts_token(containers: Any) -> bool:
    """Every container of the list has a mount at ``TOKEN_MOUNT_PATH``."""
    for c in _list(containers):
        for m in _list(_map(c).get("volumeMounts")):
            if type(m) is dict and m.get("mountPath") == TOKEN_MOUNT_PATH:
                break
        else:
            return False
    return True


def token_mount(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """The mount kube-apiserver's ServiceAccount admission plugin adds to an init container a webhook adds, or
    None when it adds none or it cannot be known here.

    The plugin runs before the webhooks, mounting the pod's token volume in every container and init container
    that has nothing at ``TOKEN_MOUNT_PATH``; when a webhook changes the pod it runs again, and so gives the new
    init container that mount, after the webhook's own. A mount it adds then is a change, and a change makes
    the API server call every ``reinvocationPolicy: IfNeeded`` webhook a second time. Adding that same mount in
    the patch leaves the plugin nothing to add: the stored pod is the same, with one webhook call instead of
    two. The plugin is known to mount the token when the pod asks for it or leaves it to its ServiceAccount
    (``automountServiceAccountToken`` not false), is not a mirror pod, and every container and init container
    already has a mount at that path; the volume is the first one named with the plugin's prefix, as the
    plugin picks it."""
    spec = _map(pod.get("spec"))
    if spec.get("automountServiceAccountToken") is False:
        return None
    if MIRROR_POD_ANNOTATION in _map(_map(pod.get("metadata")).get("annotations")):
        return None
    for v in _list(spec.get("volumes")):
        volume = _map(v).get("name")
        if type(volume) is str and volume.startswith(TOKEN_VOLUME_PREFIX):
            break
    else:
        return None
    containers = _list(spec.get("containers"))
    if not containers or not _mounts_token(containers) or not _mounts_token(spec.get("initContainers")):
        return None
    return {"name": volume, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}


def mount(volume: str, path: str, sub_path: str = "") -> dict[str, Any]:
    m = {"name": volume, "mountPath": path}
    if sub_path:
        m["subPath"] = sub_path
    return m


def same_mount(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return existing.get("name") == wanted.get("name") and (existing.get("subPath") or "") == (
        wanted.get("subPath") or ""
    )


def value_env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def field_env(name: str, field_path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field_path}}}


_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_UNITS["h"] = 3600 * 10**9


def parse_go_duration(text: str) -> int | None:
    """Go's ``time.ParseDuration`` in nanoseconds, or None when Go would reject the text."""
    if not isinstance(text, str) or not text:
        return None
    sign, rest = 1, text
    if rest[0] in "+-":
        sign, rest = (-1 if rest[0] == "-" else 1), rest[1:]
    if rest == "0":
        return 0
    total, pos = 0, 0
    while pos < len(rest):
        match = _DURATION_PART.match(rest, pos)
        if match is None or match.group(1) in ("", "."):
            return None
        number, unit = match.groups()
        whole, _, frac = number.partition(".")
        nanos = int(whole or "0") * _UNITS[unit]
        if frac:
            nanos += int(frac) * _UNITS[unit] // 10 ** len(frac)
        total += nanos
        pos = match.end()
    return sign * total


def format_go_duration(nanos: int) -> str:
    """Go's ``time.Duration.String`` (``600000000000`` -> ``10m0s``)."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    n = abs(nanos)
    if n < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if n >= size:
                return sign + _decimal(n, size) + unit
    hours, n = divmod(n, 3600 * 10**9)
    minutes, n = divmod(n, 60 * 10**9)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _decimal(n, 10**9) + "s"


def _decimal(n: int, size: int) -> str:
    whole, frac = divmod(n, size)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
