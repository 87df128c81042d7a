"""The two per-namespace init Secrets of the Dynatrace Operator v1.4 contract, generated from plain dicts.

- ``dynatrace-dynakube-config`` (contract §5.1): what the ``init`` container reads from ``/mnt/config``;
- ``dynatrace-metadata-enrichment-endpoint`` (§5.2): the metrics ingest endpoint for enrichment.

Pure: the DynaKube and the objects it names (tokens Secret, proxy Secret, trustedCAs ConfigMap, ActiveGate TLS
Secret), already decoded to ``{key: text}`` maps, go in; Secret dicts ready to POST come out. A missing input
the contract requires raises ``InputError`` with the reason; nothing here talks to the API.

The node map is the webhook's (``status.oneAgent.instances``), not the operator's (a LIST of Nodes).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook import dynakube as dk
from webhook.gojson import go_json
from webhook.mutation.podspec import CONFIG_SECRET
from webhook.mutation.podspec import ENRICHMENT_SECRET as ENDPOINT_SECRET
from webhook.tolerant import as_list, as_map, as_str

INIT_SECRETS = (CONFIG_SECRET, ENDPOINT_SECRET)

LABEL_NAME = "app.kubernetes.io/name"
LABEL_CREATED_BY = "app.kubernetes.io/created-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_VERSION = "app.kubernetes.io/version"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "dynatrace-webhook"  # our copies carry this label; a copy without it belongs to someone else
# and this annotation: the namespace of the webhook installation that wrote the copy (two installations in one
# cluster never clean up or update each other's copies; a copy without it counts as this installation's)
ANNOTATION_INSTALLATION = "webhook.dynatrace.com/installation"
OPERATOR_NAME = "dynatrace-operator"
ANNOTATION_TEMPLATE_HASH = "internal.operator.dynatrace.com/template-hash"

FF_NO_PROXY = "feature.dynatrace.com/no-proxy"
FF_IGNORE_PROXY = "feature.dynatrace.com/oneagent-ignore-proxy"
FF_INITIAL_CONNECT_RETRY = "feature.dynatrace.com/oneagent-initial-connect-retry-ms"
FF_ENFORCEMENT_MODE = "feature.dynatrace.com/enforcement-mode"
FF_READONLY_VOLUME = "feature.dynatrace.com/injection-readonly-volume"
ISTIO_INITIAL_CONNECT_RETRY = 6000

CAPABILITY_ROUTING = "routing"
CAPABILITY_METRICS_INGEST = "metrics-ingest"

# the keys the generation reads from each input (the caches keep only these)
TOKEN_KEYS = ("apiToken", "paasToken", "dataIngestToken")
PROXY_KEY = "proxy"
TLS_KEY = "server.crt"
TRUSTED_CAS_KEY = "certs"
SECRET_KEYS = (*TOKEN_KEYS, PROXY_KEY, TLS_KEY)

Text = Mapping[str, str]  # a Secret's or ConfigMap's data, decoded


class InputError(ValueError):
    """An input the contract requires is missing or unusable; the message says which."""


@dataclass(frozen=True)
class Inputs:
    """The DynaKube and the objects in its namespace that the Secrets are built from.

    ``secrets`` and ``config_maps`` map names to their decoded data; an absent name is a missing object.
    """

    dynakube: Mapping[str, Any]
    secrets: Mapping[str, Text] = field(default_factory=dict)
    config_maps: Mapping[str, Text] = field(default_factory=dict)
    operator_version: str = ""
    csi_mode: bool = True


# --- small readers of the DynaKube -----------------------------------------------------------------------------
def _flag(dynakube: Mapping[str, Any], key: str) -> str:
    return dk.feature(dynakube, key, "")


def capabilities(dynakube: Mapping[str, Any]) -> list[str]:
    caps = as_list(as_map(dk.spec(dynakube).get("activeGate")).get("capabilities"))
    return [c for c in caps if isinstance(c, str)]


def activegate_enabled(dynakube: Mapping[str, Any]) -> bool:
    """Any capability, or the extensions / KSPM features (which run on an ActiveGate)."""
    spec = dk.spec(dynakube)
    return bool(capabilities(dynakube)) or spec.get("extensions") is not None or spec.get("kspm") is not None


def tls_secret_name(dynakube: Mapping[str, Any]) -> str:
    return as_str(as_map(dk.spec(dynakube).get("activeGate")).get("tlsSecretName"))


def tokens_secret_name(dynakube: Mapping[str, Any]) -> str:
    return as_str(dk.spec(dynakube).get("tokens")) or dk.name(dynakube)


def trusted_cas_name(dynakube: Mapping[str, Any]) -> str:
    return as_str(dk.spec(dynakube).get("trustedCAs"))


def proxy_spec(dynakube: Mapping[str, Any]) -> tuple[str, str]:
    """(``spec.proxy.value``, ``spec.proxy.valueFrom``); both empty when no proxy is set."""
    proxy = as_map(dk.spec(dynakube).get("proxy"))
    return as_str(proxy.get("value")), as_str(proxy.get("valueFrom"))


def metadata_enrichment_enabled(dynakube: Mapping[str, Any]) -> bool:
    return as_map(dk.spec(dynakube).get("metadataEnrichment")).get("enabled") is True


def initial_connect_retry(dynakube: Mapping[str, Any]) -> int:
    """FF ``oneagent-initial-connect-retry-ms`` as an int; absent or invalid: 6000 with Istio, else -1."""
    raw = dk.annotations_of(dynakube).get(FF_INITIAL_CONNECT_RETRY)
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    return ISTIO_INITIAL_CONNECT_RETRY if dk.spec(dynakube).get("enableIstio") is True else -1


def host_group(dynakube: Mapping[str, Any]) -> str:
    """``spec.oneAgent.hostGroup``, else ``--set-host-group=<v>`` from the mode's ``args``."""
    explicit = as_str(as_map(dk.spec(dynakube).get("oneAgent")).get("hostGroup"))
    if explicit:
        return explicit
    for arg in as_list(dk.mode_spec(dynakube).get("args")):
        if isinstance(arg, str) and arg.startswith("--set-host-group="):
            return arg.split("=", 1)[1]
    return ""


