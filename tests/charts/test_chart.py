"""The Helm chart, rendered offline with helm-python-sdk (Helm's own engine) for each supported mode.

Every rendered object is validated against the Kubernetes OpenAPI schema in strict mode (kubernetes-validate)
for the oldest Kubernetes the chart supports and the newest the validator knows; then the properties the
platform relies on are asserted: security context, probes, ports, webhook paths and policies, RBAC exactly as
needed per mode, the values schema, and byte-identical renders.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "dynatrace-webhook"
RELEASE = "dynatrace-webhook"
NAMESPACE = "dynatrace"
FULLNAME = "dynatrace-webhook"
CERTS_DIR = "/tmp/k8s-webhook-server/serving-certs"
CA_BUNDLE = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()

# Kinds without a schema in kubernetes-validate (third-party CRDs): checked by hand below.
THIRD_PARTY = {("cert-manager.io/v1", "Certificate"), ("cert-manager.io/v1", "Issuer")}
THIRD_PARTY |= {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}

CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "cert-manager": {"certificates": {"mode": "cert-manager"}},
    "cert-manager-issuer": {
        "certificates": {
            "mode": "cert-manager",
            "certManager": {
                "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
            },
        }
    },
    "secret": {"certificates": {"mode": "secret", "secret": {"name": "webhook-tls", "caBundle": CA_BUNDLE}}},
    "network-policy": {
        "networkPolicy": {
            "enabled": True,
            "ingress": {
                "apiServer": [{"ipBlock": {"cidr": "172.18.0.0/16"}}],
                "prometheus": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
                ],
            },
            "egress": {"apiServer": [{"ipBlock": {"cidr": "172.18.0.2/32"}}]},
        }
    },
    "hpa": {"autoscaling": {"enabled": True}},
    "single": {"replicaCount": 1},
    "features": {"features": {"relabelNamespaces": True, "reinject": True}},
    "prestop-sleep": {"shutdown": {"method": "preStopSleep"}},
    "service-monitor": {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}},
    "metrics-off": {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
    "no-crd": {"crd": {"install": False}},
    "events-off": {"features": {"events": False}},
    "side-effects-off": {"features": {"events": False, "initSecrets": False}},
    "observability": {"dashboards": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "reinject-without-events": {"features": {"reinject": True, "events": False}},
    "init-secrets-off": {"features": {"initSecrets": False}},
    "reinject-off": {"features": {"reinject": False}},
    "minimal": {"features": {"reinject": False, "events": False, "initSecrets": False}},
}
# Oldest Kubernetes in Chart.yaml's kubeVersion; preStop sleep needs 1.30.
MIN_KUBE = {"prestop-sleep": "1.30"}


def render_raw(values: dict[str, Any] | None = None) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values=values, name=RELEASE, namespace=NAMESPACE)


def objects(rendered: dict[str, str]) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(rendered):
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(rendered[path]) if d]
    return docs


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, str]]:
    return {name: render_raw(values) for name, values in CASES.items()}


@pytest.fixture(scope="module")
def docs(rendered: dict[str, dict[str, str]]) -> dict[str, list[dict[str, Any]]]:
    return {name: objects(out) for name, out in rendered.items()}


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def args_of(docs: list[dict[str, Any]]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for arg in container(docs)["args"]:
        key, sep, value = arg.partition("=")
        out[key] = value if sep else None
    return out


def rbac_rules(docs: list[dict[str, Any]]) -> set[tuple[str, str, str, str, str]]:
    """(scope, apiGroup, resource, verb, resourceName or '*') for every permission granted."""
    out = set()
    for kind, scope in (("Role", "namespace"), ("ClusterRole", "cluster")):
        for role in find(docs, kind):
            for rule in role["rules"]:
                assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            for name in rule.get("resourceNames", ["*"]):
                                out.add((scope, group, resource, verb, name))
    return out


# --- rendering and schema validation ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_every_object_is_valid_kubernetes(case: str, docs: dict[str, list[dict[str, Any]]]) -> None:
    checked = 0
    for doc in docs[case]:
        if (doc["apiVersion"], doc["kind"]) in THIRD_PARTY:
            continue
        for version in (MIN_KUBE.get(case, "1.27"), kubernetes_validate.utils.latest_version()):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} invalid for {version}: {e.message}")
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("case", CASES)
def test_every_object_is_labelled_and_namespaced(case: str, docs: dict[str, list[dict[str, Any]]]) -> None:
    cluster_scoped = {
        "ClusterRole",
        "ClusterRoleBinding",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "CustomResourceDefinition",
    }
    for doc in docs[case]:
        meta = doc["metadata"]
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        if doc["kind"] in cluster_scoped:
            assert "namespace" not in meta
        else:
            assert meta["namespace"] == NAMESPACE, doc["kind"]


@pytest.mark.parametrize("case", ["default", "cert-manager", "secret", "features", "network-policy"])
def test_helm_lint_is_clean(case: str) -> None:
    report = helm.lint(CHART, CASES[case], strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], problems or report["errors"]


def test_renders_are_byte_identical(rendered: dict[str, dict[str, str]]) -> None:
    for case in ("default", "cert-manager", "secret", "features"):
        assert render_raw(CASES[case]) == rendered[case], case


def test_templates_use_no_random_time_or_cluster_lookups() -> None:
    forbidden = re.compile(
        r"\b(randAlpha\w*|randAscii|randNumeric|randBytes|uuidv4|genCA|genPrivateKey|"
        r"genSelfSignedCert|genSignedCert|now|lookup)\b"
    )
    for template in sorted((CHART / "templates").iterdir()):
        found = forbidden.findall(template.read_text())
        assert not found, f"{template.name} uses {found}: renders would differ between runs"


# --- the Deployment ----------------------------------------------------------------------------------


def test_deployment_defaults(docs: dict[str, list[dict[str, Any]]]) -> None:
    default = docs["default"]
    deploy = one(default, "Deployment", FULLNAME)
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert spec["template"]["metadata"]["annotations"]["dynatrace.com/inject"] == "false"
    assert pod["serviceAccountName"] == FULLNAME
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in spread.values():
        assert constraint["labelSelector"] == {"matchLabels": selector}
        assert constraint["maxSkew"] == 1
    assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"


def test_security_context_is_restricted(docs: dict[str, list[dict[str, Any]]]) -> None:
    for case in CASES:
        pod = one(docs[case], "Deployment")["spec"]["template"]["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532 != 0
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = container(docs[case])["securityContext"]
        assert sc["runAsNonRoot"] is True and isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "hostNetwork" not in pod and "hostPID" not in pod


def test_resources_requests_equal_limits(docs: dict[str, list[dict[str, Any]]]) -> None:
    resources = container(docs["default"])["resources"]
    assert resources["requests"] == resources["limits"]
    assert set(resources["requests"]) == {"cpu", "memory"}


def test_probes_and_ports(docs: dict[str, list[dict[str, Any]]]) -> None:
    c = container(docs["default"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"https": 8443, "health": 10080, "metrics": 8080}
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["startupProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30
    args = args_of(docs["default"])
    assert args["--webhook-port"] == "8443"
    assert args["--health-probe-bind-address"] == ":10080"
    assert args["--metrics-bind-address"] == ":8080"
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]}
    assert env == {"POD_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}


def test_services(docs: dict[str, list[dict[str, Any]]]) -> None:
    default = docs["default"]
    selector = one(default, "Deployment")["spec"]["selector"]["matchLabels"]
    svc = one(default, "Service", FULLNAME)
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == selector
    metrics = one(default, "Service", f"{FULLNAME}-metrics")
    assert metrics["spec"]["ports"][0]["targetPort"] == "metrics"
    assert metrics["metadata"]["labels"]["app.kubernetes.io/component"] == "metrics"


def test_graceful_shutdown_by_flag(docs: dict[str, list[dict[str, Any]]]) -> None:
    pod = one(docs["default"], "Deployment")["spec"]["template"]["spec"]
    args = args_of(docs["default"])
    delay, graceful = int(args["--shutdown-delay"] or 0), int(args["--graceful-timeout"] or 0)
    assert delay > 0
    assert pod["terminationGracePeriodSeconds"] >= delay + graceful
    assert "lifecycle" not in container(docs["default"])


def test_graceful_shutdown_by_prestop_sleep(docs: dict[str, list[dict[str, Any]]]) -> None:
    c = container(docs["prestop-sleep"])
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert "--shutdown-delay" not in args_of(docs["prestop-sleep"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"terminationGracePeriodSeconds": 15}, "terminationGracePeriodSeconds (15) must be at least"),
        ({"certificates": {"mode": "secret", "secret": {"caBundle": CA_BUNDLE}}}, "certificates.secret.name"),
        ({"certificates": {"mode": "secret", "secret": {"name": "x"}}}, "certificates.secret.caBundle"),
        ({"serviceAccount": {"create": False}}, "serviceAccount.name is required"),
        ({"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}}, "minReplicas (5) is above"),
    ],
)
def test_inconsistent_values_fail_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=re.escape(message)):
        render_raw(values)


def test_image_and_init_image(docs: dict[str, list[dict[str, Any]]]) -> None:
    c = container(docs["default"])
    assert c["image"] == "dynatrace-webhook:0.1.0"
    # the injected init container runs the Dynatrace Operator image of the v1.4 contract, pinned
    assert args_of(docs["default"])["--init-image"] == "public.ecr.aws/dynatrace/dynatrace-operator:v1.4.2"
    assert "--no-csi-driver" not in args_of(docs["default"])
    digest = "sha256:" + "a" * 64
    pinned = objects(
        render_raw(
            {
                "image": {"repository": "registry.example/dt/webhook", "digest": digest},
                "initImage": {
                    "repository": "registry.example/dt/operator",
                    "tag": "v1.4.1",
                    "digest": digest,
                },
                "csiDriver": False,
            }
        )
    )
    assert container(pinned)["image"] == f"registry.example/dt/webhook@{digest}"
    assert args_of(pinned)["--init-image"] == f"registry.example/dt/operator@{digest}"
    assert args_of(pinned)["--no-csi-driver"] is None
    overridden = objects(
        render_raw({"initImage": {"repository": "mirror.example/operator", "tag": "v1.4.0"}})
    )
    assert args_of(overridden)["--init-image"] == "mirror.example/operator:v1.4.0"


def test_pod_never_injects_itself_whatever_the_annotations() -> None:
    out = objects(render_raw({"podAnnotations": {"dynatrace.com/inject": "true", "team": "platform"}}))
    annotations = one(out, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"dynatrace.com/inject": "false", "team": "platform"}


def test_feature_flags(docs: dict[str, list[dict[str, Any]]]) -> None:
    default, features = args_of(docs["default"]), args_of(docs["features"])
    assert "--relabel-namespaces" not in default
    assert features["--relabel-namespaces"] is None
    # automatic reinjection is on by default in the program and the chart; the chart only says when it is off
    assert "--reinject" not in default and "--no-reinject" not in default
    assert default["--reinject-resync"] == "600"
    off = args_of(docs["reinject-off"])
    assert off["--no-reinject"] is None and "--reinject-resync" not in off
    # Events are on by default in the program; the chart only says when they are off
    assert "--no-events" not in default and "--events" not in default
    assert args_of(docs["events-off"])["--no-events"] is None
    assert "--no-init-secrets" not in default
    assert args_of(docs["init-secrets-off"])["--no-init-secrets"] is None
    # Events and init Secrets created on first need are side effects (none on dry run); without both, none
    assert webhooks(docs["events-off"])["webhook.pod.dynatrace.com"]["sideEffects"] == "NoneOnDryRun"
    assert webhooks(docs["init-secrets-off"])["webhook.pod.dynatrace.com"]["sideEffects"] == "NoneOnDryRun"
    assert webhooks(docs["side-effects-off"])["webhook.pod.dynatrace.com"]["sideEffects"] == "None"


# --- certificates ------------------------------------------------------------------------------------


def volumes(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}


def mounts(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container(docs)["volumeMounts"]}


def webhooks(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        for hook in one(docs, kind, FULLNAME)["webhooks"]:
            out[hook["name"]] = hook
    return out


def test_self_managed_certificates(docs: dict[str, list[dict[str, Any]]]) -> None:
    default = docs["default"]
    args = args_of(default)
    assert args["--cert-mode"] == "self-managed"
    assert args["--certs-dir"] == CERTS_DIR
    assert args["--service-name"] == FULLNAME
    assert args["--mutating-webhook-config"] == FULLNAME
    assert args["--validating-webhook-config"] == FULLNAME
    assert "emptyDir" in volumes(default)[mounts(default)[CERTS_DIR]["name"]]
    assert all("caBundle" not in hook["clientConfig"] for hook in webhooks(default).values())
    assert not find(default, "Certificate") and not find(default, "Issuer")


@pytest.mark.parametrize("case", ["cert-manager", "cert-manager-issuer"])
def test_cert_manager_certificates(case: str, docs: dict[str, list[dict[str, Any]]]) -> None:
    out = docs[case]
    args = args_of(out)
    assert args["--cert-mode"] == "files"
    assert "--mutating-webhook-config" not in args and "--service-name" not in args
    serving = one(out, "Certificate", f"{FULLNAME}-serving")
    secret_name = serving["spec"]["secretName"]
    mount = mounts(out)[CERTS_DIR]
    assert mount["readOnly"] is True
    assert volumes(out)[mount["name"]]["secret"]["secretName"] == secret_name
    assert serving["spec"]["dnsNames"] == [
        FULLNAME,
        f"{FULLNAME}.{NAMESPACE}",
        f"{FULLNAME}.{NAMESPACE}.svc",
        f"{FULLNAME}.{NAMESPACE}.svc.cluster.local",
    ]
    assert "server auth" in serving["spec"]["usages"]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        annotations = one(out, kind)["metadata"]["annotations"]
        assert annotations == {"cert-manager.io/inject-ca-from": f"{NAMESPACE}/{FULLNAME}-serving"}
    assert all("caBundle" not in hook["clientConfig"] for hook in webhooks(out).values())
    if case == "cert-manager":
        issuers = {i["metadata"]["name"]: i["spec"] for i in find(out, "Issuer")}
        assert issuers == {
            f"{FULLNAME}-selfsigned": {"selfSigned": {}},
            f"{FULLNAME}-ca": {"ca": {"secretName": f"{FULLNAME}-ca"}},
        }
        ca = one(out, "Certificate", f"{FULLNAME}-ca")["spec"]
        assert ca["isCA"] is True and ca["issuerRef"]["name"] == f"{FULLNAME}-selfsigned"
        assert serving["spec"]["issuerRef"] == {
            "name": f"{FULLNAME}-ca",
            "kind": "Issuer",
            "group": "cert-manager.io",
        }
    else:
        assert not find(out, "Issuer") and len(find(out, "Certificate")) == 1
        assert serving["spec"]["issuerRef"] == {
            "name": "corp-ca",
            "kind": "ClusterIssuer",
            "group": "cert-manager.io",
        }


def test_provided_secret_certificates(docs: dict[str, list[dict[str, Any]]]) -> None:
    out = docs["secret"]
    assert args_of(out)["--cert-mode"] == "files"
    assert volumes(out)[mounts(out)[CERTS_DIR]["name"]]["secret"]["secretName"] == "webhook-tls"
    assert all(hook["clientConfig"]["caBundle"] == CA_BUNDLE for hook in webhooks(out).values())
    assert not find(out, "Certificate")
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        assert "annotations" not in one(out, kind)["metadata"]


# --- webhook configurations --------------------------------------------------------------------------


def test_mutating_webhooks(docs: dict[str, list[dict[str, Any]]]) -> None:
    hooks = webhooks(docs["default"])
    pod, ns = hooks["webhook.pod.dynatrace.com"], hooks["webhook.ns.dynatrace.com"]
    for hook, path in ((pod, "/inject"), (ns, "/label-ns")):
        assert hook["clientConfig"]["service"] == {
            "name": FULLNAME,
            "namespace": NAMESPACE,
            "path": path,
            "port": 443,
        }
        assert hook["failurePolicy"] == "Ignore"
        assert hook["timeoutSeconds"] == 10
        assert hook["reinvocationPolicy"] == "IfNeeded"
        # the pod webhook writes Events (never for dry-run requests); the namespace webhook writes nothing
        assert hook["sideEffects"] == ("NoneOnDryRun" if hook is pod else "None")
        assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
        excluded = next(
            e
            for e in hook["namespaceSelector"]["matchExpressions"]
            if e["key"] == "kubernetes.io/metadata.name"
        )
        assert excluded["operator"] == "NotIn" and NAMESPACE in excluded["values"]
        assert "kube-system" in excluded["values"]
    assert pod["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    assert {"key": "dynakube.internal.dynatrace.com/instance", "operator": "Exists"} in pod[
        "namespaceSelector"
    ]["matchExpressions"]
    assert ns["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["namespaces"],
            "scope": "Cluster",
        }
    ]


def test_validating_webhook(docs: dict[str, list[dict[str, Any]]]) -> None:
    hook = webhooks(docs["default"])["webhook.dynakube.dynatrace.com"]
    assert hook["clientConfig"]["service"]["path"] == "/validate"
    assert hook["rules"] == [
        {
            "apiGroups": ["dynatrace.com"],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["dynakubes"],
            "scope": "Namespaced",
        }
    ]
    assert hook["sideEffects"] == "None" and "namespaceSelector" not in hook
    edge = webhooks(docs["default"])["webhook.edgeconnect.dynatrace.com"]
    assert edge["clientConfig"]["service"]["path"] == "/validate"
    assert edge["rules"] == [{**hook["rules"][0], "resources": ["edgeconnects"]}]
    assert (edge["failurePolicy"], edge["timeoutSeconds"], edge["sideEffects"]) == ("Ignore", 10, "None")


def test_modules_reach_the_program() -> None:
    from webhook import cli
    from webhook.validation import Modules

    out = objects(render_raw({"modules": {"csiDriver": False, "kspm": False}}))
    args = cli.build_parser().parse_args(["serve", *container(out)["args"]])
    assert cli.settings_from(args).modules == Modules(csi_driver=False, kspm=False)


def test_webhook_settings_are_configurable() -> None:
    values = {
        "webhooks": {
            "admissionReviewVersions": ["v1"],
            "excludeNamespaces": ["istio-system"],
            "pod": {
                "failurePolicy": "Fail",
                "timeoutSeconds": 3,
                "reinvocationPolicy": "Never",
                "objectSelector": {"matchLabels": {"inject": "yes"}},
            },
            "namespace": {"timeoutSeconds": 5},
            "dynakube": {"failurePolicy": "Fail"},
        }
    }
    hooks = webhooks(objects(render_raw(values)))
    pod = hooks["webhook.pod.dynatrace.com"]
    assert (pod["failurePolicy"], pod["timeoutSeconds"], pod["reinvocationPolicy"]) == ("Fail", 3, "Never")
    assert pod["objectSelector"] == {"matchLabels": {"inject": "yes"}}
    assert pod["namespaceSelector"]["matchExpressions"][1]["values"] == [NAMESPACE, "istio-system"]
    assert hooks["webhook.ns.dynatrace.com"]["timeoutSeconds"] == 5
    assert hooks["webhook.dynakube.dynatrace.com"]["failurePolicy"] == "Fail"
    assert all(h["admissionReviewVersions"] == ["v1"] for h in hooks.values())


# --- RBAC --------------------------------------------------------------------------------------------

INIT_SECRET_NAMES = ("dynatrace-dynakube-config", "dynatrace-metadata-enrichment-endpoint")
BOOTSTRAPPER_SECRET_NAMES = (
    "dynatrace-bootstrapper-config",
    "dynatrace-bootstrapper-certs",
    "dynatrace-otlp-exporter-config",
    "dynatrace-otlp-exporter-certs",
)  # the v1.10 contract's
ALWAYS = {
    ("namespace", "dynatrace.com", "dynakubes", "list", "*"),
    ("namespace", "dynatrace.com", "dynakubes", "watch", "*"),
    ("cluster", "", "namespaces", "list", "*"),
    ("cluster", "", "namespaces", "watch", "*"),
    # /validate: spec.proxy.valueFrom names a Secret of the DynaKube's namespace
    ("namespace", "", "secrets", "list", "*"),
    ("namespace", "", "secrets", "watch", "*"),
    # the init Secret cache: one cluster-wide list+watch per name (fieldSelector metadata.name=<name>), which
    # the API server authorizes against resourceNames; no other Secret outside the release namespace
    *{
        ("cluster", "", "secrets", v, name)
        for v in ("list", "watch")
        for name in (*INIT_SECRET_NAMES, *BOOTSTRAPPER_SECRET_NAMES)
    },
    # the owner caches
    *{
        (("cluster", g, r, v, "*"))
        for g, r in (("apps", "replicasets"), ("batch", "jobs"), ("", "replicationcontrollers"))
        for v in ("list", "watch")
    },
}
# the one Lease of the writing controllers (reinjection, init Secrets, relabeling)
LEASE = {
    ("namespace", "coordination.k8s.io", "leases", "get", "dynatrace-webhook"),
    ("namespace", "coordination.k8s.io", "leases", "update", "dynatrace-webhook"),
    ("namespace", "coordination.k8s.io", "leases", "create", "*"),
}
# features.initSecrets (default on): writes the init Secrets, reads trustedCAs, behind the Lease
INIT_SECRETS = {
    ("cluster", "", "secrets", "create", "*"),
    *{
        ("cluster", "", "secrets", v, name)
        for v in ("update", "delete")
        for name in ("dynatrace-dynakube-config", "dynatrace-metadata-enrichment-endpoint")
    },
    ("namespace", "", "configmaps", "list", "*"),
    ("namespace", "", "configmaps", "watch", "*"),
    *LEASE,
}
# features.events (default on): Events on the owners of pods in any namespace; patch updates their count
EVENTS = {("cluster", "events.k8s.io", "events", v, "*") for v in ("create", "patch")}
SELF_MANAGED = {
    ("namespace", "", "secrets", "get", "dynatrace-webhook-certs"),
    ("namespace", "", "secrets", "update", "dynatrace-webhook-certs"),
    ("namespace", "", "secrets", "create", "*"),
    *{
        ("cluster", "admissionregistration.k8s.io", resource, verb, FULLNAME)
        for resource in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
        for verb in ("get", "patch")
    },
}
RELABEL = {("cluster", "", "namespaces", "patch", "*"), *LEASE}
REINJECT = {
    ("cluster", "", "namespaces", "get", "*"),  # when a namespace was mapped (its managedFields)
    ("cluster", "", "pods", "get", "*"),
    ("cluster", "", "pods", "list", "*"),
    ("cluster", "apps", "replicasets", "get", "*"),
    *{
        ("cluster", "apps", r, v, "*")
        for r in ("deployments", "statefulsets", "daemonsets")
        for v in ("get", "patch")
    },
    # also without features.events: the Events recorder (shared) patches the series of a repeated Event
    *{("cluster", "events.k8s.io", "events", v, "*") for v in ("create", "patch")},
    *LEASE,
}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("default", ALWAYS | EVENTS | SELF_MANAGED | INIT_SECRETS | REINJECT),
        ("cert-manager", ALWAYS | EVENTS | INIT_SECRETS | REINJECT),
        ("secret", ALWAYS | EVENTS | INIT_SECRETS | REINJECT),
        ("features", ALWAYS | EVENTS | SELF_MANAGED | RELABEL | REINJECT | INIT_SECRETS),
        ("events-off", ALWAYS | SELF_MANAGED | INIT_SECRETS | REINJECT),
        ("reinject-without-events", ALWAYS | SELF_MANAGED | REINJECT | INIT_SECRETS),
        ("init-secrets-off", ALWAYS | EVENTS | SELF_MANAGED | REINJECT),
        ("reinject-off", ALWAYS | EVENTS | SELF_MANAGED | INIT_SECRETS),
        ("minimal", ALWAYS | SELF_MANAGED),
    ],
)
def test_rbac_is_exactly_what_the_mode_needs(
    case: str, expected: set[tuple[str, ...]], docs: dict[str, list[dict[str, Any]]]
) -> None:
    assert rbac_rules(docs[case]) == expected


@pytest.mark.parametrize("case", CASES)
def test_cluster_role_reads_secrets_only_by_name(case: str, docs: dict[str, list[dict[str, Any]]]) -> None:
    """Outside the release namespace the webhook may read the init Secrets of both contracts and nothing else:
    every ClusterRole rule that lets it get, list or watch Secrets names them in resourceNames."""
    from webhook.mutation.bootstrapper import SECRETS as BOOTSTRAPPER_SECRETS
    from webhook.mutation.initsecrets import INIT_SECRETS as V14_SECRETS
    from webhook.mutation.otlp import SECRETS as OTLP_SECRETS

    assert set(INIT_SECRET_NAMES) == set(V14_SECRETS)  # the chart's names are the program's
    assert set(BOOTSTRAPPER_SECRET_NAMES) == {*BOOTSTRAPPER_SECRETS, *OTLP_SECRETS}
    INIT_SECRETS = (*V14_SECRETS, *BOOTSTRAPPER_SECRETS, *OTLP_SECRETS)
    for role in find(docs[case], "ClusterRole"):
        for rule in role["rules"]:
            reads_secrets = (
                "" in rule["apiGroups"]
                and {"secrets", "*"} & set(rule["resources"])
                and {"get", "list", "watch", "*"} & set(rule["verbs"])
            )
            if reads_secrets:
                assert set(rule.get("resourceNames") or ["*"]) <= set(INIT_SECRETS), rule
    reads = {
        r for r in rbac_rules(docs[case]) if r[:3] == ("cluster", "", "secrets") and r[3] in ("list", "watch")
    }
    assert reads == {("cluster", "", "secrets", v, n) for v in ("list", "watch") for n in INIT_SECRETS}


def test_rbac_bindings_point_at_the_service_account(docs: dict[str, list[dict[str, Any]]]) -> None:
    out = docs["default"]
    sa = one(out, "ServiceAccount")["metadata"]["name"]
    for kind, role_kind in (("RoleBinding", "Role"), ("ClusterRoleBinding", "ClusterRole")):
        binding = one(out, kind)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_kind,
            "name": FULLNAME,
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    assert one(out, "Role")["metadata"]["namespace"] == NAMESPACE


# --- availability: PDB, HPA --------------------------------------------------------------------------


def test_pdb_with_two_replicas(docs: dict[str, list[dict[str, Any]]]) -> None:
    pdb = one(docs["default"], "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert (
        pdb["spec"]["selector"]["matchLabels"]
        == one(docs["default"], "Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert not find(docs["default"], "HorizontalPodAutoscaler")


def test_single_replica_has_no_pdb(docs: dict[str, list[dict[str, Any]]]) -> None:
    assert one(docs["single"], "Deployment")["spec"]["replicas"] == 1
    assert not find(docs["single"], "PodDisruptionBudget")


def test_hpa(docs: dict[str, list[dict[str, Any]]]) -> None:
    out = docs["hpa"]
    hpa = one(out, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
    assert hpa["spec"]["minReplicas"] == 2
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "replicas" not in one(out, "Deployment")["spec"], "the HPA owns the replica count"
    assert one(out, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


# --- NetworkPolicy -----------------------------------------------------------------------------------


def test_network_policy_allows_exactly_the_traffic_table(docs: dict[str, list[dict[str, Any]]]) -> None:
    assert not find(docs["default"], "NetworkPolicy")
    policy = one(docs["network-policy"], "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert (
        policy["podSelector"]["matchLabels"]
        == one(docs["default"], "Deployment")["spec"]["selector"]["matchLabels"]
    )
    ingress = {
        tuple((p["protocol"], p["port"]) for p in rule["ports"]): rule.get("from")
        for rule in policy["ingress"]
    }
    assert ingress == {
        (("TCP", 8443),): [{"ipBlock": {"cidr": "172.18.0.0/16"}}],
        (("TCP", 10080),): None,
        (("TCP", 8080),): [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
    }
    egress = {
        tuple((p["protocol"], p["port"]) for p in rule["ports"]): rule.get("to") for rule in policy["egress"]
    }
    assert set(egress) == {(("UDP", 53), ("TCP", 53)), (("TCP", 443), ("TCP", 6443))}
    assert egress[(("UDP", 53), ("TCP", 53))][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert egress[(("TCP", 443), ("TCP", 6443))] == [{"ipBlock": {"cidr": "172.18.0.2/32"}}]


def test_network_policy_without_metrics_closes_the_metrics_port() -> None:
    out = objects(render_raw({"networkPolicy": {"enabled": True}, "metrics": {"enabled": False}}))
    ports = {p["port"] for rule in one(out, "NetworkPolicy")["spec"]["ingress"] for p in rule["ports"]}
    assert ports == {8443, 10080}


# --- metrics -----------------------------------------------------------------------------------------


def test_service_monitor(docs: dict[str, list[dict[str, Any]]]) -> None:
    assert not find(docs["default"], "ServiceMonitor")
    out = docs["service-monitor"]
    monitor = one(out, "ServiceMonitor")
    metrics_svc = one(out, "Service", f"{FULLNAME}-metrics")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= metrics_svc["metadata"]["labels"].items()
    assert (
        not monitor["spec"]["selector"]["matchLabels"].items()
        <= one(out, "Service", FULLNAME)["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_metrics_off(docs: dict[str, list[dict[str, Any]]]) -> None:
    out = docs["metrics-off"]
    assert args_of(out)["--metrics-bind-address"] == "0"
    assert not find(out, "ServiceMonitor") and not find(out, "Service", f"{FULLNAME}-metrics")
    assert "metrics" not in {p["name"] for p in container(out)["ports"]}


# --- dashboards and alerts ----------------------------------------------------------------------------

TARGET_LABELS = {"job", "namespace", "pod", "instance"}  # added by the scrape, not by the program
SYNTHETIC = {"up": set()}  # written by Prometheus for every target
PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
}


def exposed_metrics() -> dict[str, set[str]]:
    """Every series name the program exposes, as prometheus-client writes it, with its label names."""
    from prometheus_client.metrics import MetricWrapperBase

    from webhook.metrics import Metrics

    metrics = Metrics()
    labels = {
        m._name: set(m._labelnames)  # the label names of a labelled metric
        for m in vars(metrics).values()
        if isinstance(m, MetricWrapperBase)
    }
    out: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        names = labels.get(family.name, set())
        if family.type == "counter":
            out[family.name + "_total"] = names
        elif family.type == "histogram":
            out |= {family.name + s: names for s in ("_count", "_sum")}
            out[family.name + "_bucket"] = names | {"le"}
        else:
            out[family.name] = names
    return out


def promql_references(expr: str) -> tuple[dict[str, set[str]], set[str]]:
    """({metric name: label names in its matchers}, label names in by/without/on/ignoring lists)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors: [5m], [$__rate_interval]
    grouping: set[str] = set()
    for match in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text):
        grouping |= {label.strip() for label in match[1].split(",") if label.strip()}
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    metrics: dict[str, set[str]] = {}
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?", text):
        name, matchers = match[1], match[2] or ""
        if name in PROMQL_KEYWORDS or (not matchers and text[match.end() :].startswith("(")):
            continue  # a keyword, function or aggregation
        metrics.setdefault(name, set()).update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    return metrics, grouping


