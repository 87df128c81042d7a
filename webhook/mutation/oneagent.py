"""What the OneAgent mutator of the v1.4 webhook adds to a pod (pure): volumes, per-container env and mounts,
and the init container's OneAgent env and mounts (INJECTION-CONTRACT.md sections 1.6, 1.7, 2, 3, 4).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote_plus

from webhook import dynakube as dk
from webhook.mutation import podspec as ps
from webhook.mutation.patch import Patch
from webhook.selectors import InvalidSelector, Selector
from webhook.selectors import validate as validate_selector
from webhook.tolerant import as_list as _list
from webhook.tolerant import as_map as _map

# skip reasons written into oneagent.dynatrace.com/reason (upstream v1.4.0 strings)
REASON_EMPTY_TENANT_UUID = "EmptyTenantUUID"
REASON_EMPTY_CONNECTION_INFO = "EmptyConnectionInfo"
REASON_UNKNOWN_CODE_MODULE = "UnknownCodeModule"
CONNECTION_INFO_REASONS = (REASON_EMPTY_TENANT_UUID, REASON_EMPTY_CONNECTION_INFO, REASON_UNKNOWN_CODE_MODULE)

DEPLOYMENT_TYPES = {dk.CLOUD_NATIVE: "cloud_native_fullstack", dk.APP_MONITORING: "application_monitoring"}
PRELOAD_LIBRARY = "agent/lib64/liboneagentproc.so"
DEFAULT_CSI_TIMEOUT = 10 * 60 * 10**9  # 10m, in nanoseconds
CUSTOM_KEYS = "/var/lib/dynatrace/oneagent/agent/customkeys"
CONTAINER_CONF = "/var/lib/dynatrace/oneagent/agent/config/container.conf"
READONLY_PATHS = (
    (ps.VOLUME_AGENT_CONF, "/opt/dynatrace/oneagent-paas/agent/conf"),
    (ps.VOLUME_DATA_STORAGE, "/opt/dynatrace/oneagent-paas/datastorage"),
    (ps.VOLUME_LOG, "/opt/dynatrace/oneagent-paas/log"),
)
# mount paths the install path may not take: the other OneAgent and enrichment mounts of the same container
_FIXED_PATHS = frozenset(
    (
        "/etc/ld.so.preload",
        CONTAINER_CONF,
        f"{CUSTOM_KEYS}/custom.pem",
        f"{CUSTOM_KEYS}/custom_proxy.pem",
        f"{CUSTOM_KEYS}/curl_options.conf",
        *(path for _, path in READONLY_PATHS),
        "/var/lib/dynatrace/enrichment/dt_metadata.properties",
        "/var/lib/dynatrace/enrichment/dt_metadata.json",
        "/var/lib/dynatrace/enrichment/endpoint",
    )
)
_INJECTED_ENV = frozenset(
    (
        "DT_DEPLOYMENT_METADATA",
        "LD_PRELOAD",
        "DT_NETWORK_ZONE",
        "DT_RELEASE_VERSION",
        "DT_RELEASE_PRODUCT",
        "DT_RELEASE_STAGE",
        "DT_RELEASE_BUILD_VERSION",
    )
)
RELEASE_ENV = (
    (
        "DT_RELEASE_VERSION",
        "mapping.release.dynatrace.com/version",
        "metadata.labels['app.kubernetes.io/version']",
    ),
    (
        "DT_RELEASE_PRODUCT",
        "mapping.release.dynatrace.com/product",
        "metadata.labels['app.kubernetes.io/part-of']",
    ),
    ("DT_RELEASE_STAGE", "mapping.release.dynatrace.com/stage", ""),
    ("DT_RELEASE_BUILD_VERSION", "mapping.release.dynatrace.com/build-version", ""),
)


@dataclass(frozen=True)
class View:
    """What the OneAgent mutator needs of a DynaKube, worked out once per DynaKube object."""

    name: str
    mode: str
    selector: Selector
    selector_error: str
    automatic_injection: bool
    failure_policy: str
    reasons: tuple[str, ...]
    network_zone: str
    kube_system_uuid: str
    version: str
    init_resources: Mapping[str, Any] | None
    excluded: frozenset[str]
    readonly_csi: bool
    seccomp: bool
    csi_timeout: str
    connect_retry: int
    custom_pem: bool
    proxy_pem: bool
    release_env: bool
    # prebuilt parts of the patch, the same for every pod of this DynaKube (never modified: only serialised)
    extra_mounts: tuple[dict[str, Any], ...] = ()
    volumes_csi: tuple[dict[str, Any], ...] = ()
    volumes_no_csi: tuple[dict[str, Any], ...] = ()
    init_mounts: tuple[dict[str, Any], ...] = ()


def connection_info_reasons(dynakube: Mapping[str, Any]) -> list[str]:
    """The v1.4.0 injection-possible checks: every failing one, in upstream order. Connection info is judged
    by what the operator that wrote the status provides (``dk.has_communication_endpoints``): communication
    hosts from operators v1.4 to v1.8, ``endpoints`` from v1.9 on."""
    reasons = []
    if not dk.tenant_uuid(dynakube):
        reasons.append(REASON_EMPTY_TENANT_UUID)
    if not dk.has_communication_endpoints(dynakube):
        reasons.append(REASON_EMPTY_CONNECTION_INFO)
    if not (
        dk.code_modules_version(dynakube)
        or dk.code_modules_image_id(dynakube)
        or dk.code_modules_image(dynakube)
    ):
        reasons.append(REASON_UNKNOWN_CODE_MODULE)
    return reasons


def _connect_retry(dynakube: Mapping[str, Any]) -> int:
    raw = dk.feature(dynakube, dk.FEATURE_INITIAL_CONNECT_RETRY, "")
    try:
        return int(raw)
    except ValueError:
        return 6000 if dk.istio_enabled(dynakube) else -1


def _csi_timeout(dynakube: Mapping[str, Any]) -> str:
    nanos = ps.parse_go_duration(dk.feature(dynakube, dk.FEATURE_CSI_MOUNT_TIMEOUT, ""))
    return ps.format_go_duration(DEFAULT_CSI_TIMEOUT if nanos is None or nanos < 0 else nanos)


def _build_view(dynakube: Mapping[str, Any]) -> View:
    v = _settings_view(dynakube)
    return replace(
        v,
        extra_mounts=_extra_mounts(v),
        volumes_csi=_volumes(v, True),
        volumes_no_csi=_volumes(v, False),
        init_mounts=_init_mounts(v),
    )


def _settings_view(dynakube: Mapping[str, Any]) -> View:
    selector = dk.namespace_selector(dynakube)
    try:
        validate_selector(selector)
        error = ""
    except InvalidSelector as err:
        error = str(err)
    resources = dk.mode_spec(dynakube).get("initResources")
    trusted = bool(dk.trusted_cas(dynakube))
    return View(
        name=dk.name(dynakube),
        mode=dk.mode(dynakube),
        selector=Selector(selector),
        selector_error=error,
        automatic_injection=dk.automatic_injection(dynakube),
        failure_policy=dk.failure_policy(dynakube),
        reasons=tuple(connection_info_reasons(dynakube)),
        network_zone=dk.network_zone(dynakube),
        kube_system_uuid=dk.kube_system_uuid(dynakube),
        version=dk.code_modules_version(dynakube),
        init_resources=dict(resources) if isinstance(resources, Mapping) else None,
        excluded=ps.excluded_by(dk.annotations_of(dynakube)),
        readonly_csi=dk.feature(dynakube, dk.FEATURE_READONLY_VOLUME, "") == "true",
        seccomp=dk.feature(dynakube, dk.FEATURE_SECCOMP, "") == "true",
        csi_timeout=_csi_timeout(dynakube),
        connect_retry=_connect_retry(dynakube),
        custom_pem=trusted or (dk.activegate_enabled(dynakube) and bool(dk.activegate_tls_secret(dynakube))),
        proxy_pem=trusted,
        release_env=dk.feature(dynakube, dk.FEATURE_LABEL_VERSION_DETECTION, "") == "true",
    )


def view(dynakube: Mapping[str, Any]) -> View:
    return dk.per_object(dynakube, "oneagent", _build_view)


def disabled_reason(
    v: View, pod_annotations: Mapping[str, Any], namespace_labels: Mapping[str, Any]
) -> tuple[str, str]:
    """Why OneAgent injection is not enabled for this pod: ("", "") when it is, else (check, reason)."""
    if v.mode not in dk.INJECTION_MODES:
        return "mode injects", "ModeWithoutInjection"
    if v.selector_error:
        return "namespace selected", "InvalidNamespaceSelector"
    if not v.selector.matches(namespace_labels):
        return "namespace selected", "NamespaceNotSelected"
    if not ps.parse_bool(pod_annotations.get(ps.ANNOTATION_ONEAGENT_INJECT), v.automatic_injection):
        return "OneAgent injection enabled", "OneAgentOptOut"
    return "", ""


def is_injected(container: Mapping[str, Any]) -> bool:
    """v1.4's test: both env vars and both mounts (mounts first: a new container fails there, cheaply)."""
    mounts = ps.mount_names(container)
    return ps.VOLUME_BIN in mounts and ps.VOLUME_SHARE in mounts and has_injected_env(container)


