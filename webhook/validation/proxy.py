"""spec.proxy (``proxy_url.go``): the proxy URL, given inline or as key ``proxy`` of a Secret, parses (Go's
rules) and its password avoids the characters the OneAgent and ActiveGate cannot take."""

from __future__ import annotations

import base64
import binascii
import re

from webhook.tolerant import as_map, as_str
from webhook.validation import gourl, hub
from webhook.validation.base import Context, DynaKube

INVALID_PROXY_URL = (
    "The DynaKube's specification has an invalid Proxy URL value set. Make sure you correctly specify the URL in "
    "your custom resource or in the provided secret."
)
INVALID_PROXY_PASSWORD = (
    "The DynaKube's specification has an invalid Proxy password value set. Make sure you don't use forbidden "
    "characters: space, apostrophe, backtick, comma, ampersand, equals sign, plus sign, percent sign, backslash."
)
PROXY_SECRET_ERROR = "Error occurred while reading PROXY secret indicated in the Dynakube specification"
PROXY_KEY = "proxy"

_PASSWORD = re.compile(r"[!\"#$()*\-./0-9:;<>?@A-Z\[\]^_a-z{|}~]*")


def _decode(value: object) -> str | None:
    """A Secret ``data`` value: base64 of the bytes; None when it is not base64."""
    try:
        return base64.b64decode(as_str(value), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None


def invalid_proxy(dk: DynaKube, ctx: Context) -> str | None:
    proxy = as_map(hub.spec(dk).get("proxy"))
    if hub.spec(dk).get("proxy") is None:
        return None
    value = as_str(proxy.get("value"))
    secret_name = as_str(proxy.get("valueFrom"))
    if not value and secret_name:
        read = ctx.secret(secret_name)
        if read.data is None:
            return f"{PROXY_SECRET_ERROR}: failed to get proxy from {secret_name} secret: {read.error}"
        if PROXY_KEY not in read.data:
            return f"{PROXY_SECRET_ERROR}: missing token {PROXY_KEY} in proxy secret {secret_name}"
        decoded = _decode(read.data[PROXY_KEY])
        if decoded is None:
            return f"{PROXY_SECRET_ERROR}: key {PROXY_KEY} of secret {secret_name} is not base64"  # cannot be stored
        value = decoded
    url = gourl.try_parse(value)  # no hint with Go's reason: it may quote a part of the password
    if url is None:
        return INVALID_PROXY_URL
    if not _PASSWORD.fullmatch(url.password or ""):
        return INVALID_PROXY_PASSWORD
    return None
