"""/validate as a whole: upstream's run order, golden summaries, conversions, and the handler end to end.

The tables of the single checks are in tests/test_validation_*.py.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import orjson
import pytest

from tests.validation import upstream_messages as up
from tests.validation.validation_support import (
    FF,
    NS,
    make_dk,
    make_ns,
    respond,
    review_of,
    synced_store,
    without,
)
from webhook import validation
from webhook.admission import handlers
from webhook.validation import Context, apiurl, hub


def test_run_order_is_upstreams():
    assert [c.__name__ for c in validation.ERROR_CHECKS] == [
        "csi_module_disabled",
        "activegate_module_disabled",
        "extensions_module_disabled",
        "log_monitoring_module_disabled",
        "kspm_module_disabled",
        "oneagent_module_disabled",
        "invalid_oneagent_version",
        "no_api_url",
        "invalid_api_url",
        "third_gen_api_url",
        "readonly_csi_volume_without_csi",
        "invalid_capability",
        "duplicate_capability",
        "invalid_proxy",
        "conflicting_oneagent_modes",
        "conflicting_node_selector",
        "conflicting_namespace_selector",
        "istio_unavailable",
        "image_without_csi",
        "conflicting_volume_storage",
        "name_not_dns1035",
        "name_too_long",
        "invalid_namespace_selector",
        "tenant_image",
        "eec_image_missing",
        "eec_pvc_with_ephemeral_volume",
        "too_many_activegate_replicas",
        "missing_kubernetes_monitoring",
        "missing_node_collector_image",
        "missing_log_monitoring_image",
    ]
    assert [c.__name__ for c in validation.WARNING_CHECKS] == [
        "missing_memory_limit",
        "installer_variables",
        "host_group_argument",
        "deprecated_feature_flags",
        "ignored_log_monitoring_template",
        "same_api_url_for_extensions",
    ]
    assert [c.__name__ for c in validation.UPDATE_CHECKS] == ["mutated_api_url"]


def test_summary_format():
    assert (
        validation.summary(["first", "second"]) == "\n2 error(s) found in the DynaKube\n 1. first\n 2. second"
    )
    assert validation.summary(["No resources for istio available"]) == (
        "\n1 error(s) found in the DynaKube\n 1. No resources for istio available"
    )
    assert validation.summary(["x"], "EdgeConnect") == "\n1 error(s) found in the EdgeConnect\n 1. x"


def test_a_failing_check_is_skipped_and_logged(monkeypatch, caplog):
    def broken(dynakube, ctx):
        raise KeyError("boom")

    from dataclasses import replace

    from webhook.validation import dynakube

    checks = replace(dynakube.V14, errors=(broken, apiurl.no_api_url))
    with caplog.at_level(logging.ERROR):
        result = validation.validate(make_dk(apiUrl=""), Context(), checks)
    assert result.errors == [up.E8]
    assert "broken" in caplog.text


# --- golden summaries ---

MESSY = make_dk(
    "Bad_Name_That_Is_Far_Too_Long_For_A_DynaKube_Object",
    apiUrl="https://abc12345.apps.dynatrace.com",
    annotations={FF + "oneagent-ignore-proxy": "true", FF + "injection-readonly-volume": "true"},
    oneAgent={
        "cloudNativeFullStack": {
            "version": "1.0",
            "env": [{"name": "ONEAGENT_ENABLE_VOLUME_STORAGE", "value": "no"}],
        },
        "applicationMonitoring": {"codeModulesImage": "r.io/cm:1"},
    },
    activeGate={"capabilities": ["routing", "routing", "bogus"], "image": "BOOM"},
    proxy={"value": "http://u:p&s@proxy"},
    kspm={},
    enableIstio=True,
)


def test_golden_summary_of_many_errors():
    ctx = Context(modules=without("csi_driver", "kspm"), istio=False)
    result = validation.validate(MESSY, ctx)
    expected = [
        up.E1,
        up.MODULE.replace("<M>", "KSPM"),
        up.E7,
        up.E9 + '\nspec.apiUrl "https://abc12345.apps.dynatrace.com": it must end with /api.',
        up.E10,
        up.E11,
        up.E12 % "bogus"
        + "Valid capabilities: routing, kubernetes-monitoring, metrics-ingest, dynatrace-api.",
        up.E13 % "routing",
        up.M14b,
        up.E15,
        up.M18a,
        up.E19,
        up.E20,
        up.E21,
        up.E22 % 40,
        up.M24b % "ActiveGate",
        up.E28,
        up.E29,
    ]
    assert result.errors == expected
    assert result.warnings == [up.W1, up.M_W4 % (FF + "oneagent-ignore-proxy")]
    assert validation.summary(result.errors) == "\n18 error(s) found in the DynaKube" + "".join(
        f"\n {i}. {m}" for i, m in enumerate(expected, 1)
    )


def test_golden_summary_through_the_handler_with_update():
    old = make_dk("dynakube")
    new = make_dk(
        "dynakube", apiUrl="https://other123.live.dynatrace.com", activeGate={"capabilities": ["nope"]}
    )
    response = respond(review_of("UPDATE", new, old))
    assert response["allowed"] is False
    assert response["status"] == {
        "code": 403,
        "reason": "Forbidden",
        "message": (
            "\n3 error(s) found in the DynaKube"
            "\n 1. The DynaKube's specification has an invalid API URL value set.\n\tMake sure you correctly specify "
            "the URL in your custom resource (including the /api postfix).\n\t"
            '\nspec.apiUrl "https://other123.live.dynatrace.com": it must end with /api.'
            "\n 2. The DynaKube's specification tries to use an invalid capability in ActiveGate section, invalid "
            "capability=nope.\nMake sure you correctly specify the ActiveGate capabilities in your custom "
            "resource.\nValid capabilities: routing, kubernetes-monitoring, metrics-ingest, dynatrace-api."
            "\n 3. The DynaKube's specification mutated the API URL although it is immutable. Please delete the CR "
            "and then apply a new one"
        ),
    } | {k: v for k, v in response["status"].items() if k not in ("code", "reason", "message")}
    assert response["warnings"] == [
        "ActiveGate specification missing memory limits. Can cause excess memory usage."
    ]


# --- conversion to v1beta3 ---


def test_v1beta1_and_v1beta2_keep_one_mode():
    both = {"cloudNativeFullStack": {}, "hostMonitoring": {"version": "bad"}}
    for version in ("v1beta1", "v1beta2"):
        result = validation.validate(make_dk(version=version, oneAgent=both), Context())
        assert result.errors == [up.E7]  # hostMonitoring is kept, so no E15
    # v1beta3 keeps both: E15, and the version comes from cloudNativeFullStack (Classic > CNFS > AppMon > HostMon)
    assert validation.validate(make_dk(version="v1beta3", oneAgent=both), Context()).errors == [up.E15]


def test_v1beta2_drops_the_sections_it_does_not_have():
    dk = make_dk(version="v1beta2", kspm={}, logMonitoring={}, extensions={}, templates={})
    assert validation.validate(dk, Context()).errors == []
    errors = validation.validate(make_dk(kspm={}, logMonitoring={}, extensions={}), Context()).errors
    assert errors == [up.E25, up.E28, up.E29, up.E30]


@pytest.mark.parametrize(
    ("annotations", "one_agent", "enabled"),
    [
        (None, {"applicationMonitoring": {}}, True),
        ({FF + "metadata-enrichment": "false"}, {"applicationMonitoring": {}}, False),
        (None, {"hostMonitoring": {}}, False),
    ],
)
def test_v1beta1_metadata_enrichment(annotations, one_agent, enabled):
    hub_dk = hub.to_hub(
        make_dk(
            version="v1beta1",
            annotations=annotations,
            oneAgent=one_agent,
            namespaceSelector={"matchLabels": {"a": "b"}},
        )
    )
    assert hub_dk["spec"]["metadataEnrichment"]["enabled"] is enabled
    assert hub_dk["spec"]["metadataEnrichment"]["namespaceSelector"] == {"matchLabels": {"a": "b"}}
    assert "namespaceSelector" not in hub_dk["spec"]


def test_v1beta1_namespace_selector_is_the_oneagent_selector():
    dk = make_dk(
        version="v1beta1",
        namespaceSelector={"matchLabels": {"bad key": "x"}},
        oneAgent={"applicationMonitoring": {}},
    )
    errors = validation.validate(dk, Context()).errors
    assert len(errors) == 1 and errors[0].startswith(
        up.M23 + ' ([spec.namespaceSelector.matchLabels: Invalid value: "bad key"'
    )


# --- the handler ---


def test_handler_allows_with_warnings_in_order():
    dk = make_dk(annotations={FF + "nope": "1"}, activeGate={"capabilities": ["routing"]}, networkZone="a\tb")
    response = respond(review_of("CREATE", dk))
    assert response["allowed"] is True
    assert response["warnings"] == [
        up.W1,
        f"Unknown feature flags in metadata.annotations: {FF}nope. They have no effect: check their spelling or "
        "remove them.",
        "spec.networkZone 'a\\tb' contains tab, which a network zone name cannot hold. Remove those characters "
        "from spec.networkZone.",
    ]


def test_handler_denial_keeps_warnings():
    response = respond(
        review_of("CREATE", make_dk(apiUrl="", annotations={FF + "oneagent-ignore-proxy": "1"}))
    )
    assert response["allowed"] is False
    assert response["warnings"] == [up.M_W4 % (FF + "oneagent-ignore-proxy")]


def test_handler_conflicts_use_the_cache():
    app = {"matchLabels": {"monitoring": "app"}}
    existing = make_dk("existing", oneAgent={"cloudNativeFullStack": {"namespaceSelector": app}})
    store = synced_store([existing], [make_ns("shop", monitoring="app")])
    response = respond(review_of("CREATE", make_dk("new", oneAgent={"applicationMonitoring": {}})), store)
    assert response["status"]["message"] == (
        f"\n1 error(s) found in the DynaKube\n 1. {up.M17}\nNamespaces selected by more than one DynaKube: shop."
    )
    # updating the existing one with the same selector is no conflict with itself
    assert respond(review_of("UPDATE", existing, existing), store)["allowed"] is True


def test_handler_outside_the_webhook_namespace_sees_no_dynakubes():
    existing = make_dk("existing", oneAgent={"hostMonitoring": {}})
    store = synced_store([existing], [make_ns("shop")])
    review = review_of("CREATE", make_dk("new", namespace="elsewhere", oneAgent={"hostMonitoring": {}}))
    review["request"]["namespace"] = "elsewhere"
    assert respond(review, store)["allowed"] is True
    assert respond(review_of("CREATE", make_dk("new", oneAgent={"hostMonitoring": {}})), store)["status"][
        "message"
    ] == (f"\n1 error(s) found in the DynaKube\n 1. {up.M16 % 'existing'}")


def test_handler_istio_from_discovery():
    store = synced_store()
    dk = make_dk(enableIstio=True)
    assert respond(review_of("CREATE", dk), store)["allowed"] is True  # not known yet: pass
    store.served = {"networking.istio.io/v1beta1": False}
    assert respond(review_of("CREATE", dk), store)["status"]["message"] == (
        "\n1 error(s) found in the DynaKube\n 1. No resources for istio available"
    )
    store.served = {"networking.istio.io/v1beta1": True}
    assert respond(review_of("CREATE", dk), store)["allowed"] is True


def test_handler_modules():
    dk = make_dk(oneAgent={"cloudNativeFullStack": {}})
    assert respond(review_of("CREATE", dk))["allowed"] is True
    response = respond(review_of("CREATE", dk), modules=validation.Modules.parse('{"oneAgent": true}'))
    assert response["status"]["message"] == f"\n1 error(s) found in the DynaKube\n 1. {up.E1}"


@pytest.mark.parametrize(
    ("operation", "obj", "kind", "allowed", "code"),
    [
        ("DELETE", None, "DynaKube", True, 200),
        ("DELETE", make_dk(apiUrl=""), "DynaKube", True, 200),
        ("CONNECT", None, "DynaKube", True, 200),
        ("CREATE", {"kind": "ConfigMap"}, "ConfigMap", True, 200),
        ("CREATE", None, "DynaKube", False, 400),
        ("CREATE", ["not", "a", "map"], "DynaKube", False, 400),
    ],
)
def test_handler_other_requests(operation, obj, kind, allowed, code):
    response = respond(review_of(operation, obj, kind=kind))
    assert response["allowed"] is allowed
    if not allowed:
        assert response["status"]["code"] == code
        assert response["status"]["message"].startswith("\n1 error(s) found in the DynaKube\n 1. ")


def _versioned(version: str) -> dict[str, Any]:
    """One valid DynaKube per API version, in that version's shape."""
    if version == "v1beta1":
        spec: dict[str, Any] = {
            "namespaceSelector": {"matchLabels": {"monitoring": "dynatrace"}},
            "oneAgent": {"applicationMonitoring": {"useCSIDriver": True}},
        }
    else:
        spec = {
            "oneAgent": {
                "cloudNativeFullStack": {"namespaceSelector": {"matchLabels": {"monitoring": "dynatrace"}}}
            }
        }
    if version in ("v1beta3", "v1beta4", "v1beta5", "v1beta6"):
        spec["metadataEnrichment"] = {
            "enabled": True,
            "namespaceSelector": {"matchLabels": {"enrich": "yes"}},
        }
    spec["activeGate"] = {"capabilities": ["routing"], "resources": {"limits": {"memory": "1Gi"}}}
    return make_dk(version=version, networkZone="eu-1", **spec)


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2", "v1beta3", "v1beta4", "v1beta5", "v1beta6"])
def test_every_api_version(version):
    dynakube = _versioned(version)
    response = respond(review_of("CREATE", dynakube, version=version))
    assert response["allowed"] is True
    assert "warnings" not in response
    broken = copy.deepcopy(dynakube)
    broken["spec"]["apiUrl"] = "https://abc12345.live.dynatrace.com/api/"
    response = respond(review_of("CREATE", broken, version=version))
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(f"\n1 error(s) found in the DynaKube\n 1. {up.E9}")


