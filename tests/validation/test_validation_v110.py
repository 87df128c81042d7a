"""DynaKube v1beta4 to v1beta6: Dynatrace Operator v1.10.2's checks (each with an error and its valid
counterpart), the dispatch by version, and a table of valid v1beta6 DynaKubes that must never be denied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.validation.validation_support import FF, make_dk, make_ns, without
from webhook import validation
from webhook.validation import Context, dynakube, v110, v110_more, v110_warnings

IMG = {"imageRef": {"repository": "r", "tag": "t"}}
CNFS = {"cloudNativeFullStack": {}}
KUBEMON = {"capabilities": ["kubernetes-monitoring"]}


def dk6(annotations: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return make_dk(version="v1beta6", annotations=annotations, **spec)


def result(obj: dict[str, Any], ctx: Context | None = None) -> validation.Result:
    return validation.validate(obj, ctx or Context())


# (check, message start, failing object, its valid counterpart[, context])
CASES: list[tuple[Any, str, dict[str, Any], dict[str, Any], Context]] = [
    (
        v110.activegate_module_disabled,
        "ActiveGate has been disabled",
        dk6(activeGate={"capabilities": ["routing"]}),
        dk6(activeGate={}),
        Context(modules=without("active_gate")),
    ),
    (
        v110.activegate_module_disabled,
        "KubernetesMonitoring has been disabled",
        dk6(activeGate=KUBEMON),
        dk6(activeGate={"capabilities": ["routing"]}),
        Context(modules=without("kubernetes_monitoring")),
    ),
    (
        v110.extensions_module_disabled,
        "Extensions has been",
        dk6(extensions={"prometheus": {}}),
        dk6(extensions={}),
        Context(modules=without("extensions")),
    ),
    (
        v110.kspm_module_disabled,
        "KubernetesMonitoring has been disabled during Operator install. That is",
        dk6(kspm={}),
        dk6(),
        Context(modules=without("kubernetes_monitoring")),
    ),
    (
        v110.duplicate_oneagent_arguments,
        "--set-server has been provided multiple times",
        dk6(oneAgent={"cloudNativeFullStack": {"args": ["--set-server=a", "--set-server=b"]}}),
        dk6(oneAgent={"cloudNativeFullStack": {"args": ["--set-host-tag=a", "--set-host-tag=b"]}}),
        Context(),
    ),
    (
        v110.duplicate_oneagent_arguments,
        "Providing the same tag(s) ([a])",
        dk6(oneAgent={"hostMonitoring": {"args": ["--set-host-tag=a", "--set-host-tag=a"]}}),
        dk6(oneAgent={"hostMonitoring": {"args": ["--set-host-property=a", "--set-host-property=a"]}}),
        Context(),
    ),
    (
        v110.host_id_source_argument,
        "Setting --set-host-id-source",
        dk6(oneAgent={"cloudNativeFullStack": {"args": ["--set-host-id-source=auto"]}}),
        dk6(oneAgent={"hostMonitoring": {"args": ["--set-host-id-source=auto"]}}),
        Context(),
    ),
    (
        v110.invalid_api_url,
        "The DynaKube's specification has an invalid API URL",
        dk6(apiUrl="https://a.b/x"),
        dk6(apiUrl="https://abc12345.apps.dynatrace.com"),
        Context(),
    ),
    (
        v110.activegate_pvc_with_ephemeral_volume,
        " DynaKube specifies a PVC for the ActiveGate",
        dk6(activeGate={"useEphemeralVolume": True, "volumeClaimTemplate": {}}),
        dk6(activeGate={"useEphemeralVolume": True}),
        Context(),
    ),
    (
        v110.name_invalid,
        "The DynaKube name violates DNS-1035",
        make_dk("Bad_Name", version="v1beta6"),
        make_dk("good-name", version="v1beta6"),
        Context(),
    ),
    (
        v110.name_invalid,
        "The length limit for the name of a DynaKube is 31",
        make_dk("a" * 32, version="v1beta6", extensions={"prometheus": {}}),
        make_dk("a" * 40, version="v1beta6"),
        Context(),
    ),
    (
        v110.unparsable_image,
        "Custom OneAgent image can't be parsed",
        dk6(oneAgent={"hostMonitoring": {"image": "BOOM"}}),
        dk6(oneAgent={"hostMonitoring": {"image": "abc12345.live.dynatrace.com/linux/oneagent:1"}}),
        Context(),
    ),
    (
        v110.eec_image_missing,
        "DynaKube's specification enables extensions",
        dk6(extensions={"prometheus": {}}),
        dk6(extensions={"prometheus": {}}, templates={"extensionExecutionController": IMG}),
        Context(),
    ),
    (
        v110.eec_pvc_with_ephemeral_volume,
        "DynaKube specifies a PVC for the extension controller",
        dk6(
            extensions={"prometheus": {}},
            templates={
                "extensionExecutionController": {"useEphemeralVolume": True, "persistentVolumeClaim": {}}
            },
        ),
        dk6(
            extensions={},
            templates={
                "extensionExecutionController": {"useEphemeralVolume": True, "persistentVolumeClaim": {}}
            },
        ),
        Context(),
    ),
    (
        v110.kspm_without_kubernetes_monitoring,
        "The Dynakube's specification specifies KSPM, but requires",
        dk6(kspm={}, activeGate=KUBEMON, annotations={FF + "automatic-kubernetes-api-monitoring": "false"}),
        dk6(kspm={}, activeGate=KUBEMON),
        Context(),
    ),
    (
        v110.kspm_root_with_other_paths,
        "The Dynakube's specification specifies KSPM, use either '/'",
        dk6(kspm={"mappedHostPaths": ["/", "/etc"]}),
        dk6(kspm={"mappedHostPaths": ["/", "/"]}),
        Context(),
    ),
    (
        v110.kspm_relative_path,
        "The Dynakube's specification specifies KSPM, relative path found",
        dk6(kspm={"mappedHostPaths": ["etc"]}),
        dk6(kspm={"mappedHostPaths": ["/etc"]}),
        Context(),
    ),
    (
        v110.missing_log_monitoring_image,
        "The Dynakube's specification specifies standalone Log monitoring",
        dk6(logMonitoring={}),
        dk6(logMonitoring={}, annotations={FF + "use-public-registry": "true"}),
        Context(),
    ),
    (
        v110_more.telemetry_unknown_protocols,
        "DynaKube's specification enables the TelemetryIngest feature, unsup",
        dk6(telemetryIngest={"protocols": ["otlp", "x"]}),
        dk6(telemetryIngest={"protocols": []}),
        Context(),
    ),
    (
        v110_more.telemetry_name_not_dns1035,
        "DynaKube's specification enables the TelemetryIngest feature, the tel",
        dk6(telemetryIngest={"serviceName": "Bad"}),
        dk6(telemetryIngest={"serviceName": "good"}),
        Context(),
    ),
    (
        v110_more.telemetry_forbidden_suffix,
        "The DynaKube's specification enables the TelemetryIngest feature, the",
        dk6(telemetryIngest={"serviceName": "x-webhook"}),
        dk6(telemetryIngest={"serviceName": "x-hook"}),
        Context(),
    ),
    (
        v110_more.telemetry_service_name_in_use,
        "The DynaKube's specification enables the TelemetryIngest feature",
        dk6(telemetryIngest={"serviceName": "otel"}),
        dk6(telemetryIngest={"serviceName": "other"}),
        Context(dynakubes=[make_dk("other", version="v1beta6", telemetryIngest={"serviceName": "otel"})]),
    ),
    (
        v110_more.missing_otel_collector_image,
        "The Dynakube's specification specifies the OTel Collector",
        dk6(telemetryIngest={}),
        dk6(telemetryIngest={}, templates={"otelCollector": IMG}),
        Context(),
    ),
    (
        v110_more.missing_database_executor_image,
        "DynaKube's specification enables the database extensions",
        dk6(extensions={"databases": [{"id": "db"}]}),
        dk6(extensions={"databases": [{"id": "db"}]}, templates={"sqlExtensionExecutor": IMG}),
        Context(),
    ),
    (
        v110_more.database_volume_mounts,
        "Database volume mount (/tmp/x) in conflict",
        dk6(
            extensions={
                "databases": [
                    {"volumes": [{"name": "v"}], "volumeMounts": [{"name": "v", "mountPath": "/tmp/x"}]}
                ]
            }
        ),
        dk6(
            extensions={
                "databases": [
                    {"volumes": [{"name": "v"}], "volumeMounts": [{"name": "v", "mountPath": "/d"}]}
                ]
            }
        ),
        Context(),
    ),
    (
        v110_more.unused_database_volumes,
        "Unused database volume(s) found (v)",
        dk6(extensions={"databases": [{"volumes": [{"name": "v"}]}]}),
        dk6(extensions={"databases": [{}]}),
        Context(),
    ),
    (
        v110_more.invalid_global_attributes,
        'spec.resourceAttributes contains invalid entries: , invalid value "a b"',
        dk6(resourceAttributes={"k": "a b"}),
        dk6(resourceAttributes={"k": "a-b"}),
        Context(),
    ),
    (
        v110_more.invalid_oneagent_attributes,
        "spec.oneAgent.*.additionalResourceAttributes contains invalid entries",
        dk6(oneAgent={"applicationMonitoring": {"additionalResourceAttributes": {"-k-": "v"}}}),
        dk6(oneAgent={"applicationMonitoring": {"additionalResourceAttributes": {"k": "v"}}}),
        Context(),
    ),
    (
        v110_more.invalid_otlp_attribute_keys,
        "spec.otlpExporterConfiguration.additionalResourceAttributes contains invalid keys:, keys",
        dk6(otlpExporterConfiguration={"additionalResourceAttributes": {"a/b": "1", "a_b": "2"}}),
        dk6(otlpExporterConfiguration={"additionalResourceAttributes": {"a.b": "1", "a_b": "2"}}),
        Context(),
    ),
    (
        v110.override_without_public_registry,
        "The publicRegistryOverride field is set",
        dk6(publicRegistryOverride="r.example.com"),
        dk6(publicRegistryOverride="r.example.com", annotations={FF + "use-public-registry": "true"}),
        Context(),
    ),
    (
        v110.invalid_network_zone,
        "The DynaKube's specification has an invalid Network Zone",
        dk6(networkZone="a\nb"),
        dk6(networkZone="a b"),
        Context(),
    ),
    (
        v110.invalid_host_group,
        "The DynaKube's specification has an invalid Host Group",
        dk6(oneAgent={"hostGroup": "a\tb"}),
        dk6(oneAgent={"hostGroup": "ab"}),
        Context(),
    ),
    (
        v110.invalid_no_proxy,
        "The DynaKube's specification has an invalid value set using the feature.dynatrace.com/no-proxy",
        dk6(annotations={FF + "no-proxy": "a\rb"}),
        dk6(annotations={FF + "no-proxy": "a,b"}),
        Context(),
    ),
    (
        v110.classic_with_public_registry,
        "The DynaKube's specification uses classicFullStack",
        dk6(oneAgent={"classicFullStack": {}}, publicRegistryOverride="r"),
        dk6(oneAgent={"classicFullStack": {}}),
        Context(),
    ),
    (
        v110.invalid_oneagent_arguments,
        "The DynaKube's OneAgent specification contains invalid arguments",
        dk6(oneAgent={"classicFullStack": {"args": ["--a=\x00"]}}),
        dk6(oneAgent={"classicFullStack": {"args": ["--a"]}}),
        Context(),
    ),
    (
        v110.invalid_logmon_arguments,
        "The DynaKube' spec.templates.logMonitoring.args contains invalid",
        dk6(templates={"logMonitoring": {"args": ["a\n"]}}),
        dk6(templates={"logMonitoring": {"args": ["a"]}}),
        Context(),
    ),
    (
        v110.missing_code_modules_image,
        "The DynaKube specification enables node image pull, but neither",
        dk6(oneAgent={"applicationMonitoring": {}}, annotations={FF + "node-image-pull": "true"}),
        dk6(
            oneAgent={"applicationMonitoring": {"codeModulesImage": "i:1"}},
            annotations={FF + "node-image-pull": "1"},
        ),
        Context(),
    ),
    (
        v110_warnings.max_unavailable_with_rolling_update,
        "The DynaKube specification uses both the deprecated",
        dk6(
            oneAgent={"hostMonitoring": {"rollingUpdate": {}}},
            annotations={FF + "oneagent-max-unavailable": "1"},
        ),
        dk6(oneAgent={"hostMonitoring": {"rollingUpdate": {}}}),
        Context(),
    ),
    (
        v110_warnings.deprecated_version_field,
        'version field is deprecated. Please use "codeModulesImage"',
        dk6(oneAgent={"applicationMonitoring": {"version": "1.2.3.20240101-000000"}}),
        dk6(oneAgent={"applicationMonitoring": {}}),
        Context(),
    ),
    (
        v110_warnings.deprecated_feature_flags,
        "Using deprecated feature flags: feature.dynatrace.com/oneagent-ignore-"
        "proxy, feature.dynatrace.com/k8s-app-enabled",
        dk6(annotations={FF + "k8s-app-enabled": "", FF + "oneagent-ignore-proxy": "x"}),
        dk6(annotations={FF + "no-proxy": "x"}),
        Context(),
    ),
    (
        v110_warnings.unknown_feature_flags,
        "Using unknown feature flags: feature.dynatrace.com/a, feature.dynatrace.com/b.",
        dk6(annotations={FF + "b": "", FF + "a": ""}),
        dk6(annotations={FF + "node-image-pull": ""}),
        Context(),
    ),
    (
        v110_warnings.ignored_otel_template,
        "The Dynakube's `spec.templates.otelCollector` section is skipped",
        dk6(templates={"otelCollector": {"imageRef": {"tag": "t"}}}),
        dk6(templates={"otelCollector": IMG}, telemetryIngest={}),
        Context(),
    ),
    (
        v110_warnings.no_mapped_host_paths,
        "The Dynakube's specification specifies KSPM, but no MappedHostPaths",
        dk6(kspm={}),
        dk6(kspm={"mappedHostPaths": ["/"]}),
        Context(),
    ),
    (
        v110_warnings.extensions_without_kubernetes_monitoring,
        "The Dynakube is configured with extensions without",
        dk6(extensions={"prometheus": {}}),
        dk6(extensions={"prometheus": {}}, activeGate=KUBEMON),
        Context(),
    ),
    (
        v110_warnings.enrichment_disabled_for_injection,
        "metadataEnrichment.enabled is set to false",
        dk6(oneAgent=CNFS, metadataEnrichment={"enabled": False}),
        dk6(oneAgent=CNFS),
        Context(),
    ),
    (
        v110_warnings.node_image_pull_without_csi,
        "The `feature.dynatrace.com/node-image-pull` annotation is set",
        dk6(annotations={FF + "node-image-pull": "false"}),
        dk6(),
        Context(modules=without("csi_driver")),
    ),
    (
        v110_more.too_many_global_attributes,
        "This resource defines 11 global resource attributes",
        dk6(resourceAttributes={f"k{i}": "v" for i in range(11)}),
        dk6(resourceAttributes={f"k{i}": "v" for i in range(10)}),
        Context(),
    ),
    (
        v110_more.renamed_global_attribute_keys,
        "spec.resourceAttributes contains invalid keys that will be "
        'automatically renamed:, key "a/b" will be renamed to "a_b"',
        dk6(resourceAttributes={"a/b": "v"}),
        dk6(resourceAttributes={"a_b": "v"}),
        Context(),
    ),
    (
        v110.mutated_tenant,
        "The DynaKube's specification mutated the tenant",
        dk6(apiUrl="https://x.live.dynatrace.com/api"),
        dk6(apiUrl="https://abc12345.apps.dynatrace.com"),
        Context(old=dk6(apiUrl="https://abc12345.live.dynatrace.com/api")),
    ),
]


@pytest.mark.parametrize(("check", "start", "bad", "good", "ctx"), CASES, ids=[c[0].__name__ for c in CASES])
def test_check(check, start, bad, good, ctx):
    read = dynakube.V110.read
    old = ctx.old and read(ctx.old)
    ctx = Context(**{**ctx.__dict__, "old": old})
    message = check(read(bad), ctx)
    assert message and message.startswith(start), message
    assert check(read(good), ctx) is None
    # and the check runs in /validate for a v1beta6 object
    where = result(bad, ctx).errors + result(bad, ctx).warnings
    assert any(m.startswith(start) for m in where)


def test_every_check_is_in_the_order():
    listed = {c.__name__ for c in dynakube.V110.errors + dynakube.V110.warnings + dynakube.V110.updates}
    assert {c[0].__name__ for c in CASES} <= listed
    assert len(dynakube.V110.errors) == 52 and len(dynakube.V110.warnings) == 25 + 1


@pytest.mark.parametrize(
    ("version", "release"),
    [
        ("v1beta1", "v1.4"),
        ("v1beta2", "v1.4"),
        ("v1beta3", "v1.4"),
        ("v1beta4", "v1.10.2"),
        ("v1beta5", "v1.10.2"),
        ("v1beta6", "v1.10.2"),
        ("", "v1.4"),
    ],
)
def test_the_version_chooses_the_checks(version, release):
    obj = make_dk(version=version) if version else {"kind": "DynaKube", "spec": {}}
    assert dynakube.checks_for(obj).release == release


def test_v14_words_stay_for_v1beta3_and_v110_words_for_v1beta6():
    third_gen = "https://abc12345.apps.dynatrace.com/api"
    assert any("3rd gen" in m for m in result(make_dk(apiUrl=third_gen)).errors)
    assert result(dk6(apiUrl=third_gen)).errors == []
    assert (
        result(dk6(kspm={}, activeGate=KUBEMON, templates={"kspmNodeConfigurationCollector": IMG})).errors
        == []
    )


def test_v1beta5_is_converted_like_upstream():
    obj = make_dk(
        version="v1beta5",
        extensions={},
        kspm={},
        telemetryIngest={},
        oneAgent={"cloudNativeFullStack": {"autoUpdate": False}},
    )
    read = dynakube.V110.read(obj)
    assert read["spec"]["extensions"] == {"prometheus": {}}
    assert read["spec"]["kspm"] == {"mappedHostPaths": ["/"]}
    assert read["spec"]["templates"]["otelCollector"]["imageRef"]["tag"] == "latest"
    assert v110_warnings.DEPRECATED_AUTO_UPDATE in result(obj).warnings


FIXTURE = yaml.safe_load(
    (Path(__file__).parents[1] / "fixtures" / "dynakube" / "v1.10.2-v1beta6.yaml").read_text()
)
AG = {
    "capabilities": ["routing", "kubernetes-monitoring", "dynatrace-api"],
    "resources": {"limits": {"memory": "1Gi"}},
}
VALID_V1BETA6 = {
    "upstream fixture": FIXTURE,
    "sample cloudNativeFullStack": dk6(
        oneAgent={"cloudNativeFullStack": {"namespaceSelector": {}}}, activeGate=AG
    ),
    "otlp exporter": dk6(
        otlpExporterConfiguration={
            "signals": {"traces": {}, "metrics": {}, "logs": {}},
            "namespaceSelector": {"matchLabels": {"otlp": "on"}},
            "additionalResourceAttributes": {"team": "shop"},
        }
    ),
    "log monitoring standalone": dk6(
        logMonitoring={"ingestRuleMatchers": []},
        activeGate=AG,
        templates={"logMonitoring": {**IMG, "args": ["--x"]}},
    ),
    "kspm": dk6(
        kspm={"mappedHostPaths": ["/boot", "/etc"]},
        activeGate=AG,
        templates={"kspmNodeConfigurationCollector": IMG},
    ),
    "extensions prometheus and databases": dk6(
        extensions={
            "prometheus": {},
            "databases": [
                {"id": "db", "volumes": [{"name": "v"}], "volumeMounts": [{"name": "v", "mountPath": "/db"}]}
            ],
        },
        activeGate=AG,
        templates={"extensionExecutionController": IMG, "otelCollector": IMG, "sqlExtensionExecutor": IMG},
    ),
    "empty extensions": dk6(extensions={}),
    "telemetry ingest": dk6(
        telemetryIngest={"protocols": ["otlp", "zipkin"], "serviceName": "ingest"},
        templates={"otelCollector": IMG},
    ),
    "templates with 3rd gen url": dk6(
        apiUrl="https://abc12345.apps.dynatrace.com", templates={"otelCollector": IMG}, telemetryIngest={}
    ),
    "resource attributes": dk6(resourceAttributes={"k8s.cluster.name": "prod", "team": "a-b"}),
    "public registry": dk6(
        oneAgent={"cloudNativeFullStack": {}},
        publicRegistryOverride="r.example.com",
        annotations={FF + "use-public-registry": "true", FF + "node-image-pull": "true"},
    ),
    "host group and network zone": dk6(oneAgent={"hostGroup": "g", "hostMonitoring": {}}, networkZone="z"),
}


@pytest.mark.parametrize("name", list(VALID_V1BETA6))
def test_valid_v1beta6_is_never_denied(name):
    obj = VALID_V1BETA6[name]
    ctx = Context(dynakubes=[obj], namespaces=[make_ns("shop", team="a")])
    got = result(obj, ctx)
    assert got.errors == [], got.errors
    # upstream itself warns that an OTel collector template without telemetry ingest is skipped
    assert got.warnings == [] or name == "extensions prometheus and databases", got.warnings
    assert result(obj, Context(operation="UPDATE", old=obj)).errors == []
