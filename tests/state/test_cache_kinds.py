"""What the cache keeps of each kind (the transform at arrival), and adding a kind."""

from __future__ import annotations

import copy

import pytest

from tests.conftest import SETTINGS, WEBHOOK_NS, make_dynakube, make_namespace, make_pod
from webhook import dynakube as dk
from webhook.explain import explain
from webhook.mutation import initsecrets as gen
from webhook.mutation import namespace as mapping
from webhook.mutation import pod as pods
from webhook.state.kinds import (
    DEFAULT_KINDS,
    LAST_APPLIED,
    Kind,
    dynakube_transform,
    namespace_transform,
)
from webhook.state.local import LocalState
from webhook.state.store import DYNAKUBES, NAMESPACES, SECRETS, Store

MANAGED = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:metadata": {"f:labels": {}}}}]


def full_namespace(name: str = "shop") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": "0c1e6c1e-3f7a-4d43-9a3e-2f0f1b7f9e11",
            "resourceVersion": "4711",
            "creationTimestamp": "2026-11-30T09:00:00Z",
            "managedFields": MANAGED,
            "labels": {"kubernetes.io/metadata.name": name, "team": "a", dk.INSTANCE_LABEL: "dk"},
            "annotations": {
                "metadata.dynatrace.com/cost-center": "cc-1",
                "mapping.release.dynatrace.com/version": "metadata.labels['v']",
                LAST_APPLIED: '{"big": "' + "x" * 5000 + '"}',
                "openshift.io/sa.scc.uid-range": "1000/10000",
            },
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def full_dynakube() -> dict:
    obj = make_dynakube(
        annotations={dk.FEATURE_AUTOMATIC_INJECTION: "false", "container.inject.dynatrace.com/side": "false"},
        selector={"matchLabels": {"team": "a"}},
        mode_extra={
            "initResources": {"limits": {"cpu": "50m"}},
            "tolerations": [{"operator": "Exists"}] * 50,
        },
    )
    obj["metadata"].update(
        uid="uid-dk", resourceVersion="9", managedFields=MANAGED, labels={"app": "x"}, generation=3
    )
    obj["metadata"]["annotations"][LAST_APPLIED] = "{" + "x" * 10000 + "}"
    obj["spec"]["activeGate"] = {"capabilities": ["routing"], "resources": {"limits": {"memory": "1Gi"}}}
    obj["spec"]["metadataEnrichment"] = {"enabled": True, "namespaceSelector": {"matchLabels": {"m": "1"}}}
    obj["status"]["oneAgent"]["instances"] = {f"node-{i}": {"podName": f"oa-{i}"} for i in range(1000)}
    obj["status"]["oneAgent"]["connectionInfoStatus"]["endpoints"] = "https://10.96.12.34:443/communication"
    obj["status"]["activeGate"] = {"connectionInfoStatus": {"tenantUUID": "abc12345", "endpoints": "x" * 100}}
    obj["status"]["phase"] = "Running"
    return obj


def test_namespace_keeps_name_version_labels_and_the_injection_annotations_only():
    kept = namespace_transform(full_namespace())
    assert kept == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "shop",
            "resourceVersion": "4711",
            "labels": {"kubernetes.io/metadata.name": "shop", "team": "a", dk.INSTANCE_LABEL: "dk"},
            "annotations": {
                "metadata.dynatrace.com/cost-center": "cc-1",
                "mapping.release.dynatrace.com/version": "metadata.labels['v']",
            },
        },
    }


def test_namespace_from_partial_object_metadata_is_the_same_as_from_the_whole_object():
    whole = full_namespace()
    partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": whole["metadata"]}
    assert namespace_transform(partial) == namespace_transform(whole)


def test_namespace_strings_are_shared_between_objects():
    a, b = (namespace_transform(full_namespace(n)) for n in ("shop", "shop"))
    la, lb = a["metadata"]["labels"], b["metadata"]["labels"]
    assert la["team"] is lb["team"]
    # kubernetes.io/metadata.name repeats the name: one string for both
    assert la["kubernetes.io/metadata.name"] is a["metadata"]["name"]


