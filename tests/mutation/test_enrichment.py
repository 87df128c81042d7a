"""Metadata enrichment (INJECTION-CONTRACT.md section 7): the workload per owner kind from the cache, the race
where an owner is not cached yet, enablement, propagation, and the init-secret check."""

from __future__ import annotations

import copy
import json

import jsonpatch
import pytest

from tests.conftest import SETTINGS, make_dynakube, make_namespace, make_pod
from webhook.mutation import enrichment as md
from webhook.mutation import pod as pods


def ref(kind: str, name: str, api_version: str, controller: bool = True) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": f"{name}-uid",
        "controller": controller,
    }


def meta(name: str, *owners: dict) -> dict:
    return {"name": name, "ownerReferences": list(owners)}


def pod_owned_by(owner: dict | None, *, labels: dict | None = None, name: str | None = None) -> dict:
    pod = make_pod(name=name, generate_name=None if name else "x-")
    if owner is not None:
        pod["metadata"]["ownerReferences"] = [owner]
    if labels is not None:
        pod["metadata"]["labels"] = labels
    return pod


RS = "checkout-785cb95b9f"
HASH = {"app": "checkout", "pod-template-hash": "785cb95b9f"}
CACHE = {
    ("ReplicaSet", RS): meta(RS, ref("Deployment", "checkout", "apps/v1")),
    ("ReplicaSet", "bare-rs"): meta("bare-rs"),
    ("Deployment", "checkout"): meta("checkout"),
    ("Job", "report-28734120"): meta("report-28734120", ref("CronJob", "report", "batch/v1")),
    ("CronJob", "report"): meta("report"),
    ("Job", "one-off"): meta("one-off"),
    ("StatefulSet", "db"): meta("db"),
    ("DaemonSet", "agent"): meta("agent"),
    ("ReplicationController", "legacy"): meta("legacy"),
    ("ReplicationController", "frontend-3"): meta(
        "frontend-3", ref("DeploymentConfig", "frontend", "apps.openshift.io/v1")
    ),
    ("DeploymentConfig", "frontend"): meta("frontend"),
}


def cached(kind: str, name: str) -> dict | None:
    return CACHE.get((kind, name))


# (case, pod, lookup, expected (kind, name))
CASES = [
    (
        "Deployment via its ReplicaSet",
        pod_owned_by(ref("ReplicaSet", RS, "apps/v1")),
        cached,
        ("Deployment", "checkout"),
    ),
    (
        "ReplicaSet without a Deployment",
        pod_owned_by(ref("ReplicaSet", "bare-rs", "apps/v1")),
        cached,
        ("ReplicaSet", "bare-rs"),
    ),
    ("StatefulSet", pod_owned_by(ref("StatefulSet", "db", "apps/v1")), cached, ("StatefulSet", "db")),
    ("DaemonSet", pod_owned_by(ref("DaemonSet", "agent", "apps/v1")), cached, ("DaemonSet", "agent")),
    ("Job", pod_owned_by(ref("Job", "one-off", "batch/v1")), cached, ("Job", "one-off")),
    (
        "CronJob via its Job",
        pod_owned_by(ref("Job", "report-28734120", "batch/v1")),
        cached,
        ("CronJob", "report"),
    ),
    (
        "ReplicationController",
        pod_owned_by(ref("ReplicationController", "legacy", "v1")),
        cached,
        ("ReplicationController", "legacy"),
    ),
    (
        "DeploymentConfig via its ReplicationController",
        pod_owned_by(ref("ReplicationController", "frontend-3", "v1")),
        cached,
        ("DeploymentConfig", "frontend"),
    ),
    ("bare pod", pod_owned_by(None, name="adhoc"), cached, ("Pod", "adhoc")),
    ("bare pod named by generateName", pod_owned_by(None), cached, ("Pod", "x-")),
    # the cache does not hold the owner (yet): what the pod tells
    (
        "ReplicaSet not cached: the pod-template-hash names its Deployment",
        pod_owned_by(ref("ReplicaSet", RS, "apps/v1"), labels=HASH),
        md.no_lookup,
        ("Deployment", "checkout"),
    ),
    (
        "ReplicaSet not cached, no hash label: the ReplicaSet",
        pod_owned_by(ref("ReplicaSet", RS, "apps/v1"), labels={}),
        md.no_lookup,
        ("ReplicaSet", RS),
    ),
    (
        "ReplicaSet not cached, hash does not match its name",
        pod_owned_by(ref("ReplicaSet", "other-abc", "apps/v1"), labels=HASH),
        md.no_lookup,
        ("ReplicaSet", "other-abc"),
    ),
    (
        "Job not cached stays the Job even with a CronJob-like name",
        pod_owned_by(ref("Job", "report-28734120", "batch/v1")),
        md.no_lookup,
        ("Job", "report-28734120"),
    ),
    (
        "StatefulSet not cached",
        pod_owned_by(ref("StatefulSet", "db", "apps/v1")),
        md.no_lookup,
        ("StatefulSet", "db"),
    ),
    # references v1.4 does not follow
    (
        "non-controller owner",
        pod_owned_by(ref("ReplicaSet", RS, "apps/v1", controller=False)),
        cached,
        ("Pod", "x-"),
    ),
    ("unknown owner kind", pod_owned_by(ref("Rollout", "r", "argoproj.io/v1alpha1")), cached, ("Pod", "x-")),
    (
        "known kind, wrong apiVersion",
        pod_owned_by(ref("ReplicaSet", RS, "extensions/v1beta1")),
        cached,
        ("Pod", "x-"),
    ),
]