def check_expression(expr: str, exposed: dict[str, set[str]]) -> set[str]:
    metrics, grouping = promql_references(expr)
    assert metrics, f"no metric found in {expr!r}"
    known = {**exposed, **SYNTHETIC}
    unknown = set(metrics) - set(known)
    assert not unknown, f"{expr!r} uses metrics the program does not expose: {sorted(unknown)}"
    for name, labels in metrics.items():
        assert labels <= known[name] | TARGET_LABELS, f"{name} has no label {labels - known[name]} ({expr!r})"
    available = set().union(*(known[name] for name in metrics)) | TARGET_LABELS
    assert grouping <= available, f"{expr!r} groups by labels its metrics lack: {grouping - available}"
    return set(metrics)


def test_promql_reference_parser() -> None:
    metrics, grouping = promql_references(
        'histogram_quantile(0.99, sum by (le, path) (rate(x_bucket{job="a", path=~"in.*"}[5m]))) > 0.1'
        ' or absent(up{job="a"} == 1) and on (pod) time() - y_seconds'
    )
    assert metrics == {"x_bucket": {"job", "path"}, "up": {"job"}, "y_seconds": set()}
    assert grouping == {"le", "path", "pod"}


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    out = []
    for panel in dashboard["panels"]:
        out += [t["expr"] for t in panel.get("targets", [])]
        for inner in panel.get("panels", []):
            out += [t["expr"] for t in inner.get("targets", [])]
    return out


