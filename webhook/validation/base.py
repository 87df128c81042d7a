"""What every check gets: the object (a plain dict) and a ``Context``; what it returns: a message or None."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.validation.modules import Modules

DynaKube = Mapping[str, Any]

__all__ = ["Check", "Context", "DynaKube", "Modules", "SecretRead", "TokensRead"]


@dataclass(frozen=True)
class SecretRead:
    """A cached Secret as the proxy check needs it: its ``data`` (base64 values), or why it cannot be read."""

    data: Mapping[str, Any] | None = None  # None: not readable, see error
    error: str = ""  # upstream-style API error, e.g. 'secrets "x" not found'


def _no_secret(name: str) -> SecretRead:
    return SecretRead(error=f'secrets "{name}" not found')


@dataclass(frozen=True)
class TokensRead:
    """A cached tokens Secret as the token checks need it: never a value."""

    keys: frozenset[str] = frozenset()  # the names of its non-empty keys
    platform: bool = False  # its apiToken is a platform token


def _no_tokens(name: str) -> TokensRead | None:
    return None


@dataclass(frozen=True)
class Context:
    """The request and the cached cluster state a check may look at (never the API itself)."""

    operation: str = "CREATE"
    old: DynaKube | None = None  # the stored object on UPDATE
    # cached DynaKubes of the object's namespace (may include this one); empty when not cached
    dynakubes: Sequence[DynaKube] = ()
    namespaces: Sequence[Mapping[str, Any]] = ()  # cached namespaces
    webhook_namespace: str = ""
    modules: Modules = field(default_factory=Modules)  # what the operator installation has
    secret: Callable[[str], SecretRead] = _no_secret  # cached Secrets of the object's namespace
    istio: bool | None = None  # networking.istio.io/v1beta1 served; None: not known (the check passes)
    tokens: Callable[[str], TokensRead | None] = (
        _no_tokens  # a cached tokens Secret by name; None: unreadable
    )
    kubernetes_minor: int | None = (
        None  # the cluster's minor version (cached off the request path); None: unknown
    )


Check = Callable[[DynaKube, Context], "str | None"]