def monitoring_nodes(dynakube: Mapping[str, Any]) -> dict[str, str]:
    """cloudNativeFullStack only: each key of ``status.oneAgent.instances`` -> tenantUUID, if one is known."""
    if dk.mode(dynakube) != dk.CLOUD_NATIVE:
        return {}
    tenant = tenant_uuid(dynakube)
    if not tenant:
        return {}
    instances = as_map(as_map(dk.status(dynakube).get("oneAgent")).get("instances"))
    return {node: tenant for node in sorted(n for n in instances if isinstance(n, str))}


def tenant_uuid(dynakube: Mapping[str, Any]) -> str:
    one_agent = as_map(as_map(dk.status(dynakube).get("oneAgent")).get("connectionInfoStatus"))
    return as_str(one_agent.get("tenantUUID"))


# --- the config JSON ---------------------------------------------------------------------------------------
def _secret(inputs: Inputs, name: str, what: str) -> Text:
    found = inputs.secrets.get(name)
    if found is None:
        raise InputError(f"{what} Secret {name!r} not found in namespace {dk.namespace(inputs.dynakube)!r}")
    return found


def proxy_value(inputs: Inputs) -> str:
    dynakube = inputs.dynakube
    value, value_from = proxy_spec(dynakube)
    if not (value or value_from) or _flag(dynakube, FF_IGNORE_PROXY) == "true":
        return ""
    if value:
        return value
    data = _secret(inputs, value_from, "proxy")
    if PROXY_KEY not in data:
        raise InputError(f"proxy Secret {value_from!r} has no key {PROXY_KEY!r}")
    return data[PROXY_KEY]


def one_agent_no_proxy(dynakube: Mapping[str, Any], proxy: str) -> str:
    parts = []
    no_proxy = _flag(dynakube, FF_NO_PROXY)
    if proxy and no_proxy:
        parts.append(no_proxy)
    if CAPABILITY_ROUTING in capabilities(dynakube):
        parts.append(f"{dk.name(dynakube)}-activegate.{dk.namespace(dynakube)}")
    return ",".join(parts)