def test_dashboard_configmap(docs: dict[str, list[dict[str, Any]]]) -> None:
    assert not find(docs["default"], "ConfigMap")
    cm = one(docs["observability"], "ConfigMap", f"{FULLNAME}-dashboards")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (name,) = cm["data"]
    dashboard = json.loads(cm["data"][name])
    assert dashboard == json.loads((CHART / "dashboards" / name).read_text())
    assert dashboard["uid"] == "dynatrace-webhook" and dashboard["title"]
    exposed = exposed_metrics()
    used: set[str] = set()
    for expr in dashboard_expressions(dashboard):
        used |= check_expression(expr, exposed)
    p = "dynatrace_webhook_"
    assert {
        p + "requests_total",
        p + "request_duration_seconds_bucket",
        p + "injections_total",
        p + "dynakube_connection_info_complete",
        p + "cache_synced",
        p + "cache_last_event_timestamp_seconds",
        p + "certificate_not_after_timestamp_seconds",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    } <= used
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "job", "pod"} <= variables
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]["query"])
            assert query is not None, variable["query"]
            (metric,) = check_expression(query[1], exposed)
            assert query[2] in exposed[metric] | TARGET_LABELS
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_labels_and_annotations() -> None:
    out = objects(
        render_raw(
            {"dashboards": {"enabled": True, "labels": {"team": "obs"}, "annotations": {"folder": "DT"}}}
        )
    )
    meta = one(out, "ConfigMap")["metadata"]
    assert meta["labels"]["team"] == "obs" and meta["labels"]["grafana_dashboard"] == "1"
    assert meta["annotations"] == {"folder": "DT"}


