"""spec.apiUrl: E8 (missing or example), E9 (invalid, Go's parsing), E10 (third gen), U1 (mutated on UPDATE)."""

from __future__ import annotations

import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import URL, make_dk, run
from webhook.validation import Context, apiurl

EXAMPLE = "https://ENVIRONMENTID.live.dynatrace.com/api"


@pytest.mark.parametrize(
    ("url", "missing"),
    [
        ("", up.E8),
        (EXAMPLE, up.E8),
        (URL, None),
        (" ", None),
        (EXAMPLE + "/", None),
        ("https://environmentid.live.dynatrace.com/api", None),
    ],
)
def test_no_api_url(url, missing):
    assert run(apiurl.no_api_url, make_dk(apiUrl=url)) == missing


def test_api_url_of_wrong_type_reads_as_missing():
    assert run(apiurl.no_api_url, make_dk(apiUrl=42)) == up.E8


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        (URL, None),
        ("https://abc12345.live.dynatrace.com:443/api", None),
        ("https://managed.example.com/e/7c1d5ab3-aaaa-bbbb-cccc-1234567890ab/api", None),
        ("http://activegate.dynatrace.svc:9999/e/abc/api", None),
        ("ftp://abc12345.live.dynatrace.com/api", None),  # v1.4 does not check the scheme
        ("//abc12345.live.dynatrace.com/api", None),
        ("abc12345.live.dynatrace.com/api", "it has no host name (write it as https://<host>/api)"),
        (
            "host:443/api",
            "it has no host name (write it as https://<host>/api)",
        ),  # scheme "host", no authority
        ("https:///api", "it has no host name (write it as https://<host>/api)"),
        ("https://.../api", "it has no host name (write it as https://<host>/api)"),
        ("https://abc12345.live.dynatrace.com", "it must end with /api"),
        ("https://abc12345.live.dynatrace.com/api/", "it must end with /api (remove the trailing slash)"),
        ("https://abc12345.live.dynatrace.com/api?x=1", "it must end with /api"),
        ("https://abc12345.live.dynatrace.com:http/api", 'it is not a URL: invalid port ":http" after host'),
        ("https://abc 12345.live.dynatrace.com/api", 'it is not a URL: invalid character " " in host name'),
        ("https://abc12345.live.dynatrace.com/%zz/api", 'it is not a URL: invalid URL escape "%zz"'),
        (
            "https://abc12345.live.dynatrace.com\t/api",
            "it is not a URL: net/url: invalid control character in URL",
        ),
    ],
)
def test_invalid_api_url(url, hint):
    message = run(apiurl.invalid_api_url, make_dk(apiUrl=url))
    if hint is None:
        assert message is None
    else:
        assert message == f"{up.E9}\nspec.apiUrl {apiurl.gourl.go_quote(url)}: {hint}."


def test_empty_api_url_fails_e8_and_e9():
    dk = make_dk(apiUrl="")
    assert run(apiurl.no_api_url, dk) == up.E8
    assert run(apiurl.invalid_api_url, dk) == up.E9


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://abc12345.apps.dynatrace.com/api", up.E10),
        ("https://abc.live.dynatrace.com/x.apps.y/api", up.E10),
        ("https://abc12345.live.dynatrace.com/api", None),
        ("https://apps.dynatrace.com/api", None),
    ],
)
def test_third_gen_api_url(url, message):
    assert run(apiurl.third_gen_api_url, make_dk(apiUrl=url)) == message


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (URL, URL, None),
        (URL, "https://other123.live.dynatrace.com/api", up.U1),
        (URL, URL.replace("abc12345", "ABC12345"), up.U1),  # the whole string is compared
        (URL, URL.replace("/api", ":443/api"), up.U1),
        ("", URL, up.U1),
    ],
)
def test_mutated_api_url(old, new, message):
    ctx = Context(operation="UPDATE", old=make_dk(apiUrl=old))
    assert run(apiurl.mutated_api_url, make_dk(apiUrl=new), ctx) == message


def test_mutated_api_url_needs_an_old_object():
    assert run(apiurl.mutated_api_url, make_dk(apiUrl="https://x.live.dynatrace.com/api")) is None
