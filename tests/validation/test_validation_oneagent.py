"""spec.oneAgent: E7 version, E15 modes, E16 node selectors, E20 volume storage, W2 installer variables,
W3 host group; our extra network-zone warning."""

from __future__ import annotations

import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import URL, make_dk, run, without
from webhook.validation import Context, oneagent

OTHER_URL = "https://other123.live.dynatrace.com/api"


@pytest.mark.parametrize(
    ("version", "valid"),
    [
        ("1.0.0.20240101-000000", True),
        ("1.2.3-20240101-000000", True),  # "." in the pattern is any character
        ("1.303.0.20240930-183404", True),
        ("v1.0.0.20240101-000000", False),
        ("01.2.3.20240101-000000", False),  # semver: no leading zeros
        ("1.02.3.20240101-000000", False),
        ("1.0.0.2024010-000000", False),
        ("1.0.0.20240101-00000", False),
        ("1.0.0", False),
        ("1.0", False),
        ("latest", False),
        ("1.0.0.20240101-000000\n", False),
        ("1.0.0.20240101-000000-x", False),
        ("\uff11.0.0.20240101-000000", False),  # \d is ASCII only (a fullwidth digit one)
    ],
)
def test_version_format(version, valid):
    assert oneagent.version_valid(version) is valid


@pytest.mark.parametrize(
    ("one_agent", "message"),
    [
        ({"classicFullStack": {"version": "1.0"}}, up.E7),
        ({"cloudNativeFullStack": {"version": "1.0.0.20240101-000000"}}, None),
        ({"applicationMonitoring": {"version": "bad"}}, up.E7),
        ({"hostMonitoring": {"version": ""}}, None),
        ({"hostMonitoring": {}}, None),
        # precedence Classic > CNFS > AppMon > HostMon, even when the first has no version
        ({"classicFullStack": {}, "hostMonitoring": {"version": "bad"}}, None),
        (
            {
                "cloudNativeFullStack": {"version": "bad"},
                "hostMonitoring": {"version": "1.0.0.20240101-000000"},
            },
            up.E7,
        ),
    ],
)
def test_invalid_version(one_agent, message):
    assert run(oneagent.invalid_oneagent_version, make_dk(oneAgent=one_agent)) == message


@pytest.mark.parametrize(
    ("one_agent", "message"),
    [
        ({}, None),
        ({"cloudNativeFullStack": {}}, None),
        ({"cloudNativeFullStack": {}, "hostMonitoring": {}}, up.E15),
        ({"cloudNativeFullStack": {}, "hostMonitoring": None}, None),  # null is not present
        ({"classicFullStack": {}, "applicationMonitoring": {}, "hostMonitoring": {}}, up.E15),
    ],
)
def test_multiple_modes(one_agent, message):
    assert run(oneagent.conflicting_oneagent_modes, make_dk(oneAgent=one_agent)) == message


def host(name, selector=None, url=URL, mode="hostMonitoring"):
    spec = {} if selector is None else {"nodeSelector": selector}
    return make_dk(name, apiUrl=url, oneAgent={mode: spec})


def standalone(name, selector=None, url=URL):
    template = {"imageRef": {"repository": "r", "tag": "t"}}
    if selector is not None:
        template["nodeSelector"] = selector
    return make_dk(name, apiUrl=url, logMonitoring={}, templates={"logMonitoring": template})


@pytest.mark.parametrize(
    ("obj", "others", "conflicting"),
    [
        (host("a"), [host("b")], "b"),
        (host("a"), [host("b", url=OTHER_URL)], "b"),  # host agents conflict whatever their tenant
        (host("a", {"pool": "x"}), [host("b", {"pool": "y"})], None),
        (host("a", {"pool": "x"}), [host("b", {"pool": "x", "zone": "1"})], "b"),  # subset
        (host("a", {"pool": "x", "zone": "1"}), [host("b", {"pool": "x"})], "b"),
        (host("a", {"pool": "x"}), [host("b")], "b"),  # an empty selector overlaps everything
        (host("a"), [host("a")], None),  # itself
        (host("a"), [standalone("b")], "b"),
        (host("a"), [standalone("b", url=OTHER_URL)], None),
        (host("a"), [make_dk("b", oneAgent={"applicationMonitoring": {}})], None),
        (standalone("a"), [host("b")], "b"),
        (standalone("a"), [host("b", url=OTHER_URL)], None),
        (standalone("a"), [standalone("b")], "b"),
        (standalone("a", {"pool": "x"}), [standalone("b", {"pool": "y"})], None),
        (standalone("a", {"pool": "x"}), [host("b", {"pool": "y"}, mode="classicFullStack")], None),
        (host("a", mode="cloudNativeFullStack"), [host("c"), host("b")], "b, c"),
        (make_dk("a", oneAgent={"applicationMonitoring": {}}), [host("b")], None),  # not a host agent
    ],
)
def test_node_selector_conflict(obj, others, conflicting):
    message = run(oneagent.conflicting_node_selector, obj, Context(dynakubes=others))
    assert message == (None if conflicting is None else up.M16 % conflicting)


