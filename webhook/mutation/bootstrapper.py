"""The v1.10 injection contract (pure): what the Dynatrace Operator v1.10.2 webhook does to a pod after the
checks every contract shares (UPSTREAM-v1.5-v1.10.md sections 3, 4, 6, 11).

The operator's bootstrapper (the operator image's ``bootstrap`` command, or the code modules image itself when
self-extracting) is the init container; it reads ``/mnt/input`` (the projected Secrets
``dynatrace-bootstrapper-config`` and ``dynatrace-bootstrapper-certs``, replicated into the pod's namespace from
the operator's ``<dynakube>-bootstrapper-config`` / ``-certs``) and writes into the ``dynatrace-config``
emptyDir, which each injected container mounts at ``/var/lib/dynatrace`` (subPath: its name).

``gate`` makes the contract's checks in upstream's order and returns a skip ``Result`` or a ``Plan``;
``build`` adds what the metadata-enrichment and OneAgent mutators add. A check upstream answers with a
``MutatorError`` (the pod restored, only that error's two annotations written) is made in the gate, before
anything is added, so the answer is the same: annotations only. One difference on purpose: a OneAgent whose
DynaKube's connection info is incomplete (``EmptyConnectionInfo``) is left out, as with the v1.4 contract.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from webhook import dynakube as dk
from webhook.mutation import attributes as at
from webhook.mutation import enrichment as md
from webhook.mutation import oneagent as oa
from webhook.mutation import otlp
from webhook.mutation import podspec as ps
from webhook.mutation.context import PodContext
from webhook.mutation.enrichment import Lookup
from webhook.mutation.outcome import (
    EVENT_INJECT,
    EVENT_UPDATE_POD,
    INJECTED,
    REINVOKED,
    SKIPPED,
    Check,
    Result,
    Trace,
)
from webhook.mutation.patch import Patch
from webhook.tolerant import as_list as _list
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str

CONTRACT = "v1.10"

CONFIG_SECRET = "dynatrace-bootstrapper-config"
CERTS_SECRET = "dynatrace-bootstrapper-certs"
SECRETS = (CONFIG_SECRET, CERTS_SECRET)
SOURCE_SUFFIX = {CONFIG_SECRET: "-bootstrapper-config", CERTS_SECRET: "-bootstrapper-certs"}

VOLUME_INPUT = "dynatrace-input"
VOLUME_CONFIG = "dynatrace-config"
VOLUME_BIN = "oneagent-bin"
CONFIG_PATH = "/var/lib/dynatrace"
INIT_CONFIG_PATH, INIT_INPUT_PATH, INIT_BIN_PATH = "/mnt/config", "/mnt/input", "/mnt/bin"
CODE_MODULES_SOURCE = "/opt/dynatrace/oneagent"
DT_STORAGE = "/var/lib/dynatrace/oneagent"
SPLIT_ONEAGENT = "/oneagent"
SPLIT_ENRICHMENT = (
    "/enrichment/dt_metadata.json",
    "/enrichment/dt_metadata.properties",
    "/enrichment/endpoint",
)

ANNOTATION_DYNAKUBE_REASON = "dynakube.dynatrace.com/reason"
ANNOTATION_VOLUME_INJECTED = "volume.dynatrace.com/injected"
ANNOTATION_VOLUME_REASON = "volume.dynatrace.com/reason"
ANNOTATION_CONFIG_SIZE = "volume.dynatrace.com/dynatrace-config"
ANNOTATION_BIN_SIZE = "volume.dynatrace.com/oneagent-bin"
ANNOTATION_VOLUME_TYPE = "oneagent.dynatrace.com/volume-type"
ANNOTATION_SPLIT_MOUNTS = "dynatrace.com/split-mounts"
FF_ENABLE_DT_KUBERNETES = "feature.dynatrace.com/enable-attributes-dt.kubernetes"
FF_PUBLIC_REGISTRY = "feature.dynatrace.com/use-public-registry"
FF_AUTOMATIC_TLS = "feature.dynatrace.com/automatic-tls-certificate"

DYNAKUBE_KEYS = (ps.ANNOTATION_DYNAKUBE_INJECTED, ANNOTATION_DYNAKUBE_REASON)
ONEAGENT_KEYS = (ps.ANNOTATION_INJECTED, ps.ANNOTATION_REASON)
ENRICHMENT_KEYS = (ps.ANNOTATION_METADATA_INJECTED, ps.ANNOTATION_METADATA_REASON)
VOLUME_KEYS = (ANNOTATION_VOLUME_INJECTED, ANNOTATION_VOLUME_REASON)

# v1.10.2's reasons (section 6.4)
REASON_NO_BOOTSTRAPPER_CONFIG = "NoBootstrapperConfig"
REASON_NO_MUTATION_NEEDED = "NoMutationNeeded"
REASON_STATUS_NOT_READY = "DynaKubeStatusNotReady"
REASON_MISSING_TENANT_UUID = "MissingTenantUUID"
REASON_INVALID_INSTALL_PATH = "InvalidInstallPath"
REASON_CONFLICTING_VOLUME_TYPE = "ConflictingVolumeType"
REASON_OWNER_LOOKUP_FAILED = "OwnerLookupFailed"  # never written here: owners come from the cache
SKIP_NO_INJECTION = "ModeWithoutInjection"
SKIP_ALL_CONTAINERS_EXCLUDED = "AllContainersExcluded"
SKIP_NOTHING_NEW = "NothingNew"
# the injection handler's answers that change nothing and after which the OTLP handler runs (the rest are
# MutatorErrors, which end the request)
_INJECTION_PLAIN = frozenset(
    (
        REASON_NO_BOOTSTRAPPER_CONFIG,
        REASON_NO_MUTATION_NEEDED,
        SKIP_NO_INJECTION,
        SKIP_ALL_CONTAINERS_EXCLUDED,
    )
)

DEFAULT_RESOURCES = {
    "requests": {"cpu": "30m", "memory": "30Mi"},
    "limits": {"cpu": "100m", "memory": "60Mi"},
}
_QUANTITY = re.compile(
    r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$"
)


def source_name(dynakube_name: str, secret: str) -> str:
    """The operator's Secret in the DynaKube's namespace that ``secret`` is replicated from."""
    return dynakube_name + SOURCE_SUFFIX[secret]


@dataclass(frozen=True)
class View:
    """What the v1.10 contract needs of a DynaKube, worked out once per DynaKube object."""

    name: str
    app_injection: bool
    cnfs: bool
    classic: bool
    enrichment: bool
    needs_certs: bool
    image_id: str
    version: str
    status_ready: bool
    tenant_uuid: str
    api_url: str
    fail: bool
    seccomp: bool
    technology: str
    md_init_resources: Mapping[str, Any] | None
    deprecated_attributes: bool
    status: Mapping[str, Any]
    rules: tuple[Mapping[str, Any], ...]
    attributes: Mapping[str, Any]
    oa_attributes: Mapping[str, Any]


def second_gen(url: str) -> str:
    """Upstream ``dtapiurl.ToSecondGen``: a 3rd-gen ``<tenant>.apps.<domain>`` URL as the 2nd-gen API URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    hostport, _, _ = rest.partition("/")
    host, colon, port = hostport.rpartition(":") if hostport.count(":") == 1 else (hostport, "", "")
    if ".apps." not in host:
        return url
    prefix, _, suffix = host.partition(".apps.")
    new = f"{prefix}.live.{suffix}" if "." not in prefix else f"{prefix}.{suffix}"
    return f"{scheme}://{new}{colon}{port}/api"


