"""Single rules of the v1.4 contract (INJECTION-CONTRACT.md sections 1-4, 8) and the Go semantics they use."""

from __future__ import annotations

import jsonpatch
import orjson
import pytest

from tests.conftest import SETTINGS, make_dynakube, make_namespace, make_pod, make_review, make_store
from webhook.admission import handlers, skipevents
from webhook.admission.review import decode
from webhook.mutation import oneagent as oa
from webhook.mutation import pod as pods
from webhook.mutation import podspec as ps


@pytest.mark.parametrize(
    ("text", "nanos", "shown"),
    [
        ("10m", 600 * 10**9, "10m0s"),
        ("90s", 90 * 10**9, "1m30s"),
        ("1h", 3600 * 10**9, "1h0m0s"),
        ("1.5s", 1_500_000_000, "1.5s"),
        ("250ms", 250_000_000, "250ms"),
        ("1h2m3.004s", 3723_004_000_000, "1h2m3.004s"),
        ("0", 0, "0s"),
    ],
)
def test_go_durations(text, nanos, shown):
    assert ps.parse_go_duration(text) == nanos
    assert ps.format_go_duration(nanos) == shown


@pytest.mark.parametrize("text", ["", "10", "m", "ten minutes", "1x", "."])
def test_go_duration_rejects_what_go_rejects(text):
    assert ps.parse_go_duration(text) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("T", True),
        ("1", True),
        ("FALSE", False),
        ("0", False),
        ("fAlse", None),
        ("", None),
        ([], None),
    ],
)
def test_parse_bool_is_go_strconv(value, expected):
    assert ps.parse_bool(value, None) is expected  # type: ignore[arg-type]


def decide(pod=None, dynakube=None, namespace=None, **kw):
    pod = pod or make_pod()
    result = pods.decide(
        pod, namespace or make_namespace(), dynakube or make_dynakube(), SETTINGS, namespace_name="shop", **kw
    )
    return result, jsonpatch.apply_patch(pod, result.ops) if result.ops else pod


def mounts(patched, index=0):
    return {m["mountPath"]: m for m in patched["spec"]["containers"][index].get("volumeMounts", [])}


@pytest.mark.parametrize(
    ("annotations", "spec", "paths"),
    [
        ({}, {}, set()),
        ({}, {"trustedCAs": "cas"}, {"custom.pem", "custom_proxy.pem"}),
        ({}, {"activeGate": {"capabilities": ["routing"], "tlsSecretName": "ag-tls"}}, {"custom.pem"}),
        ({}, {"activeGate": {"tlsSecretName": "ag-tls"}}, set()),  # no ActiveGate runs: no certificate
        ({}, {"kspm": {}, "activeGate": {"tlsSecretName": "ag-tls"}}, {"custom.pem"}),
        ({}, {"enableIstio": True}, {"curl_options.conf"}),
        ({"feature.dynatrace.com/oneagent-initial-connect-retry-ms": "0"}, {"enableIstio": True}, set()),
        ({"feature.dynatrace.com/oneagent-initial-connect-retry-ms": "500"}, {}, {"curl_options.conf"}),
    ],
)
def test_certificate_and_curl_option_mounts(annotations, spec, paths):
    dk = make_dynakube(annotations=annotations)
    dk["spec"].update(spec)
    _, patched = decide(dynakube=dk)
    custom = {p.rsplit("/", 1)[1] for p in mounts(patched) if p.startswith(oa.CUSTOM_KEYS)}
    assert custom == paths


def test_security_context_and_resources_rules():
    pod = make_pod(
        containers=[{"name": "a", "image": "a", "securityContext": {"runAsUser": 0}}],
        securityContext={"runAsUser": 5, "runAsGroup": 7},
    )
    _, patched = decide(
        pod, make_dynakube(annotations={"feature.dynatrace.com/init-container-seccomp-profile": "true"})
    )
    init = patched["spec"]["initContainers"][0]
    assert init["securityContext"]["runAsUser"] == 0 and init["securityContext"]["runAsGroup"] == 7
    assert init["securityContext"]["runAsNonRoot"] is False
    assert init["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert init["resources"] == {
        "requests": {"cpu": "30m", "memory": "30Mi"},
        "limits": {"cpu": "100m", "memory": "60Mi"},
    }
    _, patched = decide()
    assert "seccompProfile" not in patched["spec"]["initContainers"][0]["securityContext"]


def test_install_path_that_collides_with_another_mount_falls_back_to_the_default():
    pod = make_pod(annotations={"oneagent.dynatrace.com/install-path": "/etc/ld.so.preload"})
    _, patched = decide(pod)
    assert "/opt/dynatrace/oneagent-paas" in mounts(patched)


def test_cluster_id_comes_from_the_caller_before_the_dynakube_status():
    _, patched = decide(cluster_id="kube-system-uid")
    env = {e["name"]: e.get("value") for e in patched["spec"]["initContainers"][0]["env"]}
    assert env["K8S_CLUSTER_ID"] == "kube-system-uid"
    app_env = {e["name"]: e.get("value") for e in patched["spec"]["containers"][0]["env"]}
    assert app_env["DT_DEPLOYMENT_METADATA"].endswith("orchestrator_id=kube-system-uid")


def test_upstream_annotation_of_an_earlier_pass_is_not_reinjected_by_an_unparsable_value():
    pod = make_pod(annotations={"oneagent.dynatrace.com/injected": "yes"})  # not a Go bool: not injected
    result, _ = decide(pod)
    assert result.outcome == "injected"


# --- Events (section 8): chosen by the decision, written off the admission path ---


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def record(self, regarding, reason, message, event_type="Warning", *, action="") -> bool:
        self.events.append((regarding["kind"], regarding["name"], reason, message, event_type))
        return True


def events_for(store, pod, namespace="shop", **request):
    review = decode(orjson.dumps(make_review(pod, namespace=namespace, **request)))
    answer = handlers.inject(review, store, SETTINGS)
    sink = Sink()
    skipevents.record(sink, review, answer, store)
    return sink.events


def test_inject_update_pod_and_missing_dynakube_events():
    store = make_store([make_dynakube()], [make_namespace(), make_namespace("ghost", dynakube="gone")])
    assert events_for(store, make_pod()) == [
        (
            "DynaKube",
            "dk",
            "Inject",
            "Injecting the necessary info into pod checkout-785cb95b9f- in namespace shop",
            "Normal",
        )
    ]
    first = decide()[1]
    first["spec"]["containers"].append({"name": "late", "image": "l"})
    assert events_for(store, first) == [
        (
            "DynaKube",
            "dk",
            "UpdatePod",
            "Updating pod checkout-785cb95b9f- in namespace shop with missing containers",
            "Normal",
        )
    ]
    upstream = events_for(store, make_pod(namespace="ghost"), "ghost")[0]
    assert upstream == (
        "DynaKube",
        "gone",
        "MissingDynakube",
        "Namespace 'dynatrace' is assigned to DynaKube instance 'gone' but this instance doesn't exist",
        "Warning",
    )


def test_no_events_for_dry_run_or_nothing_to_do():
    store = make_store([make_dynakube()], [make_namespace()])
    assert events_for(store, make_pod(), dryRun=True) == []
    assert events_for(store, decide()[1]) == []  # reinvocation with nothing new
    assert events_for(store, make_pod(annotations={"dynatrace.com/inject": "false"})) == []
