"""/validate: every check with its own table, the summary format, and the handler end to end."""

from __future__ import annotations

import copy
import logging
from typing import Any

import orjson
import pytest

from webhook import validation
from webhook.admission import handlers
from webhook.admission.review import decode, encode
from webhook.selectors import syntax_errors
from webhook.state.store import DYNAKUBES, NAMESPACES, Store
from webhook.validation import activegate, apiurl, featureflags, name, namespaces, oneagent
from webhook.validation.base import Context

NS = "dynatrace"
GOOD_URL = "https://abc12345.live.dynatrace.com/api"
FF = "feature.dynatrace.com/"


def make_dk(
    dk_name: str = "dynakube",
    *,
    version: str = "v1beta2",
    annotations: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    spec.setdefault("apiUrl", GOOD_URL)
    meta: dict[str, Any] = {"name": dk_name, "namespace": NS}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": f"dynatrace.com/{version}", "kind": "DynaKube", "metadata": meta, "spec": spec}


def make_ns(ns_name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns_name, "labels": labels}}


def cnfs(selector: Any = None) -> dict[str, Any]:
    return {"cloudNativeFullStack": {} if selector is None else {"namespaceSelector": selector}}


CTX = Context()


def run(check, dynakube, ctx=CTX):
    before = copy.deepcopy(dynakube)
    result = check(dynakube, ctx)
    assert dynakube == before
    assert result is None or (isinstance(result, str) and result)
    return result


# --- apiUrl ---


@pytest.mark.parametrize(
    ("url", "missing", "invalid"),
    [
        (GOOD_URL, None, None),
        ("https://abc12345.live.dynatrace.com:443/api", None, None),
        ("https://managed.example.com/e/7c1d5ab3-aaaa-bbbb-cccc-1234567890ab/api", None, None),
        ("http://activegate.dynatrace.svc:9999/e/abc/api", None, None),
        ("", "is missing", None),
        ("   ", "is missing", None),
        (apiurl.EXAMPLE_API_URL, "still the example", None),
        ("https://abc12345.live.dynatrace.com", None, "must end with /api"),
        ("https://abc12345.live.dynatrace.com/api/", None, "remove the trailing slash"),
        ("https://abc12345.live.dynatrace.com/api?x=1", None, "must end with /api"),
        ("abc12345.live.dynatrace.com/api", None, "must start with https://"),
        ("ftp://abc12345.live.dynatrace.com/api", None, "must start with https://"),
        ("https:///api", None, "no host name"),
        ("https://.dynatrace.com/api", None, "no host name"),
        ("https://abc12345.live.dynatrace.com:99999/api", None, "is not a URL"),
        ("https://abc12345.live.dynatrace.com:http/api", None, "is not a URL"),
        ("https://abc 12345.live.dynatrace.com/api", None, "whitespace or control"),
        ("https://abc12345.live.dynatrace.com/api\n", None, "whitespace or control"),
        ("https://[::1/api", None, "is not a URL"),
    ],
)
def test_api_url(url, missing, invalid):
    dynakube = make_dk(apiUrl=url)
    for check, expected in ((apiurl.no_api_url, missing), (apiurl.invalid_api_url, invalid)):
        message = run(check, dynakube)
        if expected is None:
            assert message is None
        else:
            assert expected in message
            assert "spec.apiUrl" in message


def test_api_url_of_wrong_type_is_missing():
    assert "is missing" in run(apiurl.no_api_url, make_dk(apiUrl=12345))


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (GOOD_URL, GOOD_URL, False),
        (GOOD_URL, "https://abc12345.live.dynatrace.com:443/api", False),
        (GOOD_URL, "https://ABC12345.live.dynatrace.com/api", False),  # host names are case-insensitive
        (GOOD_URL, "https://abc12345.sprint.dynatracelabs.com/api", False),  # same tenant, other cluster
        (GOOD_URL, "https://xyz98765.live.dynatrace.com/api", True),
        (GOOD_URL, "", True),
        ("", GOOD_URL, False),  # an old object without a tenant may get one
        ("not a url", GOOD_URL, False),
    ],
)
def test_tenant_is_immutable(old, new, error):
    ctx = Context(operation="UPDATE", old=make_dk(apiUrl=old))
    message = run(apiurl.tenant_changed, make_dk(apiUrl=new), ctx)
    assert (message is not None) is error
    if error:
        assert "abc12345" in message and "immutable" in message


