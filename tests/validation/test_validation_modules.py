"""Modules of the operator installation: upstream's modules.json rules, and the checks that need a module."""

from __future__ import annotations

import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import FF, make_dk, run, without
from webhook.validation import Context, Modules, module_checks, oneagent

ALL = Modules()
NONE = Modules(**dict.fromkeys(Modules.__dataclass_fields__, False))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ALL),
        ("", ALL),
        ("not json", ALL),
        ("[]", ALL),
        ('"csiDriver"', ALL),
        ('{"csiDriver": "no"}', ALL),  # a type error: upstream falls back to the default
        ("{}", NONE),
        ("null", NONE),
        (
            '{"csiDriver": true}',
            Modules(**{**dict.fromkeys(Modules.__dataclass_fields__, False), "csi_driver": True}),
        ),
        (
            '{"csiDriver": false, "activeGate": true, "oneAgent": true, "extensions": true, "logMonitoring": true, '
            '"edgeConnect": true, "supportability": true, "kspm": true, "kubernetesMonitoring": true}',
            without("csi_driver"),
        ),
        ('{"CSIDRIVER": true, "kSpM": true}', Modules(**{**NONE.__dict__, "csi_driver": True, "kspm": True})),
        ('{"csiDriver": true, "csidriver": false}', NONE),  # the last duplicate wins
        ('{"csiDriver": null}', NONE),
        ('{"unknown": "whatever", "kspm": true}', Modules(**{**NONE.__dict__, "kspm": True})),
    ],
)
def test_parse(text, expected):
    assert Modules.parse(text) == expected


def test_json_round_trip_and_disabled():
    modules = without("csi_driver", "kspm")
    assert Modules.parse(modules.to_json()) == modules
    assert modules.disabled() == ["csiDriver", "kspm"]


def module(name):
    return up.MODULE.replace("<M>", name)


CNFS = {"oneAgent": {"cloudNativeFullStack": {}}}
HOSTMON = {"oneAgent": {"hostMonitoring": {}}}
CLASSIC = {"oneAgent": {"classicFullStack": {}}}
APPMON = {"oneAgent": {"applicationMonitoring": {}}}
AG = {"activeGate": {"capabilities": ["routing"]}}


@pytest.mark.parametrize(
    ("check", "spec", "modules", "message"),
    [
        # E1
        (module_checks.csi_module_disabled, CNFS, without("csi_driver"), up.E1),
        (module_checks.csi_module_disabled, CNFS, ALL, None),
        (module_checks.csi_module_disabled, HOSTMON, without("csi_driver"), None),
        (module_checks.csi_module_disabled, APPMON, without("csi_driver"), None),
        # E2: ActiveGate, unless KSPM is installed
        (module_checks.activegate_module_disabled, AG, without("active_gate", "kspm"), module("ActiveGate")),
        (module_checks.activegate_module_disabled, AG, without("active_gate"), None),
        (
            module_checks.activegate_module_disabled,
            {"extensions": {}},
            without("active_gate", "kspm"),
            module("ActiveGate"),
        ),
        (
            module_checks.activegate_module_disabled,
            {"activeGate": {"capabilities": []}},
            without("active_gate", "kspm"),
            None,
        ),
        (module_checks.activegate_module_disabled, {"kspm": {}}, without("active_gate", "kspm"), None),
        (module_checks.activegate_module_disabled, AG, ALL, None),
        # E3
        (
            module_checks.extensions_module_disabled,
            {"extensions": {}},
            without("extensions"),
            module("Extensions"),
        ),
        (module_checks.extensions_module_disabled, {"extensions": None}, without("extensions"), None),
        (module_checks.extensions_module_disabled, {"extensions": {}}, ALL, None),
        # E4
        (
            module_checks.log_monitoring_module_disabled,
            {"logMonitoring": {}},
            without("log_monitoring"),
            module("LogMonitoring"),
        ),
        (module_checks.log_monitoring_module_disabled, {}, without("log_monitoring"), None),
        # E5
        (module_checks.kspm_module_disabled, {"kspm": {}}, without("kspm"), module("KSPM")),
        (module_checks.kspm_module_disabled, {"kspm": {}}, ALL, None),
        # E6
        (module_checks.oneagent_module_disabled, CLASSIC, without("one_agent"), module("OneAgent")),
        (module_checks.oneagent_module_disabled, CNFS, without("one_agent"), module("OneAgent")),
        (module_checks.oneagent_module_disabled, HOSTMON, without("one_agent"), module("OneAgent")),
        (module_checks.oneagent_module_disabled, APPMON, without("one_agent"), None),
        # E19
        (
            oneagent.image_without_csi,
            {"oneAgent": {"applicationMonitoring": {"codeModulesImage": "r.io/cm:1"}}},
            without("csi_driver"),
            up.E19,
        ),
        (
            oneagent.image_without_csi,
            {"oneAgent": {"applicationMonitoring": {"codeModulesImage": ""}}},
            without("csi_driver"),
            None,
        ),
        (
            oneagent.image_without_csi,
            {"oneAgent": {"applicationMonitoring": {"codeModulesImage": "r.io/cm:1"}}},
            ALL,
            None,
        ),
        (
            oneagent.image_without_csi,
            {"oneAgent": {"cloudNativeFullStack": {"codeModulesImage": "r.io/cm:1"}}},
            without("csi_driver"),
            None,
        ),
    ],
)
def test_module_checks(check, spec, modules, message):
    assert run(check, make_dk(**spec), Context(modules=modules)) == message


RO = {FF + "injection-readonly-volume": "true"}


@pytest.mark.parametrize(
    ("annotations", "spec", "modules", "message"),
    [
        (RO, CNFS, without("csi_driver"), up.E11),
        (RO, {}, ALL, up.E11),  # no CSI mode at all
        (RO, CLASSIC, ALL, up.E11),
        (RO, CNFS, ALL, None),
        (RO, HOSTMON, ALL, None),
        (RO, APPMON, ALL, None),
        ({FF + "injection-readonly-volume": "True"}, {}, ALL, None),  # v1.4 compares the text with "true"
        ({}, {}, without("csi_driver"), None),
    ],
)
def test_readonly_csi_volume(annotations, spec, modules, message):
    check = module_checks.readonly_csi_volume_without_csi
    assert run(check, make_dk(annotations=annotations, **spec), Context(modules=modules)) == message
