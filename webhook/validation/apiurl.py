"""spec.apiUrl: present, not the example, a URL ending in /api; its tenant never changes on UPDATE."""

from __future__ import annotations

from urllib.parse import urlsplit

from webhook import dynakube as dk
from webhook.validation.base import Context, DynaKube

EXAMPLE_API_URL = "https://ENVIRONMENTID.live.dynatrace.com/api"
_HINT = "e.g. https://<environment-id>.live.dynatrace.com/api, or https://<host>/e/<environment-id>/api for Managed"


def tenant_of(api_url: str) -> str:
    """The first label of the host: ``abc12345`` in ``https://abc12345.live.dynatrace.com/api``."""
    try:
        host = urlsplit(api_url.strip()).hostname or ""
    except ValueError:
        return ""
    return host.split(".", 1)[0].lower()


def api_url_problem(api_url: str) -> str:
    """What is wrong with a non-empty apiUrl, or ""."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in api_url):
        return "it contains whitespace or control characters"
    try:
        parts = urlsplit(api_url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as err:
        return f"it is not a URL ({err})"
    if parts.scheme not in ("https", "http"):
        return "it must start with https://"
    host = parts.hostname or ""
    if not host or host.startswith("."):
        return "it has no host name"
    if not api_url.endswith("/api"):
        return "it must end with /api" + (" (remove the trailing slash)" if api_url.endswith("/api/") else "")
    return ""


def no_api_url(dynakube: DynaKube, ctx: Context) -> str | None:
    url = dk.api_url(dynakube)
    if not url.strip():
        return f"spec.apiUrl is missing. Set it to the API URL of your Dynatrace environment, {_HINT}."
    if url == EXAMPLE_API_URL:
        return (
            f"spec.apiUrl is still the example {EXAMPLE_API_URL}. Replace ENVIRONMENTID with the ID of "
            "your Dynatrace environment."
        )
    return None


def invalid_api_url(dynakube: DynaKube, ctx: Context) -> str | None:
    url = dk.api_url(dynakube)
    if not url.strip() or url == EXAMPLE_API_URL:
        return None  # no_api_url reports these
    problem = api_url_problem(url)
    if problem:
        return f"spec.apiUrl {url!r} is invalid: {problem}. Set the API URL of your environment, {_HINT}."
    return None


def tenant_changed(dynakube: DynaKube, ctx: Context) -> str | None:
    """UPDATE only. An old object without a tenant (never validated) may get one."""
    if ctx.old is None:
        return None
    old, new = tenant_of(dk.api_url(ctx.old)), tenant_of(dk.api_url(dynakube))
    if old and new != old:
        return (
            f"The tenant in spec.apiUrl is immutable: it is {old!r} and the update changes it to {new!r}. "
            f"Keep spec.apiUrl on tenant {old}, or delete this DynaKube and create a new one for the other tenant."
        )
    return None
