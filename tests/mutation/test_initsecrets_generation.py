"""Pure generation of the init Secrets (contract §5.1, §5.2): one table row per field and per error."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from webhook.mutation import initsecrets as gen


def dynakube(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "dynatrace.com/v1beta3",
        "kind": "DynaKube",
        "metadata": {"name": "dk", "namespace": "dynatrace", "annotations": {}},
        "spec": {"apiUrl": "https://tenant.live.dynatrace.com/api", "oneAgent": {"cloudNativeFullStack": {}}},
        "status": {
            "oneAgent": {
                "connectionInfoStatus": {"tenantUUID": "abc123"},
                "instances": {"node-b": {}, "node-a": {}},
            }
        },
    }
    base["spec"].update(spec)
    return base


def with_annotations(obj: dict[str, Any], **annotations: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"]["annotations"].update({f"feature.dynatrace.com/{k}": v for k, v in annotations.items()})
    return obj


TOKENS = {"dk": {"apiToken": "api-1", "paasToken": "paas-1", "dataIngestToken": "ingest-1"}}


def inputs(obj: dict[str, Any], secrets: dict[str, Any] | None = None, **kw: Any) -> gen.Inputs:
    return gen.Inputs(obj, secrets=TOKENS if secrets is None else secrets, **kw)


def config_of(inp: gen.Inputs) -> dict[str, Any]:
    return json.loads(gen.config_data(inp)["config"])


def test_config_fields_come_in_the_contract_order() -> None:
    text = gen.config_data(inputs(dynakube()))["config"]
    assert list(json.loads(text)) == [
        "monitoringNodes",
        "apiUrl",
        "apiToken",
        "paasToken",
        "proxy",
        "noProxy",
        "networkZone",
        "oneAgentNoProxy",
        "tenantUUID",
        "hostGroup",
        "initialConnectRetry",
        "skipCertCheck",
        "hasHost",
        "enforcementMode",
        "csiMode",
        "readOnlyCSIDriver",
    ]
    assert text.startswith('{"monitoringNodes":{"node-a":"abc123","node-b":"abc123"},"apiUrl":')
    assert " " not in text  # compact, as Go writes it


CLOUD = dynakube()
APP = dynakube(oneAgent={"applicationMonitoring": {"args": ["--set-host-group=from-args"]}})

FIELD_CASES = [
    # (case, dynakube, extra secrets, field, expected)
    ("nodes: cloudNativeFullStack maps every instance", CLOUD, {}, "monitoringNodes", {"node-a": "abc123", "node-b": "abc123"}),
    ("nodes: applicationMonitoring has none", APP, {}, "monitoringNodes", {}),
    ("apiUrl", CLOUD, {}, "apiUrl", "https://tenant.live.dynatrace.com/api"),
    ("apiToken", CLOUD, {}, "apiToken", "api-1"),
    ("paasToken", CLOUD, {}, "paasToken", "paas-1"),
    ("proxy: none", CLOUD, {}, "proxy", ""),
    ("proxy: value", dynakube(proxy={"value": "http://p:3128"}), {}, "proxy", "http://p:3128"),
    ("proxy: valueFrom", dynakube(proxy={"valueFrom": "px"}), {"px": {"proxy": "http://s:1"}}, "proxy", "http://s:1"),
    ("proxy: ignored by FF", with_annotations(dynakube(proxy={"value": "http://p"}), **{"oneagent-ignore-proxy": "true"}), {}, "proxy", ""),
    ("noProxy: FF raw", with_annotations(CLOUD, **{"no-proxy": "a.b, c"}), {}, "noProxy", "a.b, c"),
    ("networkZone", dynakube(networkZone="zone-1"), {}, "networkZone", "zone-1"),
    ("oneAgentNoProxy: none", CLOUD, {}, "oneAgentNoProxy", ""),
    ("oneAgentNoProxy: FF ignored without proxy", with_annotations(CLOUD, **{"no-proxy": "x"}), {}, "oneAgentNoProxy", ""),
    ("oneAgentNoProxy: FF with proxy", with_annotations(dynakube(proxy={"value": "p"}), **{"no-proxy": "x"}), {}, "oneAgentNoProxy", "x"),
    ("oneAgentNoProxy: routing", dynakube(activeGate={"capabilities": ["routing"]}), {}, "oneAgentNoProxy", "dk-activegate.dynatrace"),
    ("oneAgentNoProxy: both", with_annotations(dynakube(proxy={"value": "p"}, activeGate={"capabilities": ["routing"]}), **{"no-proxy": "x"}), {}, "oneAgentNoProxy", "x,dk-activegate.dynatrace"),
    ("tenantUUID", CLOUD, {}, "tenantUUID", "abc123"),
    ("hostGroup: spec", dynakube(oneAgent={"hostGroup": "hg", "cloudNativeFullStack": {}}), {}, "hostGroup", "hg"),
    ("hostGroup: from args", APP, {}, "hostGroup", "from-args"),
    ("hostGroup: none", CLOUD, {}, "hostGroup", ""),
    ("initialConnectRetry: default", CLOUD, {}, "initialConnectRetry", -1),
    ("initialConnectRetry: istio", dynakube(enableIstio=True), {}, "initialConnectRetry", 6000),
    ("initialConnectRetry: FF", with_annotations(dynakube(enableIstio=True), **{"oneagent-initial-connect-retry-ms": "250"}), {}, "initialConnectRetry", 250),
    ("initialConnectRetry: invalid FF", with_annotations(CLOUD, **{"oneagent-initial-connect-retry-ms": "soon"}), {}, "initialConnectRetry", -1),
    ("skipCertCheck", dynakube(skipCertCheck=True), {}, "skipCertCheck", True),
    ("hasHost: cloudNativeFullStack", CLOUD, {}, "hasHost", True),
    ("hasHost: applicationMonitoring", APP, {}, "hasHost", False),
    ("enforcementMode: default", CLOUD, {}, "enforcementMode", True),
    ("enforcementMode: FF false", with_annotations(CLOUD, **{"enforcement-mode": "false"}), {}, "enforcementMode", False),
    ("readOnlyCSIDriver: default", CLOUD, {}, "readOnlyCSIDriver", False),
    ("readOnlyCSIDriver: FF", with_annotations(CLOUD, **{"injection-readonly-volume": "true"}), {}, "readOnlyCSIDriver", True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "obj", "extra", "key", "expected"), FIELD_CASES, ids=[c[0] for c in FIELD_CASES]
)
def test_config_field(case: str, obj: dict[str, Any], extra: dict[str, Any], key: str, expected: Any) -> None:
    assert config_of(inputs(obj, {**TOKENS, **extra}))[key] == expected


def test_paas_token_falls_back_to_api_token_and_tokens_secret_name() -> None:
    obj = dynakube(tokens="my-tokens")
    assert config_of(inputs(obj, {"my-tokens": {"apiToken": "only-api"}}))["paasToken"] == "only-api"


def test_csi_mode_follows_the_generating_process() -> None:
    assert config_of(inputs(CLOUD, csi_mode=False))["csiMode"] is False
    assert config_of(inputs(CLOUD, csi_mode=True))["csiMode"] is True


def test_nodes_need_a_tenant() -> None:
    obj = dynakube()
    obj["status"]["oneAgent"]["connectionInfoStatus"] = {}
    assert config_of(inputs(obj))["monitoringNodes"] == {}


DATA_CASES = [
    ("nothing extra", dynakube(), {}, {}, {"proxy": "", "agcerts": "", "trustedcas": ""}),
    ("proxy key mirrors config", dynakube(proxy={"value": "http://p"}), {}, {}, {"proxy": "http://p", "agcerts": "", "trustedcas": ""}),
    ("AG TLS with a capability", dynakube(activeGate={"capabilities": ["routing"], "tlsSecretName": "ag"}), {"ag": {"server.crt": "PEM-AG"}}, {}, {"proxy": "", "agcerts": "PEM-AG", "trustedcas": ""}),
    ("AG TLS with KSPM only", dynakube(kspm={}, activeGate={"tlsSecretName": "ag"}), {"ag": {"server.crt": "PEM"}}, {}, {"proxy": "", "agcerts": "PEM", "trustedcas": ""}),
    ("AG TLS ignored without an ActiveGate", dynakube(activeGate={"tlsSecretName": "ag"}), {}, {}, {"proxy": "", "agcerts": "", "trustedcas": ""}),
    ("trustedCAs", dynakube(trustedCAs="cas"), {}, {"cas": {"certs": "PEM-CA"}}, {"proxy": "", "agcerts": "", "trustedcas": "PEM-CA"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "obj", "extra", "maps", "expected"), DATA_CASES, ids=[c[0] for c in DATA_CASES]
)
def test_data_keys(case: str, obj: Any, extra: Any, maps: Any, expected: dict[str, str]) -> None:
    data = gen.config_data(gen.Inputs(obj, secrets={**TOKENS, **extra}, config_maps=maps))
    assert set(data) == {"config", "proxy", "agcerts", "trustedcas"}
    assert {k: v for k, v in data.items() if k != "config"} == expected


ERROR_CASES = [
    ("tokens Secret missing", dynakube(), {}, {}, "tokens Secret 'dk' not found"),
    ("proxy Secret missing", dynakube(proxy={"valueFrom": "px"}), TOKENS, {}, "proxy Secret 'px' not found"),
    ("proxy key missing", dynakube(proxy={"valueFrom": "px"}), {**TOKENS, "px": {}}, {}, "has no key 'proxy'"),
    ("AG TLS Secret missing", dynakube(activeGate={"capabilities": ["routing"], "tlsSecretName": "ag"}), TOKENS, {}, "ActiveGate TLS Secret 'ag'"),
    ("trustedCAs ConfigMap missing", dynakube(trustedCAs="cas"), TOKENS, {}, "trustedCAs ConfigMap 'cas'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "obj", "secrets", "maps", "message"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_config_errors(case: str, obj: Any, secrets: Any, maps: Any, message: str) -> None:
    with pytest.raises(gen.InputError, match=message):
        gen.config_secret(gen.Inputs(obj, secrets=secrets, config_maps=maps), "app")


def test_config_secret_shape() -> None:
    secret = gen.config_secret(inputs(dynakube(), operator_version="v1.4.2"), "app")
    meta = secret["metadata"]
    assert (meta["name"], meta["namespace"]) == ("dynatrace-dynakube-config", "app")
    assert "type" not in secret  # Opaque by default
    assert meta["labels"] == {
        "app.kubernetes.io/name": "dynatrace-operator",
        "app.kubernetes.io/created-by": "dk",
        "app.kubernetes.io/component": "webhook",
        "app.kubernetes.io/version": "v1.4.2",
        "app.kubernetes.io/managed-by": "dynatrace-webhook",
    }
    assert set(secret["data"]) == {"config", "proxy", "agcerts", "trustedcas"}
    decoded = gen.decode(secret["data"])
    assert json.loads(decoded["config"])["apiToken"] == "api-1"
    value = meta["annotations"]["internal.operator.dynatrace.com/template-hash"]
    assert value.isdigit() and 0 <= int(value) < 2**32


def test_template_hash_is_fnv1_32_of_the_go_serialisation() -> None:
    secret = {
        "metadata": {"name": "n", "namespace": "ns", "labels": {"b": "2", "a": "1"}},
        "data": {"k": "dg=="},
    }
    expected = '{"metadata":{"name":"n","namespace":"ns","creationTimestamp":null,"labels":{"a":"1","b":"2"}},"data":{"k":"dg=="}}'
    assert gen.template_hash(secret) == str(gen.fnv32(expected.encode()))
    assert gen.fnv32(b"a") == 0x050C5D7E  # FNV-1 test vector
    other = copy.deepcopy(secret)
    other["data"]["k"] = "dw=="
    assert gen.template_hash(other) != gen.template_hash(secret)


def test_go_json_escapes_like_go() -> None:
    assert gen.go_json({"a": "<&>\u2028\b"}) == '{"a":"\\u003c\\u0026\\u003e\\u2028\\u0008"}'
    assert gen.go_json({"a": "é\n"}) == '{"a":"é\\n"}'


ENDPOINT_CASES = [
    ("apiUrl", dynakube(), "https://tenant.live.dynatrace.com/api/v2/metrics/ingest"),
    ("metrics-ingest ActiveGate", dynakube(activeGate={"capabilities": ["metrics-ingest"]}), "http://dk-activegate.dynatrace/e/abc123/api/v2/metrics/ingest"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "obj", "url"), ENDPOINT_CASES, ids=[c[0] for c in ENDPOINT_CASES])
def test_endpoint_secret(case: str, obj: Any, url: str) -> None:
    secret = gen.endpoint_secret(inputs(obj), "app")
    assert secret["metadata"]["name"] == "dynatrace-metadata-enrichment-endpoint"
    assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "activegate"
    text = base64.b64decode(secret["data"]["endpoint.properties"]).decode()
    assert text == f"DT_METRICS_INGEST_URL={url}\nDT_METRICS_INGEST_API_TOKEN=ingest-1\n"


def test_endpoint_uses_the_activegate_tenant_and_empty_token() -> None:
    obj = dynakube(activeGate={"capabilities": ["metrics-ingest"]})
    obj["status"] = {"activeGate": {"connectionInfoStatus": {"tenantUUID": "ag-tenant"}}}
    data = gen.endpoint_data(inputs(obj, {"dk": {"apiToken": "a"}}))
    assert data["endpoint.properties"] == (
        "DT_METRICS_INGEST_URL=http://dk-activegate.dynatrace/e/ag-tenant/api/v2/metrics/ingest\n"
        "DT_METRICS_INGEST_API_TOKEN=\n"
    )


def test_endpoint_errors() -> None:
    no_tenant = dynakube(activeGate={"capabilities": ["metrics-ingest"]})
    no_tenant["status"] = {}
    with pytest.raises(gen.InputError, match="tenantUUID"):
        gen.endpoint_secret(inputs(no_tenant), "app")
    with pytest.raises(gen.InputError, match="apiUrl is empty"):
        gen.endpoint_secret(inputs(dynakube(apiUrl="")), "app")


def test_wanted_follows_modes_and_enrichment() -> None:
    assert gen.wanted(dynakube()) == ("dynatrace-dynakube-config",)
    assert gen.wanted(dynakube(oneAgent={"hostMonitoring": {}}, metadataEnrichment={"enabled": True})) == (
        "dynatrace-metadata-enrichment-endpoint",
    )
    assert gen.wanted(dynakube(oneAgent={}, metadataEnrichment={"enabled": False})) == ()


def test_hostile_inputs_never_crash() -> None:
    obj: dict[str, Any] = {
        "metadata": "x",
        "spec": {"activeGate": 3, "proxy": [], "oneAgent": "y"},
        "status": 7,
    }
    secret = gen.config_secret(gen.Inputs(obj, secrets={"": {"apiToken": "t"}}), "ns")
    assert json.loads(gen.decode(secret["data"])["config"])["apiToken"] == "t"
    assert gen.decode({"a": "not base64!", "b": 5}) == {"a": "", "b": ""}
    assert gen.data_digest({"a": "x"}) == gen.data_digest({"a": "x"}) != gen.data_digest({"a": "y"})
