"""The ``/inject`` decision for pods (pure, no I/O): the v1.4 webhook's flow (INJECTION-CONTRACT.md section 1).

``decide`` takes the pod, the cached namespace and DynaKube, and everything else it needs as plain values: the
cluster ID, the cached owner metadata (``lookup``) and the init secrets the cache holds in the namespace. It
returns the outcome, the reasons, the JSON Patch operations and the Event (if any) the answer calls for.

It is two steps. The gate (``gate``) makes the checks in the contract's order and decides whether and what to
inject: a skip ``Result``, or a ``GoAhead`` naming the mutators that run and the containers they touch. The
build (``build``) adds what the mutators add: ``oneagent``, ``enrichment``, ``initcontainer`` and
``containers``. The pod is read once per admission, into a ``PodContext`` that both steps pass on.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook import dynakube as dk
from webhook.mutation import bootstrapper
from webhook.mutation import containers as cs
from webhook.mutation import enrichment as md
from webhook.mutation import initcontainer as init
from webhook.mutation import oneagent as oa
from webhook.mutation import podspec as ps
from webhook.mutation.context import PodContext
from webhook.mutation.enrichment import Lookup
from webhook.mutation.outcome import (
    EVENT_INJECT,
    EVENT_MISSING_DYNAKUBE,
    EVENT_UPDATE_POD,
    INJECTED,
    REINVOKED,
    SKIPPED,
    Check,
    Result,
    Trace,
)
from webhook.mutation.patch import Patch
from webhook.tolerant import as_map as _map

# re-exported: the names other modules use
ANNOTATION_INJECTED = ps.ANNOTATION_INJECTED
ANNOTATION_REASON = ps.ANNOTATION_REASON
ANNOTATION_DYNAKUBE_INJECTED = ps.ANNOTATION_DYNAKUBE_INJECTED
ANNOTATION_DYNATRACE_INJECT = ps.ANNOTATION_DYNATRACE_INJECT
ANNOTATION_ONEAGENT_INJECT = ps.ANNOTATION_ONEAGENT_INJECT
OPENSHIFT_DEBUG_ANNOTATIONS = ps.OPENSHIFT_DEBUG_ANNOTATIONS
CONFIG_SECRET = ps.CONFIG_SECRET
INIT_CONTAINER_NAME = ps.INIT_CONTAINER_NAME
CONNECTION_INFO_REASONS = oa.CONNECTION_INFO_REASONS
REASON_EMPTY_CONNECTION_INFO = oa.REASON_EMPTY_CONNECTION_INFO
connection_info_reasons = oa.connection_info_reasons
pod_name = ps.pod_name
base_pod_name = ps.base_pod_name

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
# written into oneagent.dynatrace.com/reason or metadata-enrichment.dynatrace.com/reason: the cache does not
# hold the namespace's init secret yet, and a pod mounting it could not start
REASON_MISSING_INIT_SECRET = "MissingInitSecret"
# every container already mounts something else at a path the injection needs (a duplicate mount path makes a
# pod the API server rejects)
REASON_MOUNT_PATH_TAKEN = "MountPathTaken"
# every container already has the mounts and env the injection adds, yet the pod has neither the injection
# annotations nor the init container: an init container would have no container to set up
REASON_CONTAINERS_ALREADY_INJECTED = "ContainersAlreadyInjected"

# (…/injected, …/reason): how a pod says that a mutator it was mapped to was left out
ONEAGENT_ANNOTATIONS = (ps.ANNOTATION_INJECTED, ps.ANNOTATION_REASON)
ENRICHMENT_ANNOTATIONS = (ps.ANNOTATION_METADATA_INJECTED, ps.ANNOTATION_METADATA_REASON)


# the injection contracts: v1.4 is this module's gate and build; every later one is a module of its own with
# ``gate(ctx, dynakube, trace, secrets=, csi=)``, its plan type ``Plan`` and ``build(plan, image=, version=,
# lookup=)``, run after the checks all contracts share
CONTRACT_V1_4 = "v1.4"
CONTRACT_AUTO = "auto"
CONTRACTS: dict[str, Any] = {bootstrapper.CONTRACT: bootstrapper}
CONTRACT_CHOICES = (CONTRACT_AUTO, CONTRACT_V1_4, *CONTRACTS)


@dataclass(frozen=True)
class Settings:
    """What the injection needs from the webhook's configuration."""

    image: str
    version: str
    csi: bool = True  # the Dynatrace CSI driver is installed (upstream: modules.json "csiDriver")
    contract: str = CONTRACT_AUTO  # auto, v1.4 or v1.10 (``decision.contract_for`` resolves auto)
    # the init image per later contract (v1.10: the operator image whose ``bootstrap`` runs)
    images: Mapping[str, str] = field(default_factory=dict)


