"""EdgeConnect validation (``pkg/api/validation/edgeconnect/``, v1alpha1 and v1alpha2 alike): six error
checks, no warnings, the same on CREATE and UPDATE."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.tolerant import as_list, as_map, as_str
from webhook.validation.base import Context
from webhook.validation.module_checks import module_disabled

EdgeConnect = Mapping[str, Any]

MAX_NAME_LENGTH = 40
DEFAULT_SERVICE_ACCOUNT = "dynatrace-edgeconnect"
ALLOWED_SUFFIXES = (".dev.apps.dynatracelabs.com", ".sprint.apps.dynatracelabs.com", ".apps.dynatrace.com")

INVALID_API_SERVER = (
    "The EdgeConnect's specification has an invalid apiServer value set.\n"
    "\tMake sure you correctly specify the apiServer in your custom resource.\n\t"
)
NAME_TOO_LONG = (
    "The length limit for the name of a EdgeConnect is %d, because it is the base for the name of resources "
    "related to the EdgeConnect.\n\tThe limit is necessary because kubernetes uses the name of some resources for "
    "the label value, which has a limit of 63 characters. "
    "(see https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set)"
)
HOST_PATTERNS_REQUIRED = "hostPatterns is required when using provisioner mode"
INVALID_SERVICE_ACCOUNT = "The EdgeConnect's specification has an invalid serviceAccountName.\n"
AUTOMATION_WITHOUT_PROVISIONER = (
    "When enabling Kubernetes automation using provisioner mode is mandatory! Please enable spec.oauth.provisioner "
    "and provide a resp. OAuth client configuration."
)


def _spec(ec: EdgeConnect) -> Mapping[str, Any]:
    return as_map(ec.get("spec"))


def _provisioner(ec: EdgeConnect) -> bool:
    return as_map(_spec(ec).get("oauth")).get("provisioner") is True


def _automation(ec: EdgeConnect) -> bool:
    return as_map(_spec(ec).get("kubernetesAutomation")).get("enabled") is True


def module_disabled_check(ec: EdgeConnect, ctx: Context) -> str | None:
    return None if ctx.modules.edge_connect else module_disabled("EdgeConnect")


def invalid_api_server(ec: EdgeConnect, ctx: Context) -> str | None:
    server = as_str(_spec(ec).get("apiServer"))
    for suffix in ALLOWED_SUFFIXES:
        if server.endswith(suffix):
            if len([p for p in server.split(".") if p]) > len([p for p in suffix.split(".") if p]):
                return None
            break
    hint = (
        "It must be the host of your environment, e.g. <environment-id>.apps.dynatrace.com (no path or port)."
    )
    return f"{INVALID_API_SERVER}\n{hint}"


def name_too_long(ec: EdgeConnect, ctx: Context) -> str | None:
    name = as_str(as_map(ec.get("metadata")).get("name"))
    return NAME_TOO_LONG % MAX_NAME_LENGTH if len(name) > MAX_NAME_LENGTH else None


def host_patterns_missing(ec: EdgeConnect, ctx: Context) -> str | None:
    if _provisioner(ec) and not as_list(_spec(ec).get("hostPatterns")) and not _automation(ec):
        return HOST_PATTERNS_REQUIRED
    return None


def invalid_service_account(ec: EdgeConnect, ctx: Context) -> str | None:
    value = _spec(ec).get("serviceAccountName")
    effective = DEFAULT_SERVICE_ACCOUNT if value is None else as_str(value)
    return INVALID_SERVICE_ACCOUNT if effective == "" else None


def automation_without_provisioner(ec: EdgeConnect, ctx: Context) -> str | None:
    return AUTOMATION_WITHOUT_PROVISIONER if _automation(ec) and not _provisioner(ec) else None


CHECKS = (
    module_disabled_check,
    invalid_api_server,
    name_too_long,
    host_patterns_missing,
    invalid_service_account,
    automation_without_provisioner,
)
