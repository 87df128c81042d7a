"""What one ``/inject`` admission reads of its pod and namespace, read once (pure).

The gate and every mutator take their facts from here instead of walking the pod again: the annotations, the
containers and which of them are to be injected, the init containers, the existing volume names and each
eligible container's mount paths (both read on first use: a pod skipped early never needs them), and the
namespace's labels and annotations.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from webhook.mutation import podspec as ps
from webhook.tolerant import as_list as _list
from webhook.tolerant import as_map as _map
from webhook.tolerant import as_str as _str


class PodContext:
    """One pod under review, with the namespace it is created in. The pod is never modified."""

    __slots__ = (
        "_mounts",
        "_volume_names",
        "annotations",
        "containers",
        "eligible",
        "init_containers",
        "init_index",
        "meta",
        "namespace_annotations",
        "namespace_labels",
        "namespace_name",
        "pod",
        "spec",
    )

    def __init__(
        self,
        pod: Mapping[str, Any],
        *,
        excluded: Collection[str] = (),
        namespace_name: str = "",
        namespace_labels: Mapping[str, Any] | None = None,
        namespace_annotations: Mapping[str, Any] | None = None,
    ) -> None:
        """``excluded``: container names the DynaKube excludes (the pod's own exclusions are read here)."""
        self.pod = pod
        meta = self.meta = _map(pod.get("metadata"))
        self.annotations: Mapping[str, Any] = _map(meta.get("annotations"))
        spec = self.spec = _map(pod.get("spec"))
        raw = _list(spec.get("containers"))
        # every container read as a map; only real maps with a string name can be injected
        self.containers: list[Mapping[str, Any]] = [_map(c) for c in raw]
        skip = ps.excluded_by(self.annotations).union(excluded)
        self.eligible: list[int] = [
            i
            for i, c in enumerate(self.containers)
            if (type(raw[i]) is dict or isinstance(raw[i], Mapping))
            and type(name := c.get("name")) is str
            and name not in skip
        ]
        self.init_containers: list[Any] = _list(spec.get("initContainers"))
        self.init_index = ps.init_index(self.init_containers)
        self.namespace_name = namespace_name
        self.namespace_labels: Mapping[str, Any] = namespace_labels or {}
        self.namespace_annotations: Mapping[str, Any] = namespace_annotations or {}
        self._volume_names: frozenset[str] | None = None
        self._mounts: dict[int, dict[str, Mapping[str, Any]]] | None = None

    @property
    def name(self) -> str:
        """Name, or generateName (``podspec.pod_name``)."""
        return ps.name_of(self.meta)

    @property
    def kind(self) -> str:
        return _str(self.pod.get("kind")) or "Pod"

    def eligible_names(self) -> list[str]:
        return [self.containers[i]["name"] for i in self.eligible]

    def already_injected(self) -> bool:
        """v1.4's test, plus the init container name of v1.3 and earlier versions of this webhook."""
        return (
            ps.parse_bool(self.annotations.get(ps.ANNOTATION_INJECTED), False)
            or ps.parse_bool(self.annotations.get(ps.ANNOTATION_METADATA_INJECTED), False)
            or self.init_index >= 0
        )

    # read on first use (functools.cached_property takes a lock per first read: too slow here)
    @property
    def volume_names(self) -> frozenset[str]:
        if self._volume_names is None:
            names = (_map(v).get("name") for v in _list(self.spec.get("volumes")))
            self._volume_names = frozenset(n for n in names if isinstance(n, str))
        return self._volume_names

    @property
    def mounts(self) -> dict[int, dict[str, Mapping[str, Any]]]:
        """Mount path -> first mount at that path, per eligible container."""
        if self._mounts is None:
            self._mounts = {i: ps.mounts_by_path(self.containers[i]) for i in self.eligible}
        return self._mounts
