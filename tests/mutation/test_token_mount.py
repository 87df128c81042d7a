"""The service-account token mount the injected init container carries when kube-apiserver's ServiceAccount
admission plugin would add it right after the webhook (``podspec.token_mount``): the stored pod is the one the
plugin makes of upstream's patch, and the plugin, run again, has nothing left to add (so the API server does not
call the webhook a second time).

``plugin_rerun`` is the plugin's mount step as kube-apiserver runs it on a pod a webhook changed: every init
container and container without a mount at the token path gets one of the first ``kube-api-access-`` volume.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from tests.mutation.test_golden import CASES, FIXTURES, answer, golden_store
from webhook.mutation import podspec as ps
from webhook.state.store import Store

TOKEN = {"name": "kube-api-access-9n4s2", "readOnly": True, "mountPath": ps.TOKEN_MOUNT_PATH}
PLUGIN_VOLUME = {"name": "kube-api-access-9n4s2", "projected": {"sources": []}}


def container(name: str, *paths: str) -> dict[str, Any]:
    mounts = [TOKEN if p == ps.TOKEN_MOUNT_PATH else {"name": "data", "mountPath": p} for p in paths]
    return {"name": name, "image": "app", "volumeMounts": mounts}


def pod(containers: list[Any], *, init: list[Any] | None = None, volumes: Any = None, **spec: Any) -> dict:
    body: dict[str, Any] = {
        "metadata": {"annotations": spec.pop("annotations", {})},
        "spec": {
            "containers": containers,
            "volumes": [PLUGIN_VOLUME] if volumes is None else volumes,
            **spec,
        },
    }
    if init is not None:
        body["spec"]["initContainers"] = init
    return body


APP = container("app", "/data", ps.TOKEN_MOUNT_PATH)
SIDE = container("side", ps.TOKEN_MOUNT_PATH)
BARE = container("bare", "/data")

CASES_TABLE = [
    ("the plugin mounted every container", pod([APP, SIDE]), TOKEN),
    ("and every init container", pod([APP], init=[container("setup", ps.TOKEN_MOUNT_PATH)]), TOKEN),
    ("the pod asks for its token", pod([APP], automountServiceAccountToken=True), TOKEN),
    ("the pod opts out", pod([APP], automountServiceAccountToken=False), None),
    ("a mirror pod", pod([APP], annotations={ps.MIRROR_POD_ANNOTATION: "x"}), None),
    ("a container without the mount", pod([APP, BARE]), None),
    ("an init container without it", pod([APP], init=[container("setup")]), None),
    ("no token volume", pod([APP], volumes=[{"name": "data", "emptyDir": {}}]), None),
    ("no volumes", pod([APP], volumes=[]), None),
    ("no containers", pod([]), None),
    (
        "the first of two token volumes, as the plugin picks it",
        pod([APP], volumes=[{"name": "data"}, {"name": "kube-api-access-aaaaa"}, PLUGIN_VOLUME]),
        {**TOKEN, "name": "kube-api-access-aaaaa"},
    ),
    ("volumes not a list", pod([APP], volumes={"name": "kube-api-access-x"}), None),
    ("a volume name not a string", pod([APP], volumes=[{"name": 7}, 3, None]), None),
    ("mounts not a list", pod([{"name": "app", "volumeMounts": "x"}]), None),
    ("a container not a map", pod([APP, "app"]), None),
    ("containers not a list", pod({"name": "app"}), None),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("case", "body", "expected"), CASES_TABLE, ids=[c[0] for c in CASES_TABLE])
def test_token_mount(case: str, body: dict, expected: dict | None) -> None:
    assert ps.token_mount(body) == expected


def test_no_spec_no_mount() -> None:
    assert ps.token_mount({}) is None
    assert ps.token_mount({"spec": None, "metadata": None}) is None


def _mounts_token(c: dict[str, Any]) -> bool:
    return any(m.get("mountPath") == ps.TOKEN_MOUNT_PATH for m in c.get("volumeMounts") or [])


def plugin_rerun(pod: dict[str, Any]) -> dict[str, Any]:
    """kube-apiserver's ServiceAccount plugin mounting the token again, after a webhook changed the pod (the
    pods here automount: the golden pods that carry a token volume are admitted that way)."""
    out = copy.deepcopy(pod)
    spec = out["spec"]
    volume = next(v["name"] for v in spec["volumes"] if v["name"].startswith(ps.TOKEN_VOLUME_PREFIX))
    for c in (*spec.get("initContainers", []), *spec["containers"]):
        if not _mounts_token(c):
            c.setdefault("volumeMounts", []).append(
                {"name": volume, "readOnly": True, "mountPath": ps.TOKEN_MOUNT_PATH}
            )
    return out


def _patched(review: dict, patch_b64: str) -> dict:
    return jsonpatch.apply_patch(review["request"]["object"], json.loads(base64.b64decode(patch_b64)))


def _options(case: str) -> dict:
    path = Path(FIXTURES / f"{case}.options.json")
    return json.loads(path.read_text()) if path.exists() else {}


def _adds_init_container(case: str) -> bool:
    path = FIXTURES / f"{case}.patch.json"
    return path.exists() and any(
        op["path"].startswith("/spec/initContainers") for op in json.loads(path.read_text())
    )


# the golden cases that inject a pod the plugin mounted
MOUNTED = [
    c
    for c in CASES
    if _adds_init_container(c)
    and ps.token_mount(json.loads((FIXTURES / f"{c}.review.json").read_text())["request"]["object"])
]


def test_some_golden_cases_are_plugin_mounted() -> None:
    assert len(MOUNTED) >= 10  # both contracts: the cases below are not vacuous
    assert any(c.startswith("v110-") for c in MOUNTED) and any(not c.startswith("v110-") for c in MOUNTED)


@pytest.fixture(scope="module")
def store() -> Store:
    return golden_store()


@pytest.mark.parametrize("case", MOUNTED)
def test_the_stored_pod_is_the_one_upstreams_patch_gives(
    case: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the mount: the plugin has nothing to add (no second webhook call), and the pod is the one the plugin
    makes of the patch without it (upstream's)."""
    review = json.loads((FIXTURES / f"{case}.review.json").read_text())
    ours = answer(review, store, _options(case))["response"]
    assert "patch" in ours, ours
    patched = _patched(review, ours["patch"])
    assert plugin_rerun(patched) == patched
    inits = patched["spec"]["initContainers"]
    assert [m for m in inits[-1]["volumeMounts"] if m["mountPath"] == ps.TOKEN_MOUNT_PATH] == [TOKEN]
    assert inits[-1]["volumeMounts"][-1] == TOKEN  # where the plugin appends it

    monkeypatch.setattr(ps, "token_mount", lambda pod: None)
    upstream = answer(review, store, _options(case))["response"]
    upstream_pod = _patched(review, upstream["patch"])
    assert upstream_pod != patched
    assert plugin_rerun(upstream_pod) == patched
