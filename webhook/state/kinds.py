"""What the cache holds of each kind: a small ``Kind`` spec per resource, with its transform.

Every object is transformed the moment it arrives (list page, watch event, state file, a write's answer), as
client-go's informer transform does: the cache keeps only what the decisions read, never the whole object.
Adding a kind is adding a ``Kind``: a Store key, the collection path, the transform, and optionally
metadata-only lists/watches (PartialObjectMetadata) and label/field selectors. ``Store(..., kinds=...)`` or
``Store.add_kind`` registers it; ``KubeState`` runs one list+watch per registered kind.

The transform rule: keep the fields some decision, view, ``explain`` or controller reads; drop everything
else (``managedFields``, ``kubectl.kubernetes.io/last-applied-configuration``, status the webhook does not
read such as what ``status.oneAgent.instances`` says of each node (only the node names are kept), Secret values
other than the proxy: of the others only the key names, and whether ``apiToken`` is a platform token). Label and
annotation keys and short values are interned, so 50 000 namespaces carrying the same few labels share one
copy of each string.
"""

from __future__ import annotations

import base64
import binascii
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from webhook import dynakube as dk

Obj = dict[str, Any]
Transform = Callable[[Mapping[str, Any]], Obj]

DYNAKUBES = "dynakubes"
NAMESPACES = "namespaces"
# of the webhook's namespace: their `proxy` key (what a DynaKube's spec.proxy names); of the operator's
# `<dynakube>-bootstrapper-config` / `-certs` (the v1.10 contract's sources) their labels and whole data, to
# replicate them into a pod's namespace on first need
SECRETS = "secrets"
SECRET_KEYS = ("proxy",)
TOKEN_KEYS = "keys"  # a cached Secret's field: the names of its non-empty data keys
PLATFORM_TOKEN = "platformToken"  # a cached Secret's field: its apiToken is a platform token
API_TOKEN_KEY = "apiToken"
PLATFORM_PREFIX = b"dt0s16"
BOOTSTRAPPER_SOURCE_SUFFIXES = ("-bootstrapper-config", "-bootstrapper-certs")
# of the operator's `<dynakube>-otlp-exporter-config` / `-certs` (the OTLP exporter's sources) their labels and
# the one key the exporter's copy needs
OTLP_SOURCE_KEYS = {
    "-otlp-exporter-config": ("dataIngestToken",),
    "-otlp-exporter-certs": ("activegate-tls.crt",),
}

# namespace annotations the injection reads (INJECTION-CONTRACT §4.2 release mapping, §7 metadata enrichment)
NAMESPACE_ANNOTATION_PREFIXES = ("mapping.release.dynatrace.com/", "metadata.dynatrace.com/")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CLUSTER_ID_NAMESPACE = "kube-system"  # its UID identifies the cluster (K8S_CLUSTER_ID, orchestrator_id)
RULE_ANNOTATION_TYPES = ("ANNOTATION", "K8S_NAMESPACE_ANNOTATION")  # rules reading a namespace annotation


@dataclass(frozen=True)
class Kind:
    """One cached resource.

    ``path`` is the collection path; ``{namespace}`` (the webhook's namespace) and ``{dynakube_version}``
    (discovered at start) are filled in by ``KubeState``. ``metadata_only`` asks the API server for
    PartialObjectMetadata (for kinds whose spec and status are never read). ``by_namespace`` keys objects by
    ``namespace/name`` (kinds listed across namespaces); otherwise by name. ``sync_required``: readiness
    waits for the kind's first list.
    """

    resource: str
    path: str
    transform: Transform
    metadata_only: bool = False
    label_selector: str = ""
    field_selector: str = ""
    by_namespace: bool = False
    sync_required: bool = True

    def key(self, obj: Mapping[str, Any]) -> str:
        """The Store key of an object, "" when it has no usable name."""
        meta = obj.get("metadata")
        if type(meta) is not dict and not isinstance(meta, Mapping):
            return ""
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            return ""
        if not self.by_namespace:
            return name
        namespace = meta.get("namespace")
        return f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name

    def concrete(self, **values: str) -> Kind:
        """This kind with the placeholders of its path filled in."""
        return replace(self, path=self.path.format(**values))


def _intern(value: Any) -> Any:
    # label values repeat across objects (team, environment, the DynaKube name); interning a string that
    # turns out to be unique costs an entry in the interpreter's table, so long values are left alone
    return sys.intern(value) if type(value) is str and len(value) <= 63 else value


