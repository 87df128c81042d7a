"""Modules disabled at install (``modules.go``, ``csi_daemonset.go``): the DynaKube needs a module the operator
installation does not have (``Context.modules``, from ``--modules``)."""

from __future__ import annotations

from webhook.validation import hub
from webhook.validation.base import Context, DynaKube

CSI_DISABLED = (
    "CSI Driver was disabled during Operator install. It is a necessary resource for Cloud Native Fullstack to "
    "work. Redeploy the Operator via Helm with the CSI Driver enabled."
)
READONLY_CSI_VOLUME = (
    "The Dynakube's specification specifies readonly-CSI volume, but the CSI driver is not enabled.\n"
)
FF_READONLY_VOLUME = hub.FF_PREFIX + "injection-readonly-volume"


def module_disabled(module: str) -> str:
    return (
        f"{module} has been disabled during Operator install. The necessary resources for {module} to work are "
        "not present on the cluster. Redeploy the Operator via Helm with all the necessary resources enabled."
    )


def csi_module_disabled(dk: DynaKube, ctx: Context) -> str | None:
    if hub.has(dk, hub.CNFS) and not ctx.modules.csi_driver:
        return CSI_DISABLED
    return None


def activegate_module_disabled(dk: DynaKube, ctx: Context) -> str | None:
    if hub.activegate_enabled(dk) and not ctx.modules.active_gate and not ctx.modules.kspm:
        return module_disabled("ActiveGate")
    return None


def extensions_module_disabled(dk: DynaKube, ctx: Context) -> str | None:
    if hub.extensions(dk) and not ctx.modules.extensions:
        return module_disabled("Extensions")
    return None


def log_monitoring_module_disabled(dk: DynaKube, ctx: Context) -> str | None:
    if hub.log_monitoring(dk) and not ctx.modules.log_monitoring:
        return module_disabled("LogMonitoring")
    return None


def kspm_module_disabled(dk: DynaKube, ctx: Context) -> str | None:
    if hub.kspm(dk) and not ctx.modules.kspm:
        return module_disabled("KSPM")
    return None


def oneagent_module_disabled(dk: DynaKube, ctx: Context) -> str | None:
    if hub.host_agent(dk) and not ctx.modules.one_agent:
        return module_disabled("OneAgent")
    return None


def readonly_csi_volume_without_csi(dk: DynaKube, ctx: Context) -> str | None:
    if hub.annotations_of(dk).get(FF_READONLY_VOLUME) != "true":
        return None
    uses_csi_mode = hub.has(dk, hub.CNFS) or hub.has(dk, hub.HOSTMON) or hub.has(dk, hub.APPMON)
    if not ctx.modules.csi_driver or not uses_csi_mode:
        return READONLY_CSI_VOLUME
    return None
