"""E18 Istio, E21/E22 name, E25/E26 extensions, E30/W5 log monitoring, W4 deprecated flags, W6 extensions with
the same apiUrl, and our extra feature-flag warnings."""

from __future__ import annotations

import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import FF, URL, make_dk, run
from webhook.validation import Context, extensions, featureflags, istio, logmonitoring, name


@pytest.mark.parametrize(
    ("enable", "served", "message"),
    [
        (True, False, up.M18a),
        (True, True, None),
        (True, None, None),
        (False, False, None),
        (None, False, None),
    ],
)
def test_istio(enable, served, message):
    assert run(istio.istio_unavailable, make_dk(enableIstio=enable), Context(istio=served)) == message


@pytest.mark.parametrize(
    ("dk_name", "dns", "long"),
    [
        ("dynakube", None, None),
        ("a", None, None),
        ("a" * 40, None, None),
        ("a" * 41, None, up.E22 % 40),
        ("a" * 63, None, up.E22 % 40),
        ("a" * 64, up.E21, up.E22 % 40),
        ("Bad", up.E21, None),
        ("1abc", up.E21, None),  # DNS-1035 starts with a letter
        ("abc-", up.E21, None),
        ("a.b", up.E21, None),
        ("ab\n", up.E21, None),
        ("", None, None),  # the API server rejects a missing name
    ],
)
def test_name(dk_name, dns, long):
    dk = make_dk(dk_name)
    assert run(name.name_not_dns1035, dk) == dns
    assert run(name.name_too_long, dk) == long


EEC = {"imageRef": {"repository": "r.io/eec", "tag": "1"}}


@pytest.mark.parametrize(
    ("spec", "image", "storage"),
    [
        ({"extensions": {}, "templates": {"extensionExecutionController": EEC}}, None, None),
        ({"extensions": {}}, up.E25, None),
        (
            {
                "extensions": {},
                "templates": {"extensionExecutionController": {"imageRef": {"repository": "r"}}},
            },
            up.E25,
            None,
        ),
        (
            {
                "extensions": {},
                "templates": {
                    "extensionExecutionController": {
                        **EEC,
                        "useEphemeralVolume": True,
                        "persistentVolumeClaim": {},
                    }
                },
            },
            None,
            up.E26,
        ),
        (
            {
                "extensions": {},
                "templates": {"extensionExecutionController": {**EEC, "useEphemeralVolume": True}},
            },
            None,
            None,
        ),
        (
            {
                "extensions": {},
                "templates": {"extensionExecutionController": {**EEC, "persistentVolumeClaim": {}}},
            },
            None,
            None,
        ),
        (
            {
                "templates": {
                    "extensionExecutionController": {"useEphemeralVolume": True, "persistentVolumeClaim": {}}
                }
            },
            None,
            None,
        ),
    ],
)
def test_extension_controller(spec, image, storage):
    dk = make_dk(**spec)
    assert run(extensions.eec_image_missing, dk) == image
    assert run(extensions.eec_pvc_with_ephemeral_volume, dk) == storage


LM = {"imageRef": {"repository": "r.io/logmon", "tag": "1"}}


@pytest.mark.parametrize(
    ("spec", "missing", "ignored"),
    [
        ({"logMonitoring": {}, "templates": {"logMonitoring": LM}}, None, None),
        ({"logMonitoring": {}}, up.E30, None),
        ({"logMonitoring": {}, "templates": {"logMonitoring": {"imageRef": {"tag": "1"}}}}, up.E30, None),
        ({"logMonitoring": {}, "oneAgent": {"cloudNativeFullStack": {}}}, None, None),  # not standalone
        (
            {
                "logMonitoring": {},
                "oneAgent": {"cloudNativeFullStack": {}},
                "templates": {"logMonitoring": {}},
            },
            None,
            up.W5,
        ),
        ({"oneAgent": {"hostMonitoring": {}}, "templates": {"logMonitoring": LM}}, None, up.W5),
        ({"oneAgent": {"applicationMonitoring": {}}, "templates": {"logMonitoring": LM}}, None, None),
    ],
)
def test_log_monitoring(spec, missing, ignored):
    dk = make_dk(**spec)
    assert run(logmonitoring.missing_log_monitoring_image, dk) == missing
    assert run(logmonitoring.ignored_log_monitoring_template, dk) == ignored


@pytest.mark.parametrize(
    ("others", "message"),
    [
        ([make_dk("b", extensions={})], up.W6 % "b"),
        ([make_dk("b", extensions={}), make_dk("c", extensions={})], up.W6 % "b"),  # the first in list order
        ([make_dk("b")], None),
        ([make_dk("b", extensions={}, apiUrl="https://other.live.dynatrace.com/api")], None),
        ([make_dk("dynakube", extensions={})], None),  # itself
        ([make_dk("b", version="v1beta2", extensions={})], None),  # v1beta2 has no extensions
    ],
)
def test_same_api_url_for_extensions(others, message):
    check = extensions.same_api_url_for_extensions
    assert run(check, make_dk(extensions={}, apiUrl=URL), Context(dynakubes=others)) == message
    assert run(check, make_dk(apiUrl=URL), Context(dynakubes=others)) is None


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({FF + "oneagent-ignore-proxy": "true"}, up.M_W4 % (FF + "oneagent-ignore-proxy")),
        (
            {FF + "activegate-ignore-proxy": "true", FF + "oneagent-ignore-proxy": "false"},
            up.M_W4 % (FF + "oneagent-ignore-proxy") + up.M_W4 % (FF + "activegate-ignore-proxy"),
        ),
        ({FF + "oneagent-ignore-proxy": ""}, None),
        ({FF + "disable-activegate-updates": "true"}, None),  # not deprecated in v1.4
        ({}, None),
    ],
)
def test_deprecated_feature_flags(annotations, message):
    assert run(featureflags.deprecated_feature_flags, make_dk(annotations=annotations)) == message


@pytest.mark.parametrize(
    ("annotations", "later", "unknown"),
    [
        ({FF + "automatic-injection": "false", FF + "ignored-namespaces": "[]"}, None, None),
        ({FF + "oneagent-ignore-proxy": "true"}, None, None),  # upstream's warning covers it
        (
            {FF + "disable-activegate-updates": "true"},
            f"Deprecated feature flags in metadata.annotations: {FF}disable-activegate-updates "
            f"(use {FF}activegate-updates)",
            None,
        ),
        (
            {FF + "automatic-injektion": "false", FF + "zzz": "", "other.io/x": "1"},
            None,
            f"Unknown feature flags in metadata.annotations: {FF}automatic-injektion, {FF}zzz. They have no "
            "effect: check their spelling or remove them.",
        ),
    ],
)
def test_extra_feature_flag_warnings(annotations, later, unknown):
    dk = make_dk(annotations=annotations)
    assert run(featureflags.later_deprecated_feature_flags, dk) == later
    assert run(featureflags.unknown_feature_flags, dk) == unknown
