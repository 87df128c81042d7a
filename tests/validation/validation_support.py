"""Builders shared by the /validate tests: DynaKubes, EdgeConnects, namespaces, contexts and reviews."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson

from webhook.admission import handlers
from webhook.admission.review import decode, encode
from webhook.state.store import DYNAKUBES, NAMESPACES, SECRETS, Store
from webhook.validation import Context, Modules

NS = "dynatrace"
URL = "https://abc12345.live.dynatrace.com/api"
FF = "feature.dynatrace.com/"


def make_dk(
    name: str = "dynakube",
    *,
    version: str = "v1beta3",
    namespace: str = NS,
    annotations: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    spec.setdefault("apiUrl", URL)
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": f"dynatrace.com/{version}", "kind": "DynaKube", "metadata": meta, "spec": spec}


EC_OAUTH = {
    "clientSecret": "edgeconnect-client",
    "endpoint": "https://sso.dynatrace.com/sso/oauth2/token",
    "resource": "urn:dtenvironment:abc12345",
}


def make_ec(name: str = "edgeconnect", *, version: str = "v1alpha2", **spec: Any) -> dict[str, Any]:
    spec.setdefault("apiServer", "abc12345.apps.dynatrace.com")
    spec.setdefault("oauth", dict(EC_OAUTH))  # required by the CRD; v1.10.2 checks its endpoint
    return {
        "apiVersion": f"dynatrace.com/{version}",
        "kind": "EdgeConnect",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def make_secret(name: str, **data: str) -> dict[str, Any]:
    """A Secret of the webhook's namespace with ``data`` base64-encoded, as the API serves it."""
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "data": encoded,
    }


def make_ns(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def without(*modules: str) -> Modules:
    """Every module but these (attribute names, e.g. ``csi_driver``)."""
    return Modules(**dict.fromkeys(modules, False))


def run(check: Any, obj: dict[str, Any], ctx: Context | None = None) -> str | None:
    """Run one check; it must not change its input and returns a non-empty message or None."""
    before = copy.deepcopy(obj)
    result = check(obj, ctx or Context())
    assert obj == before
    assert result is None or (isinstance(result, str) and result)
    return result


def review_of(
    operation: str, obj: Any, old: Any = None, kind: str = "DynaKube", version: str = "v1beta3"
) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "dynatrace.com", "version": version, "kind": kind},
            "operation": operation,
            "name": "dynakube",
            "namespace": NS,
            "object": obj,
            "oldObject": old,
        },
    }


def synced_store(dynakubes=(), namespaces=(), secrets=()) -> Store:
    store = Store(NS)
    store.replace(DYNAKUBES, list(dynakubes))
    store.replace(NAMESPACES, list(namespaces))
    store.replace(SECRETS, list(secrets))
    return store


def respond(
    review_json: dict[str, Any], store: Store | None = None, modules: Modules | None = None
) -> dict[str, Any]:
    review = decode(orjson.dumps(review_json))
    answer = handlers.validate(review, store if store is not None else synced_store(), modules)
    return orjson.loads(encode(review, answer))["response"]
