"""Validation of DynaKube and EdgeConnect custom resources (pure): ``validate``, ``validate_edgeconnect``,
``summary``; ``Modules`` says which modules the operator installation has.

The checks load on first use of a name below (``Modules`` aside): the command line reads ``Modules`` long
before anything validates, and the server loads them while the cache lists."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from webhook.validation.modules import Modules

if TYPE_CHECKING:
    from webhook.validation.base import Context, SecretRead, TokensRead
    from webhook.validation.dynakube import (
        ERROR_CHECKS,
        EXTRA_WARNING_CHECKS,
        UPDATE_CHECKS,
        WARNING_CHECKS,
        Result,
        summary,
        validate,
        validate_edgeconnect,
    )

_MODULE_OF = {
    "Context": "base",
    "SecretRead": "base",
    "TokensRead": "base",
    **dict.fromkeys(
        (
            "ERROR_CHECKS",
            "EXTRA_WARNING_CHECKS",
            "UPDATE_CHECKS",
            "WARNING_CHECKS",
            "Result",
            "summary",
            "validate",
            "validate_edgeconnect",
        ),
        "dynakube",
    ),
}

__all__ = [
    "ERROR_CHECKS",
    "EXTRA_WARNING_CHECKS",
    "UPDATE_CHECKS",
    "WARNING_CHECKS",
    "Context",
    "Modules",
    "Result",
    "SecretRead",
    "TokensRead",
    "summary",
    "validate",
    "validate_edgeconnect",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value
