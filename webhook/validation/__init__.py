"""Validation of DynaKube and EdgeConnect custom resources (pure): ``validate``, ``validate_edgeconnect``,
``summary``; ``Modules`` says which modules the operator installation has."""

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
from webhook.validation.modules import Modules

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
