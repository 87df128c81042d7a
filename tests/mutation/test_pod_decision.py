"""The /inject decision flow, branch by branch (REFERENCE.md section 3), on plain dicts."""

from __future__ import annotations

import copy

import jsonpatch
import pytest

from tests.conftest import SETTINGS, make_dynakube, make_namespace, make_pod
from webhook.mutation import pod as pods

INJECTED = "oneagent.dynatrace.com/injected"
REASON = "oneagent.dynatrace.com/reason"


def run(pod, namespace=None, dynakube=None, *, ns_name="shop"):
    original = copy.deepcopy(pod)
    result = pods.decide(pod, namespace, dynakube, SETTINGS, namespace_name=ns_name)
    assert pod == original, "the request object must never be modified"
    patched = jsonpatch.apply_patch(pod, result.ops) if result.ops else pod
    return result, patched


def annotations(pod):
    return pod["metadata"].get("annotations") or {}


# (case, namespace, dynakube, pod, outcome, reasons, annotations expected after the patch or None = no patch)
CASES = [
    ("namespace not in cache", None, make_dynakube(), make_pod(), "skipped", ("NamespaceUnknown",), None),
    (
        "namespace without instance label",
        make_namespace(dynakube=None),
        make_dynakube(),
        make_pod(),
        "skipped",
        ("NamespaceNotMapped",),
        None,
    ),
    (
        "label names a missing DynaKube",
        make_namespace(),
        None,
        make_pod(),
        "skipped",
        ("MissingDynakube",),
        None,
    ),
    (
        "dynatrace.com/inject=false",
        make_namespace(),
        make_dynakube(),
        make_pod(annotations={"dynatrace.com/inject": "false"}),
        "skipped",
        ("PodOptOut",),
        None,
    ),
    (
        "OpenShift debug pod",
        make_namespace(),
        make_dynakube(),
        make_pod(
            annotations={
                "debug.openshift.io/source-container": "app",
                "debug.openshift.io/source-resource": "pods/app",
            }
        ),
        "skipped",
        ("OpenShiftDebugPod",),
        None,
    ),
    (
        "only one OpenShift debug annotation is not a debug pod",
        make_namespace(),
        make_dynakube(),
        make_pod(annotations={"debug.openshift.io/source-container": "app"}),
        "injected",
        (),
        "injected",
    ),
    (
        "classicFullStack does not inject",
        make_namespace(),
        make_dynakube(mode="classicFullStack"),
        make_pod(),
        "skipped",
        ("ModeWithoutInjection",),
        None,
    ),
    (
        "hostMonitoring does not inject",
        make_namespace(),
        make_dynakube(mode="hostMonitoring"),
        make_pod(),
        "skipped",
        ("ModeWithoutInjection",),
        None,
    ),
    (
        "namespace not selected",
        make_namespace(team="other"),
        make_dynakube(selector={"matchLabels": {"team": "shop"}}),
        make_pod(),
        "skipped",
        ("NamespaceNotSelected",),
        None,
    ),
    (
        "namespace selected",
        make_namespace(team="shop"),
        make_dynakube(selector={"matchLabels": {"team": "shop"}}),
        make_pod(),
        "injected",
        (),
        "injected",
    ),
    (
        "invalid selector selects nothing",
        make_namespace(),
        make_dynakube(selector={"matchExpressions": [{"key": "a", "operator": "Equals"}]}),
        make_pod(),
        "skipped",
        ("InvalidNamespaceSelector",),
        None,
    ),
    (
        "oneagent.dynatrace.com/inject=false",
        make_namespace(),
        make_dynakube(),
        make_pod(annotations={"oneagent.dynatrace.com/inject": "false"}),
        "skipped",
        ("OneAgentOptOut",),
        None,
    ),
    (
        "automatic injection off by DynaKube",
        make_namespace(),
        make_dynakube(annotations={"feature.dynatrace.com/automatic-injection": "false"}),
        make_pod(),
        "skipped",
        ("OneAgentOptOut",),
        None,
    ),
    (
        "automatic injection off, pod opts in",
        make_namespace(),
        make_dynakube(annotations={"feature.dynatrace.com/automatic-injection": "false"}),
        make_pod(annotations={"oneagent.dynatrace.com/inject": "true"}),
        "injected",
        (),
        "injected",
    ),
    (
        "every container excluded on the pod",
        make_namespace(),
        make_dynakube(),
        make_pod(annotations={"container.inject.dynatrace.com/checkout": "false"}),
        "skipped",
        ("AllContainersExcluded",),
        None,
    ),
    (
        "every container excluded on the DynaKube",
        make_namespace(),
        make_dynakube(annotations={"container.inject.dynatrace.com/checkout": "false"}),
        make_pod(),
        "skipped",
        ("AllContainersExcluded",),
        None,
    ),
    (
        "a DynaKube exclusion holds whatever the pod says (v1.4 reads both)",
        make_namespace(),
        make_dynakube(annotations={"container.inject.dynatrace.com/checkout": "false"}),
        make_pod(annotations={"container.inject.dynatrace.com/checkout": "true"}),
        "skipped",
        ("AllContainersExcluded",),
        None,
    ),
    (
        "no containers",
        make_namespace(),
        make_dynakube(),
        make_pod(containers=[]),
        "skipped",
        ("AllContainersExcluded",),
        None,
    ),
    (
        "EmptyConnectionInfo",
        make_namespace(),
        make_dynakube(hosts=[]),
        make_pod(),
        "skipped",
        ("EmptyConnectionInfo",),
        {INJECTED: "false", REASON: "EmptyConnectionInfo"},
    ),
    (
        "EmptyTenantUUID",
        make_namespace(),
        make_dynakube(tenant=""),
        make_pod(),
        "skipped",
        ("EmptyTenantUUID",),
        {INJECTED: "false", REASON: "EmptyTenantUUID"},
    ),
    (
        "UnknownCodeModule",
        make_namespace(),
        make_dynakube(version=""),
        make_pod(),
        "skipped",
        ("UnknownCodeModule",),
        {INJECTED: "false", REASON: "UnknownCodeModule"},
    ),
    (
        "codeModulesImage makes the code module known",
        make_namespace(),
        make_dynakube(version="", mode_extra={"codeModulesImage": "registry/codemodules:1.2"}),
        make_pod(),
        "injected",
        (),
        "injected",
    ),
    (
        "all three reasons joined in upstream order",
        make_namespace(),
        make_dynakube(tenant="", hosts=[], version=""),
        make_pod(annotations={"keep": "me"}),
        "skipped",
        ("EmptyTenantUUID", "EmptyConnectionInfo", "UnknownCodeModule"),
        {"keep": "me", INJECTED: "false", REASON: "EmptyTenantUUID, EmptyConnectionInfo, UnknownCodeModule"},
    ),
    (
        "malformed communication hosts count as none",
        make_namespace(),
        make_dynakube(hosts=[{"protocol": "https"}, "10.0.0.1", None]),
        make_pod(),
        "skipped",
        ("EmptyConnectionInfo",),
        {INJECTED: "false", REASON: "EmptyConnectionInfo"},
    ),
    (
        "status of the wrong type",
        make_namespace(),
        {**make_dynakube(), "status": "broken"},
        make_pod(),
        "skipped",
        ("EmptyTenantUUID", "EmptyConnectionInfo", "UnknownCodeModule"),
        {INJECTED: "false", REASON: "EmptyTenantUUID, EmptyConnectionInfo, UnknownCodeModule"},
    ),
    (
        "tenant from the ActiveGate connection info",
        make_namespace(),
        {
            **make_dynakube(tenant=""),
            "status": {
                **make_dynakube(tenant="")["status"],
                "activeGate": {"connectionInfoStatus": {"tenantUUID": "abc"}},
            },
        },
        make_pod(),
        "injected",
        (),
        "injected",
    ),
]


