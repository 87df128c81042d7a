"""The v1.10 contract's OTLP exporter: its reasons as a table, the env a container gets, which containers
(goldens: tests/fixtures/inject/v110-otlp-*)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_dynakube, make_namespace
from tests.mutation.test_bootstrapper import annotations
from webhook.mutation import bootstrapper as bs
from webhook.mutation import otlp
from webhook.mutation import pod as pods

SETTINGS = pods.Settings(image="init", version="1.0.0", images={"v1.10": "op"})
ALL = (*bs.SECRETS, *otlp.SECRETS)


def dynakube(
    *,
    activegate: bool = False,
    tenant: str = "t",
    signals: Any = None,
    mode: str = "cloudNativeFullStack",
    **otlp_extra: Any,
) -> Any:
    d = make_dynakube(mode=mode)
    d["status"] = {
        "oneAgent": {"connectionInfoStatus": {"tenantUUID": tenant, "endpoints": "https://e"}},
        "codeModules": {"version": "1.2.3"},
    }
    d["spec"]["otlpExporterConfiguration"] = {
        "signals": signals if signals is not None else {"traces": {}, "metrics": {}, "logs": {}},
        **otlp_extra,
    }
    if activegate:
        d["spec"]["activeGate"] = {"capabilities": ["routing"]}
    return d


def pod(env: list[Any] | None = None, volumes: list[Any] | None = None, **annotations: str) -> Any:
    container: dict[str, Any] = {"name": "app", "image": "app:1"}
    if env is not None:
        container["env"] = env
    return {
        "metadata": {"name": "p", "namespace": "shop", "annotations": annotations},
        "spec": {"containers": [container], "volumes": volumes or []},
    }


def decide(p: Any, dk: Any, secrets: Any = ALL, ns: Any = None) -> pods.Result:
    return pods.decide(
        p, ns or make_namespace(), dk, SETTINGS, namespace_name="shop", secrets=secrets, contract=bs.CONTRACT
    )


def env_of(result: pods.Result) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op in result.ops:
        if op["path"] == "/spec/containers/0/env":
            out.update({e["name"]: e.get("value", e.get("valueFrom")) for e in op["value"]})
        elif op["path"] == "/spec/containers/0/env/-":
            out[op["value"]["name"]] = op["value"].get("value", op["value"].get("valueFrom"))
    return out


@pytest.mark.parametrize(
    ("dk", "secrets", "volumes", "reason", "restored"),
    [
        (dynakube(), bs.SECRETS, [], "NoOTLPExporterConfigSecret", False),
        (
            dynakube(activegate=True),
            (*bs.SECRETS, otlp.CONFIG_SECRET),
            [],
            "NoOTLPExporterActiveGateCertSecret",
            False,
        ),
        (
            dynakube(activegate=True, tenant="", mode="applicationMonitoring"),
            ALL,
            [],
            "IngestEndpointUnavailable",
            True,
        ),
        (dynakube(), ALL, [{"name": "otlp-dynatrace-certs", "emptyDir": {}}], "ConflictingVolumeType", True),
    ],
)
def test_reasons(dk, secrets, volumes, reason, restored):
    result = decide(pod(volumes=volumes), dk, secrets)
    marks = annotations(result)
    assert marks[otlp.ANNOTATION_INJECTED] == "false"
    assert marks[otlp.ANNOTATION_REASON] == reason
    assert reason in result.reasons
    if restored:  # a MutatorError: the OneAgent injection is discarded too, only the two annotations
        assert set(marks) == set(otlp.KEYS)
        assert all(op["path"].startswith("/metadata/annotations") for op in result.ops)
    else:  # a plain annotation: the injection stays
        assert any(op["path"] == "/spec/initContainers" for op in result.ops)


def test_env_without_activegate_uses_the_api_url():
    result = decide(pod(), dynakube())
    env = env_of(result)
    base = "https://abc12345.live.dynatrace.com/api/v2/otlp"
    assert env["DT_API_TOKEN"] == {"secretKeyRef": {"name": otlp.CONFIG_SECRET, "key": "dataIngestToken"}}
    for signal in ("TRACES", "METRICS", "LOGS"):
        assert env[f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"] == f"{base}/v1/{signal.lower()}"
        assert env[f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"] == "http/protobuf"
        assert env[f"OTEL_EXPORTER_OTLP_{signal}_HEADERS"] == "authorization=Api-Token $(DT_API_TOKEN)"
        assert f"OTEL_EXPORTER_OTLP_{signal}_CERTIFICATE" not in env
    assert env["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"] == "delta"
    assert "NO_PROXY" not in env
    assert "k8s.container.name=app" in env["OTEL_RESOURCE_ATTRIBUTES"]
    assert annotations(result)[otlp.ANNOTATION_INJECTED] == "true"


def test_activegate_endpoint_certificate_volume_and_no_proxy():
    result = decide(
        pod(env=[{"name": "NO_PROXY", "value": "x.local"}]), dynakube(activegate=True, signals={"traces": {}})
    )
    base = "https://dk-activegate.dynatrace/e/t/api/v2/otlp"
    env = env_of(result)
    assert env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == f"{base}/v1/traces"
    assert env["OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"] == "/etc/dynatrace/ssl/activegate-tls.crt"
    assert "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" not in env
    replaced = [op for op in result.ops if op["op"] == "replace"]
    assert replaced == [
        {
            "op": "replace",
            "path": "/spec/containers/0/env/0",
            "value": {"name": "NO_PROXY", "value": "x.local,dk-activegate.dynatrace"},
        }
    ]
    volume = {"name": "otlp-dynatrace-certs", "secret": {"secretName": otlp.CERTS_SECRET, "defaultMode": 420}}
    assert any(
        op["value"] == volume or volume in (op["value"] if isinstance(op["value"], list) else [])
        for op in result.ops
    )
    mounts = [op for op in result.ops if op["path"].startswith("/spec/containers/0/volumeMounts")]
    assert any("/etc/dynatrace/ssl" in str(op["value"]) for op in mounts)


def test_no_proxy_feature_flag_off():
    dk = dynakube(activegate=True)
    dk["metadata"]["annotations"][otlp.FF_SET_NO_PROXY] = "false"
    assert "NO_PROXY" not in env_of(decide(pod(), dk))


def test_a_container_with_its_own_otlp_env_is_skipped_unless_override():
    own = [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://mine"}]
    result = decide(pod(env=own), dynakube())
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" not in env_of(result)
    assert otlp.ANNOTATION_INJECTED not in annotations(result)
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in env_of(
        decide(pod(env=own), dynakube(overrideEnvVars=True))
    )


@pytest.mark.parametrize(
    ("pod_annotations", "dk_annotations", "ns_labels", "selector", "runs"),
    [
        ({}, {}, {}, None, True),
        ({otlp.ANNOTATION_INJECT: "false"}, {}, {}, None, False),
        ({}, {"feature.dynatrace.com/automatic-injection": "false"}, {}, None, False),
        (
            {otlp.ANNOTATION_INJECT: "true"},
            {"feature.dynatrace.com/automatic-injection": "false"},
            {},
            None,
            True,
        ),
        ({}, {}, {"otlp": "on"}, {"matchLabels": {"otlp": "on"}}, True),
        ({}, {}, {}, {"matchLabels": {"otlp": "on"}}, False),
    ],
)
def test_selection(pod_annotations, dk_annotations, ns_labels, selector, runs):
    dk = dynakube() if selector is None else dynakube(namespaceSelector=selector)
    dk["metadata"]["annotations"].update(dk_annotations)
    result = decide(pod(**pod_annotations), dk, ns=make_namespace(**ns_labels))
    assert ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in env_of(result)) is runs


def test_no_signals_no_otlp():
    result = decide(pod(), dynakube(signals={}), secrets=bs.SECRETS)
    assert otlp.ANNOTATION_REASON not in annotations(result)


def test_otlp_runs_when_the_injection_handler_skips():
    dk = dynakube()
    dk["spec"]["oneAgent"] = {}
    result = decide(pod(), dk)
    assert result.outcome == "injected"
    assert "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT" in env_of(result)
    assert not any(op["path"] == "/spec/initContainers" for op in result.ops)


def test_an_injection_mutator_error_ends_the_request_before_the_otlp_exporter():
    dk = dynakube()
    dk["status"]["codeModules"] = {}  # DynaKubeStatusNotReady
    result = decide(pod(), dk)
    assert result.reasons == ("DynaKubeStatusNotReady",)
    assert otlp.ANNOTATION_INJECTED not in annotations(result)


def test_no_bootstrapper_config_still_runs_the_otlp_exporter():
    result = decide(pod(), dynakube(), secrets=(otlp.CONFIG_SECRET,))
    assert result.reasons == (bs.REASON_NO_BOOTSTRAPPER_CONFIG,)
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in env_of(result)
