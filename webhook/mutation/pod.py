"""The ``/inject`` decision for pods (pure, no I/O): the v1.4 webhook's flow (INJECTION-CONTRACT.md section 1).

``decide`` takes the pod, the cached namespace and DynaKube, and everything else it needs as plain values: the
cluster ID, the cached owner metadata (``lookup``) and the init secrets the cache holds in the namespace. It
returns the outcome, the reasons, the JSON Patch operations and the Event (if any) the answer calls for. What
each mutator adds lives in ``oneagent``, ``enrichment`` and ``initcontainer``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook import dynakube as dk
from webhook.mutation import containers as cs
from webhook.mutation import enrichment as md
from webhook.mutation import initcontainer as init
from webhook.mutation import oneagent as oa
from webhook.mutation import podspec as ps
from webhook.mutation.enrichment import Lookup
from webhook.mutation.patch import Op, Patch
from webhook.tolerant import as_list as _list
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
# written into oneagent.dynatrace.com/reason or metadata-enrichment.dynatrace.com/reason (besides the
# connection-info reasons of ``oneagent``): the cache does not hold the namespace's init secret yet, and a pod
# mounting it could not start
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

# Events (upstream reasons, section 8 of the contract)
EVENT_INJECT = "Inject"
EVENT_UPDATE_POD = "UpdatePod"
EVENT_MISSING_DYNAKUBE = "MissingDynakube"


@dataclass(frozen=True)
class Settings:
    """What the injection needs from the webhook's configuration."""

    image: str
    version: str
    csi: bool = True  # the Dynatrace CSI driver is installed (upstream: modules.json "csiDriver")


@dataclass
class Result:
    outcome: str
    reasons: tuple[str, ...] = ()
    message: str = ""
    dynakube: str = ""
    ops: list[Op] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    event: str = ""  # the upstream Event this admission calls for ("" = none)


Check = tuple[str, bool, str]  # (check, passed, detail): the trace ``explain`` prints


def left_out(patch: Patch, annotations: tuple[str, str], reason: str) -> None:
    """The one way a pod is told that a mutator was left out: ``<mutator>/injected: "false"`` and
    ``<mutator>/reason: <reason>`` (``ONEAGENT_ANNOTATIONS`` or ``ENRICHMENT_ANNOTATIONS``)."""
    injected, reason_key = annotations
    patch.set_in_map(("metadata", "annotations"), injected, "false")
    patch.set_in_map(("metadata", "annotations"), reason_key, reason)