_ANNOTATIONS = ("metadata", "annotations")


@dataclass
class GoAhead:
    """The gate's answer for a pod to change: which mutators run, on which containers."""

    ctx: PodContext
    dynakube: str
    oa_view: oa.View
    md_view: md.View
    plan: cs.Plan
    checks: list[Check]
    reinvoke: bool = False
    with_oa: bool = False
    with_md: bool = False
    # annotations written before the mutators run: why a mutator is left out (first injection only)
    marks: tuple[tuple[str, str], ...] = ()
    reasons: tuple[str, ...] = ()


def decide(
    pod: Mapping[str, Any],
    namespace: Mapping[str, Any] | None,
    dynakube: Mapping[str, Any] | None,
    settings: Settings,
    *,
    namespace_name: str = "",
    cluster_id: str = "",
    lookup: Lookup | None = None,
    secrets: Collection[str] | None = None,
    contract: str = CONTRACT_V1_4,
) -> Result:
    """Walk the decision flow for a pod CREATE and return the outcome with its patch operations.

    ``namespace`` and ``dynakube`` come from the cache (None when unknown); ``dynakube`` is the one the
    namespace's instance label names. ``cluster_id`` is the kube-system Namespace UID (the DynaKube's
    ``status.kubeSystemUUID`` when empty). ``lookup(kind, name)`` gives the cached metadata of an owner in the
    pod's namespace. ``secrets`` names the init secrets the cache holds in that namespace (None: take both as
    present). The pod is never modified. ``Result.checks`` lists every check made, in order.
    """
    go = gate(
        pod,
        namespace,
        dynakube,
        namespace_name=namespace_name,
        secrets=secrets,
        contract=contract,
        csi=settings.csi,
    )
    if isinstance(go, Result):
        return go
    if not isinstance(go, GoAhead):
        module = CONTRACTS[contract]
        return module.build(
            go,
            image=settings.images.get(contract, settings.image),
            version=settings.version,
            lookup=lookup or md.no_lookup,
        )
    return build(go, settings, cluster_id=cluster_id, lookup=lookup)


def gate(
    pod: Mapping[str, Any],
    namespace: Mapping[str, Any] | None,
    dynakube: Mapping[str, Any] | None,
    *,
    namespace_name: str = "",
    secrets: Collection[str] | None = None,
    contract: str = CONTRACT_V1_4,
    csi: bool = True,
) -> Result | GoAhead | Any:
    """The checks of sections 1.2 to 1.7 in their order: a skip Result, or what the build is to add (a
    ``GoAhead``, or the plan of a later ``contract``, whose own gate follows the checks all contracts share)."""
    trace = Trace()
    if namespace is None:
        return trace.skip(
            "namespace known",
            SKIP_NAMESPACE_UNKNOWN,
            f"namespace {namespace_name!r} is not known to the webhook yet",
        )
    trace.checks.append(("namespace known", True, namespace_name))
    ns_meta = _map(namespace.get("metadata"))
    ns_labels = _map(ns_meta.get("labels"))
    label = ns_labels.get(dk.INSTANCE_LABEL)
    if not isinstance(label, str) or not label:
        return trace.skip(
            "namespace mapped",
            SKIP_NAMESPACE_UNLABELED,
            f"namespace {namespace_name!r} has no {dk.INSTANCE_LABEL} label",
        )
    trace.dynakube = label
    trace.checks.append(("namespace mapped", True, f"{dk.INSTANCE_LABEL}={label}"))
    if dynakube is None:
        return trace.skip(
            "DynaKube exists",
            SKIP_MISSING_DYNAKUBE,
            f"namespace {namespace_name!r} is mapped to DynaKube {label!r}, which does not exist",
            EVENT_MISSING_DYNAKUBE,
        )
    trace.checks.append(("DynaKube exists", True, label))
    oa_view = oa.view(dynakube)
    ctx = PodContext(
        pod,
        excluded=oa_view.excluded,
        namespace_name=namespace_name,
        namespace_labels=ns_labels,
        namespace_annotations=_map(ns_meta.get("annotations")),
    )
    if not ps.parse_bool(ctx.annotations.get(ps.ANNOTATION_DYNATRACE_INJECT), True):
        return trace.skip(
            "pod not opted out", SKIP_POD_OPT_OUT, f"pod is annotated {ps.ANNOTATION_DYNATRACE_INJECT}=false"
        )
    trace.checks.append(("pod not opted out", True, f"no {ps.ANNOTATION_DYNATRACE_INJECT}=false"))
    if all(key in ctx.annotations for key in ps.OPENSHIFT_DEBUG_ANNOTATIONS):
        return trace.skip("not an OpenShift debug pod", SKIP_OPENSHIFT_DEBUG, "OpenShift debug pod")
    trace.checks.append(("not an OpenShift debug pod", True, ""))
    if contract in CONTRACTS:
        return CONTRACTS[contract].gate(ctx, dynakube, trace, secrets=secrets, csi=csi)
    if ctx.already_injected():
        return _gate_reinvocation(ctx, oa_view, md.view(dynakube), trace)
    trace.checks.append(("already injected", False, "first injection"))
    return _gate_first(ctx, oa_view, md.view(dynakube), trace, secrets)


