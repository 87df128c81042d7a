"""Validation of DynaKube custom resources (pure)."""