def test_over_http_on_the_upstream_paths():
    from starlette.testclient import TestClient

    from webhook.admission.app import VALIDATE_ALIASES, Route, admission_app
    from webhook.metrics import Metrics

    store = synced_store()
    metrics = Metrics()
    route = Route("validate", lambda r: handlers.validate(r, store))
    app = admission_app(dict.fromkeys(VALIDATE_ALIASES, route), metrics)
    client = TestClient(app)
    cases = [
        (
            "/validate-dynatrace-com-v1beta3-dynakube",
            review_of("CREATE", make_dk(apiUrl=apiurl.EXAMPLE_API_URL)),
            "DynaKube",
        ),
        (
            "/validate-dynatrace-com-v1alpha1-edgeconnect",
            review_of(
                "CREATE",
                {"kind": "EdgeConnect", "metadata": {"name": "e"}, "spec": {"apiServer": "x"}},
                kind="EdgeConnect",
                version="v1alpha1",
            ),
            "EdgeConnect",
        ),
    ]
    for path, review, kind in cases:
        response = client.post(
            path + "?timeout=10s", content=orjson.dumps(review), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200
        body = response.json()["response"]
        assert body["allowed"] is False
        assert body["status"]["message"].startswith(f"\n1 error(s) found in the {kind}\n 1. ")
    assert metrics.admissions.labels("validate", "denied")._value.get() == 2


def test_store_keeps_only_the_proxy_value_and_the_key_names_of_secrets():
    from webhook.state.store import SECRETS, slim

    secret = {
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": NS, "managedFields": [{}]},
        "data": {"proxy": "eA==", "token": "c2VjcmV0"},
        "type": "Opaque",
    }
    assert slim(SECRETS, secret) == {
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": NS},
        "data": {"proxy": "eA=="},
        "keys": ["proxy", "token"],
        "platformToken": False,
    }


def test_bench_measures_both_cases():
    from bench import validate as bench_validate

    rows = bench_validate.run(sizes=((50, 5),), repeat=2)
    assert [r["case"] for r in rows] == ["selects a label", "selects every namespace"]
    assert all(
        r["namespaces"] == 50 and r["dynakubes"] == 5 and 0 < r["median_ms"] <= r["max_ms"] for r in rows
    )


def test_cached_baseline_follows_cache_changes():
    from tests.validation.validation_support import make_ns
    from webhook.validation import namespaces

    app = {"matchLabels": {"monitoring": "app"}}
    cached = [make_dk("a", oneAgent={"applicationMonitoring": {"namespaceSelector": app}})]
    new = make_dk("b", oneAgent={"applicationMonitoring": {"namespaceSelector": app}})
    assert namespaces.conflicts(new, cached, [make_ns("shop", monitoring="app")]) == ["shop"]
    assert (
        namespaces.conflicts(new, cached, [make_ns("shop", monitoring="other")]) == []
    )  # a changed namespace
    other = [
        make_dk("a", oneAgent={"applicationMonitoring": {"namespaceSelector": {"matchLabels": {"x": "y"}}}})
    ]
    assert namespaces.conflicts(new, other, [make_ns("shop", monitoring="app")]) == []  # a changed DynaKube