def test_tenant_check_needs_an_old_object():
    assert run(apiurl.tenant_changed, make_dk(apiUrl="https://other.live.dynatrace.com/api")) is None


@pytest.mark.parametrize(
    ("url", "tenant"),
    [
        (GOOD_URL, "abc12345"),
        ("https://ABC.example.com:8443/api", "abc"),
        ("https://localhost/api", "localhost"),
        ("nonsense", ""),
        ("https://[::1/api", ""),
    ],
)
def test_tenant_of(url, tenant):
    assert apiurl.tenant_of(url) == tenant


# --- name ---


@pytest.mark.parametrize(
    ("dk_name", "dns", "long"),
    [
        ("dynakube", False, False),
        ("prod-eu-1", False, False),
        ("a", False, False),
        ("a" * 40, False, False),
        ("a" * 41, False, True),
        ("a" * 64, True, True),
        ("1dynakube", True, False),
        ("Dynakube", True, False),
        ("dyna_kube", True, False),
        ("dynakube-", True, False),
        ("dyna.kube", True, False),
        ("", False, False),  # no name: the API server rejects it
    ],
)
def test_name(dk_name, dns, long):
    dynakube = make_dk(dk_name)
    assert (run(name.name_not_dns1035, dynakube) is not None) is dns
    assert (run(name.name_too_long, dynakube) is not None) is long


# --- OneAgent modes and network zone ---


@pytest.mark.parametrize(
    ("one_agent", "error"),
    [
        (None, False),
        ({}, False),
        (cnfs(), False),
        ({"classicFullStack": {}}, False),
        ({"cloudNativeFullStack": {}, "applicationMonitoring": {}}, True),
        ({"hostMonitoring": {}, "classicFullStack": {}, "applicationMonitoring": {}}, True),
        ({"cloudNativeFullStack": {}, "applicationMonitoring": None}, False),  # null is not set
        ("oops", False),
    ],
)
def test_conflicting_modes(one_agent, error):
    dynakube = make_dk(oneAgent=one_agent) if one_agent is not None else make_dk()
    message = run(oneagent.conflicting_oneagent_modes, dynakube)
    assert (message is not None) is error
    if error:
        assert "only one OneAgent mode" in message


@pytest.mark.parametrize(
    ("zone", "bad"),
    [
        ("eu-west-zone-a", []),
        ("zone with spaces", []),
        ("", []),
        ("zone\n", ["newline"]),
        ("a\tb", ["tab"]),
        ("a\rb", ["carriage return"]),
        ("a\x00b", ["NUL"]),
        ("\n\t", ["newline", "tab"]),
    ],
)
def test_network_zone(zone, bad):
    message = run(oneagent.invalid_network_zone, make_dk(networkZone=zone))
    if not bad:
        assert message is None
    else:
        for label in bad:
            assert label in message


# --- ActiveGate ---


