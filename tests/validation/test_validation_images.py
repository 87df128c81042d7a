"""Custom images (E24): go-containerregistry's reference parsing, and images on the environment's own host."""

from __future__ import annotations

import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import URL, make_dk, run
from webhook.validation import images

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("nginx", "index.docker.io/library/nginx:latest"),
        ("docker.io/dynatrace/oneagent:1.2", "index.docker.io/dynatrace/oneagent:1.2"),
        ("registry.example.com/dt/oneagent:1.2.3", "registry.example.com/dt/oneagent:1.2.3"),
        ("localhost:5000/oneagent", "localhost:5000/oneagent:latest"),
        ("10.0.0.5:5000/oa:1", "10.0.0.5:5000/oa:1"),
        (f"registry.example.com/oa@{DIGEST}", f"registry.example.com/oa@{DIGEST}"),
        (f"registry.example.com/oa:1@{DIGEST}", f"registry.example.com/oa@{DIGEST}"),
        (
            "https://abc.live.dynatrace.com/linux/oneagent:latest",
            "https://abc.live.dynatrace.com/linux/oneagent:latest",
        ),
    ],
)
def test_parse_reference(text, name):
    assert images.parse_reference(text).name == name


@pytest.mark.parametrize(
    "text",
    [
        "BOOM",  # upper case
        "a",  # a repository has 2 characters at least
        "nginx:",
        "nginx:" + "t" * 129,
        "nginx:bad!tag",
        "reg istry.example.com/oa:1",
        "registry.example.com/oa@sha256:abc",
        "registry.example.com/oa@md5:" + "0" * 32,
        "a@b@c",
        "",
    ],
)
def test_unparsable_references(text):
    with pytest.raises(images.BadReference):
        images.parse_reference(text)


def ag(image):
    return {"activeGate": {"capabilities": ["routing"], "image": image}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ag("registry.example.com/dt/activegate:1.2"), None),
        (ag("BOOM"), up.M24b % "ActiveGate"),
        ({"oneAgent": {"classicFullStack": {"image": "a"}}}, up.M24b % "OneAgent"),
        (
            {**ag("BOOM"), "oneAgent": {"hostMonitoring": {"image": "a"}}},
            up.M24b % "ActiveGate" + ";" + up.M24b % "OneAgent",
        ),
        (ag("https://abc12345.live.dynatrace.com/linux/activegate:latest"), up.M24a % "ActiveGate"),
        (
            {
                "oneAgent": {
                    "cloudNativeFullStack": {
                        "image": "https://abc12345.live.dynatrace.com/linux/oneagent:raw"
                    }
                }
            },
            up.M24a % "OneAgent",
        ),
        (ag("abc12345.live.dynatrace.com/linux/activegate:latest"), None),  # no "//": its URL host is ""
        # v1.4 panics here (500); the check means "is this the environment's host": it is not
        (ag("10.0.0.5:5000/activegate:1"), None),
        # image precedence Classic > HostMon > CNFS; applicationMonitoring has no image
        (
            {"oneAgent": {"classicFullStack": {"image": "ok/image:1"}, "hostMonitoring": {"image": "BOOM"}}},
            None,
        ),
        ({"oneAgent": {"applicationMonitoring": {"image": "BOOM"}}}, None),
        (ag(""), None),
    ],
)
def test_tenant_image(spec, message):
    assert run(images.tenant_image, make_dk(**spec)) == message


@pytest.mark.parametrize(
    ("api_url", "image", "message"),
    [
        # an apiUrl without "//" authority has host "": every parsable image matches it, as in v1.4
        ("abc12345.live.dynatrace.com/api", "registry.example.com/ag:1", up.M24a % "ActiveGate"),
        ("", "registry.example.com/ag:1", up.M24a % "ActiveGate"),
        # our answer where v1.4 panics: the registry (with port) is compared with the apiUrl's host
        ("https://10.0.0.5:5000/api", "10.0.0.5:5000/activegate:1", up.M24a % "ActiveGate"),
        ("https://10.0.0.5:5001/api", "10.0.0.5:5000/activegate:1", None),
        (URL, "registry.example.com/ag:1", None),
    ],
)
def test_tenant_host(api_url, image, message):
    assert run(images.tenant_image, make_dk(apiUrl=api_url, **ag(image))) == message