def has_injected_env(container: Mapping[str, Any]) -> bool:
    """Both env vars present; searched from the end, where an injection appends them."""
    missing = {"DT_DEPLOYMENT_METADATA", "LD_PRELOAD"}
    for e in reversed(_list(container.get("env"))):
        name = e.get("name") if type(e) is dict else None
        if type(name) is str and name in missing:
            missing.discard(name)
            if not missing:
                return True
    return False


def install_path(annotations: Mapping[str, Any]) -> str:
    """The install-path annotation when it is an absolute path no other injected mount uses, else the default
    (v1.4 takes any value; one that collides with another mount makes a pod the API server rejects)."""
    value = ps.annotation(annotations, ps.ANNOTATION_INSTALL_PATH)
    if value.startswith("/") and value not in _FIXED_PATHS:
        return value
    return ps.DEFAULT_INSTALL_PATH


_PRELOAD_MOUNT = ps.mount(ps.VOLUME_SHARE, "/etc/ld.so.preload", "ld.so.preload")


def _extra_mounts(v: View) -> tuple[dict[str, Any], ...]:
    """The mounts after container.conf: certificates, curl options, read-only CSI (same for every container)."""
    mounts = []
    if v.custom_pem:
        mounts.append(ps.mount(ps.VOLUME_SHARE, f"{CUSTOM_KEYS}/custom.pem", "custom.pem"))
    if v.proxy_pem:
        mounts.append(ps.mount(ps.VOLUME_SHARE, f"{CUSTOM_KEYS}/custom_proxy.pem", "custom_proxy.pem"))
    if v.connect_retry > 0:
        mounts.append(ps.mount(ps.VOLUME_SHARE, f"{CUSTOM_KEYS}/curl_options.conf", "curl_options.conf"))
    if v.readonly_csi:
        mounts += [ps.mount(volume, p) for volume, p in READONLY_PATHS]
    return tuple(mounts)