@pytest.mark.parametrize(
    ("active_gate", "invalid", "duplicate", "memory_warning"),
    [
        (None, None, None, False),
        ({"capabilities": ["routing"]}, None, None, True),
        (
            {"capabilities": list(activegate.CAPABILITIES), "resources": {"limits": {"memory": "1.5Gi"}}},
            None,
            None,
            False,
        ),
        ({"capabilities": []}, None, None, False),
        ({"capabilities": ["routing", "data-ingest"]}, "'data-ingest'", None, True),
        ({"capabilities": ["kubemon", 3]}, "'kubemon', 3", None, True),
        ({"capabilities": "routing"}, "must be a list", None, False),
        ({"capabilities": ["routing", "routing", "metrics-ingest"]}, None, "routing", True),
        ({"capabilities": ["routing"], "resources": {"limits": {"cpu": "1"}}}, None, None, True),
        ({"capabilities": ["routing"], "resources": {"limits": {"memory": ""}}}, None, None, True),
    ],
)
def test_activegate(active_gate, invalid, duplicate, memory_warning):
    dynakube = make_dk(activeGate=active_gate) if active_gate is not None else make_dk()
    for check, expected in (
        (activegate.invalid_activegate_capability, invalid),
        (activegate.duplicate_activegate_capability, duplicate),
    ):
        message = run(check, dynakube)
        assert (message is None) is (expected is None)
        if expected:
            assert expected in message
    warning = run(activegate.missing_activegate_memory_limit, dynakube)
    assert (warning is not None) is memory_warning


# --- namespace selectors ---


@pytest.mark.parametrize(
    ("dynakube", "problem"),
    [
        (make_dk(oneAgent=cnfs()), None),
        (make_dk(oneAgent=cnfs({"matchLabels": {"monitoring": "dynatrace"}})), None),
        (make_dk(oneAgent=cnfs({"matchLabels": {"example.com/team": ""}})), None),
        (make_dk(oneAgent=cnfs({"matchLabels": {"bad key!": "x"}})), "spec.oneAgent.cloudNativeFullStack"),
        (make_dk(oneAgent=cnfs({"matchLabels": {"team": "not valid"}})), "label value"),
        (make_dk(oneAgent=cnfs({"matchLabels": {"team": "x" * 64}})), "label value"),
        (make_dk(oneAgent=cnfs({"matchLabels": {"Bad_Prefix/team": "x"}})), "invalid prefix"),
        (make_dk(oneAgent=cnfs({"matchLabels": {"team": 1}})), "matchLabels"),
        (
            make_dk(oneAgent=cnfs({"matchExpressions": [{"key": "a", "operator": "In"}]})),
            "at least one value",
        ),
        (
            make_dk(oneAgent=cnfs({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})),
            "'Gt'",
        ),
        (
            make_dk(oneAgent=cnfs({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b c"]}]})),
            "b c",
        ),
        (make_dk(oneAgent=cnfs("oops")), "must be an object"),
        (
            make_dk(
                version="v1beta1",
                namespaceSelector={"matchLabels": {"a b": "c"}},
                oneAgent={"applicationMonitoring": {}},
            ),
            "spec.namespaceSelector",
        ),
        (
            make_dk(
                oneAgent={"hostMonitoring": {}},
                metadataEnrichment={"enabled": True, "namespaceSelector": {"matchExpressions": "x"}},
            ),
            "spec.metadataEnrichment.namespaceSelector",
        ),
    ],
)
def test_invalid_namespace_selector(dynakube, problem):
    message = run(namespaces.invalid_namespace_selector, dynakube)
    if problem is None:
        assert message is None
    else:
        assert problem in message


@pytest.mark.parametrize(
    ("selector", "errors"),
    [
        (None, 0),
        ({}, 0),
        ({"matchLabels": {"a": "b", "example.com/d": "", "x.y/Z_1.z": "v-1.2_3"}}, 0),
        ({"matchLabels": {"-a": "b"}}, 1),
        ({"matchLabels": {"a/": "b"}}, 1),
        ({"matchLabels": {"/a": "b"}}, 1),
        ({"matchLabels": {"a": "-b-", "c d": "e"}}, 2),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["ok", "not ok", "-"]}]}, 2),
        ({"matchExpressions": [{"key": "UPPER.example.com/a", "operator": "Exists"}]}, 1),
        ({"matchExpressions": [{"operator": "Exists"}]}, 1),
    ],
)
def test_syntax_errors(selector, errors):
    assert len(syntax_errors(selector)) == errors


CLUSTER = [
    make_ns("shop", monitoring="app"),
    make_ns("billing", team="billing"),
    make_ns(NS, monitoring="app"),
]


