"""Golden AdmissionReviews for /inject: request -> response patch -> patched pod.

Each ``tests/fixtures/inject/<case>.review.json`` is answered with the state of ``examples/local-state.yaml``
plus ``tests/fixtures/inject/contract-state.yaml`` (one DynaKube and namespace per group of contract cases);
the patch must equal ``<case>.patch.json`` and, applied to the request's pod, give ``<case>.pod.json``. An
optional ``<case>.options.json`` sets what the state file does not hold: ``csi`` (the CSI driver is installed,
default true), ``secrets`` (the init secrets of the pod's namespace, default all), ``owners`` (cached owner
metadata by ``Kind/name``, default none), ``contract`` (``--contract``, default ``auto``) and ``sources`` (the
operator's ``<dynakube>-bootstrapper-config`` Secrets in the DynaKube's namespace, for ``auto``). The ``v110-*``
cases are the v1.10 (bootstrapper) contract's. ``reinvoke-new-container`` is generated from the patched pod of
``inject-cloud-native`` plus one new container.
Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/mutation/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import base64
import copy
import json
import os
from pathlib import Path

import jsonpatch
import orjson
import pytest

from tests.conftest import SETTINGS
from webhook.admission import handlers
from webhook.admission.review import decode, encode
from webhook.mutation import pod as pods
from webhook.state.local import parse
from webhook.state.store import DYNAKUBES, NAMESPACES, Store

ROOT = Path(__file__).parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures" / "inject"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
BOOTSTRAPPER_IMAGE = "public.ecr.aws/dynatrace/dynatrace-operator:v1.10.2"
CASES = sorted(p.name.removesuffix(".review.json") for p in FIXTURES.glob("*.review.json"))


@pytest.fixture(scope="module")
def store() -> Store:
    return golden_store()


def golden_store() -> Store:
    """The state the golden cases are answered with."""
    dynakubes, namespaces = [], []
    for path in (ROOT / "examples" / "local-state.yaml", FIXTURES / "contract-state.yaml"):
        more_dk, more_ns = parse(path.read_text(), "dynatrace")
        dynakubes += more_dk
        namespaces += more_ns
    s = Store("dynatrace")
    s.replace(DYNAKUBES, dynakubes)
    s.replace(NAMESPACES, namespaces)
    return s


class CaseStore(Store):
    """The shared store with one case's options: its owner cache and init secrets."""

    def __init__(self, base: Store, options: dict) -> None:
        self.__dict__.update(base.__dict__)
        self._owners = options.get("owners", {})
        self._secrets = options.get("secrets")
        self._sources = options.get("sources", [])

    def secret(self, name: str) -> dict | None:
        if name in self._sources:  # an operator's bootstrapper source in the DynaKube's namespace
            return {"metadata": {"name": name}, "data": {}}
        return super().secret(name)

    def owner_meta(self, namespace: str, kind: str, name: str) -> dict | None:
        return self._owners.get(f"{kind}/{name}")

    def init_secrets(self, namespace: str) -> frozenset[str]:
        return super().init_secrets(namespace) if self._secrets is None else frozenset(self._secrets)


def answer(review: dict, store: Store, options: dict | None = None) -> dict:
    options = options or {}
    settings = pods.Settings(
        image=SETTINGS.image,
        version=SETTINGS.version,
        csi=options.get("csi", True),
        contract=options.get("contract", "auto"),
        images={"v1.10": BOOTSTRAPPER_IMAGE},
    )
    r = decode(orjson.dumps(review))
    return orjson.loads(encode(r, handlers.inject(r, CaseStore(store, options), settings)))


def patch_of(response: dict) -> list:
    return (
        json.loads(base64.b64decode(response["response"]["patch"])) if "patch" in response["response"] else []
    )


def check_golden(path: Path, value) -> None:
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"{path.name} is missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert json.loads(path.read_text()) == value, f"{path.name} is stale; review and regenerate"


def test_there_are_golden_cases():
    assert {"inject-cloud-native", "skip-empty-connection-info"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case, store):
    review = json.loads((FIXTURES / f"{case}.review.json").read_text())
    options_file = FIXTURES / f"{case}.options.json"
    options = json.loads(options_file.read_text()) if options_file.exists() else {}
    response = answer(review, store, options)
    assert response["apiVersion"] == review["apiVersion"]
    assert response["response"]["uid"] == review["request"]["uid"]
    assert response["response"]["allowed"] is True
    ops = patch_of(response)
    pod = review["request"]["object"]
    patched = jsonpatch.apply_patch(pod, ops)
    check_golden(FIXTURES / f"{case}.patch.json", ops)
    check_golden(FIXTURES / f"{case}.pod.json", patched)
    # the generic whole-object diff, our oracle, agrees with the hand-built patch
    assert jsonpatch.apply_patch(pod, jsonpatch.make_patch(pod, patched)) == patched
    # and a second pass over the patched pod changes nothing
    again = copy.deepcopy(review)
    again["request"]["object"] = patched
    assert patch_of(answer(again, store, options)) == []


def test_reinvocation_after_a_new_container(store):
    review = json.loads((FIXTURES / "inject-cloud-native.review.json").read_text())
    injected = json.loads((FIXTURES / "inject-cloud-native.pod.json").read_text())
    injected["spec"]["containers"].append({"name": "istio-proxy", "image": "istio/proxyv2:1.23.0"})
    review["request"]["object"] = injected
    ops = patch_of(answer(review, store))
    check_golden(FIXTURES / "reinvoke-new-container.patch.json", ops)
    patched = jsonpatch.apply_patch(injected, ops)
    assert [m["name"] for m in patched["spec"]["containers"][1]["volumeMounts"]] == [
        "oneagent-share",
        "oneagent-bin",
        "oneagent-share",
    ]
