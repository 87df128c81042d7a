"""spec.apiUrl (``api_url.go``): set and not the example, a URL Go parses ending in ``/api``, not a third-gen
(``.apps.``) URL; unchanged on UPDATE."""

from __future__ import annotations

from webhook.validation import gourl, hub
from webhook.validation.base import Context, DynaKube

EXAMPLE_API_URL = "https://ENVIRONMENTID.live.dynatrace.com/api"

NO_API_URL = (
    "The DynaKube's specification is missing the API URL or still has the example value set.\n"
    "\tMake sure you correctly specify the URL in your custom resource.\n\t"
)
INVALID_API_URL = (
    "The DynaKube's specification has an invalid API URL value set.\n"
    "\tMake sure you correctly specify the URL in your custom resource (including the /api postfix).\n\t"
)
THIRD_GEN_API_URL = (
    "The DynaKube's specification has an 3rd gen API URL. Make sure to remove the 'apps' part\n"
    "\tout of it. Example: https://ENVIRONMENTID.live.dynatrace.com/api"
)
MUTATED_API_URL = (
    "The DynaKube's specification mutated the API URL although it is immutable. "
    "Please delete the CR and then apply a new one"
)


def api_url_problem(url: str) -> str:
    """Why upstream rejects a non-empty apiUrl (our hint), or "" when it does not."""
    if not url.endswith("/api"):
        return "it must end with /api" + (" (remove the trailing slash)" if url.endswith("/api/") else "")
    try:
        parsed = gourl.parse(url)
    except gourl.URLError as err:
        return f"it is not a URL: {err}"
    if not [p for p in parsed.hostname.split(".") if p]:
        return "it has no host name (write it as https://<host>/api)"
    return ""


def no_api_url(dk: DynaKube, ctx: Context) -> str | None:
    url = hub.api_url(dk)
    return NO_API_URL if url in ("", EXAMPLE_API_URL) else None


def invalid_api_url(dk: DynaKube, ctx: Context) -> str | None:
    url = hub.api_url(dk)
    problem = api_url_problem(url)
    if not problem:
        return None
    if not url:
        return INVALID_API_URL  # no_api_url says what is missing
    return f"{INVALID_API_URL}\nspec.apiUrl {gourl.go_quote(url)}: {problem}."


def third_gen_api_url(dk: DynaKube, ctx: Context) -> str | None:
    return THIRD_GEN_API_URL if ".apps." in hub.api_url(dk) else None


def mutated_api_url(dk: DynaKube, ctx: Context) -> str | None:
    """UPDATE only."""
    if ctx.old is None:
        return None
    return MUTATED_API_URL if hub.api_url(ctx.old) != hub.api_url(dk) else None