@pytest.mark.parametrize(
    ("dynakube", "others", "conflict"),
    [
        (make_dk("a", oneAgent=cnfs({"matchLabels": {"monitoring": "app"}})), [], None),
        (
            make_dk("a", oneAgent=cnfs({"matchLabels": {"monitoring": "app"}})),
            [make_dk("b", oneAgent=cnfs({"matchLabels": {"team": "billing"}}))],
            None,
        ),
        (
            make_dk("a", oneAgent=cnfs()),
            [make_dk("b", oneAgent=cnfs({"matchLabels": {"team": "billing"}}))],
            "billing (also selected by b)",
        ),
        (
            make_dk("a", oneAgent=cnfs({"matchLabels": {"monitoring": "app"}})),
            [make_dk("b", oneAgent={"hostMonitoring": {}}, metadataEnrichment={"enabled": True})],
            "shop (also selected by b)",
        ),
        # the other DynaKube ignores the namespace
        (
            make_dk("a", oneAgent=cnfs({"matchLabels": {"monitoring": "app"}})),
            [make_dk("b", annotations={FF + "ignored-namespaces": '["^shop$"]'}, oneAgent=cnfs())],
            None,
        ),
        # this one does not map namespaces at all
        (make_dk("a", oneAgent={"classicFullStack": {}}), [make_dk("b", oneAgent=cnfs())], None),
        # the other one does not
        (make_dk("a", oneAgent=cnfs()), [make_dk("b", oneAgent={"hostMonitoring": {}})], None),
        # the stored version of the same DynaKube is not "another" DynaKube (UPDATE)
        (make_dk("a", oneAgent=cnfs()), [make_dk("a", oneAgent=cnfs())], None),
        # the webhook's own namespace never counts
        (
            make_dk("a", oneAgent=cnfs({"matchLabels": {"monitoring": "app"}})),
            [
                make_dk(
                    "b",
                    oneAgent=cnfs(
                        {"matchExpressions": [{"key": "kubernetes.io/x", "operator": "DoesNotExist"}]}
                    ),
                )
            ],
            "shop (also selected by b)",
        ),
        # an existing conflict between two others does not block this one
        (
            make_dk("a", oneAgent=cnfs({"matchLabels": {"nothing": "here"}})),
            [make_dk("b", oneAgent=cnfs()), make_dk("c", oneAgent=cnfs())],
            None,
        ),
        (
            make_dk("a", oneAgent=cnfs()),
            [make_dk("b", oneAgent=cnfs()), make_dk("c", oneAgent={"applicationMonitoring": {}})],
            "billing (also selected by b, c), shop (also selected by b, c)",
        ),
    ],
)
def test_conflicting_namespace_selector(dynakube, others, conflict):
    ctx = Context(dynakubes=[*others, dynakube], namespaces=CLUSTER, webhook_namespace=NS)
    message = run(namespaces.conflicting_namespace_selector, dynakube, ctx)
    if conflict is None:
        assert message is None
    else:
        assert conflict in message
        assert NS + " (" not in message


def test_conflict_list_is_bounded():
    cluster = [make_ns(f"ns-{i:02}") for i in range(20)]
    ctx = Context(dynakubes=[make_dk("b", oneAgent=cnfs())], namespaces=cluster, webhook_namespace=NS)
    message = run(namespaces.conflicting_namespace_selector, make_dk("a", oneAgent=cnfs()), ctx)
    assert "ns-04 (also selected by b)" in message
    assert "ns-05" not in message
    assert "and 15 more" in message


# --- feature flags ---


