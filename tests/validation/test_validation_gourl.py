"""Go's net/url.Parse as the checks need it, and Go's %q quoting."""

from __future__ import annotations

import pytest

from webhook.validation import gourl


@pytest.mark.parametrize(
    ("raw", "host", "hostname", "password"),
    [
        ("https://abc.live.dynatrace.com/api", "abc.live.dynatrace.com", "abc.live.dynatrace.com", None),
        (
            "https://abc.live.dynatrace.com:443/api",
            "abc.live.dynatrace.com:443",
            "abc.live.dynatrace.com",
            None,
        ),
        ("https://[::1]:8443/api", "[::1]:8443", "::1", None),
        ("host:443/api", "", "", None),  # scheme "host", opaque "443/api"
        ("proxy.example.com:8080", "", "", None),
        ("http://user:pa%20ss@proxy:3128", "proxy:3128", "proxy", "pa ss"),
        ("http://user:p&s@proxy", "proxy", "proxy", "p&s"),
        ("http://user@proxy", "proxy", "proxy", None),
        ("http://h/a b", "h", "h", None),  # a raw space in the path is accepted
        ("http://h/#%41", "h", "h", None),
        ("/just/a/path", "", "", None),
        ("http://münchen.example/api", "münchen.example", "münchen.example", None),
        ("http://h?x=%zz", "h", "h", None),  # the query is not checked
    ],
)
def test_parses(raw, host, hostname, password):
    url = gourl.parse(raw)
    assert (url.host, url.hostname, url.password) == (host, hostname, password)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("https://abc.live.dynatrace.com/api\n", "invalid control character"),
        ("https://abc\x7f/api", "invalid control character"),
        ("https://a b/api", 'invalid character " " in host name'),
        ("https://a%zz/api", 'invalid URL escape "%zz"'),
        ("https://h/%zz", 'invalid URL escape "%zz"'),
        ("https://h/%4", 'invalid URL escape "%4"'),
        ("https://%41/api", 'invalid URL escape "%41"'),  # %-escapes in a host only for non-ASCII bytes
        ("https://h:port/api", 'invalid port ":port" after host'),
        ("https://h:44a/api", 'invalid port ":44a" after host'),
        ("https://[::1/api", "missing ']' in host"),
        ("http://us er:p@h", "invalid userinfo"),
        ('http://u"x:p@h', "invalid userinfo"),
        ("http://ü:p@h", "invalid userinfo"),
        ("http://u:p%zz@h", 'invalid URL escape "%zz"'),
        ("10.0.0.5:5000/oa:1", "first path segment in URL cannot contain colon"),
        (":foo", "missing protocol scheme"),
        ("http://h/#%zz", 'invalid URL escape "%zz"'),
    ],
)
def test_rejects(raw, reason):
    with pytest.raises(gourl.URLError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        gourl.parse(raw)
    assert gourl.try_parse(raw) is None


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("a b", '"a b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("tab\tnl\n", '"tab\\tnl\\n"'),
        ("\x01", '"\\x01"'),
        ("ü", '"ü"'),
    ],
)
def test_go_quote(text, quoted):
    assert gourl.go_quote(text) == quoted
