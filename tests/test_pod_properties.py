"""Properties of /inject over generated pods and DynaKube states.

- the decision never raises and never modifies the request;
- the patch applies cleanly to the original pod, and equals (in effect) what a generic diff would produce;
- a second pass over the patched pod yields no patch (reinvocationPolicy: IfNeeded is safe);
- an injected pod is a valid pod shape: unique volume names, unique mount paths per container;
- a pod of a mapped namespace whose DynaKube exists is injected, or left untouched for one of the reasons the
  v1.4 contract gives (opt-out, OpenShift debug pod, every container excluded, injection disabled), or says
  on itself why it was not (``…/injected: "false"`` with ``…/reason``): never a silent skip.
"""

from __future__ import annotations

import copy

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SETTINGS, make_dynakube, make_namespace
from webhook.mutation import pod as pods
from webhook.mutation.context import PodContext

names = st.text(alphabet="abc-/~.0", min_size=1, max_size=6)
env_var = st.fixed_dictionaries(
    {"name": st.sampled_from(["LD_PRELOAD", "DT_NETWORK_ZONE", "PATH", "DT_DEPLOYMENT_METADATA", "X"])},
    optional={"value": st.sampled_from(["", "/lib/a.so", "x y"])},
)
mount = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["data", "oneagent-share", "oneagent-bin", "metadata-enrichment", "cfg"]),
        "mountPath": st.sampled_from(
            [
                "/data",
                "/etc/ld.so.preload",
                "/opt/dynatrace/oneagent-paas",
                "/var/lib/dynatrace/enrichment/endpoint",
                "/cfg",
            ]
        ),
    }
)
container = st.fixed_dictionaries(
    {"name": names, "image": st.sampled_from(["a:1", "b:2"])},
    optional={
        "env": st.one_of(st.none(), st.lists(env_var, max_size=4)),
        "volumeMounts": st.lists(mount, max_size=3, unique_by=lambda m: m["mountPath"]),
        "securityContext": st.fixed_dictionaries({}, optional={"runAsUser": st.integers(0, 5000)}),
    },
)
annotation_keys = st.sampled_from(
    [
        "oneagent.dynatrace.com/inject",
        "dynatrace.com/inject",
        "oneagent.dynatrace.com/flavor",
        "oneagent.dynatrace.com/install-path",
        "oneagent.dynatrace.com/injected",
        "oneagent.dynatrace.com/reason",
        "container.inject.dynatrace.com/a",
        "container.inject.dynatrace.com/b",
        "metadata-enrichment.dynatrace.com/inject",
        "debug.openshift.io/source-container",
        "debug.openshift.io/source-resource",
        "other/x",
    ]
)
annotation_values = st.one_of(
    st.sampled_from(["true", "false", "musl", "/opt/x", "EmptyConnectionInfo"]), st.integers(), st.none()
)


@st.composite
def pods_(draw, min_containers=0):
    containers = draw(st.lists(container, min_size=min_containers, max_size=4, unique_by=lambda c: c["name"]))
    meta = {"generateName": draw(st.sampled_from(["web-", "web-abc-", ""])), "namespace": "shop"}
    annotations = draw(st.one_of(st.none(), st.dictionaries(annotation_keys, annotation_values, max_size=4)))
    if annotations is not None or draw(st.booleans()):
        meta["annotations"] = annotations
    spec = {"containers": containers}
    if draw(st.booleans()):
        spec["volumes"] = draw(
            st.lists(
                st.fixed_dictionaries({"name": st.sampled_from(["data", "oneagent-bin"])}),
                max_size=2,
                unique_by=lambda v: v["name"],
            )
        )
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


dynakubes = st.builds(
    make_dynakube,
    mode=st.sampled_from(["cloudNativeFullStack", "applicationMonitoring", "classicFullStack"]),
    hosts=st.sampled_from([None, [], [{"host": "h"}]]),
    tenant=st.sampled_from(["abc", ""]),
    version=st.sampled_from(["1.2.3", ""]),
    network_zone=st.sampled_from(["", "zone-a"]),
    annotations=st.dictionaries(
        st.sampled_from(["feature.dynatrace.com/automatic-injection", "container.inject.dynatrace.com/a"]),
        st.sampled_from(["true", "false"]),
        max_size=2,
    ),
)


secret_sets = st.sampled_from(
    [
        None,
        frozenset(),
        frozenset({"dynatrace-dynakube-config"}),
        frozenset({"dynatrace-metadata-enrichment-endpoint"}),
    ]
)


def with_enrichment(dynakube, on):
    if on:
        dynakube = {**dynakube, "spec": {**dynakube["spec"], "metadataEnrichment": {"enabled": True}}}
    return dynakube


