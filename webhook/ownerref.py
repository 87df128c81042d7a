"""The controlling owner reference of a Kubernetes object, read one way everywhere (pure).

Used by the metadata-enrichment owner walk (``mutation.enrichment``), the owner cache (``state.owners``), the
reinjection scan (``controllers.workloads``) and the skip Events (``admission.skipevents``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from webhook.tolerant import as_list, as_str


class OwnerRef(NamedTuple):
    kind: str
    name: str
    api_version: str  # "" when missing or not a string
    uid: str  # "" when missing or not a string


def controller_of(meta: Mapping[str, Any]) -> OwnerRef | None:
    """The first entry of ``meta.ownerReferences`` that is an object with ``controller: true`` (the JSON
    boolean) and a non-empty string ``kind`` and ``name``; None when there is none.

    An entry without kind or name names no object and is passed over. Kubernetes allows one controller
    reference per object and requires all four fields, so for objects it accepted this is simply the controller
    reference; callers that need ``apiVersion`` or ``uid`` check them."""
    for ref in as_list(meta.get("ownerReferences")):
        if type(ref) is not dict and not isinstance(ref, Mapping):
            continue
        if ref.get("controller") is not True:
            continue
        kind, name = ref.get("kind"), ref.get("name")
        if isinstance(kind, str) and kind and isinstance(name, str) and name:
            return OwnerRef(kind, name, as_str(ref.get("apiVersion")), as_str(ref.get("uid")))
    return None