def _gate_first(
    ctx: PodContext, oa_view: oa.View, md_view: md.View, trace: Trace, secrets: Collection[str] | None
) -> Result | GoAhead:
    """Section 1.6: which mutators are enabled, and whether what they need is there."""
    oa_check, oa_off = oa.disabled_reason(oa_view, ctx.annotations, ctx.namespace_labels)
    md_off = md.disabled_reason(md_view, ctx.annotations, ctx.namespace_labels)
    if not ctx.eligible:
        return trace.skip(
            "containers to inject", SKIP_ALL_CONTAINERS_EXCLUDED, "every container is excluded from injection"
        )
    trace.checks.append(("containers to inject", True, ", ".join(ctx.eligible_names())))
    if oa_off and md_off:
        why = _disabled(oa_off, oa_view, ctx.namespace_name, trace.dynakube)
        return trace.skip(oa_check, oa_off, f"{why}; metadata enrichment: {md_off}")
    trace.checks.append(
        ("injection enabled", True, f"OneAgent: {oa_off or 'on'}, metadata enrichment: {md_off or 'on'}")
    )
    present = ps.INIT_SECRETS if secrets is None else secrets
    oa_reasons: list[str] = []
    if not oa_off:
        oa_reasons = list(oa_view.reasons) or (
            [] if ps.CONFIG_SECRET in present else [REASON_MISSING_INIT_SECRET]
        )
    with_oa = not oa_off and not oa_reasons
    with_md = not md_off and ps.ENRICHMENT_SECRET in present
    marks, reasons, not_injected = _left_out(ctx, oa_view, oa_reasons, not md_off and not with_md, trace)
    if not (with_oa or with_md):
        message = "; ".join(not_injected)
        if len(not_injected) > 1:
            trace.checks.append(("something to inject", False, message))
        return Result(SKIPPED, reasons, message, trace.dynakube, _marked(ctx.pod, marks).ops, trace.checks)
    plan = cs.plan(ctx, oa_view if with_oa else None, with_md)
    if not (plan.oneagent or plan.enrichment):
        return _nothing_to_add(ctx, plan, with_oa, with_md, marks, reasons, not_injected, trace)
    for i in plan.taken:
        trace.checks.append(
            ("mount paths free", False, f"container {ctx.containers[i]['name']!r} left alone")
        )
    return GoAhead(
        ctx,
        trace.dynakube,
        oa_view,
        md_view,
        plan,
        trace.checks,
        with_oa=with_oa,
        with_md=with_md,
        marks=marks,
        reasons=reasons,
    )


def left_out(keys: tuple[str, str], reason: str) -> list[tuple[str, str]]:
    """The one way a pod is told that a mutator was left out: ``<mutator>/injected: "false"`` and
    ``<mutator>/reason: <reason>`` (``ONEAGENT_ANNOTATIONS`` or ``ENRICHMENT_ANNOTATIONS``)."""
    injected, reason_key = keys
    return [(injected, "false"), (reason_key, reason)]


def _nothing_to_add(
    ctx: PodContext,
    plan: cs.Plan,
    with_oa: bool,
    with_md: bool,
    marks: tuple[tuple[str, str], ...],
    reasons: tuple[str, ...],
    not_injected: list[str],
    trace: Trace,
) -> Result:
    """No container can take what the mutators add: each one that could have run is left out and the pod says
    so (beside what it already says of the others); never a silent skip."""
    if plan.taken:
        reason, why = (
            REASON_MOUNT_PATH_TAKEN,
            "every container already mounts something else at a path the injection needs",
        )
    else:
        reason = REASON_CONTAINERS_ALREADY_INJECTED
        why = "every container already has what the injection adds, but the pod has no injection annotation"
    added = list(marks)
    messages = list(not_injected)
    for wanted, keys, what in (
        (with_oa, ONEAGENT_ANNOTATIONS, "OneAgent not injected"),
        (with_md, ENRICHMENT_ANNOTATIONS, "metadata enrichment not applied"),
    ):
        if wanted:
            added += left_out(keys, reason)
            messages.append(f"{what}: {why} ({reason})")
    message = "; ".join(messages)
    trace.checks.append(("mount paths free" if plan.taken else "containers to set up", False, message))
    return Result(
        SKIPPED,
        tuple(dict.fromkeys((*reasons, reason))),
        message,
        trace.dynakube,
        _marked(ctx.pod, added).ops,
        trace.checks,
    )