def _flag(dynakube: Mapping[str, Any], key: str, default: bool) -> bool:
    return ps.parse_bool(dk.feature(dynakube, key, ""), default)


def _status_ready(dynakube: Mapping[str, Any], platform: bool) -> bool:
    """``IsCodeModulesStatusReady``: an image from the spec or a public registry needs the status image ID;
    else a status version other than ``custom-image``."""
    if dk.code_modules_image(dynakube) or platform or _flag(dynakube, FF_PUBLIC_REGISTRY, False):
        return bool(dk.code_modules_image_id(dynakube))
    version = dk.code_modules_version(dynakube)
    return bool(version) and version != "custom-image"


def _build_view(dynakube: Mapping[str, Any]) -> View:
    spec, status = dk.spec(dynakube), dk.status(dynakube)
    platform = _map(status.get("apiToken")).get("platform") is True
    mode = dk.mode(dynakube)
    activegate = _map(spec.get("activeGate"))
    ag_ca = dk.activegate_enabled(dynakube) and (
        bool(activegate.get("tlsSecretName")) or _flag(dynakube, FF_AUTOMATIC_TLS, True)
    )
    attributes = _map(spec.get("resourceAttributes"))
    additional = _map(dk.mode_spec(dynakube).get("additionalResourceAttributes"))
    md_resources = _map(spec.get("metadataEnrichment")).get("initResources")
    return View(
        name=dk.name(dynakube),
        app_injection=mode in dk.INJECTION_MODES,
        cnfs=mode == dk.CLOUD_NATIVE,
        classic=mode == dk.CLASSIC,
        enrichment=dk.metadata_enrichment_enabled(dynakube),
        needs_certs=ag_ca or bool(dk.trusted_cas(dynakube)),
        image_id=dk.code_modules_image_id(dynakube),
        version=dk.code_modules_version(dynakube),
        status_ready=_status_ready(dynakube, platform),
        tenant_uuid=dk.tenant_uuid(dynakube),
        api_url=second_gen(dk.api_url(dynakube)),
        fail=dk.failure_policy(dynakube) == "fail",
        seccomp=_flag(dynakube, dk.FEATURE_SECCOMP, True),
        technology=ps.annotation(dk.annotations_of(dynakube), ps.ANNOTATION_TECHNOLOGIES),
        md_init_resources=dict(md_resources) if isinstance(md_resources, Mapping) else None,
        deprecated_attributes=_flag(dynakube, FF_ENABLE_DT_KUBERNETES, not platform),
        status=status,
        rules=tuple(dk.metadata_enrichment_rules(dynakube)),
        attributes=attributes,
        oa_attributes={**attributes, **additional},
    )