@pytest.mark.parametrize(
    ("annotations", "deprecated", "unknown"),
    [
        (None, None, None),
        ({FF + "automatic-injection": "false", FF + "ignored-namespaces": "[]"}, None, None),
        ({"other.example.com/anything": "x"}, None, None),
        (
            {FF + "oneagent-ignore-proxy": "true"},
            "oneagent-ignore-proxy (use the feature.dynatrace.com/no-proxy",
            None,
        ),
        ({FF + "automatic-injetcion": "false"}, None, FF + "automatic-injetcion"),
        (
            {FF + "zzz": "1", FF + "aaa": "1", FF + "disable-metadata-enrichment": "true"},
            "disable-metadata-enrichment",
            FF + "aaa, " + FF + "zzz",
        ),
    ],
)
def test_feature_flags(annotations, deprecated, unknown):
    dynakube = make_dk(annotations=annotations)
    for check, expected in (
        (featureflags.deprecated_feature_flags, deprecated),
        (featureflags.unknown_feature_flags, unknown),
    ):
        message = run(check, dynakube)
        assert (message is None) is (expected is None)
        if expected:
            assert expected in message


def test_every_deprecated_flag_is_known():
    assert set(featureflags.DEPRECATED) <= featureflags.KNOWN


# --- the whole validation ---


def test_summary_format():
    assert (
        validation.summary(["first", "second"]) == "\n2 error(s) found in the DynaKube\n 1. first\n 2. second"
    )
    assert validation.summary(["only"]) == "\n1 error(s) found in the DynaKube\n 1. only"


def test_a_failing_check_is_skipped_and_logged(monkeypatch, caplog):
    def broken(dynakube, ctx):
        raise KeyError("boom")

    monkeypatch.setattr("webhook.validation.dynakube.ERROR_CHECKS", (broken, apiurl.no_api_url))
    with caplog.at_level(logging.ERROR):
        result = validation.validate(make_dk(apiUrl=""), Context())
    assert len(result.errors) == 1 and "missing" in result.errors[0]
    assert "broken" in caplog.text


# --- the handler ---


def review_of(operation: str, obj: Any, old: Any = None, kind: str = "DynaKube") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "dynatrace.com", "version": "v1beta2", "kind": kind},
            "operation": operation,
            "name": "dynakube",
            "namespace": NS,
            "object": obj,
            "oldObject": old,
        },
    }


def respond(review_json: dict[str, Any], store: Store | None = None) -> dict[str, Any]:
    if store is None:
        store = Store(NS)
        store.replace(DYNAKUBES, [])
        store.replace(NAMESPACES, [])
    review = decode(orjson.dumps(review_json))
    return orjson.loads(encode(review, handlers.validate_dynakube(review, store)))["response"]


def test_handler_denies_with_every_error_numbered():
    bad = make_dk("Bad_Name", apiUrl="", oneAgent={"cloudNativeFullStack": {}, "hostMonitoring": {}})
    response = respond(review_of("CREATE", bad))
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "Forbidden"
    message = response["status"]["message"]
    assert message.startswith("\n3 error(s) found in the DynaKube\n 1. spec.apiUrl is missing")
    assert "\n 2. spec.oneAgent sets 2 modes" in message
    assert "\n 3. The DynaKube name 'Bad_Name'" in message


def test_handler_allows_with_warnings():
    dynakube = make_dk(annotations={FF + "nope": "1"}, activeGate={"capabilities": ["routing"]})
    response = respond(review_of("CREATE", dynakube))
    assert response["allowed"] is True
    assert len(response["warnings"]) == 2
    assert "memory limit" in response["warnings"][0]
    assert FF + "nope" in response["warnings"][1]


def test_handler_denial_keeps_warnings():
    dynakube = make_dk(apiUrl="", annotations={FF + "nope": "1"})
    response = respond(review_of("CREATE", dynakube))
    assert response["allowed"] is False
    assert response["warnings"] and FF + "nope" in response["warnings"][0]


def test_handler_update_compares_old_and_new():
    old = make_dk()
    new = make_dk(apiUrl="https://other123.live.dynatrace.com/api")
    response = respond(review_of("UPDATE", new, old))
    assert response["allowed"] is False
    assert "immutable" in response["status"]["message"]
    # the same change on CREATE is fine (there is no old object)
    assert respond(review_of("CREATE", new, old))["allowed"] is True


