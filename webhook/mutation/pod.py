"""The ``/inject`` decision for pods and the OneAgent injection patch (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook import dynakube as dk
from webhook.mutation.patch import Op, Patch
from webhook.selectors import InvalidSelector, matches_valid
from webhook.selectors import validate as validate_selector
from webhook.tolerant import as_list as _list
from webhook.tolerant import as_map as _map

# pod annotations
ANNOTATION_DYNATRACE_INJECT = "dynatrace.com/inject"
ANNOTATION_ONEAGENT_INJECT = "oneagent.dynatrace.com/inject"
ANNOTATION_INJECTED = "oneagent.dynatrace.com/injected"
ANNOTATION_REASON = "oneagent.dynatrace.com/reason"
ANNOTATION_DYNAKUBE_INJECTED = "dynakube.dynatrace.com/injected"
ANNOTATION_FLAVOR = "oneagent.dynatrace.com/flavor"
ANNOTATION_TECHNOLOGIES = "oneagent.dynatrace.com/technologies"
ANNOTATION_INSTALL_PATH = "oneagent.dynatrace.com/install-path"
ANNOTATION_INSTALLER_URL = "oneagent.dynatrace.com/installer-url"
ANNOTATION_FAILURE_POLICY = "oneagent.dynatrace.com/failure-policy"
ANNOTATION_CONTAINER_INJECT_PREFIX = "container.inject.dynatrace.com/"
OPENSHIFT_DEBUG_ANNOTATIONS = ("debug.openshift.io/source-container", "debug.openshift.io/source-resource")

# skip reasons written into oneagent.dynatrace.com/reason (upstream v1.4.0 strings)
REASON_EMPTY_TENANT_UUID = "EmptyTenantUUID"
REASON_EMPTY_CONNECTION_INFO = "EmptyConnectionInfo"
REASON_UNKNOWN_CODE_MODULE = "UnknownCodeModule"
CONNECTION_INFO_REASONS = (REASON_EMPTY_TENANT_UUID, REASON_EMPTY_CONNECTION_INFO, REASON_UNKNOWN_CODE_MODULE)

# outcomes (bounded: they label metrics)
INJECTED = "injected"
REINVOKED = "reinvoked"
SKIPPED = "skipped"

# skip reasons that only appear in the response message, logs and metrics (the pod is left unchanged)
SKIP_NOT_A_POD = "NotAPod"
SKIP_OPERATION = "UnsupportedOperation"
SKIP_NAMESPACE_UNKNOWN = "NamespaceUnknown"
SKIP_NAMESPACE_UNLABELED = "NamespaceNotMapped"
SKIP_MISSING_DYNAKUBE = "MissingDynakube"
SKIP_POD_OPT_OUT = "PodOptOut"
SKIP_OPENSHIFT_DEBUG = "OpenShiftDebugPod"
SKIP_MODE = "ModeWithoutInjection"
SKIP_NAMESPACE_SELECTOR = "NamespaceNotSelected"
SKIP_INVALID_SELECTOR = "InvalidNamespaceSelector"
SKIP_ONEAGENT_OPT_OUT = "OneAgentOptOut"
SKIP_ALL_CONTAINERS_EXCLUDED = "AllContainersExcluded"
SKIP_NOTHING_NEW = "NothingNew"

INIT_CONTAINER_NAME = "install-oneagent"
VOLUME_BIN = "oneagent-bin"
VOLUME_SHARE = "oneagent-share"
VOLUME_CONFIG = "injection-config"
CONFIG_SECRET = "dynatrace-dynakube-config"
CSI_DRIVER = "csi.oneagent.dynatrace.com"
DEFAULT_INSTALL_PATH = "/opt/dynatrace/oneagent-paas"
DEFAULT_USER = 1001
PRELOAD_LIBRARY = "agent/lib64/liboneagentproc.so"
INJECTED_ENV = frozenset(("LD_PRELOAD", "DT_DEPLOYMENT_METADATA", "DT_NETWORK_ZONE"))
DEPLOYMENT_TYPES = {dk.CLOUD_NATIVE: "cloud_native_fullstack", dk.APP_MONITORING: "application_monitoring"}


@dataclass(frozen=True)
class Settings:
    """What the injection needs from the webhook's configuration."""

    image: str
    version: str


@dataclass
class Result:
    outcome: str
    reasons: tuple[str, ...] = ()
    message: str = ""
    dynakube: str = ""
    ops: list[Op] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)


