"""Go's ``net/url.Parse`` and ``strconv.Quote``, as far as the checks need them (pure).

Upstream's checks accept or reject a URL by whether Go parses it, which is stricter than ``urllib.parse``:
control characters, malformed ``%`` escapes, non-numeric ports, characters a host cannot hold, userinfo
outside RFC 3986, and a scheme-less value whose first path segment holds a ``:`` all fail. This module
follows ``net/url/url.go`` (Go 1.22) step by step, on strings; ``parse`` returns a ``URL`` or raises
``URLError`` with Go's reason.
"""

from __future__ import annotations

from dataclasses import dataclass

_HEX = "0123456789abcdefABCDEF"
_USERINFO_EXTRA = set("-._:~!$&'()*+,;=%@")
_HOST_SUB_DELIMS = set("!$&'()*+,;=:[]<>\"")
_UNRESERVED_MARKS = set("-_.~")


class URLError(ValueError):
    """The value is not a URL Go would parse."""


@dataclass(frozen=True)
class URL:
    scheme: str = ""
    opaque: str = ""
    username: str | None = None  # None: no userinfo
    password: str | None = None  # None: no ':' in the userinfo
    host: str = ""  # host[:port], as in the URL (percent-decoded)
    path: str = ""
    raw_query: str = ""
    fragment: str = ""

    @property
    def hostname(self) -> str:
        """``URL.Hostname()``: the host without port and IPv6 brackets."""
        host = self.host
        colon = host.rfind(":")
        if colon != -1 and _valid_optional_port(host[colon:]):
            host = host[:colon]
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return host


def _is_alnum(c: str) -> bool:
    return "a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9"


def _contains_ctl(s: str) -> bool:
    return any(c < " " or c == "\x7f" for c in s)


def _valid_optional_port(port: str) -> bool:
    if port == "":
        return True
    if port[0] != ":":
        return False
    return all("0" <= c <= "9" for c in port[1:])


def _should_escape_host(c: str) -> bool:
    """``shouldEscape(c, encodeHost)`` for an ASCII character."""
    return not (_is_alnum(c) or c in _HOST_SUB_DELIMS or c in _UNRESERVED_MARKS)


def _unescape(s: str, mode: str) -> str:
    """``unescape``: checks the ``%`` escapes (and, for hosts, the characters) and decodes them.

    ``mode`` is ``host``, ``zone`` or anything else (path, userinfo, fragment: only ``%`` is checked).
    Decoded bytes are read as UTF-8, invalid sequences as U+FFFD (what Go's regexp sees in them).
    """
    i = 0
    out = bytearray()
    while i < len(s):
        c = s[i]
        if c == "%":
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise URLError(f"invalid URL escape {_quote(s[i : i + 3])}")
            value = int(s[i + 1 : i + 3], 16)
            if mode == "host" and int(s[i + 1], 16) < 8 and s[i : i + 3] != "%25":
                raise URLError(f"invalid URL escape {_quote(s[i : i + 3])}")
            if mode == "zone" and s[i : i + 3] != "%25" and value != 0x20 and _should_escape_host(chr(value)):
                raise URLError(f"invalid URL escape {_quote(s[i : i + 3])}")
            out.append(value)
            i += 3
            continue
        if mode in ("host", "zone") and c < "\x80" and _should_escape_host(c):
            raise URLError(f"invalid character {_quote(c)} in host name")
        out += c.encode("utf-8", "surrogatepass")
        i += 1
    return out.decode("utf-8", "replace")


def _get_scheme(raw: str) -> tuple[str, str]:
    for i, c in enumerate(raw):
        if "a" <= c <= "z" or "A" <= c <= "Z":
            continue
        if "0" <= c <= "9" or c in "+-.":
            if i == 0:
                return "", raw
            continue
        if c == ":":
            if i == 0:
                raise URLError("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return "", raw
    return "", raw


def _parse_host(host: str) -> str:
    if host.startswith("["):
        i = host.rfind("]")
        if i < 0:
            raise URLError("missing ']' in host")
        colon_port = host[i + 1 :]
        if not _valid_optional_port(colon_port):
            raise URLError(f"invalid port {_quote(colon_port)} after host")
        zone = host[:i].find("%25")
        if zone >= 0:
            return (
                _unescape(host[:zone], "host") + _unescape(host[zone:i], "zone") + _unescape(host[i:], "host")
            )
    else:
        i = host.rfind(":")
        if i != -1 and not _valid_optional_port(host[i:]):
            raise URLError(f"invalid port {_quote(host[i:])} after host")
    return _unescape(host, "host")


def _valid_userinfo(s: str) -> bool:
    return all(_is_alnum(c) or c in _USERINFO_EXTRA for c in s)


def _parse_authority(authority: str) -> tuple[str | None, str | None, str]:
    i = authority.rfind("@")
    host = _parse_host(authority if i < 0 else authority[i + 1 :])
    if i < 0:
        return None, None, host
    userinfo = authority[:i]
    if not _valid_userinfo(userinfo):
        raise URLError("net/url: invalid userinfo")
    if ":" not in userinfo:
        return _unescape(userinfo, "user"), None, host
    username, _, password = userinfo.partition(":")
    return _unescape(username, "user"), _unescape(password, "user"), host


def parse(raw: str) -> URL:
    """``url.Parse(raw)``; raises URLError where Go returns an error."""
    rest, _, fragment = raw.partition("#")
    if _contains_ctl(rest):
        raise URLError("net/url: invalid control character in URL")
    if rest == "*":
        return URL(path="*")
    scheme, rest = _get_scheme(rest)
    scheme = scheme.lower()
    query = ""
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return URL(scheme=scheme, opaque=rest, raw_query=query, fragment=_fragment(fragment))
        if ":" in rest.partition("/")[0]:
            raise URLError("first path segment in URL cannot contain colon")
    username = password = None
    host = ""
    if rest.startswith("//") and (scheme or not rest.startswith("///")):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        username, password, host = _parse_authority(authority)
    path = _unescape(rest, "path")
    return URL(scheme, "", username, password, host, path, query, _fragment(fragment))


def _fragment(fragment: str) -> str:
    return _unescape(fragment, "fragment")  # Go checks only the escapes of a fragment


def try_parse(raw: str) -> URL | None:
    try:
        return parse(raw)
    except URLError:
        return None


def _quote(s: str) -> str:
    return go_quote(s)


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` (``%q``): double quotes, Go escapes, printable Unicode kept."""
    out = ['"']
    for c in s:
        code = ord(c)
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif c in "\a\b\f\n\r\t\v":
            out.append(
                {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[c]
            )
        elif c.isprintable() or c == " ":
            out.append(c)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