def _disabled(reason: str, oa_view: oa.View, namespace_name: str, dynakube_name: str) -> str:
    """Why OneAgent injection is off, in words."""
    details = {
        SKIP_MODE: f"DynaKube {dynakube_name!r} mode {oa_view.mode or 'none'!r} does not inject",
        SKIP_INVALID_SELECTOR: f"DynaKube {dynakube_name!r} has an invalid namespaceSelector: "
        f"{oa_view.selector_error}",
        SKIP_NAMESPACE_SELECTOR: f"namespace {namespace_name!r} is not selected by DynaKube {dynakube_name!r}",
        SKIP_ONEAGENT_OPT_OUT: "OneAgent injection is disabled for this pod "
        f"({ps.ANNOTATION_ONEAGENT_INJECT}, default {str(oa_view.automatic_injection).lower()})",
    }
    return details[reason]


def _left_out(
    ctx: PodContext, oa_view: oa.View, oa_reasons: list[str], md_secret_missing: bool, trace: Trace
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], list[str]]:
    """The annotations that say why an enabled mutator does not run, the reasons and the messages."""
    marks: list[tuple[str, str]] = []
    reasons: list[str] = []
    not_injected: list[str] = []
    if oa_reasons:
        joined = ", ".join(oa_reasons)
        marks += left_out(ONEAGENT_ANNOTATIONS, joined)
        reasons += oa_reasons
        why = (
            f"DynaKube {trace.dynakube!r} connection info incomplete"
            if oa_view.reasons
            else f"secret {ps.CONFIG_SECRET} is not in namespace {ctx.namespace_name!r} yet"
        )
        not_injected.append(f"OneAgent not injected: {why} ({joined})")
        check = "connection info complete" if oa_view.reasons else "init secret present"
        trace.checks.append((check, False, not_injected[-1]))
    if md_secret_missing:
        marks += left_out(ENRICHMENT_ANNOTATIONS, REASON_MISSING_INIT_SECRET)
        reasons.append(REASON_MISSING_INIT_SECRET)
        not_injected.append(
            f"metadata enrichment not applied: secret {ps.ENRICHMENT_SECRET} is not in namespace "
            f"{ctx.namespace_name!r} yet ({REASON_MISSING_INIT_SECRET})"
        )
        trace.checks.append(("enrichment secret present", False, not_injected[-1]))
    return tuple(marks), tuple(dict.fromkeys(reasons)), not_injected


def _gate_reinvocation(ctx: PodContext, oa_view: oa.View, md_view: md.View, trace: Trace) -> Result | GoAhead:
    """Section 1.5: only containers added since the first pass; pod annotations and volumes stay as they are."""
    plan = None
    with_oa = with_md = False
    if ctx.init_index >= 0:
        annotations, labels = ctx.annotations, ctx.namespace_labels
        with_oa = ps.parse_bool(annotations.get(ps.ANNOTATION_INJECTED), False)
        with_oa = with_oa and not oa.disabled_reason(oa_view, annotations, labels)[1]
        with_md = ps.parse_bool(annotations.get(ps.ANNOTATION_METADATA_INJECTED), False)
        with_md = with_md and not md.disabled_reason(md_view, annotations, labels)
        plan = cs.plan(ctx, oa_view if with_oa else None, with_md)
    if plan is None or not (plan.oneagent or plan.enrichment):
        trace.checks.append(("already injected", True, "no container added since"))
        return Result(
            REINVOKED, (SKIP_NOTHING_NEW,), "pod is already injected", trace.dynakube, checks=trace.checks
        )
    trace.checks.append(("already injected", True, f"{len(plan.info)} container(s) added since"))
    return GoAhead(
        ctx,
        trace.dynakube,
        oa_view,
        md_view,
        plan,
        trace.checks,
        reinvoke=True,
        with_oa=with_oa,
        with_md=with_md,
    )