def alerts(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rule = one(docs, "PrometheusRule", FULLNAME)
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_prometheus_rule_alerts(docs: dict[str, list[dict[str, Any]]]) -> None:
    assert not find(docs["default"], "PrometheusRule")
    rules = alerts(docs["observability"])
    assert {name: (r["for"], r["labels"]["severity"]) for name, r in rules.items()} == {
        "DynatraceWebhookDown": ("5m", "critical"),
        "DynatraceWebhookSlowAdmissions": ("10m", "warning"),
        "DynatraceWebhookPodsSkippedEmptyConnectionInfo": ("15m", "warning"),
        "DynatraceWebhookCertificateExpiring": ("5m", "warning"),
        "DynatraceWebhookCacheNotSynced": ("5m", "warning"),
    }
    exposed = exposed_metrics()
    metrics_service = one(docs["observability"], "Service", f"{FULLNAME}-metrics")["metadata"]["name"]
    for name, rule in rules.items():
        check_expression(rule["expr"], exposed)
        assert f'job="{metrics_service}", namespace="{NAMESPACE}"' in rule["expr"], name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
    assert rules["DynatraceWebhookSlowAdmissions"]["expr"].startswith("histogram_quantile(0.99,")
    assert rules["DynatraceWebhookSlowAdmissions"]["expr"].endswith("> 0.1")
    skipped = rules["DynatraceWebhookPodsSkippedEmptyConnectionInfo"]["expr"]
    assert "increase(" in skipped and "[15m]" in skipped and skipped.endswith("> 0")
    reason = re.search(r'reason=~"([^"]+)"', skipped)
    assert reason is not None
    for joined, hit in [
        ("EmptyConnectionInfo", True),
        ("EmptyTenantUUID, EmptyConnectionInfo", True),
        ("EmptyConnectionInfo, UnknownCodeModule", True),
        ("EmptyTenantUUID", False),
        ("NotEmptyConnectionInfo", False),
    ]:
        assert bool(re.fullmatch(reason[1], joined)) is hit, joined
    assert rules["DynatraceWebhookCacheNotSynced"]["expr"].endswith("== 0")


@pytest.mark.parametrize(
    ("values", "hours"),
    [
        ({}, 6),  # self-managed: renewed 12 h before expiry, so 24 h would fire every rotation
        ({"certificates": {"mode": "cert-manager"}}, 24),
        ({"prometheusRule": {"certificateExpiryHours": 48}}, 48),
    ],
)
def test_certificate_alert_threshold(values: dict[str, Any], hours: int) -> None:
    merged = {**values, "prometheusRule": {"enabled": True, **values.get("prometheusRule", {})}}
    rule = alerts(objects(render_raw(merged)))["DynatraceWebhookCertificateExpiring"]
    assert rule["expr"].endswith(f"- time() < {hours * 3600}")
    assert f"under {hours} hours" in rule["annotations"]["summary"]


def test_renewal_margin_matches_the_program_default() -> None:
    """The self-managed threshold (6 h) stays under the program's --cert-renew-before default."""
    from webhook.config import Settings

    assert Settings().cert_renew_before.total_seconds() > 6 * 3600


# --- CRD ---------------------------------------------------------------------------------------------


def test_dynakube_crd(docs: dict[str, list[dict[str, Any]]]) -> None:
    crd = one(docs["default"], "CustomResourceDefinition", "dynakubes.dynatrace.com")
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    spec = crd["spec"]
    assert spec["group"] == "dynatrace.com" and spec["scope"] == "Namespaced"
    versions = {v["name"]: v for v in spec["versions"]}
    assert list(versions) == ["v1beta1", "v1beta2", "v1beta3", "v1beta4", "v1beta5", "v1beta6"]
    assert all(v["served"] for v in versions.values())
    assert [name for name, v in versions.items() if v["storage"]] == ["v1beta6"]
    for v in versions.values():
        assert v["subresources"] == {"status": {}}
        schema = v["schema"]["openAPIV3Schema"]
        assert schema["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"] is True
    assert not find(docs["no-crd"], "CustomResourceDefinition")


# --- values schema and documentation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": "two"}, "/replicaCount"),
        ({"replicaCountt": 2}, "'replicaCountt' not allowed"),
        ({"webhooks": {"pod": {"timeoutSeconds": "10"}}}, "/webhooks/pod/timeoutSeconds"),
        ({"webhooks": {"pod": {"timeoutSeconds": 31}}}, "/webhooks/pod/timeoutSeconds"),
        ({"webhooks": {"pod": {"failurPolicy": "Fail"}}}, "'failurPolicy' not allowed"),
        ({"certificates": {"mode": "vault"}}, "/certificates/mode"),
        ({"networkPolicy": {"ingress": {"apiServer": [{"cidr": "10.0.0.0/8"}]}}}, "'cidr' not allowed"),
        ({"securityContext": {"runAsUser": "root"}}, "/securityContext/runAsUser"),
        ({"containerPorts": {"webhook": 443}}, "/containerPorts/webhook"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"initImage": {"digest": "latest"}}, "/initImage/digest"),
        ({"initImage": {"tag": ""}}, "/initImage/tag"),
        ({"csiDriver": "yes"}, "/csiDriver"),
        ({"shutdown": {"method": "sigkill"}}, "/shutdown/method"),
        ({"prometheusRule": {"certificateExpiryHours": 0}}, "/prometheusRule/certificateExpiryHours"),
        ({"dashboards": {"enable": True}}, "'enable' not allowed"),
        ({"features": {"events": "yes"}}, "/features/events"),
        ({"features": {"reinject": "yes"}}, "/features/reinject"),
    ],
)
def test_schema_rejects_wrong_values(values: dict[str, Any], message: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError, match=re.escape(message)):
        chart.validate_schema(values)