def pod_name(pod: Mapping[str, Any]) -> str:
    """Name, or generateName for a pod created by a controller (kube-apiserver has not named it yet)."""
    meta = _map(pod.get("metadata"))
    for key in ("name", "generateName"):
        if isinstance(meta.get(key), str) and meta[key]:
            return str(meta[key])
    return ""


def base_pod_name(pod: Mapping[str, Any]) -> str:
    """Up to the last dash: ``checkout-785cb95b9f-`` -> ``checkout-785cb95b9f``."""
    name = pod_name(pod)
    return name[: name.rfind("-")] if "-" in name else name


def connection_info_reasons(dynakube: Mapping[str, Any]) -> list[str]:
    """The v1.4.0 checks: every failing one, in upstream order."""
    reasons = []
    if not dk.tenant_uuid(dynakube):
        reasons.append(REASON_EMPTY_TENANT_UUID)
    if not dk.communication_hosts(dynakube):
        reasons.append(REASON_EMPTY_CONNECTION_INFO)
    if not (dk.code_modules_version(dynakube) or dk.code_modules_image(dynakube)):
        reasons.append(REASON_UNKNOWN_CODE_MODULE)
    return reasons


@dataclass(frozen=True)
class _View:
    """What the pod decision needs of a DynaKube, worked out once per DynaKube object."""

    name: str
    mode: str
    annotations: Mapping[str, Any]
    selector: Any
    selector_error: str
    automatic_injection: bool
    failure_policy: str
    reasons: tuple[str, ...]
    network_zone: str
    kube_system_uuid: str
    version: str
    init_resources: Mapping[str, Any] | None


def _build_view(dynakube: Mapping[str, Any]) -> _View:
    selector = dk.namespace_selector(dynakube)
    try:
        validate_selector(selector)
        error = ""
    except InvalidSelector as err:
        error = str(err)
    resources = dk.mode_spec(dynakube).get("initResources")
    return _View(
        name=dk.name(dynakube),
        mode=dk.mode(dynakube),
        annotations=dk.annotations_of(dynakube),
        selector=selector,
        selector_error=error,
        automatic_injection=dk.automatic_injection(dynakube),
        failure_policy=dk.failure_policy(dynakube),
        reasons=tuple(connection_info_reasons(dynakube)),
        network_zone=dk.network_zone(dynakube),
        kube_system_uuid=dk.kube_system_uuid(dynakube),
        version=dk.code_modules_version(dynakube),
        init_resources=dict(resources) if isinstance(resources, Mapping) else None,
    )


def _view(dynakube: Mapping[str, Any]) -> _View:
    return dk.per_object(dynakube, "pod-injection", _build_view)


def _container_excluded(
    name: str, pod_annotations: Mapping[str, Any], dk_annotations: Mapping[str, Any]
) -> bool:
    key = ANNOTATION_CONTAINER_INJECT_PREFIX + name
    value = pod_annotations.get(key, dk_annotations.get(key))
    return isinstance(value, str) and value.lower() == "false"


def _container_injected(container: Mapping[str, Any]) -> bool:
    return any(_map(m).get("name") == VOLUME_BIN for m in _list(container.get("volumeMounts")))


def _init_container_index(pod: Mapping[str, Any]) -> int:
    for i, c in enumerate(_list(_map(pod.get("spec")).get("initContainers"))):
        if _map(c).get("name") == INIT_CONTAINER_NAME:
            return i
    return -1


def already_injected(pod: Mapping[str, Any]) -> bool:
    annotations = _map(_map(pod.get("metadata")).get("annotations"))
    return annotations.get(ANNOTATION_INJECTED) == "true" or _init_container_index(pod) >= 0


Check = tuple[str, bool, str]  # (check, passed, detail): the trace ``explain`` prints


