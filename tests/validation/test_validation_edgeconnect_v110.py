"""EdgeConnect validation of v1.10.2 (``edgeconnect_v110.py``): each check with an error and a valid case, the
order and words of the summary, valid v1.10.2 EdgeConnects, and which objects get which release's checks."""

from __future__ import annotations

import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import EC_OAUTH, make_ec, respond, review_of, run, without
from webhook.validation import Context, dynakube, edgeconnect, edgeconnect_v110, validate_edgeconnect

# upstream's words (pkg/api/validation/edgeconnect/{api_server,oauth}.go@v1.10.2), written out here on purpose
INVALID_API_SERVER = (
    "The EdgeConnect's specification has an invalid apiServer value set.\n"
    "\tMake sure you correctly specify the apiServer in your custom resource.\n\t"
)
PROTOCOL = (
    "The EdgeConnect's specification has an invalid apiServer value set.\n\tShould NOT include protocol.\n"
    "\tMake sure you correctly specify the apiServer in your custom resource.\n\t"
)
SUFFIX = (
    "The EdgeConnect's specification has an invalid apiServer value set.\n\tExample valid values:\n"
    '\t-  For prod: "<tenantID>.apps.dynatrace.com"\n\t-  For dev: "<tenantID>.dev.apps.dynatracelabs.com"\n'
    '\t-  For sprint: "<tenantID>.sprint.apps.dynatracelabs.com"\n'
    "\tMake sure you correctly specify the apiServer in your custom resource.\n\t"
)
INVALID_ENDPOINT = (
    "The EdgeConnect's specification has an invalid oauth.endpoint value set.\n"
    "\tMake sure you correctly specify the endpoint in your custom resource.\n\t"
)
NO_HTTPS = (
    "The EdgeConnect's specification has an invalid oauth.endpoint value set.\n\tShould include 'https' protocol.\n"
    "\tMake sure you correctly specify the oauth.endpoint in your custom resource.\n\t"
)
UNKNOWN_SSO = (
    "The EdgeConnect's specification has an invalid oauth.endpoint value set.\n\tExample valid values:\n"
    '\t-  For prod: "sso.dynatrace.com"\n\t-  For dev: "sso-dev.dynatracelabs.com",\n'
    '\t-  For sprint: "sso.sprint.dynatracelabs.com"\n'
    "\tMake sure you correctly specify the endpoint in your custom resource.\n\t"
)


def test_messages_are_upstreams():
    assert edgeconnect_v110.INVALID_API_SERVER == INVALID_API_SERVER == up.C2
    assert edgeconnect_v110.PROTOCOL_IN_API_SERVER == PROTOCOL
    assert edgeconnect_v110.API_SERVER_WITHOUT_ALLOWED_SUFFIX == SUFFIX
    assert edgeconnect_v110.INVALID_OAUTH_ENDPOINT == INVALID_ENDPOINT
    assert edgeconnect_v110.OAUTH_ENDPOINT_WITHOUT_HTTPS == NO_HTTPS
    assert edgeconnect_v110.UNKNOWN_SSO_SERVER == UNKNOWN_SSO


def test_order_is_upstreams():
    assert [c.__name__ for c in edgeconnect_v110.CHECKS] == [
        "module_disabled_check",  # isModuleDisabled
        "api_server_protocol_set",  # checkAPIServerProtocolNotSet
        "api_server_without_allowed_suffix",  # isAllowedSuffixAPIServer
        "name_too_long",  # nameTooLong
        "host_patterns_missing",  # checkHostPatternsValue
        "invalid_service_account",  # isInvalidServiceName
        "automation_without_provisioner",  # automationRequiresProvisionerValidation
        "invalid_oauth_endpoint",  # isValidSSOServerURL
        "oauth_endpoint_without_https",  # checkSSOServerProtocol
        "unknown_sso_server",  # isAllowedSSOServer
    ]


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("abc12345.apps.dynatrace.com", None),
        ("abc.dev.apps.dynatracelabs.com", None),
        ("", None),  # parses, no scheme (the suffix check reports it)
        ("https://abc12345.apps.dynatrace.com", PROTOCOL),  # v1.4 accepted a scheme
        ("HTTP://abc12345.apps.dynatrace.com", PROTOCOL),
        ("abc12345.apps.dynatrace.com:443", PROTOCOL),  # Go reads "abc12345.apps.dynatrace.com" as the scheme
        ("abc12345.apps.dynatrace.com/%zz", INVALID_API_SERVER),  # a bad escape does not parse
        ("abc12345.apps.dynatrace.com\n", INVALID_API_SERVER),
        (
            "1abc.apps.dynatrace.com:443",
            INVALID_API_SERVER,
        ),  # no scheme (digit first), colon in first segment
    ],
)
def test_api_server_protocol(server, message):
    assert run(edgeconnect_v110.api_server_protocol_set, make_ec(apiServer=server)) == message