def clean_annotations(pod):
    """Annotation values that are not strings are rejected by the API server before any webhook runs."""
    meta = pod["metadata"]
    if isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if isinstance(v, str)}
    return pod


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pod=pods_(), dynakube=dynakubes, enrich=st.booleans(), secrets=secret_sets)
def test_patch_applies_and_second_pass_is_a_no_op(pod, dynakube, enrich, secrets):
    namespace = make_namespace()
    dynakube = with_enrichment(dynakube, enrich)
    original = copy.deepcopy(pod)
    first = pods.decide(pod, namespace, dynakube, SETTINGS, namespace_name="shop", secrets=secrets)
    assert pod == original
    patched = jsonpatch.apply_patch(pod, first.ops)
    # the generic diff (the oracle) describes the same change
    assert jsonpatch.apply_patch(pod, jsonpatch.make_patch(pod, patched)) == patched
    second = pods.decide(patched, namespace, dynakube, SETTINGS, namespace_name="shop", secrets=secrets)
    assert second.ops == [], (first.outcome, second.outcome, second.ops)
    # only secrets the cache holds are ever mounted
    held = (
        {"dynatrace-dynakube-config", "dynatrace-metadata-enrichment-endpoint"}
        if secrets is None
        else secrets
    )
    added = [v for v in patched["spec"].get("volumes") or [] if v not in (pod["spec"].get("volumes") or [])]
    assert {v["secret"]["secretName"] for v in added if "secret" in v} <= held

    if first.outcome == "injected":
        spec = patched["spec"]
        volume_names = [v["name"] for v in spec["volumes"]]
        assert len(volume_names) == len(set(volume_names))
        for c in spec["containers"]:
            paths = [m["mountPath"] for m in c.get("volumeMounts") or []]
            assert len(paths) == len(set(paths))
        assert patched["metadata"]["annotations"]["dynakube.dynatrace.com/injected"] == "true"
        assert [c["name"] for c in spec["initContainers"]].count("dynatrace-operator") == 1


@settings(max_examples=100, deadline=None)
@given(pod=pods_().map(clean_annotations), dynakube=dynakubes, enrich=st.booleans(), secrets=secret_sets)
def test_skips_only_ever_touch_the_reason_annotations(pod, dynakube, enrich, secrets):
    dynakube = with_enrichment(dynakube, enrich)
    result = pods.decide(pod, make_namespace(), dynakube, SETTINGS, namespace_name="shop", secrets=secrets)
    if result.outcome == "skipped" and result.ops:
        touched = {op["path"] for op in result.ops}
        assert touched <= {
            "/metadata/annotations",
            "/metadata/annotations/oneagent.dynatrace.com~1injected",
            "/metadata/annotations/oneagent.dynatrace.com~1reason",
            "/metadata/annotations/metadata-enrichment.dynatrace.com~1injected",
            "/metadata/annotations/metadata-enrichment.dynatrace.com~1reason",
        }


# what the v1.4 contract leaves untouched, without a word on the pod (the metric and ``explain`` say why)
UNTOUCHED = {
    pods.SKIP_POD_OPT_OUT,
    pods.SKIP_OPENSHIFT_DEBUG,
    pods.SKIP_ALL_CONTAINERS_EXCLUDED,
    # injection disabled: no mutator applies to the pod
    pods.SKIP_MODE,
    pods.SKIP_NAMESPACE_SELECTOR,
    pods.SKIP_INVALID_SELECTOR,
    pods.SKIP_ONEAGENT_OPT_OUT,
}
SAID = (
    ("oneagent.dynatrace.com/injected", "oneagent.dynatrace.com/reason"),
    ("metadata-enrichment.dynatrace.com/injected", "metadata-enrichment.dynatrace.com/reason"),
)
mapped_dynakubes = st.builds(
    make_dynakube,
    mode=st.sampled_from(["cloudNativeFullStack", "applicationMonitoring", "classicFullStack"]),
    selector=st.sampled_from(
        [None, {"matchLabels": {"team": "shop"}}, {"matchLabels": {"team": "other"}}, {"matchLabels": 1}]
    ),
    hosts=st.sampled_from([None, [], [{"host": "h"}]]),
    tenant=st.sampled_from(["abc", ""]),
    version=st.sampled_from(["1.2.3", ""]),
    annotations=st.dictionaries(
        st.sampled_from(
            [
                "feature.dynatrace.com/automatic-injection",
                "container.inject.dynatrace.com/a",
                "container.inject.dynatrace.com/b",
            ]
        ),
        st.sampled_from(["true", "false"]),
        max_size=2,
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pod=pods_(min_containers=1).map(clean_annotations),
    dynakube=mapped_dynakubes,
    enrich=st.booleans(),
    secrets=secret_sets,
)
def test_a_mapped_pod_is_injected_untouched_for_a_listed_reason_or_says_why(pod, dynakube, enrich, secrets):
    dynakube = with_enrichment(dynakube, enrich)
    namespace = make_namespace(team="shop")
    result = pods.decide(pod, namespace, dynakube, SETTINGS, namespace_name="shop", secrets=secrets)
    after = (jsonpatch.apply_patch(pod, result.ops) if result.ops else pod)["metadata"].get(
        "annotations"
    ) or {}
    if result.outcome == "injected":
        assert after["dynakube.dynatrace.com/injected"] == "true"
    elif result.outcome == "reinvoked":
        assert PodContext(pod).already_injected()  # the pod says so already
    else:
        assert result.outcome == "skipped", result
        if result.reasons[0] in UNTOUCHED:
            assert (result.ops, len(result.reasons)) == ([], 1), result
        else:
            said = [
                after[reason]
                for injected, reason in SAID
                if after.get(injected) == "false" and reason in after
            ]
            assert said, (result.reasons, after)
            # every reason of the answer is on the pod
            assert set(result.reasons) <= {r.strip() for text in said for r in text.split(",")}, (
                result,
                after,
            )