def decide(
    pod: Mapping[str, Any],
    namespace: Mapping[str, Any] | None,
    dynakube: Mapping[str, Any] | None,
    settings: Settings,
    *,
    namespace_name: str = "",
) -> Result:
    """Walk the decision flow for a pod CREATE and return the outcome with its patch operations.

    ``namespace`` and ``dynakube`` come from the cache (None when unknown); ``dynakube`` is the one the
    namespace's instance label names. The pod is never modified. ``Result.checks`` lists every check
    made, in order, with its result: the last failed one is why the pod was not injected.
    """
    checks: list[Check] = []
    dynakube_name = ""

    def skip(check: str, reason: str, message: str) -> Result:
        checks.append((check, False, message))
        return Result(SKIPPED, (reason,), message, dynakube_name, checks=checks)

    if namespace is None:
        return skip(
            "namespace known",
            SKIP_NAMESPACE_UNKNOWN,
            f"namespace {namespace_name!r} is not known to the webhook yet",
        )
    checks.append(("namespace known", True, namespace_name))
    ns_labels = _map(_map(namespace.get("metadata")).get("labels"))
    label = ns_labels.get(dk.INSTANCE_LABEL)
    if not isinstance(label, str) or not label:
        return skip(
            "namespace mapped",
            SKIP_NAMESPACE_UNLABELED,
            f"namespace {namespace_name!r} has no {dk.INSTANCE_LABEL} label",
        )
    dynakube_name = label
    checks.append(("namespace mapped", True, f"{dk.INSTANCE_LABEL}={label}"))
    if dynakube is None:
        return skip(
            "DynaKube exists",
            SKIP_MISSING_DYNAKUBE,
            f"namespace {namespace_name!r} is mapped to DynaKube {dynakube_name!r}, which does not exist",
        )
    checks.append(("DynaKube exists", True, dynakube_name))

    meta = _map(pod.get("metadata"))
    annotations = _map(meta.get("annotations"))
    if _annotation(annotations, ANNOTATION_DYNATRACE_INJECT, "").lower() == "false":
        return skip(
            "pod not opted out", SKIP_POD_OPT_OUT, f"pod is annotated {ANNOTATION_DYNATRACE_INJECT}=false"
        )
    checks.append(("pod not opted out", True, f"no {ANNOTATION_DYNATRACE_INJECT}=false"))
    if all(key in annotations for key in OPENSHIFT_DEBUG_ANNOTATIONS):
        return skip("not an OpenShift debug pod", SKIP_OPENSHIFT_DEBUG, "OpenShift debug pod")
    checks.append(("not an OpenShift debug pod", True, ""))

    raw_containers = _list(_map(pod.get("spec")).get("containers"))
    containers = [_map(c) for c in raw_containers]
    view = _view(dynakube)
    dk_annotations = view.annotations
    eligible = [
        i
        for i, c in enumerate(containers)
        if isinstance(raw_containers[i], Mapping)
        and isinstance(c.get("name"), str)
        and not _container_excluded(c["name"], annotations, dk_annotations)
    ]
    if already_injected(pod):
        new = [i for i in eligible if not _container_injected(containers[i])]
        checks.append(("already injected", True, f"{len(new)} container(s) added since"))
        if not new:
            return Result(
                REINVOKED, (SKIP_NOTHING_NEW,), "pod is already injected", dynakube_name, checks=checks
            )
        patch = Patch(pod)
        _inject_containers(patch, pod, containers, new, view, settings)
        injected = sorted({i for i, c in enumerate(containers) if _container_injected(c)} | set(new))
        _update_container_info(patch, pod, containers, injected)
        return Result(
            REINVOKED, (), f"injected {len(new)} new container(s)", dynakube_name, patch.ops, checks
        )
    checks.append(("already injected", False, "first injection"))

    mode = view.mode
    if mode not in dk.INJECTION_MODES:
        return skip(
            "mode injects", SKIP_MODE, f"DynaKube {dynakube_name!r} mode {mode or 'none'!r} does not inject"
        )
    checks.append(("mode injects", True, mode))
    if view.selector_error:
        return skip(
            "namespace selected",
            SKIP_INVALID_SELECTOR,
            f"DynaKube {dynakube_name!r} has an invalid namespaceSelector: {view.selector_error}",
        )
    selected = matches_valid(view.selector, ns_labels)
    if not selected:
        return skip(
            "namespace selected",
            SKIP_NAMESPACE_SELECTOR,
            f"namespace {namespace_name!r} is not selected by DynaKube {dynakube_name!r}",
        )
    checks.append(("namespace selected", True, f"by the {mode} namespaceSelector"))
    default = "true" if view.automatic_injection else "false"
    if _annotation(annotations, ANNOTATION_ONEAGENT_INJECT, default).lower() == "false":
        return skip(
            "OneAgent injection enabled",
            SKIP_ONEAGENT_OPT_OUT,
            f"OneAgent injection is disabled for this pod ({ANNOTATION_ONEAGENT_INJECT}, default {default})",
        )
    checks.append(("OneAgent injection enabled", True, f"{ANNOTATION_ONEAGENT_INJECT} (default {default})"))

    targets = eligible
    if not targets:
        return skip(
            "containers to inject", SKIP_ALL_CONTAINERS_EXCLUDED, "every container is excluded from injection"
        )
    checks.append(("containers to inject", True, ", ".join(str(containers[i].get("name")) for i in targets)))

    reasons = view.reasons
    patch = Patch(pod)
    if reasons:
        joined = ", ".join(reasons)
        patch.set_in_map(("metadata", "annotations"), ANNOTATION_INJECTED, "false")
        patch.set_in_map(("metadata", "annotations"), ANNOTATION_REASON, joined)
        message = f"OneAgent not injected: DynaKube {dynakube_name!r} connection info incomplete ({joined})"
        checks.append(("connection info complete", False, message))
        return Result(SKIPPED, tuple(reasons), message, dynakube_name, patch.ops, checks)
    checks.append(("connection info complete", True, f"network zone {view.network_zone or '(default)'}"))

    patch.set_in_map(("metadata", "annotations"), ANNOTATION_INJECTED, "true")
    patch.set_in_map(("metadata", "annotations"), ANNOTATION_DYNAKUBE_INJECTED, "true")
    patch.remove_from_map(("metadata", "annotations"), ANNOTATION_REASON)
    _add_volumes(patch, pod, view)
    _inject_containers(patch, pod, containers, targets, view, settings)
    init = _init_container(pod, containers, targets, annotations, view, settings)
    patch.append(("spec", "initContainers"), init)
    return Result(
        INJECTED, (), f"OneAgent injected into {len(targets)} container(s)", dynakube_name, patch.ops, checks
    )


