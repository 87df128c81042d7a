"""EdgeConnect validation of v1.4 (C1-C6, ``edgeconnect.py``), the handler's answers; v1.10.2's checks, which
v1alpha1 and v1alpha2 objects get, are in ``test_validation_edgeconnect_v110.py``."""

from __future__ import annotations

import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import make_ec, respond, review_of, run, without
from webhook.validation import Context, edgeconnect

C2 = (
    up.C2
    + "\nIt must be the host of your environment, e.g. <environment-id>.apps.dynatrace.com (no path or port)."
)


def test_module_disabled():
    assert (
        run(edgeconnect.module_disabled_check, make_ec(), Context(modules=without("edge_connect"))) == up.C1
    )
    assert run(edgeconnect.module_disabled_check, make_ec(), Context()) is None


@pytest.mark.parametrize(
    ("server", "valid"),
    [
        ("abc12345.apps.dynatrace.com", True),
        ("https://abc12345.apps.dynatrace.com", True),  # v1.4 accepts a scheme
        ("abc.dev.apps.dynatracelabs.com", True),
        ("abc.sprint.apps.dynatracelabs.com", True),
        ("abc..apps.dynatrace.com", True),  # empty parts are not counted, "abc" makes four
        ("apps.dynatrace.com", False),
        (".apps.dynatrace.com", False),
        ("dev.apps.dynatracelabs.com", False),
        (".dev.apps.dynatracelabs.com", False),
        ("abc.apps.dynatracelabs.com", False),
        ("abc12345.apps.dynatrace.com/", False),
        ("abc12345.apps.dynatrace.com:443", False),
        ("abc12345.apps.dynatrace.com/path", False),
        ("abc12345.live.dynatrace.com", False),
        ("", False),
    ],
)
def test_api_server(server, valid):
    assert run(edgeconnect.invalid_api_server, make_ec(apiServer=server)) == (None if valid else C2)


@pytest.mark.parametrize(("length", "message"), [(40, None), (41, up.C3 % 40), (0, None)])
def test_name_too_long(length, message):
    assert run(edgeconnect.name_too_long, make_ec("e" * length)) == message


@pytest.mark.parametrize(
    ("spec", "host_patterns", "automation"),
    [
        ({"oauth": {"provisioner": True}}, up.C4, None),
        ({"oauth": {"provisioner": True}, "hostPatterns": []}, up.C4, None),
        ({"oauth": {"provisioner": True}, "hostPatterns": ["*.internal"]}, None, None),
        ({"oauth": {"provisioner": True}, "kubernetesAutomation": {"enabled": True}}, None, None),
        ({"oauth": {"provisioner": False}}, None, None),
        ({"kubernetesAutomation": {"enabled": True}}, None, up.C6),
        ({"kubernetesAutomation": {"enabled": True}, "oauth": {"provisioner": False}}, None, up.C6),
        ({"kubernetesAutomation": {"enabled": False}}, None, None),
    ],
)
def test_provisioner_and_automation(spec, host_patterns, automation):
    ec = make_ec(**spec)
    assert run(edgeconnect.host_patterns_missing, ec) == host_patterns
    assert run(edgeconnect.automation_without_provisioner, ec) == automation


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, None),
        ({"serviceAccountName": "custom"}, None),
        ({"serviceAccountName": None}, None),
        ({"serviceAccountName": ""}, up.C5),
    ],
)
def test_service_account(spec, message):
    assert run(edgeconnect.invalid_service_account, make_ec(**spec)) == message


def test_handler_denies_with_the_edgeconnect_summary():
    """An object of a version v1.10.2 does not serve gets v1.4's checks (v1alpha1/v1alpha2: v1.10.2's)."""
    bad = make_ec(
        "e" * 41,
        version="v1alpha0",
        apiServer="x.example.com",
        serviceAccountName="",
        kubernetesAutomation={"enabled": True},
    )
    response = respond(
        review_of("CREATE", bad, kind="EdgeConnect", version="v1alpha0"), modules=without("edge_connect")
    )
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "Forbidden"
    assert response["status"]["message"] == (
        f"\n5 error(s) found in the EdgeConnect\n 1. {up.C1}\n 2. {C2}\n 3. {up.C3 % 40}\n 4. {up.C5}\n 5. {up.C6}"
    )
    assert "warnings" not in response


def test_handler_update_checks_only_the_new_object():
    good, bad = make_ec(version="v1alpha0"), make_ec(version="v1alpha0", apiServer="bad")
    assert respond(review_of("UPDATE", good, bad, kind="EdgeConnect"))["allowed"] is True
    response = respond(review_of("UPDATE", bad, good, kind="EdgeConnect"))
    assert response["status"]["message"] == f"\n1 error(s) found in the EdgeConnect\n 1. {C2}"


@pytest.mark.parametrize(
    ("operation", "obj", "allowed"),
    [("DELETE", None, True), ("CONNECT", None, True), ("CREATE", None, False)],
)
def test_handler_other_requests(operation, obj, allowed):
    response = respond(review_of(operation, obj, kind="EdgeConnect"))
    assert response["allowed"] is allowed
    if not allowed:
        assert response["status"]["code"] == 400
        assert response["status"]["message"].startswith("\n1 error(s) found in the EdgeConnect\n 1. ")