def test_namespace_with_hostile_metadata_is_kept_without_the_bad_parts():
    odd = {"metadata": {"name": "odd", "labels": ["not", "a", "map"], "annotations": {1: "x", "k": None}}}
    assert namespace_transform(odd)["metadata"] == {"name": "odd"}
    assert namespace_transform({"metadata": "nope"})["metadata"] == {"name": ""}


def test_dynakube_drops_managed_fields_last_applied_and_status_nobody_reads():
    obj = full_dynakube()
    kept = dynakube_transform(obj)
    assert "managedFields" not in kept["metadata"]
    assert "labels" not in kept["metadata"]
    assert LAST_APPLIED not in kept["metadata"]["annotations"]
    assert kept["metadata"]["uid"] == "uid-dk"
    # the init Secret's monitoringNodes reads the node names, nothing else of each instance
    assert kept["status"]["oneAgent"]["instances"] == {f"node-{i}": {} for i in range(1000)}
    assert "phase" not in kept["status"]
    assert kept["status"]["activeGate"] == {"connectionInfoStatus": {"tenantUUID": "abc12345"}}
    assert kept["spec"] == obj["spec"]  # /validate compares cached DynaKubes on many spec fields
    assert len(repr(kept)) < len(repr(obj)) / 2
    # the rest: managedFields, last-applied and the status nobody reads are most of the object
    del kept["status"]["oneAgent"]["instances"], obj["status"]["oneAgent"]["instances"]
    assert len(repr(kept)) < len(repr(obj)) / 5


def test_every_view_reads_the_same_from_the_kept_dynakube_as_from_the_whole_one():
    obj = full_dynakube()
    kept = dynakube_transform(obj)
    for view in (
        dk.name,
        dk.namespace,
        dk.api_version,
        dk.modes,
        dk.namespace_selector,
        dk.metadata_enrichment_selector,
        dk.network_zone,
        dk.api_url,
        dk.code_modules_image,
        dk.code_modules_version,
        dk.kube_system_uuid,
        dk.tenant_uuid,
        dk.communication_hosts,
        dk.oneagent_endpoints,
        dk.has_communication_endpoints,
        dk.automatic_injection,
        dk.failure_policy,
        pods.connection_info_reasons,
        mapping.takes_part,
        gen.monitoring_nodes,
        gen.host_group,
    ):
        assert view(kept) == view(obj), view.__name__
    assert gen.monitoring_nodes(kept)  # a cloudNativeFullStack DynaKube with a tenant and instances
    assert dk.mode_spec(kept) == dk.mode_spec(obj)
    assert dk.annotations_of(kept) == {k: v for k, v in dk.annotations_of(obj).items() if k != LAST_APPLIED}


def test_dynakube_fields_of_the_wrong_type_stay_as_sent_so_views_skip_them_the_same_way():
    obj = make_dynakube()
    obj["spec"]["oneAgent"] = {"cloudNativeFullStack": True, "hostMonitoring": None}
    obj["status"] = "broken"
    obj["metadata"]["annotations"] = ["not", "a", "map"]
    kept = dynakube_transform(obj)
    assert kept["spec"]["oneAgent"] == obj["spec"]["oneAgent"]
    assert kept["status"] == "broken"
    assert kept["metadata"]["annotations"] == {}
    assert dk.modes(kept) == dk.modes(obj) == ["cloudNativeFullStack"]


def test_secrets_keep_the_proxy_value_only_and_do_not_hold_up_readiness():
    store = Store(WEBHOOK_NS)
    store.replace(
        SECRETS,
        [{"metadata": {"name": "p", "managedFields": [{}]}, "data": {"proxy": "eA==", "token": "c2VjcmV0"}}],
    )
    assert store.secret("p") == {
        "kind": "Secret",
        "metadata": {"name": "p"},
        "data": {"proxy": "eA=="},
        "keys": ["proxy", "token"],  # names, for the token checks of /validate
        "platformToken": False,
    }
    store.replace(DYNAKUBES, [])
    store.replace(NAMESPACES, [])
    assert store.synced  # Secrets listed or not