def walk_schema(node: dict[str, Any], defs: dict[str, Any], path: str) -> Iterator[str]:
    if "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[1]]
    if node.get("type") == "object" and "properties" in node:
        assert node.get("additionalProperties") is False, f"{path or '/'} accepts unknown keys"
        for key, child in node["properties"].items():
            yield f"{path}.{key}".lstrip(".")
            yield from walk_schema(child, defs, f"{path}.{key}")


def test_schema_closes_every_object() -> None:
    with helm.Chart.load(CHART) as chart:
        schema = chart.schema
        defaults = chart.values
    assert schema is not None
    keys = set(walk_schema(schema, schema["definitions"], ""))
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(defaults)

    def leaves(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
        for key, value in values.items():
            yield f"{prefix}{key}"
            if (
                isinstance(value, dict)
                and value
                and key not in {"podSecurityContext", "securityContext", "resources"}
            ):
                yield from leaves(value, f"{prefix}{key}.")

    missing = set(leaves(defaults)) - keys
    assert not missing, f"values.yaml keys the schema does not describe: {sorted(missing)}"


def test_schema_defaults_are_the_values_defaults() -> None:
    """Where the schema states a default (the features), it is the one values.yaml holds."""
    with helm.Chart.load(CHART) as chart:
        schema, defaults = chart.schema, chart.values
    assert schema is not None
    features = schema["properties"]["features"]["properties"]
    assert {k: v["default"] for k, v in features.items()} == defaults["features"]
    assert defaults["features"]["reinject"] is True


def documented_paths() -> Iterator[tuple[str, bool]]:
    """(dotted key path, documented) for every key of values.yaml; a `# --` comment documents its key and
    everything under it."""
    stack: list[tuple[int, str, bool]] = []
    previous_comment = False
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            previous_comment = previous_comment or stripped.startswith("# --")
            continue
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not match:
            previous_comment = False
            continue
        indent = len(match[1])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        documented = previous_comment or (bool(stack) and stack[-1][2])
        path = ".".join([s[1] for s in stack] + [match[2]])
        stack.append((indent, match[2], documented))
        previous_comment = False
        yield path, documented


def test_values_yaml_documents_every_field() -> None:
    paths = dict(documented_paths())
    undocumented = [
        p for p, doc in paths.items() if not doc and not any(q.startswith(p + ".") for q in paths)
    ]
    assert len(paths) > 50
    assert not undocumented, f"values.yaml fields without a '# --' comment: {undocumented}"


def test_readme_lists_every_value() -> None:
    readme = (CHART / "README.md").read_text().split("\n## Values\n", 1)[1]
    paths = dict(documented_paths())
    leaves = [p for p in paths if not any(q.startswith(p + ".") for q in paths)]
    listed = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.M))
    missing = [p for p in leaves if p not in listed and not any(p.startswith(q + ".") for q in listed)]
    assert not missing, f"chart README.md does not list: {missing}"
    assert not listed - set(paths), f"chart README.md lists values that do not exist: {listed - set(paths)}"


