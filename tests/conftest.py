from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from webhook.admission import handlers
from webhook.admission.app import VALIDATE_ALIASES, Route, admission_app
from webhook.metrics import Metrics
from webhook.mutation import pod as pods
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

WEBHOOK_NS = "dynatrace"
SETTINGS = pods.Settings(image="registry.example.com/dynatrace-webhook:1.0.0", version="1.0.0")
DYNAKUBE_FIXTURES = Path(__file__).parent / "fixtures" / "dynakube"


def load_dynakube(name: str) -> dict[str, Any]:
    """A whole DynaKube from ``tests/fixtures/dynakube/<name>.yaml``, as a Dynatrace Operator release stores it
    (a fresh copy on every call)."""
    loaded: dict[str, Any] = yaml.safe_load((DYNAKUBE_FIXTURES / f"{name}.yaml").read_text())
    return loaded


def make_dynakube(
    name: str = "dk",
    *,
    mode: str = "cloudNativeFullStack",
    selector: dict | None = None,
    hosts: list | None = None,
    tenant: str = "abc12345",
    version: str = "1.299.50.20240930-123456",
    network_zone: str = "eu-west-zone-a",
    annotations: dict | None = None,
    api_version: str = "dynatrace.com/v1beta2",
    mode_extra: dict | None = None,
) -> dict[str, Any]:
    mode_spec: dict[str, Any] = dict(mode_extra or {})
    if selector is not None:
        mode_spec["namespaceSelector"] = selector
    dk: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": "DynaKube",
        "metadata": {"name": name, "namespace": WEBHOOK_NS, "annotations": dict(annotations or {})},
        "spec": {
            "apiUrl": f"https://{tenant or 'abc12345'}.live.dynatrace.com/api",
            "oneAgent": {mode: mode_spec},
        },
        "status": {
            "kubeSystemUUID": "5a0c6c1e-3f7a-4d43-9a3e-2f0f1b7f9e11",
            "oneAgent": {
                "connectionInfoStatus": {
                    "tenantUUID": tenant,
                    "communicationHosts": [{"protocol": "https", "host": "10.96.12.34", "port": 443}]
                    if hosts is None
                    else hosts,
                }
            },
            "codeModules": {"version": version},
        },
    }
    if network_zone:
        dk["spec"]["networkZone"] = network_zone
    return dk


def make_namespace(name: str = "shop", dynakube: str | None = "dk", **labels: str) -> dict[str, Any]:
    all_labels = dict(labels)
    if dynakube:
        all_labels["dynakube.internal.dynatrace.com/instance"] = dynakube
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": all_labels}}


def make_init_secret(namespace: str = "shop", name: str = "dynatrace-dynakube-config") -> dict[str, Any]:
    """An init Secret as the Dynatrace Operator leaves it (injection mounts it only when the cache holds it)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/component": "webhook"},
        },
        "data": {"config": "e30="},
    }


def make_pod(
    *,
    containers: list[dict] | None = None,
    annotations: dict | None = None,
    name: str | None = None,
    generate_name: str | None = "checkout-785cb95b9f-",
    namespace: str = "shop",
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": namespace, "labels": {"app": "checkout"}}
    if name:
        meta["name"] = name
    if generate_name:
        meta["generateName"] = generate_name
    if annotations is not None:
        meta["annotations"] = dict(annotations)
    body: dict[str, Any] = {
        "containers": copy.deepcopy(containers)
        if containers is not None
        else [{"name": "checkout", "image": "registry.example.com/shop/checkout:2.4.1"}],
        **spec,
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


def make_store(dynakubes: list[dict] = (), namespaces: list[dict] = ()) -> Store:  # type: ignore[assignment]
    store = Store(WEBHOOK_NS)
    store.replace(DYNAKUBES, dynakubes)
    store.replace(NAMESPACES, namespaces)
    return store


def make_review(
    obj: Any,
    *,
    operation: str = "CREATE",
    namespace: str = "shop",
    uid: str = "uid-1",
    api_version: str = "admission.k8s.io/v1",
    kind: str = "Pod",
    **request: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": kind.lower() + "s"},
            "namespace": namespace,
            "operation": operation,
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            **request,
        },
    }


@pytest.fixture()
def settings() -> pods.Settings:
    return SETTINGS


@pytest.fixture()
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture()
def client(metrics) -> TestClient:
    """The admission app on a cache with a ready DynaKube (namespace shop) and a pending one (payments)."""
    store = make_store(
        [make_dynakube(), make_dynakube("pending", hosts=[])],
        [make_namespace(), make_namespace("payments", dynakube="pending")],
    )
    validate = Route("validate", lambda r: handlers.validate_dynakube(r, store))
    routes = {
        "/inject": Route("inject", lambda r: handlers.inject(r, store, SETTINGS)),
        "/label-ns": Route("label-ns", lambda r: handlers.label_namespace(r, store)),
        "/validate": validate,
        **dict.fromkeys(VALIDATE_ALIASES, validate),
    }
    return TestClient(admission_app(routes, metrics))


DK_PATH = "/apis/dynatrace.com/v1beta2/namespaces/dynatrace/dynakubes"


@pytest.fixture()
def cluster(tmp_path):
    """A loopback API server holding DynaKube "dk" (no communication hosts yet) and namespace "shop" mapped to
    it: (FakeApi, ApiServer, kubeconfig path) for running the real process in cluster mode."""
    from tests.support.apiserver import ApiServer
    from tests.support.fakeapi import FakeApi

    api = FakeApi()
    api.seed(DK_PATH, make_dynakube("dk", hosts=[]))
    api.seed("/api/v1/namespaces", make_namespace("shop", "dk"))
    api.seed("/api/v1/namespaces", make_namespace("dynatrace", None))
    api.seed("/api/v1/namespaces/shop/secrets", make_init_secret("shop"))
    server = ApiServer(api)
    yield api, server, server.kubeconfig(tmp_path / "kubeconfig")
    server.close()
