"""Secrets and ConfigMaps the webhook needs to know about, transformed at arrival (no full objects kept).

- ``InitSecretCache``: the two init Secrets of the v1.4 contract (``dynatrace-dynakube-config``,
  ``dynatrace-metadata-enrichment-endpoint``) and the two of the v1.10 contract (``dynatrace-bootstrapper-config``,
  ``dynatrace-bootstrapper-certs``, and the OTLP exporter's ``dynatrace-otlp-exporter-config`` / ``-certs``) in
  every namespace, fed by one cluster-wide watch per name
  (``fieldSelector=metadata.name=<name>``). Kept per copy: resourceVersion, labels, the template-hash
  annotation and a digest of the data, never the data. The admission path asks ``names(namespace)``.
- ``InputCache``: what the init Secrets are generated from, in the DynaKubes' namespace: of every Secret only
  the keys the generation reads (tokens, proxy, ActiveGate ``server.crt``), of every ConfigMap only ``certs``
  (trustedCAs), decoded.

Until a source is attached (``track()``: the cluster watches, or a state file that lists init Secrets),
``InitSecretCache`` does not know which copies exist and reports every name present everywhere: without a
cluster, no kubelet mounts anything.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from webhook.mutation import initsecrets as gen
from webhook.tolerant import as_map, as_str

INIT_CONFIG = "init-config-secrets"
INIT_ENDPOINT = "init-endpoint-secrets"
BOOTSTRAPPER_CONFIG = "bootstrapper-config-secrets"
BOOTSTRAPPER_CERTS = "bootstrapper-certs-secrets"
OTLP_CONFIG = "otlp-exporter-config-secrets"
OTLP_CERTS = "otlp-exporter-certs-secrets"
# the v1.10 contract's Secrets in the pods' namespaces (replicated from the operator's per-DynaKube sources)
BOOTSTRAPPER_RESOURCES = {
    BOOTSTRAPPER_CONFIG: "dynatrace-bootstrapper-config",
    BOOTSTRAPPER_CERTS: "dynatrace-bootstrapper-certs",
    # the OTLP exporter's (replicated the same way)
    OTLP_CONFIG: "dynatrace-otlp-exporter-config",
    OTLP_CERTS: "dynatrace-otlp-exporter-certs",
}
INIT_RESOURCES = {
    INIT_CONFIG: gen.CONFIG_SECRET,
    INIT_ENDPOINT: gen.ENDPOINT_SECRET,
    **BOOTSTRAPPER_RESOURCES,
}
INPUT_SECRETS = "dynakube-secrets"
INPUT_CONFIGMAPS = "dynakube-configmaps"
INPUT_RESOURCES = (INPUT_SECRETS, INPUT_CONFIGMAPS)
ALL_NAMES = frozenset(INIT_RESOURCES.values())


class InitSecret(NamedTuple):
    """What the cache keeps of one init Secret copy."""

    resource_version: str
    labels: tuple[tuple[str, str], ...]
    template_hash: str
    digest: str
    installation: str = ""  # the namespace of the webhook installation that wrote it ("" : not said)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def ours(self) -> bool:
        return self.label_map.get(gen.LABEL_MANAGED_BY) == gen.MANAGED_BY

    def ours_in(self, installation: str) -> bool:
        """Written by a webhook, and by the installation in namespace ``installation`` (or not saying which)."""
        return self.ours and self.installation in ("", installation)


_shared: dict[Any, Any] = {}  # equal label tuples are stored once


def _share(value: Any) -> Any:
    return _shared.setdefault(value, value)


def _string_items(labels: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if isinstance(v, str)))


def summarize(obj: Mapping[str, Any]) -> tuple[str, str, InitSecret]:
    """(namespace, name, summary) of a Secret."""
    meta = as_map(obj.get("metadata"))
    raw = as_map(meta.get("labels"))
    labels = tuple(sorted(raw.items())) if all(type(v) is str for v in raw.values()) else _string_items(raw)
    annotations = as_map(meta.get("annotations"))
    summary = InitSecret(
        as_str(meta.get("resourceVersion")),
        _share(labels),
        as_str(annotations.get(gen.ANNOTATION_TEMPLATE_HASH)),
        gen.data_digest(as_map(obj.get("data"))),
        sys.intern(as_str(annotations.get(gen.ANNOTATION_INSTALLATION))),
    )
    return as_str(meta.get("namespace")), as_str(meta.get("name")), summary


class InitSecretCache:
    def __init__(self) -> None:
        # secret name -> namespace -> summary
        self._by_name: dict[str, dict[str, InitSecret]] = {name: {} for name in ALL_NAMES}
        self.tracked = False
        self._listed: dict[str, bool] = dict.fromkeys(INIT_RESOURCES, False)
        # readiness waits for the v1.4 init Secrets' lists only: a bootstrapper Secret not listed yet is created
        # on first need, which a copy already there answers 409 (counted present)
        self._required = (INIT_CONFIG, INIT_ENDPOINT)

    def track(self) -> None:
        """A source is attached: from now on only copies seen count (none until listed)."""
        self.tracked = True

    @property
    def synced(self) -> bool:
        return not self.tracked or all(self._listed[r] for r in self._required)

    def listed(self, resource: str) -> bool:
        return self._listed.get(resource, False)

    # --- readers ---
    def names(self, namespace: str) -> frozenset[str]:
        if not self.tracked:
            return ALL_NAMES
        return frozenset(name for name, copies in self._by_name.items() if namespace in copies)

    def get(self, namespace: str, name: str) -> InitSecret | None:
        return self._by_name.get(name, {}).get(namespace)

    def namespaces(self, name: str) -> list[str]:
        return list(self._by_name.get(name, {}))

    def count(self) -> int:
        return sum(len(copies) for copies in self._by_name.values())

    # --- writers ---
    def replace(self, resource: str, objects: Iterable[Mapping[str, Any]]) -> None:
        wanted = INIT_RESOURCES[resource]
        fresh = {}
        for obj in objects:
            namespace, name, summary = summarize(obj)
            if name == wanted and namespace:
                fresh[sys.intern(namespace)] = summary
        self._by_name[wanted] = fresh
        self._listed[resource] = True

    def upsert(self, resource: str, obj: Mapping[str, Any]) -> None:
        namespace, name, summary = summarize(obj)
        if name == INIT_RESOURCES[resource] and namespace:
            self._by_name[name][sys.intern(namespace)] = summary

    def delete(self, resource: str, obj: Mapping[str, Any]) -> None:
        namespace, name, _ = summarize(obj)
        if name in self._by_name:
            self._by_name[name].pop(namespace, None)


def _decode_keys(data: Any, keys: Iterable[str], encoded: bool) -> dict[str, str]:
    raw = as_map(data)
    present = {k: raw[k] for k in keys if k in raw}
    if encoded:
        return gen.decode(present)
    return {k: v if isinstance(v, str) else "" for k, v in present.items()}


class InputCache:
    """Secrets and ConfigMaps of the DynaKubes' namespace, reduced to the keys the generation reads."""

    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, str]] = {}
        self.config_maps: dict[str, dict[str, str]] = {}
        self.synced: dict[str, bool] = {INPUT_SECRETS: False, INPUT_CONFIGMAPS: False}

    def inputs(self, dynakube: Mapping[str, Any], *, operator_version: str, csi_mode: bool) -> gen.Inputs:
        """What the init Secrets of ``dynakube`` are generated from, as the cache holds it now."""
        return gen.Inputs(
            dynakube,
            secrets=self.secrets,
            config_maps=self.config_maps,
            operator_version=operator_version,
            csi_mode=csi_mode,
        )

    def _target(self, resource: str) -> dict[str, dict[str, str]]:
        return self.secrets if resource == INPUT_SECRETS else self.config_maps

    @staticmethod
    def reduce(resource: str, obj: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        name = as_str(as_map(obj.get("metadata")).get("name"))
        if resource == INPUT_SECRETS:
            data = _decode_keys(obj.get("data"), gen.SECRET_KEYS, encoded=True)
            data.update(_decode_keys(obj.get("stringData"), gen.SECRET_KEYS, encoded=False))
        else:
            data = _decode_keys(obj.get("data"), (gen.TRUSTED_CAS_KEY,), encoded=False)
        return name, data

    def replace(self, resource: str, objects: Iterable[Mapping[str, Any]]) -> None:
        fresh = {}
        for obj in objects:
            name, data = self.reduce(resource, obj)
            if name:
                fresh[name] = data
        if resource == INPUT_SECRETS:
            self.secrets = fresh
        else:
            self.config_maps = fresh
        self.synced[resource] = True

    def upsert(self, resource: str, obj: Mapping[str, Any]) -> None:
        name, data = self.reduce(resource, obj)
        if name:
            self._target(resource)[name] = data

    def delete(self, resource: str, obj: Mapping[str, Any]) -> None:
        self._target(resource).pop(as_str(as_map(obj.get("metadata")).get("name")), None)
