"""The ``dynatrace-operator`` init container of the v1.4 webhook (INJECTION-CONTRACT.md section 2), pure.

The Dynatrace Operator image runs it with ``args: ["init"]``; the mutators add their env and mounts to the
base built here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from webhook.mutation import podspec as ps
from webhook.mutation.context import PodContext
from webhook.mutation.patch import Patch
from webhook.tolerant import as_list as _list
from webhook.tolerant import as_map as _map

DEFAULT_USER = 1001
# shared by every init container: patches only serialise them
_PODNAME = ps.field_env("K8S_PODNAME", "metadata.name")
_PODUID = ps.field_env("K8S_PODUID", "metadata.uid")
_NAMESPACE = ps.field_env("K8S_NAMESPACE", "metadata.namespace")
_NODE_NAME = ps.field_env("K8S_NODE_NAME", "spec.nodeName")
CSI_RESOURCES = {"requests": {"cpu": "30m", "memory": "30Mi"}, "limits": {"cpu": "100m", "memory": "60Mi"}}


def failure_policy(annotations: Mapping[str, Any], dynakube_default: str) -> str:
    """The pod annotation as written when set (``init`` reads anything but ``fail`` as silent), else the
    DynaKube's feature flag."""
    return ps.annotation(annotations, ps.ANNOTATION_FAILURE_POLICY, dynakube_default)


def _run_as(pod_sc: Mapping[str, Any], container_sc: Mapping[str, Any], key: str) -> int:
    value = DEFAULT_USER
    for source in (pod_sc, container_sc):  # the first container wins over the pod
        found = source.get(key)
        if isinstance(found, int) and not isinstance(found, bool) and found >= 0:
            value = found
    return value


def security_context(ctx: PodContext, *, seccomp: bool) -> dict[str, Any]:
    containers = ctx.containers
    first = _map(containers[0].get("securityContext")) if containers else {}
    pod_sc = _map(ctx.spec.get("securityContext"))
    user = _run_as(pod_sc, first, "runAsUser")
    group = _run_as(pod_sc, first, "runAsGroup")
    out: dict[str, Any] = {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsUser": user,
        "runAsGroup": group,
        "runAsNonRoot": user != 0 and group != 0,
    }
    if seccomp:
        out["seccompProfile"] = {"type": "RuntimeDefault"}
    return out


def resources(init_resources: Mapping[str, Any] | None, csi: bool) -> Mapping[str, Any]:
    if init_resources is not None:
        return init_resources
    return CSI_RESOURCES if csi else {}


def container_info(containers: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [
        {"name": str(c.get("name", "")), "image": c["image"] if isinstance(c.get("image"), str) else ""}
        for c in containers
    ]


def base(
    ctx: PodContext,
    *,
    image: str,
    policy: str,
    cluster_id: str,
    new_containers: list[Mapping[str, Any]],
    resources: Mapping[str, Any],
    security_context: dict[str, Any],
) -> dict[str, Any]:
    env = [
        ps.value_env("FAILURE_POLICY", policy),
        _PODNAME,
        _PODUID,
        ps.value_env("K8S_BASEPODNAME", ps.base_name(ctx.name)),
        ps.value_env("K8S_CLUSTER_ID", cluster_id),
        _NAMESPACE,
        _NODE_NAME,
    ]
    if new_containers:
        env.append(
            ps.value_env("CONTAINER_INFO", ps.go_json(container_info(new_containers), sort_keys=False))
        )
    return {
        "name": ps.INIT_CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["init"],
        "env": env,
        "resources": resources,
        "securityContext": security_context,
        "volumeMounts": [],
    }


def append_container_info(patch: Patch, ctx: PodContext, added: list[Mapping[str, Any]]) -> None:
    """Reinvocation: append the new containers to the injected init container's ``CONTAINER_INFO``."""
    index = ctx.init_index
    if index < 0 or not added:
        return
    init = _map(ctx.init_containers[index])
    entries = container_info(added)
    for j, e in enumerate(_list(init.get("env"))):
        if _map(e).get("name") == "CONTAINER_INFO":
            try:
                current = orjson.loads(_map(e).get("value") or "[]")
            except orjson.JSONDecodeError:
                current = []
            current = current if isinstance(current, list) else []
            patch.set_in_map(
                ("spec", "initContainers", index, "env", j),
                "value",
                ps.go_json(current + entries, sort_keys=False),
            )
            return
    patch.append(
        ("spec", "initContainers", index, "env"),
        ps.value_env("CONTAINER_INFO", ps.go_json(entries, sort_keys=False)),
    )