def view(dynakube: Mapping[str, Any]) -> View:
    return dk.per_object(dynakube, "bootstrapper", _build_view)


@dataclass
class Plan:
    """The gate's answer for a pod to change under the v1.10 contract."""

    ctx: PodContext
    dynakube: str
    view: View
    oa_view: oa.View
    checks: list[Check]
    csi: bool
    install_path: str
    reinvoke: bool = False
    with_oa: bool = False  # the OneAgent mutator runs
    oa_enabled: bool = False  # OneAgent is enabled for the pod (the DynaKube attributes it gets)
    marks: tuple[tuple[str, str], ...] = ()  # why OneAgent was left out (first injection only)
    reasons: tuple[str, ...] = ()
    otlp: otlp.View | None = None  # the OTLP exporter runs after the injection
    secrets: Collection[str] | None = None
    skipped: Result | None = None  # the injection handler's answer when it changed nothing of its own


def _annotated(trace: Trace, ctx: PodContext, keys: tuple[str, str], reason: str, message: str) -> Result:
    """Upstream's skip that writes ``<prefix>/injected: "false"`` and ``<prefix>/reason`` only."""
    patch = Patch(ctx.pod)
    for key, value in ((keys[0], "false"), (keys[1], reason)):
        patch.set_in_map(("metadata", "annotations"), key, value)
    trace.checks.append((reason, False, message))
    return Result(
        SKIPPED, (reason,), message, trace.dynakube, patch.ops, trace.checks, contract=CONTRACT, patch=patch
    )


def is_csi(v: View, annotations: Mapping[str, Any], csi: bool) -> bool:
    """``isCSIVolume``: the CSI module decides; with a status image ID the pod's volume-type may say otherwise."""
    default = "csi" if csi else "ephemeral"
    if v.image_id:
        return ps.annotation(annotations, ANNOTATION_VOLUME_TYPE, default) == "csi"
    return csi


def valid_install_path(path: str) -> bool:
    return (
        path.startswith("/")
        and path != "/"
        and not any(c.isspace() or c in "\x00,:" for c in path)
        and posixpath.normpath(path) == path
        and not path.startswith("//")
    )


def _volume(ctx: PodContext, name: str) -> Mapping[str, Any] | None:
    for volume in _list(ctx.spec.get("volumes")):
        if _map(volume).get("name") == name:
            return _map(volume)
    return None


def _input_conflicts(volume: Mapping[str, Any] | None) -> bool:
    if volume is None:
        return False
    sources = _list(_map(volume.get("projected")).get("sources"))
    names = [_map(_map(s).get("secret")).get("name") if _map(s).get("secret") else None for s in sources]
    return names != [CONFIG_SECRET, CERTS_SECRET]


def _mutator_error(
    ctx: PodContext, v: View, plan_oa: bool, path: str, csi: bool
) -> tuple[tuple[str, str], str, str]:
    """The first ``MutatorError`` upstream would return, in its order: (annotation keys, reason, message), or
    reason "" when none."""
    if plan_oa:
        if not valid_install_path(path):
            return (
                ONEAGENT_KEYS,
                REASON_INVALID_INSTALL_PATH,
                (
                    f"the installPath ({path}) must be clean, absolute and without whitespace and separators like ,:"
                ),
            )
        if not v.status_ready:
            return (
                ONEAGENT_KEYS,
                REASON_STATUS_NOT_READY,
                (f"the dynakube's ({v.name}) codemodules version status is not yet ready, skipping mutation"),
            )
        binary = _volume(ctx, VOLUME_BIN)
        if binary is not None and (
            _map(binary.get("csi")).get("driver") != ps.CSI_DRIVER if csi else "emptyDir" not in binary
        ):
            return ONEAGENT_KEYS, REASON_CONFLICTING_VOLUME_TYPE, _conflict(VOLUME_BIN)
        if v.cnfs and not v.tenant_uuid:
            return ONEAGENT_KEYS, REASON_MISSING_TENANT_UUID, "tenant UUID not available"
    if _input_conflicts(_volume(ctx, VOLUME_INPUT)):
        return VOLUME_KEYS, REASON_CONFLICTING_VOLUME_TYPE, _conflict(VOLUME_INPUT)
    config = _volume(ctx, VOLUME_CONFIG)
    if config is not None and "emptyDir" not in config:
        return VOLUME_KEYS, REASON_CONFLICTING_VOLUME_TYPE, _conflict(VOLUME_CONFIG)
    return ONEAGENT_KEYS, "", ""


