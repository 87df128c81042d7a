"""The checks of ``/validate`` in upstream's order, and how their results are summed.

Which upstream release's checks run is chosen once, by the DynaKube's version (``checks_for``): v1beta1 to
v1beta3 get Dynatrace Operator v1.4's checks (below), v1beta4 to v1beta6 get v1.10.2's (``v110_order``).
EdgeConnects (``edgeconnect_checks_for``): v1alpha1 and v1alpha2 get v1.10.2's (``edgeconnect_v110``), an
object of any other version v1.4's (``edgeconnect``).

DynaKube: every error check (deny), then every warning check (allow, kubectl prints them), then on UPDATE the
update-only check, whose message comes last. The object is read as v1beta3 (``hub.to_hub``). Each check is a
small function ``(object, context) -> message | None`` in the module of its topic. A check that raises is a
bug: it is logged and skipped, never turned into a denial or a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from webhook.validation import (
    activegate,
    apiurl,
    edgeconnect,
    edgeconnect_v110,
    extensions,
    featureflags,
    hub,
    images,
    istio,
    kspm,
    latest,
    logmonitoring,
    module_checks,
    name,
    namespaces,
    oneagent,
    proxy,
    v110_order,
)
from webhook.validation.base import Check, Context, DynaKube

log = logging.getLogger(__name__)

ERROR_CHECKS: tuple[Check, ...] = (
    module_checks.csi_module_disabled,  # E1
    module_checks.activegate_module_disabled,
    module_checks.extensions_module_disabled,
    module_checks.log_monitoring_module_disabled,
    module_checks.kspm_module_disabled,
    module_checks.oneagent_module_disabled,  # E6
    oneagent.invalid_oneagent_version,
    apiurl.no_api_url,
    apiurl.invalid_api_url,
    apiurl.third_gen_api_url,  # E10
    module_checks.readonly_csi_volume_without_csi,
    activegate.invalid_capability,
    activegate.duplicate_capability,
    proxy.invalid_proxy,
    oneagent.conflicting_oneagent_modes,  # E15
    oneagent.conflicting_node_selector,
    namespaces.conflicting_namespace_selector,
    istio.istio_unavailable,
    oneagent.image_without_csi,
    oneagent.conflicting_volume_storage,  # E20
    name.name_not_dns1035,
    name.name_too_long,
    namespaces.invalid_namespace_selector,
    images.tenant_image,
    extensions.eec_image_missing,  # E25
    extensions.eec_pvc_with_ephemeral_volume,
    kspm.too_many_activegate_replicas,
    kspm.missing_kubernetes_monitoring,
    kspm.missing_node_collector_image,
    logmonitoring.missing_log_monitoring_image,  # E30
)
WARNING_CHECKS: tuple[Check, ...] = (
    activegate.missing_memory_limit,  # W1
    oneagent.installer_variables,
    oneagent.host_group_argument,
    featureflags.deprecated_feature_flags,
    logmonitoring.ignored_log_monitoring_template,
    extensions.same_api_url_for_extensions,  # W6
)
# ours, not in v1.4: warnings only, after upstream's
EXTRA_WARNING_CHECKS: tuple[Check, ...] = (
    featureflags.later_deprecated_feature_flags,
    featureflags.unknown_feature_flags,
    namespaces.invalid_enrichment_selector,
    oneagent.invalid_network_zone,
)
UPDATE_CHECKS: tuple[Check, ...] = (apiurl.mutated_api_url,)


@dataclass(frozen=True)
class Checks:
    """One release's checks for one DynaKube version: how the object is read, and what runs in which order."""

    release: str
    read: Callable[[DynaKube], DynaKube]
    errors: tuple[Check, ...]
    warnings: tuple[Check, ...]
    updates: tuple[Check, ...]
    reads_tokens: bool = False  # status.apiToken.platform from the tokens Secret before the checks (v1.10)


V14 = Checks("v1.4", hub.to_hub, ERROR_CHECKS, WARNING_CHECKS + EXTRA_WARNING_CHECKS, UPDATE_CHECKS)
V110 = Checks(
    "v1.10.2",
    latest.to_latest,
    v110_order.ERROR_CHECKS,
    v110_order.WARNING_CHECKS + v110_order.EXTRA_WARNING_CHECKS,
    v110_order.UPDATE_CHECKS,
    reads_tokens=True,
)
V110_VERSIONS = ("v1beta4", "v1beta5", "v1beta6")


def checks_for(dynakube: DynaKube) -> Checks:
    """v1.10.2's checks for a v1beta4, v1beta5 or v1beta6 object (``apiVersion``), else v1.4's."""
    return V110 if latest.version(dynakube) in V110_VERSIONS else V14


@dataclass
class Result:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # names of the error checks that failed


def _run(checks: Sequence[Check], obj: Mapping[str, Any], ctx: Context) -> list[tuple[str, str]]:
    found = []
    for check in checks:
        try:
            message = check(obj, ctx)
        except Exception:
            log.exception("validation check %s failed", check.__name__)
            continue
        if message:
            found.append((check.__name__, message))
    return found


def validate(dynakube: DynaKube, ctx: Context, checks: Checks | None = None) -> Result:
    """Run one release's checks (by default the one ``checks_for`` the object's version)."""
    checks = checks or checks_for(dynakube)
    obj = checks.read(dynakube)
    if checks.reads_tokens:
        tokens = ctx.tokens(latest.tokens_secret(obj))
        obj = latest.with_platform_token(obj, tokens is not None and tokens.platform)
    errors = _run(checks.errors, obj, ctx)
    warnings = _run(checks.warnings, obj, ctx)
    if ctx.old is not None:
        ctx = replace(ctx, old=checks.read(ctx.old))
        errors += _run(checks.updates, obj, ctx)
    return Result([m for _, m in errors], [m for _, m in warnings], [n for n, _ in errors])


EDGECONNECT_V14: tuple[Check, ...] = edgeconnect.CHECKS
EDGECONNECT_V110: tuple[Check, ...] = edgeconnect_v110.CHECKS
# v1.10.2 serves the same EdgeConnect versions as v1.4 and runs one list on both (v1alpha1 converted first)
EDGECONNECT_V110_VERSIONS = ("v1alpha1", "v1alpha2")


def edgeconnect_checks_for(obj: Mapping[str, Any]) -> tuple[Check, ...]:
    """v1.10.2's EdgeConnect checks for a v1alpha1 or v1alpha2 object (``apiVersion``), else v1.4's."""
    return EDGECONNECT_V110 if latest.version(obj) in EDGECONNECT_V110_VERSIONS else EDGECONNECT_V14


def validate_edgeconnect(
    obj: Mapping[str, Any], ctx: Context, checks: Sequence[Check] | None = None
) -> Result:
    """Run one release's EdgeConnect checks (by default the ones ``edgeconnect_checks_for`` the object)."""
    errors = _run(edgeconnect_checks_for(obj) if checks is None else checks, obj, ctx)
    return Result([m for _, m in errors], [], [n for n, _ in errors])


def summary(errors: Sequence[str], kind: str = "DynaKube") -> str:
    """The denial message: ``\\n<N> error(s) found in the <kind>\\n 1. <msg>\\n 2. <msg>``."""
    return f"\n{len(errors)} error(s) found in the {kind}" + "".join(
        f"\n {i}. {message}" for i, message in enumerate(errors, 1)
    )