def container_mounts(v: View, path: str, container: str) -> list[dict[str, Any]]:
    """The mounts one user container gets, in v1.4's order. The dicts that are the same for every container
    are shared: patches only serialise them."""
    return [
        _PRELOAD_MOUNT,
        ps.mount(ps.VOLUME_BIN, path),
        ps.mount(ps.VOLUME_SHARE, CONTAINER_CONF, f"container_{container}.conf"),
        *v.extra_mounts,
    ]


def _volumes(v: View, csi: bool) -> tuple[dict[str, Any], ...]:
    if csi:
        attributes = {"mode": "app", "dynakube": v.name, "retryTimeout": v.csi_timeout}
        source: dict[str, Any] = {
            "csi": {"driver": ps.CSI_DRIVER, "readOnly": v.readonly_csi, "volumeAttributes": attributes}
        }
    else:
        source = {"emptyDir": {}}
    volumes: list[dict[str, Any]] = [
        {"name": ps.VOLUME_CONFIG, "secret": {"secretName": ps.CONFIG_SECRET}},
        {"name": ps.VOLUME_BIN, **source},
        {"name": ps.VOLUME_SHARE, "emptyDir": {}},
    ]
    if v.readonly_csi:
        volumes += [{"name": name, "emptyDir": {}} for name, _ in READONLY_PATHS]
    return tuple(volumes)