def test_notes_tell_how_to_verify_injection(rendered: dict[str, dict[str, str]]) -> None:
    notes = rendered["default"][f"{RELEASE}/templates/NOTES.txt"]
    assert f"kubectl -n {NAMESPACE} rollout status deployment/{FULLNAME}" in notes
    assert f"kubectl get mutatingwebhookconfiguration {FULLNAME}" in notes
    assert "oneagent.dynatrace.com/injected" in notes and "dynatrace-operator" in notes
    assert "dynatrace-webhook-certs" in notes
    assert "dynatrace-webhook-certs" not in rendered["cert-manager"][f"{RELEASE}/templates/NOTES.txt"]


# --- the chart and the program agree ------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_the_program_accepts_the_rendered_arguments_and_env(
    case: str, docs: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every flag the chart passes exists, with a valid value, in the program it runs."""
    from webhook import cli
    from webhook.validation import Modules

    c = container(docs[case])
    for var in c.get("env", []):
        monkeypatch.setenv(var["name"], var.get("value", "from-a-reference"))
    parser = cli.build_parser()
    args = parser.parse_args(["serve", *c.get("args", [])])
    cli._check_cert_arguments(parser, args)
    settings = cli.settings_from(args)
    assert settings.webhook_port == 8443
    assert settings.health_bind[1] == 10080
    assert (settings.header_timeout, settings.read_timeout) == (10, 10)
    expected_mode = {"cert-manager": "files", "cert-manager-issuer": "files", "secret": "files"}
    assert settings.cert_mode == expected_mode.get(case, "self-managed")
    assert settings.events is CASES[case].get("features", {}).get("events", True)
    assert settings.reinject is CASES[case].get("features", {}).get("reinject", True)
    assert settings.init_secrets is CASES[case].get("features", {}).get("initSecrets", True)
    assert settings.modules == Modules()  # the chart's default: every module, as upstream
    assert settings.contract == "auto"
    assert settings.bootstrapper_image == "public.ecr.aws/dynatrace/dynatrace-operator:v1.10.2"


def test_operator_service_account_reaches_the_program() -> None:
    from webhook import cli

    def settings(values: dict) -> object:
        args = cli.build_parser().parse_args(["serve", *container(objects(render_raw(values)))["args"]])
        return cli.settings_from(args)

    assert settings({}).operator_service_account == "dynatrace-operator"  # type: ignore[attr-defined]
    mine = settings({"operatorServiceAccount": "my-operator"})
    assert mine.operator_service_account == "my-operator"  # type: ignore[attr-defined]