@pytest.mark.parametrize(
    ("server", "valid"),
    [
        ("abc12345.apps.dynatrace.com", True),
        ("abc.dev.apps.dynatracelabs.com", True),
        ("abc.sprint.apps.dynatracelabs.com", True),
        ("x.apps.dynatrace.com", True),
        ("abc..apps.dynatrace.com", True),
        ("abc12345.apps.dynatrace.com:443", True),  # the host name counts (the protocol check denies it)
        ("-.apps.dynatrace.com", True),
        ("apps.dynatrace.com", False),
        (".apps.dynatrace.com", False),  # not longer than the suffix
        ("dev.apps.dynatracelabs.com", False),
        ("abc.apps.dynatracelabs.com", False),
        ("abc12345.apps.dynatrace.com/", False),  # the host is not the whole value
        ("abc12345.apps.dynatrace.com/path", False),
        ("abc12345.apps.dynatrace.com?q", False),
        ("user@abc12345.apps.dynatrace.com", False),  # userinfo
        ("https://abc12345.apps.dynatrace.com", False),
        ("abc12345.apps.dynatrace.com:x", False),  # a non-numeric port does not parse
        ("abc12345.live.dynatrace.com", False),
        ("", False),
    ],
)
def test_api_server_suffix(server, valid):
    check = edgeconnect_v110.api_server_without_allowed_suffix
    assert run(check, make_ec(apiServer=server)) == (None if valid else SUFFIX)


@pytest.mark.parametrize(
    ("endpoint", "invalid", "no_https", "unknown"),
    [
        ("https://sso.dynatrace.com/sso/oauth2/token", None, None, None),
        ("https://sso-dev.dynatracelabs.com/sso/oauth2/token", None, None, None),
        ("https://sso.sprint.dynatracelabs.com/sso/oauth2/token", None, None, None),
        ("HTTPS://sso.dynatrace.com", None, None, None),  # Go lower-cases the scheme
        ("https://sso.dynatrace.com", None, None, None),
        ("http://sso.dynatrace.com/sso/oauth2/token", None, NO_HTTPS, None),
        ("sso.dynatrace.com/sso/oauth2/token", None, NO_HTTPS, UNKNOWN_SSO),  # no scheme, no host
        ("", None, NO_HTTPS, UNKNOWN_SSO),  # the CRD requires it; absent reads as ""
        ("https://sso.dynatrace.com:443/sso", None, None, UNKNOWN_SSO),  # the host with its port is compared
        ("https://SSO.dynatrace.com", None, None, UNKNOWN_SSO),
        ("https://user@sso.dynatrace.com", None, None, None),  # userinfo is not the host
        ("https://sso.dynatrace.com.evil.example", None, None, UNKNOWN_SSO),
        ("https://sso.dynatrace.com/%zz", INVALID_ENDPOINT, None, None),  # the other two pass when it fails
        ("https://sso.dynatrace.com:x", INVALID_ENDPOINT, None, None),
    ],
)
def test_oauth_endpoint(endpoint, invalid, no_https, unknown):
    ec = make_ec(oauth={**EC_OAUTH, "endpoint": endpoint})
    assert run(edgeconnect_v110.invalid_oauth_endpoint, ec) == invalid
    assert run(edgeconnect_v110.oauth_endpoint_without_https, ec) == no_https
    assert run(edgeconnect_v110.unknown_sso_server, ec) == unknown


def test_oauth_absent():
    ec = make_ec()
    del ec["spec"]["oauth"]
    assert run(edgeconnect_v110.invalid_oauth_endpoint, ec) is None
    assert run(edgeconnect_v110.oauth_endpoint_without_https, ec) == NO_HTTPS
    assert run(edgeconnect_v110.unknown_sso_server, ec) == UNKNOWN_SSO


@pytest.mark.parametrize(
    ("version", "spec", "message"),
    [
        ("v1alpha2", {}, None),  # v1alpha2's pointer: absent means dynatrace-edgeconnect
        ("v1alpha2", {"serviceAccountName": None}, None),
        ("v1alpha2", {"serviceAccountName": "custom"}, None),
        ("v1alpha2", {"serviceAccountName": ""}, up.C5),
        ("v1alpha1", {"serviceAccountName": "dynatrace-edgeconnect"}, None),
        ("v1alpha1", {}, up.C5),  # v1alpha1's plain string converts to "" (the CRD default fills it in first)
        ("v1alpha1", {"serviceAccountName": ""}, up.C5),
    ],
)
def test_service_account(version, spec, message):
    ec = make_ec(version=version, **spec)
    assert run(edgeconnect_v110.invalid_service_account, ec) == message