def _string_map(value: Any, keep: Callable[[str], bool] | None = None, reuse: str = "") -> dict[str, Any]:
    """A copy of a label or annotation map: string keys interned; values interned when short, or replaced by
    ``reuse`` when equal to it (``kubernetes.io/metadata.name`` repeats the namespace's name)."""
    if type(value) is not dict and not isinstance(value, Mapping):
        return {}
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or (keep is not None and not keep(k)):
            continue
        out[sys.intern(k)] = reuse if reuse and v == reuse else _intern(v)
    return out


def _kept_annotation(key: str) -> bool:
    return key.startswith(NAMESPACE_ANNOTATION_PREFIXES)


def namespace_transform(obj: Mapping[str, Any]) -> Obj:
    """A Namespace (full or PartialObjectMetadata): name, resourceVersion, labels, injection annotations,
    deletionTimestamp when set; the UID of ``kube-system`` only. The Store adds the annotations the DynaKubes' rules name (``add_annotations``)."""
    meta = obj.get("metadata")
    if type(meta) is not dict and not isinstance(meta, Mapping):
        meta = {}
    name = meta.get("name")
    name = name if isinstance(name, str) else ""  # unique: not interned
    kept: Obj = {"name": name}
    rv = meta.get("resourceVersion")
    if isinstance(rv, str):
        kept["resourceVersion"] = rv
    uid = meta.get("uid")
    if name == CLUSTER_ID_NAMESPACE and isinstance(uid, str):
        kept["uid"] = uid  # the cluster's ID; other namespaces' UIDs are never read
    deleting = meta.get("deletionTimestamp")
    if isinstance(deleting, str) and deleting:
        kept["deletionTimestamp"] = deleting  # terminating: the init Secrets controller leaves it alone
    labels = _string_map(meta.get("labels"), reuse=name)
    if labels:
        kept["labels"] = labels
    annotations = _string_map(meta.get("annotations"), _kept_annotation)
    if annotations:
        kept["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": kept}


def rule_annotation_keys(dynakubes: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Namespace annotations the DynaKubes' metadata-enrichment rules name (``status.metadataEnrichment.rules``
    of type ANNOTATION, and from v1.10 K8S_NAMESPACE_ANNOTATION; INJECTION-CONTRACT §7): the namespace transform keeps them besides the prefixed ones."""
    keys = set()
    for dynakube in dynakubes:
        for rule in dk.metadata_enrichment_rules(dynakube):
            source = rule.get("source")
            if rule.get("type") in RULE_ANNOTATION_TYPES and isinstance(source, str) and source:
                keys.add(source)
    return frozenset(keys)


def add_annotations(kept: Obj, obj: Mapping[str, Any], keys: frozenset[str]) -> Obj:
    """``kept`` (a transformed namespace) with the annotations of ``obj`` named in ``keys``."""
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if not keys or not isinstance(annotations, Mapping):
        return kept
    extra = _string_map(annotations, keys.__contains__)
    if extra:
        kept["metadata"]["annotations"] = {**kept["metadata"].get("annotations", {}), **extra}
    return kept


# A shape keeps the listed keys of a mapping: True keeps the value whole, a shape recurses into a mapping,
# a function maps the value. Values of an unexpected type are kept as they are, so that the views see
# exactly what the API server sent and skip it with the same reason they would give for the whole object.
Shape = Mapping[str, Any]

_CONNECTION_INFO = {"connectionInfoStatus": {"tenantUUID": True}}
# OneAgent's: communicationHosts (operators v1.4 to v1.8) and endpoints (what v1.9 on still has), which decide
# whether the connection info is complete (dynakube.has_communication_endpoints)
_ONEAGENT_CONNECTION_INFO = {
    "connectionInfoStatus": {"tenantUUID": True, "communicationHosts": True, "endpoints": True}
}


def _node_names(value: Any) -> Any:
    """``status.oneAgent.instances`` by node name only: the init Secret's ``monitoringNodes`` reads the keys."""
    if type(value) is not dict and not isinstance(value, Mapping):
        return value
    return {_intern(node): {} for node in value if isinstance(node, str)}


