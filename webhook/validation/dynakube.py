"""DynaKube validation: the error checks (deny) and warning checks (allow, tell kubectl) of ``/validate``.

Each check is a small function ``(dynakube, context) -> message | None`` in the module of its topic. A check
that raises is a bug: it is logged and skipped, never turned into a denial.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from webhook.validation import activegate, apiurl, featureflags, name, namespaces, oneagent
from webhook.validation.base import Check, Context, DynaKube

log = logging.getLogger(__name__)

ERROR_CHECKS: tuple[Check, ...] = (
    apiurl.no_api_url,
    apiurl.invalid_api_url,
    oneagent.conflicting_oneagent_modes,
    activegate.invalid_activegate_capability,
    activegate.duplicate_activegate_capability,
    name.name_not_dns1035,
    name.name_too_long,
    namespaces.invalid_namespace_selector,
    namespaces.conflicting_namespace_selector,
    oneagent.invalid_network_zone,
)
UPDATE_CHECKS: tuple[Check, ...] = (apiurl.tenant_changed,)
WARNING_CHECKS: tuple[Check, ...] = (
    activegate.missing_activegate_memory_limit,
    featureflags.deprecated_feature_flags,
    featureflags.unknown_feature_flags,
)


@dataclass
class Result:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # names of the error checks that failed


def _run(checks: Sequence[Check], dynakube: DynaKube, ctx: Context) -> list[tuple[str, str]]:
    found = []
    for check in checks:
        try:
            message = check(dynakube, ctx)
        except Exception:
            log.exception("validation check %s failed", check.__name__)
            continue
        if message:
            found.append((check.__name__, message))
    return found


def validate(dynakube: DynaKube, ctx: Context) -> Result:
    errors = _run(ERROR_CHECKS + (UPDATE_CHECKS if ctx.old is not None else ()), dynakube, ctx)
    warnings = _run(WARNING_CHECKS, dynakube, ctx)
    return Result([m for _, m in errors], [m for _, m in warnings], [n for n, _ in errors])


def summary(errors: Sequence[str]) -> str:
    """The denial message: ``\\n<N> error(s) found in the DynaKube\\n 1. <msg>\\n 2. <msg>``."""
    return f"\n{len(errors)} error(s) found in the DynaKube" + "".join(
        f"\n {i}. {message}" for i, message in enumerate(errors, 1)
    )