def test_decisions_and_explain_work_from_what_the_store_keeps():
    store = Store(WEBHOOK_NS)
    store.replace(DYNAKUBES, [full_dynakube()])
    store.replace(NAMESPACES, [full_namespace()])
    report = explain(
        make_pod(containers=[{"name": "app", "image": "a"}, {"name": "side", "image": "b"}]), store, SETTINGS
    )
    assert (
        report["outcome"] == "skipped"
    )  # automatic injection is off in this DynaKube, the pod has no opt-in
    assert report["connectionInfo"]["tenantUUID"] == "abc12345"
    pod = make_pod(annotations={"oneagent.dynatrace.com/inject": "true"})
    assert explain(pod, store, SETTINGS)["outcome"] == "injected"


def test_the_store_keeps_only_the_transformed_object_on_every_write_path(tmp_path):
    store = Store(WEBHOOK_NS)
    whole = full_namespace()
    store.upsert(NAMESPACES, copy.deepcopy(whole))  # a watch event or a write's answer (relabeling)
    assert store.namespace_object("shop") == namespace_transform(whole)
    state = tmp_path / "state.yaml"
    state.write_text(
        "kind: Namespace\nmetadata: {name: a, uid: u, managedFields: [{manager: m}], labels: {x: '1'}}\n"
    )
    LocalState(state, store).load()
    assert store.namespace_object("a")["metadata"] == {"name": "a", "labels": {"x": "1"}}


def test_a_transform_that_raises_drops_that_object_only():
    def fussy(obj):
        if obj["metadata"]["name"] == "bad":
            raise ValueError("no")
        return {"metadata": {"name": obj["metadata"]["name"]}}

    store = Store(WEBHOOK_NS, kinds=[*DEFAULT_KINDS, Kind("things", "/apis/x/v1/things", fussy)])
    store.replace("things", [{"metadata": {"name": "good"}}, {"metadata": {"name": "bad"}}])
    assert [o["metadata"]["name"] for o in store.objects("things")] == ["good"]
    assert store.dropped == 1


def test_adding_a_kind_is_adding_a_spec():
    secrets = Kind(
        "config-secrets",
        "/api/v1/namespaces/{namespace}/secrets",
        lambda obj: {"metadata": {"name": obj["metadata"]["name"]}, "data": dict(obj.get("data") or {})},
        field_selector="metadata.name=dynatrace-dynakube-config",
    )
    owners = Kind(
        "deployments",
        "/apis/apps/v1/deployments",
        lambda obj: {
            "metadata": {k: obj["metadata"].get(k) for k in ("name", "namespace", "ownerReferences")}
        },
        metadata_only=True,
        by_namespace=True,
    )
    store = Store(WEBHOOK_NS)
    store.add_kind(secrets)
    store.add_kind(owners)
    assert not store.synced
    store.replace("deployments", [{"metadata": {"name": "web", "namespace": "shop", "uid": "u"}}])
    assert store.get("deployments", "shop/web") == {
        "metadata": {"name": "web", "namespace": "shop", "ownerReferences": None}
    }
    with pytest.raises(ValueError, match="replicasets"):  # a resource of the owner cache is no kind
        store.add_kind(Kind("replicasets", "/apis/apps/v1/replicasets", dict))
    assert secrets.concrete(namespace="dynatrace").path == "/api/v1/namespaces/dynatrace/secrets"
    # a state file describes DynaKubes and namespaces only: other kinds are known to be empty
    local = Store(WEBHOOK_NS, kinds=[*DEFAULT_KINDS, secrets])
    assert not local.synced
    local.replace(DYNAKUBES, [])
    local.replace(NAMESPACES, [make_namespace()])
    local.replace("config-secrets", [])
    assert local.synced and local.count(NAMESPACES) == 1