def startup_config(inputs: Inputs) -> dict[str, Any]:
    """The ``config`` document, its fields in the contract's serialisation order."""
    dynakube = inputs.dynakube
    tokens = _secret(inputs, tokens_secret_name(dynakube), "tokens")
    api_token = tokens.get("apiToken", "")
    proxy = proxy_value(inputs)
    spec = dk.spec(dynakube)
    return {
        "monitoringNodes": monitoring_nodes(dynakube),
        "apiUrl": dk.api_url(dynakube),
        "apiToken": api_token,
        "paasToken": tokens.get("paasToken") or api_token,
        "proxy": proxy,
        "noProxy": _flag(dynakube, FF_NO_PROXY),
        "networkZone": dk.network_zone(dynakube),
        "oneAgentNoProxy": one_agent_no_proxy(dynakube, proxy),
        "tenantUUID": tenant_uuid(dynakube),
        "hostGroup": host_group(dynakube),
        "initialConnectRetry": initial_connect_retry(dynakube),
        "skipCertCheck": spec.get("skipCertCheck") is True,
        "hasHost": dk.mode(dynakube) == dk.CLOUD_NATIVE,
        "enforcementMode": _flag(dynakube, FF_ENFORCEMENT_MODE) != "false",
        "csiMode": inputs.csi_mode,
        "readOnlyCSIDriver": _flag(dynakube, FF_READONLY_VOLUME) == "true",
    }


def config_data(inputs: Inputs) -> dict[str, str]:
    """The four data keys of ``dynatrace-dynakube-config``, decoded (always all four, empty when unused)."""
    dynakube = inputs.dynakube
    config = startup_config(inputs)
    agcerts = ""
    tls_name = tls_secret_name(dynakube)
    if activegate_enabled(dynakube) and tls_name:
        agcerts = _secret(inputs, tls_name, "ActiveGate TLS").get(TLS_KEY, "")
    trustedcas = ""
    cas_name = trusted_cas_name(dynakube)
    if cas_name:
        config_map = inputs.config_maps.get(cas_name)
        if config_map is None:
            raise InputError(
                f"trustedCAs ConfigMap {cas_name!r} not found in namespace {dk.namespace(dynakube)!r}"
            )
        trustedcas = config_map.get(TRUSTED_CAS_KEY, "")
    return {
        "config": go_json(config, sort_keys=False),  # a Go struct: fields in order
        "proxy": config["proxy"],
        "agcerts": agcerts,
        "trustedcas": trustedcas,
    }


# --- the metadata enrichment endpoint -------------------------------------------------------------------------
def ingest_url(dynakube: Mapping[str, Any]) -> str:
    if CAPABILITY_METRICS_INGEST in capabilities(dynakube):
        tenant = dk.tenant_uuid(dynakube)  # OneAgent's, else the ActiveGate's
        if not tenant:
            raise InputError("the metrics-ingest ActiveGate needs a tenantUUID in the DynaKube status")
        name, namespace = dk.name(dynakube), dk.namespace(dynakube)
        return f"http://{name}-activegate.{namespace}/e/{tenant}/api/v2/metrics/ingest"
    api_url = dk.api_url(dynakube)
    if not api_url:
        raise InputError("spec.apiUrl is empty")
    return f"{api_url}/v2/metrics/ingest"


def endpoint_data(inputs: Inputs) -> dict[str, str]:
    dynakube = inputs.dynakube
    url = ingest_url(dynakube)
    tokens = _secret(inputs, tokens_secret_name(dynakube), "tokens")
    token = tokens.get("dataIngestToken", "")
    return {"endpoint.properties": f"DT_METRICS_INGEST_URL={url}\nDT_METRICS_INGEST_API_TOKEN={token}\n"}