def _conflict(volume: str) -> str:
    return f"user-provided {volume} volume cannot be mounted due to invalid configuration"


def gate(
    ctx: PodContext,
    dynakube: Mapping[str, Any],
    trace: Trace,
    *,
    secrets: Collection[str] | None,
    csi: bool,
) -> Result | Plan:
    """After the shared checks (namespace, DynaKube, opt-out, OpenShift debug pod): upstream v1.10.2's
    injection handler, in its order, then (in ``build``) its OTLP handler when the pod is selected for it."""
    go = _gate_injection(ctx, dynakube, trace, secrets=secrets, csi=csi)
    if not otlp.selected(ctx, dynakube):
        return go
    if isinstance(go, Result):
        if go.contract != CONTRACT or not _INJECTION_PLAIN.issuperset(go.reasons):
            return go  # a MutatorError ends the request: the OTLP handler does not run
        path = ps.annotation(ctx.annotations, ps.ANNOTATION_INSTALL_PATH, ps.DEFAULT_INSTALL_PATH)
        v = view(dynakube)
        go = Plan(
            ctx,
            trace.dynakube,
            v,
            oa.view(dynakube),
            go.checks,
            is_csi(v, ctx.annotations, csi),
            path,
            skipped=go,
        )
    go.otlp, go.secrets = otlp.view(dynakube), secrets
    return go


def _gate_injection(
    ctx: PodContext,
    dynakube: Mapping[str, Any],
    trace: Trace,
    *,
    secrets: Collection[str] | None,
    csi: bool,
) -> Result | Plan:
    v, oa_view = view(dynakube), oa.view(dynakube)
    trace.checks.append(("contract", True, CONTRACT))
    if not ctx.eligible:
        return _skip(
            trace, "containers to inject", SKIP_ALL_CONTAINERS_EXCLUDED, "every container is excluded"
        )
    if not (v.app_injection or v.enrichment):
        why = f"DynaKube {v.name!r} injects neither OneAgent nor metadata enrichment"
        return _skip(trace, "injection configured", SKIP_NO_INJECTION, why)
    present = SECRETS if secrets is None else secrets
    for secret in (CONFIG_SECRET, CERTS_SECRET) if v.needs_certs else (CONFIG_SECRET,):
        if secret not in present:
            why = (
                f"secret {secret} is not in namespace {ctx.namespace_name!r} and its source "
                f"{source_name(v.name, secret)} is not known"
            )
            return _annotated(trace, ctx, DYNAKUBE_KEYS, REASON_NO_BOOTSTRAPPER_CONFIG, why)
    trace.checks.append(("bootstrapper secrets present", True, ctx.namespace_name))
    path = ps.annotation(ctx.annotations, ps.ANNOTATION_INSTALL_PATH, ps.DEFAULT_INSTALL_PATH)
    csi_volume = is_csi(v, ctx.annotations, csi)
    oa_on = not oa.disabled_reason(oa_view, ctx.annotations, ctx.namespace_labels)[1]
    if ctx.init_index >= 0:
        with_oa = oa_on and ps.parse_bool(ctx.annotations.get(ps.ANNOTATION_INJECTED), False)
        trace.checks.append(("already injected", True, "reinvocation"))
        return Plan(ctx, trace.dynakube, v, oa_view, trace.checks, csi_volume, path, True, with_oa, oa_on)
    trace.checks.append(("already injected", False, "first injection"))
    md_on = not md.disabled_reason(md.view(dynakube), ctx.annotations, ctx.namespace_labels)
    if not (oa_on or md_on):
        why = "neither OneAgent nor metadata enrichment is enabled for the pod"
        return _annotated(trace, ctx, DYNAKUBE_KEYS, REASON_NO_MUTATION_NEEDED, why)
    held = oa_on and oa.REASON_EMPTY_CONNECTION_INFO in oa_view.reasons
    with_oa = oa_on and not held
    keys, reason, message = _mutator_error(ctx, v, with_oa, path, csi_volume)
    if reason:
        return _annotated(trace, ctx, keys, reason, message)
    marks: tuple[tuple[str, str], ...] = ()
    if held:
        marks = ((ps.ANNOTATION_INJECTED, "false"), (ps.ANNOTATION_REASON, oa.REASON_EMPTY_CONNECTION_INFO))
        message = (
            f"OneAgent not injected: DynaKube {v.name!r} connection info incomplete (EmptyConnectionInfo)"
        )
        trace.checks.append(("connection info complete", False, message))
        if not md_on:
            patch = Patch(ctx.pod)
            for key, value in marks:
                patch.set_in_map(("metadata", "annotations"), key, value)
            return Result(
                SKIPPED,
                (oa.REASON_EMPTY_CONNECTION_INFO,),
                message,
                trace.dynakube,
                patch.ops,
                trace.checks,
                contract=CONTRACT,
            )
    reasons: tuple[str, ...] = (oa.REASON_EMPTY_CONNECTION_INFO,) if held else ()
    return Plan(
        ctx, trace.dynakube, v, oa_view, trace.checks, csi_volume, path, False, with_oa, oa_on, marks, reasons
    )


