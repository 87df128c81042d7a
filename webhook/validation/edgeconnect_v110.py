"""EdgeConnect validation of Dynatrace Operator v1.10.2 (``pkg/api/validation/edgeconnect/`` at v1.10.2): ten
error checks, no warnings, the same on CREATE and UPDATE, v1alpha1 read as v1alpha2 first.

Against v1.4 (``edgeconnect.py``) the ``apiServer`` check is split in two (no scheme; host under an allowed
suffix) and three checks of ``spec.oauth.endpoint`` follow at the end. Both are decided by whether Go's
``net/url.Parse`` accepts the value (``gourl``). The other checks keep v1.4's conditions and words.
"""

from __future__ import annotations

from webhook.tolerant import as_map, as_str
from webhook.validation import gourl
from webhook.validation.base import Context
from webhook.validation.edgeconnect import (
    ALLOWED_SUFFIXES,
    DEFAULT_SERVICE_ACCOUNT,
    INVALID_SERVICE_ACCOUNT,
    EdgeConnect,
    automation_without_provisioner,
    host_patterns_missing,
    module_disabled_check,
    name_too_long,
)

INVALID_API_SERVER = (
    "The EdgeConnect's specification has an invalid apiServer value set.\n"
    "\tMake sure you correctly specify the apiServer in your custom resource.\n\t"
)
PROTOCOL_IN_API_SERVER = (
    "The EdgeConnect's specification has an invalid apiServer value set.\n"
    "\tShould NOT include protocol.\n"
    "\tMake sure you correctly specify the apiServer in your custom resource.\n\t"
)
API_SERVER_WITHOUT_ALLOWED_SUFFIX = (
    "The EdgeConnect's specification has an invalid apiServer value set.\n"
    "\tExample valid values:\n"
    '\t-  For prod: "<tenantID>.apps.dynatrace.com"\n'
    '\t-  For dev: "<tenantID>.dev.apps.dynatracelabs.com"\n'
    '\t-  For sprint: "<tenantID>.sprint.apps.dynatracelabs.com"\n'
    "\tMake sure you correctly specify the apiServer in your custom resource.\n\t"
)
INVALID_OAUTH_ENDPOINT = (
    "The EdgeConnect's specification has an invalid oauth.endpoint value set.\n"
    "\tMake sure you correctly specify the endpoint in your custom resource.\n\t"
)
OAUTH_ENDPOINT_WITHOUT_HTTPS = (
    "The EdgeConnect's specification has an invalid oauth.endpoint value set.\n"
    "\tShould include 'https' protocol.\n"
    "\tMake sure you correctly specify the oauth.endpoint in your custom resource.\n\t"
)
UNKNOWN_SSO_SERVER = (
    "The EdgeConnect's specification has an invalid oauth.endpoint value set.\n"
    "\tExample valid values:\n"
    '\t-  For prod: "sso.dynatrace.com"\n'
    '\t-  For dev: "sso-dev.dynatracelabs.com",\n'
    '\t-  For sprint: "sso.sprint.dynatracelabs.com"\n'
    "\tMake sure you correctly specify the endpoint in your custom resource.\n\t"
)
ALLOWED_SSO_HOSTS = ("sso-dev.dynatracelabs.com", "sso.sprint.dynatracelabs.com", "sso.dynatrace.com")


def _api_server(ec: EdgeConnect) -> str:
    return as_str(as_map(ec.get("spec")).get("apiServer"))


def _endpoint(ec: EdgeConnect) -> str:
    return as_str(as_map(as_map(ec.get("spec")).get("oauth")).get("endpoint"))


def api_server_protocol_set(ec: EdgeConnect, ctx: Context) -> str | None:
    """``checkAPIServerProtocolNotSet``: the value must parse and have no scheme (a ``host:port`` parses with
    the host as scheme, so it fails here too)."""
    parsed = gourl.try_parse(_api_server(ec))
    if parsed is None:
        return INVALID_API_SERVER
    return PROTOCOL_IN_API_SERVER if parsed.scheme else None


def api_server_without_allowed_suffix(ec: EdgeConnect, ctx: Context) -> str | None:
    """``isAllowedSuffixAPIServer``: ``https://<value>`` parses to exactly that host, without userinfo, and
    the host name ends with an allowed suffix and is longer than it."""
    server = _api_server(ec)
    parsed = gourl.try_parse("https://" + server)
    if parsed is None or parsed.host != server or parsed.username is not None:
        return API_SERVER_WITHOUT_ALLOWED_SUFFIX
    host = parsed.hostname
    if any(host.endswith(suffix) and len(host) > len(suffix) for suffix in ALLOWED_SUFFIXES):
        return None
    return API_SERVER_WITHOUT_ALLOWED_SUFFIX


def invalid_service_account(ec: EdgeConnect, ctx: Context) -> str | None:
    """``isInvalidServiceName``: v1alpha2 defaults an absent name; v1alpha1's field is a plain string, so an
    absent one converts to ``""`` (through the API server the CRD's default fills it in first)."""
    value = as_map(ec.get("spec")).get("serviceAccountName")
    if value is None:
        value = "" if as_str(ec.get("apiVersion")).endswith("/v1alpha1") else DEFAULT_SERVICE_ACCOUNT
    return INVALID_SERVICE_ACCOUNT if as_str(value) == "" else None


def invalid_oauth_endpoint(ec: EdgeConnect, ctx: Context) -> str | None:
    """``isValidSSOServerURL``: ``spec.oauth.endpoint`` parses (an absent one is ``""``, which does)."""
    return INVALID_OAUTH_ENDPOINT if gourl.try_parse(_endpoint(ec)) is None else None


def oauth_endpoint_without_https(ec: EdgeConnect, ctx: Context) -> str | None:
    """``checkSSOServerProtocol``: a parsing endpoint has the scheme ``https`` (any case)."""
    parsed = gourl.try_parse(_endpoint(ec))
    return OAUTH_ENDPOINT_WITHOUT_HTTPS if parsed is not None and parsed.scheme != "https" else None


def unknown_sso_server(ec: EdgeConnect, ctx: Context) -> str | None:
    """``isAllowedSSOServer``: a parsing endpoint's host (port included) is one of Dynatrace's SSO hosts."""
    parsed = gourl.try_parse(_endpoint(ec))
    return UNKNOWN_SSO_SERVER if parsed is not None and parsed.host not in ALLOWED_SSO_HOSTS else None


CHECKS = (
    module_disabled_check,
    api_server_protocol_set,
    api_server_without_allowed_suffix,
    name_too_long,
    host_patterns_missing,
    invalid_service_account,
    automation_without_provisioner,
    invalid_oauth_endpoint,
    oauth_endpoint_without_https,
    unknown_sso_server,
)