@pytest.mark.parametrize(
    ("namespace", "dynakube", "pod", "outcome", "reasons", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decision(namespace, dynakube, pod, outcome, reasons, expected):
    result, patched = run(pod, namespace, dynakube)
    assert result.outcome == outcome
    assert result.reasons == reasons
    assert result.message
    # the trace ends with the check that decided: failed for a skip, passed for an injection
    assert result.checks[-1][1] is (outcome == "injected")
    if outcome == "skipped":
        assert result.checks[-1][2] == result.message
    if expected is None:
        assert result.ops == []
    elif expected == "injected":
        assert annotations(patched)[INJECTED] == "true"
        assert annotations(patched)["dynakube.dynatrace.com/injected"] == "true"
        assert [c["name"] for c in patched["spec"]["initContainers"]] == ["dynatrace-operator"]
    else:
        assert annotations(patched) == expected
        # a skip adds the annotations and nothing else
        assert {k: v for k, v in patched.items() if k != "metadata"} == {
            k: v for k, v in pod.items() if k != "metadata"
        }


def injected(pod, dynakube=None, namespace=None):
    result, patched = run(pod, namespace or make_namespace(), dynakube or make_dynakube())
    assert result.outcome in ("injected", "reinvoked"), result
    return patched


def env(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_injection_adds_init_container_volumes_env_and_mounts():
    patched = injected(
        make_pod(
            containers=[
                {"name": "app", "image": "app:1"},
                {
                    "name": "sidecar",
                    "image": "side:2",
                    "env": [{"name": "LD_PRELOAD", "value": "/lib/libfoo.so"}],
                },
            ]
        )
    )
    spec = patched["spec"]
    assert [v["name"] for v in spec["volumes"]] == ["injection-config", "oneagent-bin", "oneagent-share"]
    assert spec["volumes"][1]["csi"] == {
        "driver": "csi.oneagent.dynatrace.com",
        "readOnly": False,
        "volumeAttributes": {"mode": "app", "dynakube": "dk", "retryTimeout": "10m0s"},
    }
    init = spec["initContainers"][0]
    assert init["image"] == SETTINGS.image and init["args"] == ["init"]
    init_env = env(init)
    assert (
        init_env["CONTAINER_INFO"] == '[{"name":"app","image":"app:1"},{"name":"sidecar","image":"side:2"}]'
    )
    assert init_env["K8S_BASEPODNAME"] == "checkout-785cb95b9f"
    assert init_env["K8S_CLUSTER_ID"] == "5a0c6c1e-3f7a-4d43-9a3e-2f0f1b7f9e11"
    assert init_env["VERSION"] == "1.299.50.20240930-123456"
    assert init_env["FAILURE_POLICY"] == "silent" and init_env["FLAVOR"] == ""
    assert init_env["TECHNOLOGIES"] == "all" and init_env["INSTALLPATH"] == "/opt/dynatrace/oneagent-paas"
    assert init_env["ONEAGENT_INJECTED"] == "true"
    assert {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in init["env"] if "valueFrom" in e} == {
        "K8S_PODNAME": "metadata.name",
        "K8S_PODUID": "metadata.uid",
        "K8S_NAMESPACE": "metadata.namespace",
        "K8S_NODE_NAME": "spec.nodeName",
    }
    sc = init["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsUser"] == 1001 and sc["runAsGroup"] == 1001
    app, sidecar = spec["containers"]
    assert env(app)["LD_PRELOAD"] == "/opt/dynatrace/oneagent-paas/agent/lib64/liboneagentproc.so"
    assert (
        env(sidecar)["LD_PRELOAD"]
        == "/lib/libfoo.so:/opt/dynatrace/oneagent-paas/agent/lib64/liboneagentproc.so"
    )
    assert env(app)["DT_NETWORK_ZONE"] == "eu-west-zone-a"
    assert env(app)["DT_DEPLOYMENT_METADATA"] == (
        "orchestration_tech=Operator-cloud_native_fullstack;script_version=1.0.0;"
        "orchestrator_id=5a0c6c1e-3f7a-4d43-9a3e-2f0f1b7f9e11"
    )
    assert sidecar["volumeMounts"] == [
        {"name": "oneagent-share", "mountPath": "/etc/ld.so.preload", "subPath": "ld.so.preload"},
        {"name": "oneagent-bin", "mountPath": "/opt/dynatrace/oneagent-paas"},
        {
            "name": "oneagent-share",
            "mountPath": "/var/lib/dynatrace/oneagent/agent/config/container.conf",
            "subPath": "container_sidecar.conf",
        },
    ]


def test_without_the_csi_driver_the_agent_volume_is_an_empty_dir():
    result = pods.decide(
        make_pod(),
        make_namespace(),
        make_dynakube(mode="applicationMonitoring", network_zone=""),
        pods.Settings(image="i", version="1", csi=False),
        namespace_name="shop",
    )
    patched = jsonpatch.apply_patch(make_pod(), result.ops)
    assert patched["spec"]["volumes"][1] == {"name": "oneagent-bin", "emptyDir": {}}
    assert patched["spec"]["initContainers"][0]["resources"] == {}
    assert "DT_NETWORK_ZONE" not in env(patched["spec"]["containers"][0])
    assert "application_monitoring" in env(patched["spec"]["containers"][0])["DT_DEPLOYMENT_METADATA"]


def test_pod_annotations_shape_the_init_container():
    patched = injected(
        make_pod(
            annotations={
                "oneagent.dynatrace.com/flavor": "musl",
                "oneagent.dynatrace.com/technologies": "java,nodejs",
                "oneagent.dynatrace.com/install-path": "/opt/custom",
                "oneagent.dynatrace.com/installer-url": "https://example.com/installer",
                "oneagent.dynatrace.com/failure-policy": "fail",
            }
        )
    )
    init_env = env(patched["spec"]["initContainers"][0])
    assert (init_env["FLAVOR"], init_env["TECHNOLOGIES"], init_env["INSTALLPATH"]) == (
        "musl",
        "java%2Cnodejs",
        "/opt/custom",
    )
    assert (
        init_env["INSTALLER_URL"] == "https://example.com/installer" and init_env["FAILURE_POLICY"] == "fail"
    )
    app = patched["spec"]["containers"][0]
    assert env(app)["LD_PRELOAD"] == "/opt/custom/agent/lib64/liboneagentproc.so"
    assert {"name": "oneagent-bin", "mountPath": "/opt/custom"} in app["volumeMounts"]


def test_dynakube_failure_policy_is_the_default():
    dk = make_dynakube(annotations={"feature.dynatrace.com/injection-failure-policy": "fail"})
    assert env(injected(make_pod(), dk)["spec"]["initContainers"][0])["FAILURE_POLICY"] == "fail"


def test_run_as_user_from_the_first_container_then_the_pod():
    pod = make_pod(securityContext={"runAsUser": 2000, "runAsGroup": 3000})
    sc = injected(pod)["spec"]["initContainers"][0]["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"]) == (2000, 3000)
    pod = make_pod(
        containers=[{"name": "a", "image": "a", "securityContext": {"runAsUser": 4000}}],
        securityContext={"runAsUser": 2000},
    )
    sc = injected(pod)["spec"]["initContainers"][0]["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"]) == (4000, 1001)


def test_excluded_container_is_left_alone_and_not_in_container_info():
    pod = make_pod(
        containers=[{"name": "app", "image": "a"}, {"name": "istio-proxy", "image": "p"}],
        annotations={"container.inject.dynatrace.com/istio-proxy": "false"},
    )
    patched = injected(pod)
    assert patched["spec"]["containers"][1] == {"name": "istio-proxy", "image": "p"}
    assert env(patched["spec"]["initContainers"][0])["CONTAINER_INFO"] == '[{"name":"app","image":"a"}]'


def test_reinvocation_injects_only_new_containers_and_updates_container_info():
    first = injected(make_pod(containers=[{"name": "app", "image": "a"}]))
    first["spec"]["containers"].append({"name": "late", "image": "l"})
    result, second = run(first, make_namespace(), make_dynakube())
    assert result.outcome == "reinvoked"
    assert second["spec"]["containers"][0] == first["spec"]["containers"][0]
    assert env(second["spec"]["containers"][1])["LD_PRELOAD"].endswith("liboneagentproc.so")
    assert len(second["spec"]["initContainers"]) == 1
    assert env(second["spec"]["initContainers"][0])["CONTAINER_INFO"] == (
        '[{"name":"app","image":"a"},{"name":"late","image":"l"}]'
    )


def test_reinvocation_with_nothing_new_gives_no_patch():
    first = injected(make_pod())
    result, _ = run(first, make_namespace(), make_dynakube())
    assert (result.outcome, result.reasons, result.ops) == ("reinvoked", ("NothingNew",), [])


def test_init_container_present_without_annotation_counts_as_injected():
    pod = make_pod(
        initContainers=[{"name": "install-oneagent", "image": "x"}],
        containers=[
            {
                "name": "app",
                "image": "a",
                "volumeMounts": [{"name": "oneagent-bin", "mountPath": "/opt/dynatrace/oneagent-paas"}],
            }
        ],
    )
    result, _ = run(pod, make_namespace(), make_dynakube())
    assert (result.outcome, result.ops) == ("reinvoked", [])


def test_skipped_pod_is_injected_once_connection_info_is_complete():
    _, skipped = run(make_pod(), make_namespace(), make_dynakube(hosts=[]))
    assert annotations(skipped)[REASON] == "EmptyConnectionInfo"
    result, patched = run(skipped, make_namespace(), make_dynakube())
    assert result.outcome == "injected"
    assert annotations(patched)[INJECTED] == "true"
    assert REASON not in annotations(patched)


def test_v1beta1_namespace_selector_at_the_top_level():
    dk = make_dynakube(api_version="dynatrace.com/v1beta1")
    dk["spec"]["namespaceSelector"] = {"matchLabels": {"team": "shop"}}
    assert run(make_pod(), make_namespace(team="other"), dk)[0].reasons == ("NamespaceNotSelected",)
    assert run(make_pod(), make_namespace(team="shop"), dk)[0].outcome == "injected"


def test_existing_volumes_and_mount_paths_are_not_duplicated():
    taken = {
        "name": "app",
        "image": "a",
        "volumeMounts": [{"name": "mine", "mountPath": "/etc/ld.so.preload"}],
    }
    pod = make_pod(
        containers=[taken, {"name": "web", "image": "w"}],
        volumes=[{"name": "oneagent-share", "emptyDir": {"medium": "Memory"}}],
    )
    patched = injected(pod)
    assert [v["name"] for v in patched["spec"]["volumes"]].count("oneagent-share") == 1
    # the container whose path is taken is left alone (a duplicate mount path makes the pod invalid)
    assert patched["spec"]["containers"][0] == taken
    assert env(patched["spec"]["initContainers"][0])["CONTAINER_INFO"] == '[{"name":"web","image":"w"}]'
    # and when every container is like that, the pod is left unchanged but for saying why
    result, patched = run(make_pod(containers=[taken]), make_namespace(), make_dynakube())
    assert (result.outcome, result.reasons) == ("skipped", ("MountPathTaken",))
    assert annotations(patched) == {INJECTED: "false", REASON: "MountPathTaken"}
    assert patched["spec"] == make_pod(containers=[taken])["spec"]


ENRICHMENT_INJECTED = "metadata-enrichment.dynatrace.com/injected"
ENRICHMENT_REASON = "metadata-enrichment.dynatrace.com/reason"
# a path OneAgent mounts, and one metadata enrichment mounts, each holding something else
TAKEN_BY_ONEAGENT = {"name": "mine", "mountPath": "/etc/ld.so.preload"}
TAKEN_BY_ENRICHMENT = {"name": "mine", "mountPath": "/var/lib/dynatrace/enrichment/endpoint"}


def enriching(dynakube):
    dynakube["spec"]["metadataEnrichment"] = {"enabled": True}
    return dynakube


@pytest.mark.parametrize(
    ("dynakube", "mount", "expected"),
    [
        (
            make_dynakube(),
            TAKEN_BY_ONEAGENT,
            {INJECTED: "false", REASON: "MountPathTaken"},
        ),
        (
            enriching(make_dynakube(mode="classicFullStack")),  # enrichment only
            TAKEN_BY_ENRICHMENT,
            {ENRICHMENT_INJECTED: "false", ENRICHMENT_REASON: "MountPathTaken"},
        ),
        (
            enriching(make_dynakube()),
            TAKEN_BY_ENRICHMENT,  # a container is injected whole or not at all
            {
                INJECTED: "false",
                REASON: "MountPathTaken",
                ENRICHMENT_INJECTED: "false",
                ENRICHMENT_REASON: "MountPathTaken",
            },
        ),
        (
            # OneAgent waits for connection info; enrichment alone would run, but its path is taken: before,
            # the pod said nothing at all, not even EmptyConnectionInfo
            enriching(make_dynakube(hosts=[])),
            TAKEN_BY_ENRICHMENT,
            {
                INJECTED: "false",
                REASON: "EmptyConnectionInfo",
                ENRICHMENT_INJECTED: "false",
                ENRICHMENT_REASON: "MountPathTaken",
            },
        ),
    ],
    ids=["oneagent", "enrichment", "both", "oneagent-pending"],
)
def test_mount_path_taken_says_so_on_the_pod(dynakube, mount, expected):
    pod = make_pod(containers=[{"name": "app", "image": "a", "volumeMounts": [mount]}])
    result, patched = run(pod, make_namespace(), dynakube)
    assert result.outcome == "skipped" and "MountPathTaken" in result.reasons
    assert annotations(patched) == expected
    assert patched["spec"] == pod["spec"]  # nothing mounted, no init container
    assert "MountPathTaken" in result.message and result.event == ""
    assert ("mount paths free", False, result.message) in result.checks
    # a second pass (reinvocation) changes nothing
    assert run(patched, make_namespace(), dynakube)[0].ops == []


def test_a_container_added_later_is_injected_and_the_stale_reasons_go():
    dynakube = enriching(make_dynakube())
    app = {"name": "app", "image": "a", "volumeMounts": [TAKEN_BY_ENRICHMENT]}
    _, skipped = run(make_pod(containers=[app]), make_namespace(), dynakube)
    skipped["spec"]["containers"].append({"name": "web", "image": "w"})  # a later webhook adds one
    result, patched = run(skipped, make_namespace(), dynakube)
    assert result.outcome == "injected"
    assert annotations(patched)[INJECTED] == annotations(patched)[ENRICHMENT_INJECTED] == "true"
    assert REASON not in annotations(patched) and ENRICHMENT_REASON not in annotations(patched)
    assert patched["spec"]["containers"][0] == app


def test_containers_that_already_carry_the_injection_are_not_a_silent_skip():
    """Every container has OneAgent's env and mounts, but the pod has no injection annotation and no init
    container (copied from an injected pod, say): an init container would have nothing to set up."""
    done = {
        "name": "app",
        "image": "a",
        "env": [{"name": "DT_DEPLOYMENT_METADATA", "value": "x"}, {"name": "LD_PRELOAD", "value": "y"}],
        "volumeMounts": [
            {"name": "oneagent-bin", "mountPath": "/opt/dynatrace/oneagent-paas"},
            {"name": "oneagent-share", "mountPath": "/etc/ld.so.preload", "subPath": "ld.so.preload"},
        ],
    }
    result, patched = run(make_pod(containers=[done]), make_namespace(), make_dynakube())
    assert (result.outcome, result.reasons) == ("skipped", ("ContainersAlreadyInjected",))
    assert annotations(patched) == {INJECTED: "false", REASON: "ContainersAlreadyInjected"}
    assert patched["spec"] == make_pod(containers=[done])["spec"]


def test_ld_preload_from_a_reference_is_left_alone():
    ref = {"name": "LD_PRELOAD", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
    patched = injected(make_pod(containers=[{"name": "app", "image": "a", "env": [ref]}]))
    assert patched["spec"]["containers"][0]["env"][0] == ref


def test_pod_name_prefers_name_then_generate_name():
    assert pods.pod_name(make_pod(name="web-0", generate_name="web-")) == "web-0"
    assert pods.pod_name(make_pod(generate_name="web-abc-")) == "web-abc-"
    assert pods.pod_name(make_pod(generate_name=None)) == ""
    assert pods.base_pod_name(make_pod(name="web-0", generate_name=None)) == "web"


def test_the_gate_decides_and_the_build_adds():
    pod, namespace, dynakube = make_pod(), make_namespace(), make_dynakube()
    go = pods.gate(pod, namespace, dynakube, namespace_name="shop")
    assert isinstance(go, pods.GoAhead) and go.with_oa and not go.reinvoke
    assert go.plan.oneagent == go.ctx.eligible == [0]
    assert go.checks[-1] == (
        "injection enabled",
        True,
        "OneAgent: on, metadata enrichment: MetadataEnrichmentDisabled",
    )
    built = pods.build(go, SETTINGS)
    assert built == pods.decide(pod, namespace, dynakube, SETTINGS, namespace_name="shop")
    skipped = pods.gate(make_pod(annotations={"dynatrace.com/inject": "false"}), namespace, dynakube)
    assert isinstance(skipped, pods.Result) and skipped.reasons == ("PodOptOut",)