DYNAKUBE_SHAPE: Shape = {
    "apiVersion": True,
    "kind": True,
    "metadata": {
        "name": True,
        "namespace": True,
        "uid": True,
        "resourceVersion": True,
        "generation": True,
        "annotations": lambda value: _string_map(value, lambda key: key != LAST_APPLIED),
    },
    # the whole spec: /validate compares the new DynaKube with the cached ones on many of its fields
    # (selectors, node selectors, modules, API URLs), and a DynaKube's spec is the user's small configuration
    "spec": True,
    "status": {
        "kubeSystemUUID": True,
        "kubernetesClusterName": True,
        "kubernetesClusterMEID": True,
        "apiToken": {"platform": True},  # v1.10: the default of --enable-attributes-dt-kubernetes
        "codeModules": {"version": True, "imageID": True},
        "oneAgent": {**_ONEAGENT_CONNECTION_INFO, "instances": _node_names},
        "activeGate": _CONNECTION_INFO,
        "metadataEnrichment": True,
    },
}


def pick(value: Any, shape: Shape) -> Any:
    """The parts of ``value`` that ``shape`` lists (see ``Shape``)."""
    if type(value) is not dict and not isinstance(value, Mapping):
        return value
    out = {}
    for key, rule in shape.items():
        if key not in value:
            continue
        item = value[key]
        if rule is True:
            out[key] = item
        elif callable(rule):
            out[key] = rule(item)
        else:
            out[key] = pick(item, rule)
    return out


def dynakube_transform(obj: Mapping[str, Any]) -> Obj:
    """What the DynaKube views (``webhook.dynakube``), the injection, ``/label-ns``, ``/validate``'s checks
    against the other DynaKubes, events and reinjection read."""
    return dict(pick(obj, DYNAKUBE_SHAPE))


def secret_transform(obj: Mapping[str, Any]) -> Obj:
    """A Secret of the webhook's namespace: its name, the ``SECRET_KEYS`` of ``data``, the names of its other keys
    and whether its ``apiToken`` is a platform token (a tokens Secret, for ``/validate``); an operator's
    bootstrapper source (``<dynakube>-bootstrapper-config`` / ``-certs``) with its labels and all its data; an
    OTLP exporter source (``<dynakube>-otlp-exporter-config`` / ``-certs``) with its labels and its one key."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    keep = {k: meta[k] for k in ("name", "namespace", "resourceVersion", "uid") if k in meta}
    data = obj.get("data")
    data = data if isinstance(data, Mapping) else {}
    name = keep.get("name")
    if isinstance(name, str) and name.endswith(BOOTSTRAPPER_SOURCE_SUFFIXES):
        return _source(meta, keep, {k: v for k, v in data.items() if isinstance(v, str)})
    for suffix, keys in OTLP_SOURCE_KEYS.items():
        if isinstance(name, str) and name.endswith(suffix):
            return _source(meta, keep, {k: data[k] for k in keys if isinstance(data.get(k), str)})
    out: Obj = {"kind": "Secret", "metadata": keep, "data": {k: data[k] for k in SECRET_KEYS if k in data}}
    # what /validate reads of a DynaKube's tokens Secret: the names of its non-empty keys, and whether the API
    # token is a platform token (its prefix) -- never a value
    out[TOKEN_KEYS] = sorted(k for k, v in data.items() if isinstance(k, str) and v)
    out[PLATFORM_TOKEN] = _is_platform(data.get(API_TOKEN_KEY))
    return out


def _is_platform(value: Any) -> bool:
    """An ``apiToken`` value (base64) that starts with a platform token's prefix (upstream ``dttoken``)."""
    try:
        return isinstance(value, str) and base64.b64decode(value, validate=True).startswith(PLATFORM_PREFIX)
    except (binascii.Error, ValueError):
        return False


def _source(meta: Mapping[str, Any], keep: Obj, data: Obj) -> Obj:
    """An operator's Secret replicated into pods' namespaces on first need: its labels and ``data``."""
    labels = _string_map(meta.get("labels"))
    if labels:
        keep["labels"] = labels
    return {"kind": "Secret", "metadata": keep, "data": data}


NAMESPACE_KIND = Kind(NAMESPACES, "/api/v1/namespaces", namespace_transform, metadata_only=True)
DYNAKUBE_KIND = Kind(
    DYNAKUBES, "/apis/dynatrace.com/{dynakube_version}/namespaces/{namespace}/dynakubes", dynakube_transform
)
# spec.proxy.valueFrom of /validate; readiness does not wait for it (the proxy check says so until it is loaded)
SECRET_KIND = Kind(SECRETS, "/api/v1/namespaces/{namespace}/secrets", secret_transform, sync_required=False)
DEFAULT_KINDS = (DYNAKUBE_KIND, NAMESPACE_KIND, SECRET_KIND)