@pytest.mark.parametrize(("pod", "lookup", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_workload_per_owner_kind(pod, lookup, expected):
    assert md.workload(pod, lookup) == expected


def test_an_owner_cycle_in_the_cache_ends():
    loop = {
        ("ReplicaSet", "a"): meta("a", ref("ReplicaSet", "b", "apps/v1")),
        ("ReplicaSet", "b"): meta("b", ref("ReplicaSet", "a", "apps/v1")),
    }
    kind, name = md.workload(pod_owned_by(ref("ReplicaSet", "a", "apps/v1")), lambda k, n: loop.get((k, n)))
    assert kind == "ReplicaSet" and name in ("a", "b")


def enrich_dynakube(**kw) -> dict:
    dk = make_dynakube(**kw)
    dk["spec"]["metadataEnrichment"] = {"enabled": True}
    dk["status"]["kubernetesClusterName"] = "prod"
    dk["status"]["kubernetesClusterMEID"] = "KUBERNETES_CLUSTER-1"
    return dk


def decide(pod, dynakube, namespace=None, **kw):
    original = copy.deepcopy(pod)
    result = pods.decide(pod, namespace or make_namespace(), dynakube, SETTINGS, namespace_name="shop", **kw)
    assert pod == original
    return result, jsonpatch.apply_patch(pod, result.ops) if result.ops else pod


def init_env(pod) -> dict:
    return {e["name"]: e.get("value") for e in pod["spec"]["initContainers"][0]["env"]}


def test_enrichment_names_the_workload_without_any_call_but_the_lookup():
    calls = []

    def lookup(kind, name):
        calls.append((kind, name))
        return cached(kind, name)

    pod = pod_owned_by(ref("Job", "report-28734120", "batch/v1"))
    result, patched = decide(pod, enrich_dynakube(), lookup=lookup)
    assert calls == [("Job", "report-28734120"), ("CronJob", "report")]
    env = init_env(patched)
    assert (env["DT_WORKLOAD_KIND"], env["DT_WORKLOAD_NAME"]) == ("cronjob", "report")
    assert (env["DT_CLUSTER_NAME"], env["DT_ENTITY_ID"]) == ("prod", "KUBERNETES_CLUSTER-1")
    annotations = patched["metadata"]["annotations"]
    assert annotations["metadata.dynatrace.com/k8s.workload.kind"] == "cronjob"
    assert annotations["metadata.dynatrace.com/k8s.workload.name"] == "report"
    assert annotations["metadata-enrichment.dynatrace.com/injected"] == "true"
    assert result.event == "Inject"


def test_propagation_never_overwrites_and_feeds_the_workload_annotations():
    dk = enrich_dynakube()
    dk["status"]["metadataEnrichment"] = {
        "rules": [
            {"type": "LABEL", "source": "team", "target": "dt.owner"},
            {"type": "ANNOTATION", "source": "cc", "target": "dt.cost.costcenter"},
            {"type": "OTHER", "source": "team", "target": "dt.other"},
        ]
    }
    namespace = make_namespace(team="shop-team")
    namespace["metadata"]["annotations"] = {"cc": "<4711&>", "metadata.dynatrace.com/dt.extra": "x"}
    pod = make_pod(annotations={"metadata.dynatrace.com/dt.owner": "pod-owner"})
    _, patched = decide(pod, dk, namespace)
    annotations = patched["metadata"]["annotations"]
    assert annotations["metadata.dynatrace.com/dt.owner"] == "pod-owner"
    assert annotations["metadata.dynatrace.com/dt.cost.costcenter"] == "<4711&>"
    assert annotations["metadata.dynatrace.com/dt.extra"] == "x"
    assert "metadata.dynatrace.com/dt.other" not in annotations
    raw = init_env(patched)["DT_WORKLOAD_ANNOTATIONS"]
    assert "\\u003c4711\\u0026\\u003e" in raw  # escaped as Go's encoding/json does
    assert json.loads(raw) == {"dt.cost.costcenter": "<4711&>", "dt.extra": "x", "dt.owner": "pod-owner"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda dk, pod: dk["spec"].pop("metadataEnrichment"), "MetadataEnrichmentDisabled"),
        (
            lambda dk, pod: dk["spec"]["metadataEnrichment"].update(
                namespaceSelector={"matchLabels": {"x": "y"}}
            ),
            "MetadataEnrichmentNamespaceNotSelected",
        ),
        (
            lambda dk, pod: pod["metadata"].update(
                annotations={"metadata-enrichment.dynatrace.com/inject": "false"}
            ),
            "MetadataEnrichmentOptOut",
        ),
    ],
)
def test_enrichment_enablement(change, reason):
    dk, pod = enrich_dynakube(), make_pod()
    change(dk, pod)
    assert md.disabled_reason(md.view(dk), pod["metadata"].get("annotations") or {}, {}) == reason
    _, patched = decide(pod, dk)
    assert "metadata-enrichment.dynatrace.com/injected" not in patched["metadata"]["annotations"]
    assert "METADATA_ENRICHMENT_INJECTED" not in init_env(patched)