def _marked(pod: Mapping[str, Any], marks: Sequence[tuple[str, str]]) -> Patch:
    patch = Patch(pod)
    for key, value in marks:
        patch.set_in_map(_ANNOTATIONS, key, value)
    return patch


def build(go: GoAhead, settings: Settings, *, cluster_id: str = "", lookup: Lookup | None = None) -> Result:
    """What the mutators add to a pod the gate let through (sections 1.5, 1.6, 2 to 4, 7)."""
    if go.reinvoke:
        return _build_reinvocation(go, settings, cluster_id)
    ctx, oa_view, plan = go.ctx, go.oa_view, go.plan
    patch = _marked(ctx.pod, go.marks)
    uid = cluster_id or oa_view.kube_system_uuid
    container = init.base(
        ctx,
        image=settings.image,
        policy=init.failure_policy(ctx.annotations, oa_view.failure_policy),
        cluster_id=uid,
        new_containers=[ctx.containers[i] for i in plan.info],
        resources=init.resources(oa_view.init_resources, settings.csi),
        security_context=init.security_context(ctx, seccomp=oa_view.seccomp),
    )
    existing = set(ctx.volume_names)
    done = []
    if go.with_oa:
        oa.add_volumes(patch, existing, oa_view, settings.csi)
        container["env"] += oa.init_env(ctx.annotations, oa_view, plan.install_path)
        container["volumeMounts"] += oa.init_mounts(oa_view)
        patch.set_in_map(_ANNOTATIONS, ps.ANNOTATION_INJECTED, "true")
        patch.remove_from_map(_ANNOTATIONS, ps.ANNOTATION_REASON)
        done.append(f"OneAgent into {len(plan.oneagent)} container(s)")
    if go.with_md:
        done.append(_add_enrichment(patch, container, go, existing, lookup or md.no_lookup))
    cs.apply(patch, plan, oa_view, oa.deployment_metadata(oa_view, settings.version, uid), ctx)
    if (token := ps.token_mount(ctx.pod)) is not None:  # else the API server adds it and calls us again
        container["volumeMounts"].append(token)
    patch.append(("spec", "initContainers"), container)
    patch.set_in_map(_ANNOTATIONS, ps.ANNOTATION_DYNAKUBE_INJECTED, "true")
    go.checks.append(("injected", True, "; ".join(done)))
    return Result(
        INJECTED,
        go.reasons,
        "injected " + "; ".join(done),
        go.dynakube,
        patch.ops,
        go.checks,
        EVENT_INJECT,
    )


def _add_enrichment(
    patch: Patch, container: dict[str, Any], go: GoAhead, existing: set[str], lookup: Lookup
) -> str:
    """Metadata enrichment's volumes, init env and mounts, and pod annotations (section 7)."""
    ctx = go.ctx
    kind, name = md.workload_of(ctx, lookup)
    md.add_volumes(patch, existing)
    added = md.propagate(go.md_view, ctx)
    for key, value in added.items():
        patch.set_in_map(_ANNOTATIONS, key, value)
    container["env"] += md.init_env(go.md_view, kind, name, md.workload_annotations(ctx.annotations, added))
    container["volumeMounts"] += md.init_mounts()
    patch.set_in_map(_ANNOTATIONS, ps.ANNOTATION_METADATA_INJECTED, "true")
    patch.remove_from_map(_ANNOTATIONS, ps.ANNOTATION_METADATA_REASON)
    patch.set_in_map(_ANNOTATIONS, ps.ANNOTATION_WORKLOAD_KIND, kind.lower())
    patch.set_in_map(_ANNOTATIONS, ps.ANNOTATION_WORKLOAD_NAME, name)
    return f"metadata enrichment ({kind} {name})"


def _build_reinvocation(go: GoAhead, settings: Settings, cluster_id: str) -> Result:
    """Section 1.5: the new containers' env and mounts, and their entries in ``CONTAINER_INFO``."""
    ctx, plan, oa_view = go.ctx, go.plan, go.oa_view
    patch = Patch(ctx.pod)
    metadata = oa.deployment_metadata(oa_view, settings.version, cluster_id or oa_view.kube_system_uuid)
    cs.apply(patch, plan, oa_view, metadata, ctx)
    init.append_container_info(patch, ctx, [ctx.containers[i] for i in plan.info])
    touched = len(set(plan.oneagent) | set(plan.enrichment))
    return Result(
        REINVOKED,
        (),
        f"injected {touched} new container(s)",
        go.dynakube,
        patch.ops,
        go.checks,
        EVENT_UPDATE_POD,
    )