def already_injected(pod: Mapping[str, Any]) -> bool:
    """v1.4's test, plus the init container name of v1.3 and earlier versions of this webhook."""
    annotations = ps.annotations_of(pod)
    return (
        ps.parse_bool(annotations.get(ps.ANNOTATION_INJECTED), False)
        or ps.parse_bool(annotations.get(ps.ANNOTATION_METADATA_INJECTED), False)
        or ps.init_container_index(pod) >= 0
    )


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
) -> Result:
    """Walk the decision flow for a pod CREATE and return the outcome with its patch operations.

    ``namespace`` and ``dynakube`` come from the cache (None when unknown); ``dynakube`` is the one the
    namespace's instance label names. ``cluster_id`` is the kube-system Namespace UID (the DynaKube's
    ``status.kubeSystemUUID`` when empty). ``lookup(kind, name)`` gives the cached metadata of an owner in the
    pod's namespace. ``secrets`` names the init secrets the cache holds in that namespace (None: take both as
    present). The pod is never modified. ``Result.checks`` lists every check made, in order.
    """
    checks: list[Check] = []
    dynakube_name = ""

    def skip(check: str, reason: str, message: str, event: str = "") -> Result:
        checks.append((check, False, message))
        return Result(SKIPPED, (reason,), message, dynakube_name, checks=checks, event=event)

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
            EVENT_MISSING_DYNAKUBE,
        )
    checks.append(("DynaKube exists", True, dynakube_name))

    annotations = ps.annotations_of(pod)
    if not ps.parse_bool(annotations.get(ps.ANNOTATION_DYNATRACE_INJECT), True):
        return skip(
            "pod not opted out", SKIP_POD_OPT_OUT, f"pod is annotated {ps.ANNOTATION_DYNATRACE_INJECT}=false"
        )
    checks.append(("pod not opted out", True, f"no {ps.ANNOTATION_DYNATRACE_INJECT}=false"))
    if all(key in annotations for key in ps.OPENSHIFT_DEBUG_ANNOTATIONS):
        return skip("not an OpenShift debug pod", SKIP_OPENSHIFT_DEBUG, "OpenShift debug pod")
    checks.append(("not an OpenShift debug pod", True, ""))

    oa_view = oa.view(dynakube)
    md_view = md.view(dynakube)
    raw_containers = _list(_map(pod.get("spec")).get("containers"))
    containers = [_map(c) for c in raw_containers]
    excluded = oa_view.excluded | ps.excluded_by(annotations)
    eligible = [
        i
        for i, c in enumerate(containers)
        if (type(raw_containers[i]) is dict or isinstance(raw_containers[i], Mapping))
        and type(c.get("name")) is str
        and c["name"] not in excluded
    ]
    if already_injected(pod):
        return _reinvoke(
            pod,
            eligible,
            containers,
            oa_view,
            md_view,
            ns_labels,
            settings,
            cluster_id,
            namespace,
            dynakube_name,
            checks,
        )
    checks.append(("already injected", False, "first injection"))
    oa_check, oa_off = oa.disabled_reason(oa_view, annotations, ns_labels)
    md_off = md.disabled_reason(md_view, annotations, ns_labels)

    if not eligible:
        return skip(
            "containers to inject", SKIP_ALL_CONTAINERS_EXCLUDED, "every container is excluded from injection"
        )
    checks.append(("containers to inject", True, ", ".join(str(containers[i]["name"]) for i in eligible)))
    if oa_off and md_off:
        details = {
            SKIP_MODE: f"DynaKube {dynakube_name!r} mode {oa_view.mode or 'none'!r} does not inject",
            SKIP_INVALID_SELECTOR: f"DynaKube {dynakube_name!r} has an invalid namespaceSelector: "
            f"{oa_view.selector_error}",
            SKIP_NAMESPACE_SELECTOR: f"namespace {namespace_name!r} is not selected by DynaKube {dynakube_name!r}",
            SKIP_ONEAGENT_OPT_OUT: "OneAgent injection is disabled for this pod "
            f"({ps.ANNOTATION_ONEAGENT_INJECT}, default {str(oa_view.automatic_injection).lower()})",
        }
        return skip(oa_check, oa_off, f"{details[oa_off]}; metadata enrichment: {md_off}")
    checks.append(
        ("injection enabled", True, f"OneAgent: {oa_off or 'on'}, metadata enrichment: {md_off or 'on'}")
    )

    present = ps.INIT_SECRETS if secrets is None else secrets
    patch = Patch(pod)
    reasons: list[str] = []
    oa_reasons: list[str] = []
    if not oa_off:
        oa_reasons = list(oa_view.reasons) or (
            [] if ps.CONFIG_SECRET in present else [REASON_MISSING_INIT_SECRET]
        )
    with_oa = not oa_off and not oa_reasons
    with_md = not md_off and ps.ENRICHMENT_SECRET in present
    not_injected = []
    if oa_reasons:
        joined = ", ".join(oa_reasons)
        left_out(patch, ONEAGENT_ANNOTATIONS, joined)
        reasons += oa_reasons
        why = (
            f"DynaKube {dynakube_name!r} connection info incomplete"
            if oa_view.reasons
            else f"secret {ps.CONFIG_SECRET} is not in namespace {namespace_name!r} yet"
        )
        not_injected.append(f"OneAgent not injected: {why} ({joined})")
        check = "connection info complete" if oa_view.reasons else "init secret present"
        checks.append((check, False, not_injected[-1]))
    if not md_off and not with_md:
        left_out(patch, ENRICHMENT_ANNOTATIONS, REASON_MISSING_INIT_SECRET)
        reasons.append(REASON_MISSING_INIT_SECRET)
        not_injected.append(
            f"metadata enrichment not applied: secret {ps.ENRICHMENT_SECRET} is not in namespace "
            f"{namespace_name!r} yet ({REASON_MISSING_INIT_SECRET})"
        )
        checks.append(("enrichment secret present", False, not_injected[-1]))
    if not (with_oa or with_md):
        message = "; ".join(not_injected)
        if len(not_injected) > 1:
            checks.append(("something to inject", False, message))
        return Result(SKIPPED, tuple(dict.fromkeys(reasons)), message, dynakube_name, patch.ops, checks)

    plan = cs.plan(pod, eligible, containers, oa_view if with_oa else None, with_md)
    if not (plan.oneagent or plan.enrichment):
        # nothing to add to any container: the mutators that could have run are left out, and the pod says so
        # (beside what it already says of the others); never a silent skip
        if plan.taken:
            reason = REASON_MOUNT_PATH_TAKEN
            why = "every container already mounts something else at a path the injection needs"
        else:
            reason = REASON_CONTAINERS_ALREADY_INJECTED
            why = (
                "every container already has what the injection adds, but the pod has no injection annotation"
            )
        for wanted, keys, what in (
            (with_oa, ONEAGENT_ANNOTATIONS, "OneAgent not injected"),
            (with_md, ENRICHMENT_ANNOTATIONS, "metadata enrichment not applied"),
        ):
            if wanted:
                left_out(patch, keys, reason)
                not_injected.append(f"{what}: {why} ({reason})")
        reasons.append(reason)
        message = "; ".join(not_injected)
        checks.append(("mount paths free" if plan.taken else "containers to set up", False, message))
        return Result(SKIPPED, tuple(dict.fromkeys(reasons)), message, dynakube_name, patch.ops, checks)
    uid = cluster_id or oa_view.kube_system_uuid
    container = init.base(
        pod,
        image=settings.image,
        policy=init.failure_policy(annotations, oa_view.failure_policy),
        cluster_id=uid,
        new_containers=[containers[i] for i in plan.info],
        resources=init.resources(oa_view.init_resources, settings.csi),
        security_context=init.security_context(pod, seccomp=oa_view.seccomp),
    )
    existing = ps.volume_names(pod)
    done = []
    if with_oa:
        oa.add_volumes(patch, existing, oa_view, settings.csi)
        container["env"] += oa.init_env(annotations, oa_view, plan.install_path)
        container["volumeMounts"] += oa.init_mounts(oa_view)
        patch.set_in_map(("metadata", "annotations"), ps.ANNOTATION_INJECTED, "true")
        patch.remove_from_map(("metadata", "annotations"), ps.ANNOTATION_REASON)
        done.append(f"OneAgent into {len(plan.oneagent)} container(s)")
    for i in plan.taken:
        checks.append(("mount paths free", False, f"container {containers[i]['name']!r} left alone"))
    if with_md:
        kind, name = md.workload(pod, lookup or md.no_lookup)
        md.add_volumes(patch, existing)
        added = md.propagate(md_view, annotations, namespace)
        for key, value in added.items():
            patch.set_in_map(("metadata", "annotations"), key, value)
        container["env"] += md.init_env(md_view, kind, name, md.workload_annotations(annotations, added))
        container["volumeMounts"] += md.init_mounts()
        patch.set_in_map(("metadata", "annotations"), ps.ANNOTATION_METADATA_INJECTED, "true")
        patch.remove_from_map(("metadata", "annotations"), ps.ANNOTATION_METADATA_REASON)
        patch.set_in_map(("metadata", "annotations"), ps.ANNOTATION_WORKLOAD_KIND, kind.lower())
        patch.set_in_map(("metadata", "annotations"), ps.ANNOTATION_WORKLOAD_NAME, name)
        done.append(f"metadata enrichment ({kind} {name})")
    cs.apply(patch, plan, oa_view, oa.deployment_metadata(oa_view, settings.version, uid), namespace)
    patch.append(("spec", "initContainers"), container)
    patch.set_in_map(("metadata", "annotations"), ps.ANNOTATION_DYNAKUBE_INJECTED, "true")
    checks.append(("injected", True, "; ".join(done)))
    return Result(
        INJECTED,
        tuple(dict.fromkeys(reasons)),
        "injected " + "; ".join(done),
        dynakube_name,
        patch.ops,
        checks,
        EVENT_INJECT,
    )


