"""The v1.10 contract's reasons and helpers, as a table (goldens: tests/fixtures/inject/v110-*)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_dynakube, make_namespace
from webhook.mutation import attributes as at
from webhook.mutation import bootstrapper as bs
from webhook.mutation import pod as pods

SETTINGS = pods.Settings(image="init", version="1.0.0", images={"v1.10": "operator:v1.10.2"})


def dynakube(**status: Any) -> dict[str, Any]:
    d = make_dynakube()
    d["status"] = {
        "oneAgent": {"connectionInfoStatus": {"tenantUUID": "t", "endpoints": "https://e"}},
        "codeModules": {"version": "1.2.3"},
        **status,
    }
    return d


def decide(
    pod_volumes: list[Any], annotations: dict[str, str] | None = None, dk: Any = None, csi: bool = True
):
    pod = {
        "metadata": {"name": "p", "namespace": "shop", "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}], "volumes": pod_volumes},
    }
    settings = pods.Settings(image="init", version="1.0.0", csi=csi, images={"v1.10": "op"})
    return pods.decide(
        pod, make_namespace(), dk or dynakube(), settings, namespace_name="shop", contract=bs.CONTRACT
    )


def annotations(result: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for op in result.ops:
        if op["path"] == "/metadata/annotations":
            out.update(op["value"])
        elif op["path"].startswith("/metadata/annotations/"):
            out[op["path"].split("/")[-1].replace("~1", "/")] = op["value"]
    return out


@pytest.mark.parametrize(
    ("volumes", "kwargs", "prefix", "reason"),
    [
        ([{"name": "oneagent-bin", "emptyDir": {}}], {}, "oneagent", "ConflictingVolumeType"),
        ([{"name": "oneagent-bin", "csi": {"driver": "other"}}], {}, "oneagent", "ConflictingVolumeType"),
        (
            [{"name": "oneagent-bin", "csi": {"driver": "csi.oneagent.dynatrace.com"}}],
            {"csi": False},
            "oneagent",
            "ConflictingVolumeType",
        ),
        ([{"name": "dynatrace-input", "secret": {"secretName": "x"}}], {}, "volume", "ConflictingVolumeType"),
        (
            [{"name": "dynatrace-config", "secret": {"secretName": "x"}}],
            {},
            "volume",
            "ConflictingVolumeType",
        ),
        ([], {"annotations": {"oneagent.dynatrace.com/install-path": "/"}}, "oneagent", "InvalidInstallPath"),
        (
            [],
            {"annotations": {"oneagent.dynatrace.com/install-path": "/a b"}},
            "oneagent",
            "InvalidInstallPath",
        ),
        ([], {"dk": dynakube(codeModules={"version": "custom-image"})}, "oneagent", "DynaKubeStatusNotReady"),
    ],
)
def test_mutator_errors_restore_the_pod_and_annotate_only(volumes, kwargs, prefix, reason):
    result = decide(volumes, **kwargs)
    assert result.outcome == pods.SKIPPED and result.reasons == (reason,)
    assert annotations(result) == {
        f"{prefix}.dynatrace.com/injected": "false",
        f"{prefix}.dynatrace.com/reason": reason,
    }
    assert all(op["path"].startswith("/metadata/annotations") for op in result.ops)


def test_an_existing_matching_volume_is_reused():
    sources = [{"secret": {"name": bs.CONFIG_SECRET}}, {"secret": {"name": bs.CERTS_SECRET}}]
    result = decide([{"name": "dynatrace-input", "projected": {"sources": sources}}])
    assert result.outcome == pods.INJECTED
    assert not [
        op
        for op in result.ops
        if op["path"] == "/spec/volumes/-" and op["value"]["name"] == "dynatrace-input"
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://abc.apps.dynatrace.com", "https://abc.live.dynatrace.com/api"),
        ("https://abc.dev.apps.dynatracelabs.com:8443/x", "https://abc.dev.dynatracelabs.com:8443/api"),
        ("https://abc.live.dynatrace.com/api", "https://abc.live.dynatrace.com/api"),
    ],
)
def test_a_third_gen_api_url_is_mapped_to_second_gen(url, expected):
    assert bs.second_gen(url) == expected


@pytest.mark.parametrize(("key", "clean"), [("cost center!", "cost_center"), ("--x.y--", "x.y"), ("!!", "")])
def test_resource_attribute_keys_are_sanitized(key, clean):
    assert at.sanitize_key(key) == clean


def test_container_info_splits_the_image_as_upstream():
    info = at.container_info({"name": "c", "image": "reg.io:5000/team/app:1.2@sha256:ff"})
    assert info == {
        "container_image.registry": "reg.io:5000",
        "container_image.repository": "team/app",
        "container_image.tags": "1.2",
        "container_image.digest": "sha256:ff",
        "k8s.container.name": "c",
    }