def test_unchanged_checks_are_v14s():
    for check in (
        "module_disabled_check",
        "name_too_long",
        "host_patterns_missing",
        "automation_without_provisioner",
    ):
        assert getattr(edgeconnect, check) in edgeconnect_v110.CHECKS


# valid v1.10.2 EdgeConnects, each passing every check (upstream's testdata among them)
VALID = [
    {},
    {
        "apiServer": "abc.dev.apps.dynatracelabs.com",
        "oauth": {**EC_OAUTH, "endpoint": "https://sso-dev.dynatracelabs.com/sso/oauth2/token"},
    },
    {
        "apiServer": "abc.sprint.apps.dynatracelabs.com",
        "oauth": {**EC_OAUTH, "endpoint": "https://sso.sprint.dynatracelabs.com/sso/oauth2/token"},
    },
    {"oauth": {**EC_OAUTH, "provisioner": True}, "hostPatterns": ["*.internal.example.com"]},
    {"oauth": {**EC_OAUTH, "provisioner": True}, "kubernetesAutomation": {"enabled": True}},
    {"kubernetesAutomation": {"enabled": False}, "serviceAccountName": "custom", "replicas": 2},
    {
        "apiServer": "foo.dev.apps.dynatracelabs.com",
        "oauth": {
            "clientSecret": "secret",
            "endpoint": "https://sso.dynatrace.com/url",
            "provisioner": True,
            "resource": "resource",
        },
        "hostPatterns": ["foo.bar.baz"],
        "hostRestrictions": ["foo", "bar"],
        "kubernetesAutomation": {"enabled": True},
        "serviceAccountName": "default",
        "proxy": {"authRef": "baz", "host": "foo", "noProxy": "bar", "port": 12345},
    },
]


@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
@pytest.mark.parametrize("spec", VALID)
def test_valid_edgeconnects_pass(version, spec):
    spec = {"serviceAccountName": "dynatrace-edgeconnect", **spec}
    ec = make_ec("e" * 40, version=version, **spec)
    assert dynakube.edgeconnect_checks_for(ec) == edgeconnect_v110.CHECKS
    result = validate_edgeconnect(ec, Context())
    assert result.errors == [] and result.warnings == []
    response = respond(review_of("CREATE", ec, kind="EdgeConnect", version=version))
    assert response["allowed"] is True


@pytest.mark.parametrize(
    ("obj", "release"),
    [
        ({"apiVersion": "dynatrace.com/v1alpha1"}, "v1.10.2"),
        ({"apiVersion": "dynatrace.com/v1alpha2"}, "v1.10.2"),
        ({"apiVersion": "dynatrace.com/v1alpha3"}, "v1.4"),
        ({}, "v1.4"),
    ],
)
def test_checks_for(obj, release):
    expected = edgeconnect_v110.CHECKS if release == "v1.10.2" else edgeconnect.CHECKS
    assert dynakube.edgeconnect_checks_for(obj) == expected


@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
def test_handler_denies_with_every_error_in_order(version):
    bad = make_ec(
        "e" * 41,
        version=version,
        apiServer="https://x.example.com",
        serviceAccountName="",
        kubernetesAutomation={"enabled": True},
        oauth={**EC_OAUTH, "endpoint": "http://sso.example.com/token"},
    )
    response = respond(
        review_of("CREATE", bad, kind="EdgeConnect", version=version), modules=without("edge_connect")
    )
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    messages = [up.C1, PROTOCOL, SUFFIX, up.C3 % 40, up.C5, up.C6, NO_HTTPS, UNKNOWN_SSO]
    assert response["status"]["message"] == f"\n{len(messages)} error(s) found in the EdgeConnect" + "".join(
        f"\n {i}. {m}" for i, m in enumerate(messages, 1)
    )
    assert "warnings" not in response


def test_handler_update_checks_only_the_new_object():
    good, bad = make_ec(), make_ec(apiServer="bad")
    assert respond(review_of("UPDATE", good, bad, kind="EdgeConnect", version="v1alpha2"))["allowed"] is True
    response = respond(review_of("UPDATE", bad, good, kind="EdgeConnect", version="v1alpha2"))
    assert response["status"]["message"] == f"\n1 error(s) found in the EdgeConnect\n 1. {SUFFIX}"


def test_explicit_release():
    ec = make_ec(apiServer="https://abc12345.apps.dynatrace.com")
    assert validate_edgeconnect(ec, Context(), edgeconnect.CHECKS).errors == []
    assert validate_edgeconnect(ec, Context()).errors == [PROTOCOL, SUFFIX]