def test_enrichment_applies_when_oneagent_is_skipped_for_connection_info():
    result, patched = decide(make_pod(), enrich_dynakube(hosts=[]))
    assert result.outcome == "injected" and result.reasons == ("EmptyConnectionInfo",)
    annotations = patched["metadata"]["annotations"]
    assert annotations["oneagent.dynatrace.com/injected"] == "false"
    assert annotations["oneagent.dynatrace.com/reason"] == "EmptyConnectionInfo"
    init = patched["spec"]["initContainers"][0]
    assert "ONEAGENT_INJECTED" not in init_env(patched)
    assert [m["name"] for m in init["volumeMounts"]] == ["metadata-enrichment"]
    assert [v["name"] for v in patched["spec"]["volumes"]] == [
        "metadata-enrichment-endpoint",
        "metadata-enrichment",
    ]


def test_metadata_only_dynakube_without_oneagent_mode():
    dk = enrich_dynakube()
    dk["spec"].pop("oneAgent")
    result, patched = decide(make_pod(), dk)
    assert result.outcome == "injected"
    assert "oneagent.dynatrace.com/injected" not in patched["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("secrets", "outcome", "annotations"),
    [
        (
            {"dynatrace-metadata-enrichment-endpoint"},
            "injected",
            {
                "oneagent.dynatrace.com/injected": "false",
                "oneagent.dynatrace.com/reason": "MissingInitSecret",
            },
        ),
        (
            {"dynatrace-dynakube-config"},
            "injected",
            {
                "metadata-enrichment.dynatrace.com/injected": "false",
                "metadata-enrichment.dynatrace.com/reason": "MissingInitSecret",
            },
        ),
        (
            set(),
            "skipped",
            {
                "oneagent.dynatrace.com/injected": "false",
                "oneagent.dynatrace.com/reason": "MissingInitSecret",
                "metadata-enrichment.dynatrace.com/injected": "false",
                "metadata-enrichment.dynatrace.com/reason": "MissingInitSecret",
            },
        ),
    ],
)
def test_a_patch_never_mounts_a_secret_the_cache_does_not_hold(secrets, outcome, annotations):
    result, patched = decide(make_pod(), enrich_dynakube(), secrets=frozenset(secrets))
    assert result.outcome == outcome
    assert "MissingInitSecret" in result.reasons
    mounted = {v["secret"]["secretName"] for v in patched["spec"].get("volumes", []) if "secret" in v}
    assert mounted <= secrets
    assert annotations.items() <= patched["metadata"]["annotations"].items()
    if outcome == "skipped":
        assert "initContainers" not in patched["spec"] and result.event == ""