def _skip(trace: Trace, check: str, reason: str, message: str) -> Result:
    result = trace.skip(check, reason, message)
    result.contract = CONTRACT
    return result


# --- what the mutators add ---


def split_mounts(plan: Plan) -> bool:
    value = plan.ctx.annotations.get(ANNOTATION_SPLIT_MOUNTS)
    return (isinstance(value, str) and value.lower() == "true") or plan.view.classic


def config_mounts(plan: Plan, name: str) -> list[dict[str, Any]]:
    """``AddConfigVolumeMount``: ``/var/lib/dynatrace`` (subPath: the container), or the split mounts."""
    if not split_mounts(plan):
        return [ps.mount(VOLUME_CONFIG, CONFIG_PATH, name)]
    mounts = []
    if plan.view.app_injection:
        mounts.append(ps.mount(VOLUME_CONFIG, CONFIG_PATH + SPLIT_ONEAGENT, name + SPLIT_ONEAGENT))
    if plan.view.enrichment or plan.view.app_injection:
        mounts += [ps.mount(VOLUME_CONFIG, CONFIG_PATH + p, name + p) for p in SPLIT_ENRICHMENT]
    return mounts


def config_injected(plan: Plan, container: Mapping[str, Any]) -> bool:
    """The metadata mutator's ``isInjected``: the config mounts are there."""
    paths = set(ps.mounts_by_path(container))
    if not split_mounts(plan):
        return CONFIG_PATH in paths
    if plan.view.app_injection and CONFIG_PATH + SPLIT_ONEAGENT not in paths:
        return False
    return not (plan.view.enrichment and not all(CONFIG_PATH + p in paths for p in SPLIT_ENRICHMENT))