def add_volumes(patch: Patch, existing: set[str], v: View, csi: bool) -> None:
    added = []
    for volume in v.volumes_csi if csi else v.volumes_no_csi:
        if volume["name"] not in existing:  # a name taken already would make the pod invalid
            added.append(volume)
            existing.add(volume["name"])
    patch.extend(("spec", "volumes"), added)


def deployment_metadata(v: View, version: str, cluster_id: str) -> str:
    return (
        f"orchestration_tech=Operator-{DEPLOYMENT_TYPES.get(v.mode, v.mode)};"
        f"script_version={version};orchestrator_id={cluster_id}"
    )


def add_to_container(
    patch: Patch,
    index: int,
    container: Mapping[str, Any],
    v: View,
    *,
    path: str,
    metadata: str,
    namespace_annotations: Mapping[str, Any],
) -> None:
    """Env of one user container (mounts are added by the caller with every mutator's mounts)."""
    base = ("spec", "containers", index, "env")
    env = _list(container.get("env"))
    names = ps.env_names(container, _INJECTED_ENV)
    added = []  # appended in one go, in this order
    if "DT_DEPLOYMENT_METADATA" not in names:
        added.append(ps.value_env("DT_DEPLOYMENT_METADATA", metadata))
    preload = _preload(path)
    if "LD_PRELOAD" not in names:
        added.append(ps.value_env("LD_PRELOAD", preload))
    else:
        current = _map(env[names["LD_PRELOAD"]])
        value = current.get("value")
        value = value if isinstance(value, str) else ""
        # a value from a reference is left alone: value and valueFrom together are invalid
        if "valueFrom" not in current and path not in value:
            joined = f"{value} {preload}" if " " in value else f"{value}:{preload}"
            patch.extend(base, added)
            added = []
            patch.set_in_map((*base, names["LD_PRELOAD"]), "value", joined)
    if v.network_zone:
        zone = ps.value_env("DT_NETWORK_ZONE", v.network_zone)
        if "DT_NETWORK_ZONE" not in names or env[names["DT_NETWORK_ZONE"]] != zone:
            added.append(zone)
    if v.release_env:
        for name, key, default in RELEASE_ENV:
            field = ps.annotation(namespace_annotations, key, default)
            if field and name not in names:
                added.append(ps.field_env(name, field))
    patch.extend(base, added)


def _preload(path: str) -> str:
    """``<path>/agent/lib64/liboneagentproc.so``, path-joined and cleaned as Go's ``filepath.Join``."""
    if path.endswith("/") or "//" in path or "/." in path:
        return posixpath.normpath(posixpath.join(path, PRELOAD_LIBRARY))
    return f"{path}/{PRELOAD_LIBRARY}"


def _technologies(annotations: Mapping[str, Any]) -> str:
    value = ps.annotation(annotations, ps.ANNOTATION_TECHNOLOGIES, "all")
    return value if value == "all" else quote_plus(value, safe="")


def init_env(annotations: Mapping[str, Any], v: View, path: str) -> list[dict[str, Any]]:
    return [
        ps.value_env("FLAVOR", ps.annotation(annotations, ps.ANNOTATION_FLAVOR)),
        ps.value_env("TECHNOLOGIES", _technologies(annotations)),
        ps.value_env("INSTALLPATH", path),
        ps.value_env("INSTALLER_URL", ps.annotation(annotations, ps.ANNOTATION_INSTALLER_URL)),
        ps.value_env("VERSION", v.version),
        ps.value_env("ONEAGENT_INJECTED", "true"),
    ]


def _init_mounts(v: View) -> tuple[dict[str, Any], ...]:
    mounts = [ps.mount(ps.VOLUME_BIN, "/mnt/bin"), ps.mount(ps.VOLUME_SHARE, "/mnt/share")]
    if v.readonly_csi:
        mounts.append(ps.mount(ps.VOLUME_AGENT_CONF, "/mnt/agent-conf"))
    mounts.append(ps.mount(ps.VOLUME_CONFIG, "/mnt/config"))
    return tuple(mounts)


def init_mounts(v: View) -> list[dict[str, Any]]:
    return list(v.init_mounts)