# --- the Secrets ----------------------------------------------------------------------------------------------
def encode(data: Mapping[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}


def data_digest(data: Mapping[str, Any]) -> str:
    """A short digest of a Secret's (base64) data, independent of key order: what the cache keeps instead of
    the data. Values that are not strings count as empty."""
    clean = {k: v if isinstance(v, str) else "" for k, v in data.items()}
    return hashlib.blake2b(orjson.dumps(clean, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()


def fnv32(data: bytes) -> int:
    """FNV-1, 32 bits (Go's ``hash/fnv.New32``)."""
    value = 0x811C9DC5
    for byte in data:
        value = (value * 0x01000193) & 0xFFFFFFFF
        value ^= byte
    return value


def template_hash(secret: Mapping[str, Any]) -> str:
    """FNV-32 in decimal of the Secret as Go's ``json.Marshal`` writes it before the hash annotation is set
    (metadata name, namespace, ``creationTimestamp: null``, labels; then data; type when set)."""
    meta = as_map(secret.get("metadata"))
    doc: dict[str, Any] = {
        "metadata": {
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "creationTimestamp": None,
            "labels": dict(sorted(as_map(meta.get("labels")).items())),
        },
        "data": dict(sorted(as_map(secret.get("data")).items())),
    }
    if secret.get("type"):
        doc["type"] = secret["type"]
    return str(fnv32(go_json(doc, sort_keys=False).encode()))  # structs; maps sorted above


def labels(dynakube: Mapping[str, Any], component: str, version: str) -> dict[str, str]:
    out = {LABEL_NAME: OPERATOR_NAME, LABEL_CREATED_BY: dk.name(dynakube), LABEL_COMPONENT: component}
    if version:
        out[LABEL_VERSION] = version
    out[LABEL_MANAGED_BY] = MANAGED_BY
    return out


def secret_from(
    name: str, namespace: str, labels_: dict[str, str], data: Mapping[str, str]
) -> dict[str, Any]:
    """A Secret dict with the given decoded data, labels and the template-hash annotation."""
    secret: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels_},
        "data": encode(data),
    }
    secret["metadata"]["annotations"] = {ANNOTATION_TEMPLATE_HASH: template_hash(secret)}
    return secret


def config_secret(inputs: Inputs, namespace: str) -> dict[str, Any]:
    """``dynatrace-dynakube-config`` for ``namespace``; ``InputError`` when an input is missing."""
    labels_ = labels(inputs.dynakube, "webhook", inputs.operator_version)
    return secret_from(CONFIG_SECRET, namespace, labels_, config_data(inputs))


def endpoint_secret(inputs: Inputs, namespace: str) -> dict[str, Any]:
    """``dynatrace-metadata-enrichment-endpoint`` for ``namespace``; ``InputError`` when an input is missing."""
    labels_ = labels(inputs.dynakube, "activegate", "")
    return secret_from(ENDPOINT_SECRET, namespace, labels_, endpoint_data(inputs))


def mark_installation(secret: dict[str, Any], installation: str) -> dict[str, Any]:
    """``secret`` marked as written by the webhook installation in namespace ``installation``."""
    secret.setdefault("metadata", {}).setdefault("annotations", {})[ANNOTATION_INSTALLATION] = installation
    return secret


def wanted(dynakube: Mapping[str, Any]) -> tuple[str, ...]:
    """The init Secrets a namespace mapped to this DynaKube needs: the config with an app-injection mode, the
    endpoint with metadata enrichment enabled."""
    out = []
    if dk.injection_enabled(dynakube):
        out.append(CONFIG_SECRET)
    if metadata_enrichment_enabled(dynakube):
        out.append(ENDPOINT_SECRET)
    return tuple(out)


def build(name: str, inputs: Inputs, namespace: str) -> dict[str, Any]:
    if name == CONFIG_SECRET:
        return config_secret(inputs, namespace)
    if name == ENDPOINT_SECRET:
        return endpoint_secret(inputs, namespace)
    raise ValueError(f"not an init Secret: {name!r}")


def decode(data: Any) -> dict[str, str]:
    """A Secret's base64 ``data`` as text; undecodable values read as empty."""
    out = {}
    for key, value in as_map(data).items():
        try:
            out[key] = base64.b64decode(value, validate=True).decode() if isinstance(value, str) else ""
        except (ValueError, UnicodeDecodeError):
            out[key] = ""
    return out
