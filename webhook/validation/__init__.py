"""Validation of DynaKube custom resources (pure): ``validate(dynakube, Context) -> Result``, ``summary``."""

from webhook.validation.base import Context
from webhook.validation.dynakube import ERROR_CHECKS, UPDATE_CHECKS, WARNING_CHECKS, Result, summary, validate

__all__ = ["ERROR_CHECKS", "UPDATE_CHECKS", "WARNING_CHECKS", "Context", "Result", "summary", "validate"]