def _with_free_paths(container: Mapping[str, Any], mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mounts at paths the container does not mount yet (upstream's ``k8smount.Append``)."""
    taken = set(ps.mounts_by_path(container))
    out = []
    for mount in mounts:
        if mount["mountPath"] not in taken:
            taken.add(mount["mountPath"])
            out.append(mount)
    return out


def oneagent_env(
    plan: Plan, container: Mapping[str, Any], metadata: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The OneAgent env a container gets appended, and a new value for its literal ``LD_PRELOAD`` (or None)."""
    names = ps.env_names(
        container,
        frozenset(
            (
                "DT_DEPLOYMENT_METADATA",
                "LD_PRELOAD",
                "DT_STORAGE",
                "DT_NETWORK_ZONE",
                *(r[0] for r in oa.RELEASE_ENV),
            )
        ),
    )
    env = _list(container.get("env"))
    added: list[dict[str, Any]] = []
    preload_value = None
    if "DT_DEPLOYMENT_METADATA" not in names:
        added.append(ps.value_env("DT_DEPLOYMENT_METADATA", metadata))
    library = posixpath.join(plan.install_path, oa.PRELOAD_LIBRARY)
    if "LD_PRELOAD" not in names:
        added.append(ps.value_env("LD_PRELOAD", library))
    else:
        current = _map(env[names["LD_PRELOAD"]])
        value = _str(current.get("value"))
        if "valueFrom" not in current and plan.install_path not in value:
            preload_value = f"{value} {library}" if " " in value else f"{value}:{library}"
    if "DT_STORAGE" not in names:
        added.append(ps.value_env("DT_STORAGE", DT_STORAGE))
    zone = plan.oa_view.network_zone
    if zone and (
        "DT_NETWORK_ZONE" not in names
        or env[names["DT_NETWORK_ZONE"]] != ps.value_env("DT_NETWORK_ZONE", zone)
    ):
        added.append(ps.value_env("DT_NETWORK_ZONE", zone))
    if plan.oa_view.release_env:
        for name, key, default in oa.RELEASE_ENV:
            field = ps.annotation(plan.ctx.namespace_annotations, key, default)
            if field and name not in names:
                added.append(ps.field_env(name, field))
    return added, preload_value


def add_oneagent(patch: Patch, plan: Plan, index: int, metadata: str) -> None:
    """One container's OneAgent mounts and env (``addOneAgentToContainer``)."""
    container = plan.ctx.containers[index]
    mounts = [
        {"name": VOLUME_BIN, "mountPath": plan.install_path, "readOnly": True},
        ps.mount(VOLUME_CONFIG, "/etc/ld.so.preload", "oneagent/ld.so.preload"),
    ]
    patch.extend(("spec", "containers", index, "volumeMounts"), _with_free_paths(container, mounts))
    env, preload = oneagent_env(plan, container, metadata)
    base = ("spec", "containers", index, "env")
    if preload is not None:
        names = ps.env_names(container, frozenset(("LD_PRELOAD",)))
        patch.set_in_map((*base, names["LD_PRELOAD"]), "value", preload)
    patch.extend(base, env)


def oneagent_new(ctx: PodContext) -> list[int]:
    """Eligible containers without an ``oneagent-bin`` mount."""
    return [i for i in ctx.eligible if VOLUME_BIN not in ps.mount_names(ctx.containers[i])]


def security_context(ctx: PodContext, seccomp: bool) -> dict[str, Any]:
    """``securityContextForInitContainer``: 1001/1001, the pod's then the first container's user and group;
    non-root by the user when set."""
    user: Any = 1001
    group: Any = 1001
    first = _map(ctx.containers[0].get("securityContext")) if ctx.containers else {}
    for source in (_map(ctx.spec.get("securityContext")), first):
        if _is_int(source.get("runAsUser")):
            user = source["runAsUser"]
        if _is_int(source.get("runAsGroup")):
            group = source["runAsGroup"]
    out: dict[str, Any] = {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsUser": user,
        "runAsGroup": group,
        "runAsNonRoot": user != 0,
    }
    if seccomp:
        out["seccompProfile"] = {"type": "RuntimeDefault"}
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def empty_dir(annotations: Mapping[str, Any], key: str) -> dict[str, Any]:
    size = ps.annotation(annotations, key)
    return {"sizeLimit": size} if size and _QUANTITY.match(size) else {}


def _init_base(plan: Plan, image: str) -> dict[str, Any]:
    """``createInitContainerBase``."""
    v = plan.view
    args = ["bootstrap", f"--config-directory={INIT_CONFIG_PATH}", f"--input-directory={INIT_INPUT_PATH}"]
    if v.app_injection and not plan.csi and not v.image_id:  # NeedsDownloadConfig
        args.append(f"--url={v.api_url}")
    policy = ps.annotation(plan.ctx.annotations, ps.ANNOTATION_FAILURE_POLICY, "fail" if v.fail else "silent")
    if policy != "fail":
        args.append("--suppress-error")
    return {
        "name": ps.INIT_CONTAINER_NAME,
        "image": image,
        "args": args,
        "resources": DEFAULT_RESOURCES,
        "imagePullPolicy": "IfNotPresent",
        "securityContext": security_context(plan.ctx, v.seccomp),
    }


def _enrichment(patch: Patch, plan: Plan, init: dict[str, Any], lookup: Lookup) -> dict[str, str]:
    """The metadata-enrichment mutator: attributes, pod env, the new containers' attributes and config mounts;
    returns the JSON annotation's content."""
    ctx, v = plan.ctx, plan.view
    init["resources"] = v.md_init_resources if v.md_init_resources is not None else DEFAULT_RESOURCES
    attrs = at.pod_attributes(
        workload=md.workload_of(ctx, lookup),
        namespace_name=ctx.namespace_name or str(ctx.meta.get("namespace") or ""),
        status=v.status,
        rule_values=at.rules(list(v.rules), ctx.namespace_labels, ctx.namespace_annotations),
        dynakube_attributes=v.oa_attributes if plan.oa_enabled else v.attributes,
        namespace_annotations=ctx.namespace_annotations,
        pod_annotations=ctx.annotations,
        deprecated=v.deprecated_attributes,
    )
    init["args"] += [f"--enable-attributes-dt-kubernetes={str(v.deprecated_attributes).lower()}"]
    init["args"] += [*attrs.args(), "--metadata-enrichment"]
    init["env"] = at.pod_env()
    patch.set_in_map(("metadata", "annotations"), ps.ANNOTATION_METADATA_INJECTED, "true")
    patch.remove_from_map(("metadata", "annotations"), ps.ANNOTATION_METADATA_REASON)
    init["args"] += _container_attributes(patch, plan)
    return attrs.for_annotation()


def _container_attributes(patch: Patch, plan: Plan) -> list[str]:
    """``AddContainerAttributes``: ``--attribute-container`` and the config mounts of each new container."""
    args = []
    for i in plan.ctx.eligible:
        container = plan.ctx.containers[i]
        if config_injected(plan, container):
            continue
        args.append(at.container_arg(container))
        mounts = _with_free_paths(container, config_mounts(plan, container["name"]))
        patch.extend(("spec", "containers", i, "volumeMounts"), mounts)
    return args


def _oneagent(patch: Patch, plan: Plan, init: dict[str, Any], existing: set[str], version: str) -> None:
    """The OneAgent mutator: the ``oneagent-bin`` volume and init mount, the init args, each new container."""
    v, ctx = plan.view, plan.ctx
    resources = plan.oa_view.init_resources
    if plan.csi:
        volume = {
            "name": VOLUME_BIN,
            "csi": {
                "driver": ps.CSI_DRIVER,
                "readOnly": True,
                "volumeAttributes": {
                    "mode": "app",
                    "dynakube": v.name,
                    "retryTimeout": plan.oa_view.csi_timeout,
                },
            },
        }
        if resources is not None:
            init["resources"] = resources
    else:
        volume = {"name": VOLUME_BIN, "emptyDir": empty_dir(ctx.annotations, ANNOTATION_BIN_SIZE)}
        init["resources"] = resources if resources is not None else {}
        if v.image_id:
            init["args"] = init["args"][1:]
            init["image"] = v.image_id
        else:
            init["args"].append(f"--version={v.version}")
            flavor = ps.annotation(ctx.annotations, ps.ANNOTATION_FLAVOR)
            if flavor:
                init["args"].append(f"--flavor={flavor}")
    if VOLUME_BIN not in existing:
        patch.append(("spec", "volumes"), volume)
        existing.add(VOLUME_BIN)
    init["volumeMounts"].append({"name": VOLUME_BIN, "mountPath": INIT_BIN_PATH, "readOnly": plan.csi})
    init["args"] += [
        f"--source={CODE_MODULES_SOURCE}",
        f"--target={INIT_BIN_PATH}",
        f"--install-path={plan.install_path}",
    ]
    if v.cnfs:
        init["args"] += ["--fullstack", f"--tenant={v.tenant_uuid}"]
    technology = ps.annotation(ctx.annotations, ps.ANNOTATION_TECHNOLOGIES, v.technology)
    if technology:
        init["args"].append(f"--technology={technology}")
    metadata = oa.deployment_metadata(plan.oa_view, version, plan.oa_view.kube_system_uuid)
    for i in oneagent_new(ctx):
        add_oneagent(patch, plan, i, metadata)
    patch.set_in_map(("metadata", "annotations"), ps.ANNOTATION_INJECTED, "true")
    patch.remove_from_map(("metadata", "annotations"), ps.ANNOTATION_REASON)


def build(plan: Plan, *, image: str, version: str, lookup: Lookup) -> Result:
    """What the mutators add to a pod the gate let through (first injection or reinvocation), then what the
    OTLP exporter adds."""
    if plan.skipped is not None:
        result = plan.skipped
    elif plan.reinvoke:
        result = _reinvoke(plan, version)
    else:
        result = _inject(plan, image=image, version=version, lookup=lookup)
    return result if plan.otlp is None else _otlp(plan, plan.otlp, result, lookup)


def _otlp(plan: Plan, v: otlp.View, result: Result, lookup: Lookup) -> Result:
    """Upstream's OTLP handler after the injection handler: a ``MutatorError`` restores the pod (only the
    OTLP annotations); a missing Secret only annotates; else the exporter env, volume and annotation."""
    ctx = plan.ctx
    reason, message = otlp.gate(ctx, v, plan.secrets)
    if reason and reason not in otlp.PLAIN_REASONS:
        patch = Patch(ctx.pod)
        otlp.annotate(patch, reason)
        plan.checks.append(("OTLP exporter", False, message))
        return Result(SKIPPED, (reason,), message, plan.dynakube, patch.ops, plan.checks, contract=CONTRACT)
    patch = result.patch if result.patch is not None else Patch(ctx.pod)
    if reason:
        otlp.annotate(patch, reason)
        plan.checks.append(("OTLP exporter", False, message))
        result.reasons += (reason,)
    else:
        v1 = plan.view
        attrs = at.pod_attributes(
            workload=md.workload_of(ctx, lookup),
            namespace_name=ctx.namespace_name or str(ctx.meta.get("namespace") or ""),
            status=v1.status,
            rule_values=at.rules(list(v1.rules), ctx.namespace_labels, ctx.namespace_annotations),
            dynakube_attributes=v.attributes,
            namespace_annotations=ctx.namespace_annotations,
            pod_annotations=ctx.annotations,
            deprecated=v1.deprecated_attributes,
        )
        if not otlp.add(patch, ctx, v, attrs.all()):
            plan.checks.append(("OTLP exporter", False, "no container without OTLP env of its own"))
            return result
        plan.checks.append(("OTLP exporter", True, ", ".join(v.signals)))
        result.message += "; OTLP exporter configured"
        if result.outcome == SKIPPED:
            result.outcome = INJECTED
    result.ops, result.patch, result.checks = patch.ops, patch, plan.checks
    return result


def _inject(plan: Plan, *, image: str, version: str, lookup: Lookup) -> Result:
    """The injection handler's first injection."""
    ctx = plan.ctx
    patch = Patch(ctx.pod)
    for key, value in plan.marks:
        patch.set_in_map(("metadata", "annotations"), key, value)
    init = _init_base(plan, image)
    init.update(env=[], volumeMounts=[])
    existing = set(ctx.volume_names)
    json_annotation = _enrichment(patch, plan, init, lookup)
    done = ["metadata enrichment"]
    if plan.with_oa:
        _oneagent(patch, plan, init, existing, version)
        done.append(f"OneAgent ({'CSI' if plan.csi else 'emptyDir'})")
    init["volumeMounts"] += [
        ps.mount(VOLUME_CONFIG, INIT_CONFIG_PATH),
        {"name": VOLUME_INPUT, "mountPath": INIT_INPUT_PATH, "readOnly": True},
    ]
    if VOLUME_INPUT not in existing:
        sources = [
            {"secret": {"name": CONFIG_SECRET, "optional": False}},
            {"secret": {"name": CERTS_SECRET, "optional": True}},
        ]
        patch.append(("spec", "volumes"), {"name": VOLUME_INPUT, "projected": {"sources": sources}})
    if VOLUME_CONFIG not in existing:
        patch.append(
            ("spec", "volumes"),
            {"name": VOLUME_CONFIG, "emptyDir": empty_dir(ctx.annotations, ANNOTATION_CONFIG_SIZE)},
        )
    if (token := ps.token_mount(ctx.pod)) is not None:  # else the API server adds it and calls us again
        init["volumeMounts"].append(token)
    patch.append(("spec", "initContainers"), init)
    patch.set_in_map(("metadata", "annotations"), ps.ANNOTATION_DYNAKUBE_INJECTED, "true")
    patch.remove_from_map(("metadata", "annotations"), ANNOTATION_DYNAKUBE_REASON)
    if at.JSON_ANNOTATION not in ctx.annotations:
        patch.set_in_map(("metadata", "annotations"), at.JSON_ANNOTATION, ps.go_json(json_annotation))
    plan.checks.append(("injected", True, "; ".join(done)))
    message = "injected " + "; ".join(done)
    return Result(
        INJECTED, plan.reasons, message, plan.dynakube, patch.ops, plan.checks, EVENT_INJECT, CONTRACT, patch
    )


def _reinvoke(plan: Plan, version: str) -> Result:
    """``handlePodReinvocation``: new containers' attributes and config mounts; OneAgent for containers without
    ``oneagent-bin`` when the pod has OneAgent (``oneagent.dynatrace.com/injected: "true"``)."""
    ctx = plan.ctx
    patch = Patch(ctx.pod)
    args = _container_attributes(patch, plan)
    if args:
        patch.extend(("spec", "initContainers", ctx.init_index, "args"), args)
    added = bool(args)
    if plan.with_oa and valid_install_path(plan.install_path):
        metadata = oa.deployment_metadata(plan.oa_view, version, plan.oa_view.kube_system_uuid)
        for i in oneagent_new(ctx):
            add_oneagent(patch, plan, i, metadata)
            added = True
    if not added:
        plan.checks.append(("containers added since", False, "none"))
        return Result(
            REINVOKED,
            (SKIP_NOTHING_NEW,),
            "pod is already injected",
            plan.dynakube,
            checks=plan.checks,
            contract=CONTRACT,
            patch=patch,
        )
    return Result(
        REINVOKED,
        (),
        "injected new container(s)",
        plan.dynakube,
        patch.ops,
        plan.checks,
        EVENT_UPDATE_POD,
        CONTRACT,
        patch,
    )