def _install_path(annotations: Mapping[str, Any]) -> str:
    value = annotations.get(ANNOTATION_INSTALL_PATH)
    return value if isinstance(value, str) and value.startswith("/") else DEFAULT_INSTALL_PATH


def _annotation(annotations: Mapping[str, Any], key: str, default: str) -> str:
    value = annotations.get(key)
    return value if isinstance(value, str) and value else default


def _add_volumes(patch: Patch, pod: Mapping[str, Any], view: _View) -> None:
    names = (_map(v).get("name") for v in _list(_map(pod.get("spec")).get("volumes")))
    existing = {name for name in names if isinstance(name, str)}
    if view.mode == dk.CLOUD_NATIVE:
        bin_volume: dict[str, Any] = {
            "name": VOLUME_BIN,
            "csi": {
                "driver": CSI_DRIVER,
                "readOnly": False,
                "volumeAttributes": {"mode": "app", "dynakube": view.name},
            },
        }
    else:
        bin_volume = {"name": VOLUME_BIN, "emptyDir": {}}
    for volume in (
        {"name": VOLUME_CONFIG, "secret": {"secretName": CONFIG_SECRET}},
        bin_volume,
        {"name": VOLUME_SHARE, "emptyDir": {}},
    ):
        if volume["name"] not in existing:
            patch.append(("spec", "volumes"), volume)


def _deployment_metadata(view: _View, settings: Settings) -> str:
    return (
        f"orchestration_tech=Operator-{DEPLOYMENT_TYPES.get(view.mode, view.mode)};"
        f"script_version={settings.version};orchestrator_id={view.kube_system_uuid}"
    )


def _inject_containers(
    patch: Patch,
    pod: Mapping[str, Any],
    containers: list[Mapping[str, Any]],
    indexes: list[int],
    view: _View,
    settings: Settings,
) -> None:
    annotations = _map(_map(pod.get("metadata")).get("annotations"))
    install_path = _install_path(annotations)
    preload = f"{install_path}/{PRELOAD_LIBRARY}"
    env_values = {"DT_DEPLOYMENT_METADATA": _deployment_metadata(view, settings)}
    if view.network_zone:
        env_values["DT_NETWORK_ZONE"] = view.network_zone
    for i in indexes:
        container = containers[i]
        name = str(container.get("name", ""))
        base = ("spec", "containers", i)
        env = _list(container.get("env"))
        env_index = {}
        for j, e in enumerate(env):
            env_name = e.get("name") if type(e) is dict else None
            if type(env_name) is str and env_name in INJECTED_ENV:
                env_index[env_name] = j
        # LD_PRELOAD: appended to a literal value, left alone when it comes from a reference
        if "LD_PRELOAD" in env_index:
            j = env_index["LD_PRELOAD"]
            current = _map(env[j])
            if "valueFrom" not in current:
                value = current.get("value")
                value = value if isinstance(value, str) else ""
                if preload not in value.split():
                    patch.set_in_map((*base, "env", j), "value", f"{value} {preload}".strip())
        else:
            patch.append((*base, "env"), {"name": "LD_PRELOAD", "value": preload})
        for env_name, value in env_values.items():
            if env_name in env_index:
                if env[env_index[env_name]] != {"name": env_name, "value": value}:
                    patch.replace((*base, "env", env_index[env_name]), {"name": env_name, "value": value})
            else:
                patch.append((*base, "env"), {"name": env_name, "value": value})
        paths = (_map(m).get("mountPath") for m in _list(container.get("volumeMounts")))
        mount_paths = {path for path in paths if isinstance(path, str)}  # other types are not hashable
        for mount in (
            {"name": VOLUME_SHARE, "mountPath": "/etc/ld.so.preload", "subPath": "ld.so.preload"},
            {"name": VOLUME_BIN, "mountPath": install_path},
            {
                "name": VOLUME_SHARE,
                "mountPath": "/var/lib/dynatrace/oneagent/agent/config/container.conf",
                "subPath": f"container_{name}.conf",
            },
        ):
            if mount["mountPath"] not in mount_paths:
                patch.append((*base, "volumeMounts"), mount)