def _reinvoke(
    pod: Mapping[str, Any],
    eligible: list[int],
    containers: list[Mapping[str, Any]],
    oa_view: oa.View,
    md_view: md.View,
    ns_labels: Mapping[str, Any],
    settings: Settings,
    cluster_id: str,
    namespace: Mapping[str, Any],
    dynakube_name: str,
    checks: list[Check],
) -> Result:
    """Section 1.5: only containers added since the first pass; pod annotations and volumes stay as they are."""
    annotations = ps.annotations_of(pod)
    plan = None
    if ps.init_container_index(pod) >= 0:
        with_oa = ps.parse_bool(annotations.get(ps.ANNOTATION_INJECTED), False)
        with_oa = with_oa and not oa.disabled_reason(oa_view, annotations, ns_labels)[1]
        with_md = ps.parse_bool(annotations.get(ps.ANNOTATION_METADATA_INJECTED), False)
        with_md = with_md and not md.disabled_reason(md_view, annotations, ns_labels)
        plan = cs.plan(pod, eligible, containers, oa_view if with_oa else None, with_md)
    if plan is None or not (plan.oneagent or plan.enrichment):
        checks.append(("already injected", True, "no container added since"))
        return Result(REINVOKED, (SKIP_NOTHING_NEW,), "pod is already injected", dynakube_name, checks=checks)
    checks.append(("already injected", True, f"{len(plan.info)} container(s) added since"))
    patch = Patch(pod)
    metadata = oa.deployment_metadata(oa_view, settings.version, cluster_id or oa_view.kube_system_uuid)
    cs.apply(patch, plan, oa_view, metadata, namespace)
    init.append_container_info(patch, pod, [containers[i] for i in plan.info])
    touched = len(set(plan.oneagent) | set(plan.enrichment))
    return Result(
        REINVOKED,
        (),
        f"injected {touched} new container(s)",
        dynakube_name,
        patch.ops,
        checks,
        EVENT_UPDATE_POD,
    )
