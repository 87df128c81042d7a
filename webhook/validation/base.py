"""What every check gets: the DynaKube (a plain dict) and a ``Context``; what it returns: a message or None."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DynaKube = Mapping[str, Any]


@dataclass(frozen=True)
class Context:
    """The request and the cached cluster state a check may look at (never the API itself)."""

    operation: str = "CREATE"
    old: DynaKube | None = None  # the stored object on UPDATE
    dynakubes: Sequence[DynaKube] = ()  # cached DynaKubes of the webhook's namespace (may include this one)
    namespaces: Sequence[Mapping[str, Any]] = ()  # cached namespaces
    webhook_namespace: str = ""


Check = Callable[[DynaKube, Context], "str | None"]


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