def _container_info(containers: list[Mapping[str, Any]], indexes: list[int]) -> str:
    info = [
        {"name": str(containers[i].get("name", "")), "image": str(containers[i].get("image", ""))}
        for i in indexes
    ]
    return orjson.dumps(info).decode()


def _update_container_info(
    patch: Patch, pod: Mapping[str, Any], containers: list[Mapping[str, Any]], injected: list[int]
) -> None:
    """Keep the init container's CONTAINER_INFO equal to every container injected so far."""
    index = _init_container_index(pod)
    if index < 0:
        return
    init = _map(_list(_map(pod.get("spec")).get("initContainers"))[index])
    value = _container_info(containers, injected)
    for j, e in enumerate(_list(init.get("env"))):
        if _map(e).get("name") == "CONTAINER_INFO":
            if _map(e).get("value") != value:
                patch.replace(("spec", "initContainers", index, "env", j, "value"), value)
            return
    patch.append(("spec", "initContainers", index, "env"), {"name": "CONTAINER_INFO", "value": value})


def _run_as(pod: Mapping[str, Any], containers: list[Mapping[str, Any]], key: str) -> int:
    for source in (
        _map(containers[0].get("securityContext")) if containers else {},
        _map(_map(pod.get("spec")).get("securityContext")),
    ):
        value = source.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return DEFAULT_USER


def _field_env(name: str, field_path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field_path}}}


def _init_container(
    pod: Mapping[str, Any],
    containers: list[Mapping[str, Any]],
    targets: list[int],
    annotations: Mapping[str, Any],
    view: _View,
    settings: Settings,
) -> dict[str, Any]:
    policy = _annotation(annotations, ANNOTATION_FAILURE_POLICY, view.failure_policy)
    flavor = _annotation(annotations, ANNOTATION_FLAVOR, "default")
    user = _run_as(pod, containers, "runAsUser")
    group = _run_as(pod, containers, "runAsGroup")
    security_context: dict[str, Any] = {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsUser": user,
        "runAsGroup": group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if user != 0:
        security_context["runAsNonRoot"] = True
    init: dict[str, Any] = {
        "name": INIT_CONTAINER_NAME,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["init"],
        "env": [
            {"name": "FAILURE_POLICY", "value": "fail" if policy == "fail" else "silent"},
            _field_env("K8S_PODNAME", "metadata.name"),
            _field_env("K8S_PODUID", "metadata.uid"),
            {"name": "K8S_BASEPODNAME", "value": base_pod_name(pod)},
            {"name": "K8S_CLUSTER_ID", "value": view.kube_system_uuid},
            _field_env("K8S_NAMESPACE", "metadata.namespace"),
            _field_env("K8S_NODE_NAME", "spec.nodeName"),
            {"name": "CONTAINER_INFO", "value": _container_info(containers, targets)},
            {"name": "FLAVOR", "value": flavor if flavor in ("default", "musl") else "default"},
            {"name": "TECHNOLOGIES", "value": _annotation(annotations, ANNOTATION_TECHNOLOGIES, "all")},
            {"name": "INSTALLPATH", "value": _install_path(annotations)},
            {"name": "INSTALLER_URL", "value": _annotation(annotations, ANNOTATION_INSTALLER_URL, "")},
            {"name": "VERSION", "value": view.version},
            {"name": "ONEAGENT_INJECTED", "value": "true"},
        ],
        "volumeMounts": [
            {"name": VOLUME_BIN, "mountPath": "/mnt/bin"},
            {"name": VOLUME_SHARE, "mountPath": "/mnt/share"},
            {"name": VOLUME_CONFIG, "mountPath": "/mnt/config"},
        ],
        "securityContext": security_context,
    }
    if view.init_resources is not None:
        init["resources"] = dict(view.init_resources)
    return init