def test_handler_conflict_uses_the_cache():
    store = Store(NS)
    store.replace(DYNAKUBES, [make_dk("existing", oneAgent=cnfs({"matchLabels": {"monitoring": "app"}}))])
    store.replace(NAMESPACES, CLUSTER)
    response = respond(review_of("CREATE", make_dk("new", oneAgent=cnfs())), store)
    assert response["allowed"] is False
    assert "shop (also selected by existing)" in response["status"]["message"]
    # updating the existing one with the same selector is no conflict with itself
    existing = make_dk("existing", oneAgent=cnfs({"matchLabels": {"monitoring": "app"}}))
    assert respond(review_of("UPDATE", existing, existing), store)["allowed"] is True


@pytest.mark.parametrize(
    ("operation", "obj", "kind", "allowed"),
    [
        ("DELETE", None, "DynaKube", True),
        ("DELETE", make_dk(apiUrl=""), "DynaKube", True),
        ("CONNECT", None, "DynaKube", True),
        ("CREATE", {"kind": "EdgeConnect", "metadata": {"name": "e"}}, "EdgeConnect", True),
        ("CREATE", None, "DynaKube", False),
        ("CREATE", ["not", "a", "map"], "DynaKube", False),
    ],
)
def test_handler_other_requests(operation, obj, kind, allowed):
    response = respond(review_of(operation, obj, kind=kind))
    assert response["allowed"] is allowed
    if not allowed:
        assert response["status"]["message"].startswith("\n1 error(s) found in the DynaKube\n 1. ")


def _versioned(version: str) -> dict[str, Any]:
    """One valid DynaKube per API version, in that version's shape."""
    if version == "v1beta1":
        spec: dict[str, Any] = {
            "namespaceSelector": {"matchLabels": {"monitoring": "dynatrace"}},
            "oneAgent": {"applicationMonitoring": {"useCSIDriver": True}},
        }
    else:
        spec = {"oneAgent": cnfs({"matchLabels": {"monitoring": "dynatrace"}})}
    if version in ("v1beta3", "v1beta4", "v1beta5"):
        spec["metadataEnrichment"] = {
            "enabled": True,
            "namespaceSelector": {"matchLabels": {"enrich": "yes"}},
        }
    spec["activeGate"] = {"capabilities": ["routing"], "resources": {"limits": {"memory": "1Gi"}}}
    return make_dk(version=version, networkZone="eu-1", **spec)


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2", "v1beta3", "v1beta4", "v1beta5"])
def test_every_api_version(version):
    dynakube = _versioned(version)
    response = respond(review_of("CREATE", dynakube))
    assert response["allowed"] is True
    assert "warnings" not in response
    broken = copy.deepcopy(dynakube)
    if version == "v1beta1":
        broken["spec"]["namespaceSelector"] = {"matchLabels": {"bad key": "x"}}
    else:
        broken["spec"]["oneAgent"]["cloudNativeFullStack"]["namespaceSelector"] = {
            "matchLabels": {"bad key": "x"}
        }
    response = respond(review_of("CREATE", broken))
    assert response["allowed"] is False
    assert "'bad key'" in response["status"]["message"]


def test_over_http_on_an_upstream_path():
    from starlette.testclient import TestClient

    from webhook.admission.app import AdmissionApp, Route, admission_fallback
    from webhook.metrics import Metrics

    store = Store(NS)
    store.replace(DYNAKUBES, [])
    store.replace(NAMESPACES, [])
    metrics = Metrics()
    path = "/validate-dynatrace-com-v1beta3-dynakube"
    app = AdmissionApp(
        {path: Route("validate", lambda r: handlers.validate_dynakube(r, store))},
        metrics,
        admission_fallback(),
    )
    response = TestClient(app).post(
        path + "?timeout=10s",
        content=orjson.dumps(review_of("CREATE", make_dk(apiUrl=apiurl.EXAMPLE_API_URL))),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    body = response.json()["response"]
    assert body["allowed"] is False
    assert body["status"]["message"].startswith(
        "\n1 error(s) found in the DynaKube\n 1. spec.apiUrl is still the example"
    )
    assert metrics.admissions.labels("validate", "denied")._value.get() == 1
