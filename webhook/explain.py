"""Why was this pod (not) injected? The decision for one pod, check by check, with the patch it gets.

Used by ``dynatrace-webhook explain`` (state from a file or the cluster) and by ``POST /debug/decision``
on the health port of a running webhook (its live cache). Pure: a pod and a Store in, a report out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonpatch
import yaml

from webhook import dynakube as dk
from webhook.decision import Known, decide_from_store, namespace_of
from webhook.mutation import pod as pods
from webhook.mutation.missed import never_seen
from webhook.state.store import Store


def explain(
    pod: Mapping[str, Any],
    store: Store,
    settings: pods.Settings,
    namespace: str = "",
    known: Known | None = None,
) -> dict[str, Any]:
    """The decision ``/inject`` makes for ``pod`` (``decide_from_store``, with ``known`` as the webhook's own),
    check by check. ``namespace``: the pod's, when its manifest does not say."""
    ns_name = namespace or namespace_of(pod)
    result = decide_from_store(pod, store, settings, namespace=ns_name, known=known)
    ns, dynakube = store.pod_state(ns_name)
    report: dict[str, Any] = {
        "pod": pods.pod_name(pod) or "<unnamed>",
        "namespace": ns_name,
        "dynakube": result.dynakube or None,
        "outcome": result.outcome,
        "reasons": list(result.reasons),
        "message": result.message,
        "checks": [{"check": c, "passed": ok, "detail": d} for c, ok, d in result.checks],
        "patch": result.ops,
    }
    if dynakube is not None:
        report["connectionInfo"] = {
            "networkZone": dk.network_zone(dynakube) or None,
            "tenantUUID": dk.tenant_uuid(dynakube) or None,
            "communicationHosts": len(dk.communication_hosts(dynakube)),
            "endpoints": dk.oneagent_endpoints(dynakube) or None,
            "codeModulesVersion": dk.code_modules_version(dynakube)
            or dk.code_modules_image(dynakube)
            or None,
            "missing": pods.connection_info_reasons(dynakube),
        }
    missed = missed_note(pod, ns, dynakube)
    if missed:
        report["notSeenByWebhook"] = missed
    if result.ops:
        report["annotationsAfter"] = (jsonpatch.apply_patch(dict(pod), result.ops).get("metadata") or {}).get(
            "annotations"
        )
    return report


def missed_note(
    pod: Mapping[str, Any], namespace: Mapping[str, Any] | None, dynakube: Mapping[str, Any] | None
) -> str:
    """For a pod read from the cluster (it has a creationTimestamp): why it carries no injection annotation
    although the webhook would have changed it; "" when that is not the case."""
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), Mapping) else {}
    if namespace is None or dynakube is None or not (meta or {}).get("creationTimestamp"):
        return ""
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    if not never_seen(meta or {}, labels, dynakube):
        return ""
    return (
        "this pod carries no injection annotation although the webhook would have changed it: it never reached "
        "the webhook (down, unreachable or too slow when it was created, and failurePolicy Ignore admitted it "
        "unchanged), unless it was created before its namespace was mapped; restart its workload to inject "
        "OneAgent (--reinject does that for DynaKubes annotated feature.dynatrace.com/automatic-reinjection)"
    )


def render_text(report: Mapping[str, Any]) -> str:
    lines = [
        f"pod        {report['namespace']}/{report['pod']}",
        f"dynakube   {report['dynakube'] or '-'}",
    ]
    info = report.get("connectionInfo")
    if info:
        lines.append(
            f"zone       {info['networkZone'] or '(default)'}: tenant {info['tenantUUID'] or '-'}, "
            f"{info['communicationHosts']} communication host(s), endpoints {info['endpoints'] or '-'}, "
            f"code modules {info['codeModulesVersion'] or '-'}"
        )
    lines.append("")
    for check in report["checks"]:
        mark = "ok  " if check["passed"] else "FAIL"
        if check["check"] == "already injected":
            mark = "yes " if check["passed"] else "no  "
        lines.append(f"  [{mark}] {check['check']}" + (f": {check['detail']}" if check["detail"] else ""))
    lines += [
        "",
        f"outcome    {report['outcome']}"
        + (f" ({', '.join(report['reasons'])})" if report["reasons"] else ""),
    ]
    lines.append(f"message    {report['message']}")
    if report.get("notSeenByWebhook"):
        lines.append(f"missed     {report['notSeenByWebhook']}")
    lines.append(f"patch      {len(report['patch'])} operation(s)")
    for op in report["patch"]:
        lines.append(f"  {op['op']:<7} {op['path']}")
    return "\n".join(lines) + "\n"


def load_manifest(text: str) -> Any:
    """JSON or YAML; a List or an AdmissionReview yields the pod inside."""
    doc = yaml.safe_load(text)
    if isinstance(doc, dict) and doc.get("kind") == "AdmissionReview":
        doc = (doc.get("request") or {}).get("object")
    if isinstance(doc, dict) and doc.get("kind") == "List":
        doc = next(iter(doc.get("items") or []), None)
    if not isinstance(doc, dict):
        raise ValueError("the manifest is not a pod object")
    return doc