def test_node_selector_precedence_classic_over_hostmon():
    obj = make_dk("a", oneAgent={"classicFullStack": {"nodeSelector": {"pool": "x"}}, "hostMonitoring": {}})
    assert run(oneagent.conflicting_node_selector, obj, Context(dynakubes=[host("b", {"pool": "y"})])) is None


def env(value=None, **entry):
    return [
        {"name": "ONEAGENT_ENABLE_VOLUME_STORAGE", **({"value": value} if value is not None else {}), **entry}
    ]


@pytest.mark.parametrize(
    ("one_agent", "csi", "message"),
    [
        ({"cloudNativeFullStack": {"env": env("false")}}, True, up.E20),
        ({"cloudNativeFullStack": {"env": env("true")}}, True, None),
        ({"cloudNativeFullStack": {"env": env("TRUE")}}, True, up.E20),
        ({"cloudNativeFullStack": {"env": env(valueFrom={"secretKeyRef": {}})}}, True, up.E20),
        ({"cloudNativeFullStack": {"env": [{"name": "OTHER", "value": "false"}]}}, True, None),
        ({"cloudNativeFullStack": {"env": env("false")}}, False, up.E20),
        ({"hostMonitoring": {"env": env("false")}}, True, up.E20),
        ({"hostMonitoring": {"env": env("false")}}, False, None),
        ({"classicFullStack": {"env": env("false")}}, True, None),
        # the first entry of that name decides
        ({"cloudNativeFullStack": {"env": env("true") + env("false")}}, True, None),
    ],
)
def test_volume_storage(one_agent, csi, message):
    ctx = Context(modules=without() if csi else without("csi_driver"))
    assert run(oneagent.conflicting_volume_storage, make_dk(oneAgent=one_agent), ctx) == message


@pytest.mark.parametrize(
    ("one_agent", "message"),
    [
        ({"classicFullStack": {"env": [{"name": "ONEAGENT_INSTALLER_SCRIPT_URL", "value": "x"}]}}, up.W2),
        ({"hostMonitoring": {"env": [{"name": "ONEAGENT_INSTALLER_TOKEN"}]}}, up.W2),
        ({"cloudNativeFullStack": {"env": [{"name": "ONEAGENT_INSTALLER_TOKEN", "value": ""}]}}, up.W2),
        ({"applicationMonitoring": {"env": [{"name": "ONEAGENT_INSTALLER_TOKEN"}]}}, None),
        ({"cloudNativeFullStack": {"env": [{"name": "OTHER"}]}}, None),
        # env precedence CNFS > Classic > HostMon
        (
            {"cloudNativeFullStack": {}, "hostMonitoring": {"env": [{"name": "ONEAGENT_INSTALLER_TOKEN"}]}},
            None,
        ),
    ],
)
def test_installer_variables(one_agent, message):
    assert run(oneagent.installer_variables, make_dk(oneAgent=one_agent)) == message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set-host-group=prod"], up.W3),
        (["--set-host-group="], None),
        (["--set-host-group"], None),
        (["--set-host-group=a=b"], None),  # three parts
        (["--set-host-group=a=b", "--set-host-group=prod"], up.W3),
        (["--set-host-group=", "--set-host-group=prod"], None),  # the first two-part entry decides
        (["--set-app-log-content-access=true"], None),
    ],
)
def test_host_group_argument(args, message):
    assert (
        run(oneagent.host_group_argument, make_dk(oneAgent={"classicFullStack": {"args": args}})) == message
    )


def test_host_group_argument_ignores_the_host_group_field():
    dk = make_dk(oneAgent={"hostMonitoring": {"args": ["--set-host-group=a"]}, "hostGroup": "a"})
    assert run(oneagent.host_group_argument, dk) == up.W3


@pytest.mark.parametrize(
    ("zone", "bad"), [("eu-1", None), ("", None), ("a\nb", "newline"), ("a\tb", "tab"), ("a\x00", "NUL")]
)
def test_network_zone_extra_warning(zone, bad):
    message = run(oneagent.invalid_network_zone, make_dk(networkZone=zone))
    if bad is None:
        assert message is None
    else:
        assert message == (
            f"spec.networkZone {zone!r} contains {bad}, which a network zone name cannot hold. "
            "Remove those characters from spec.networkZone."
        )
