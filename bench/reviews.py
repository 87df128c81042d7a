"""Realistic AdmissionReviews and a large state file, generated (no fixtures to keep in sync).

Sizes follow what kube-apiserver sends for controller-created pods:

- ``S``: one container, ~4 KB;
- ``M``: two containers and managedFields, ~11 KB;
- ``L``: three containers with 40 env vars each, ~25 KB;
- ``X``: one container with 1 000 env vars, ~63 KB (pathological).

Scenarios: ``inject`` (namespace mapped to a DynaKube with connection info), ``skip`` (a DynaKube whose status
has no communicationHosts: ``EmptyConnectionInfo``), ``reinvoke`` (a pod the webhook already injected, as
kube-apiserver sends it on reinvocation).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import jsonpatch
import orjson
import yaml

from webhook.mutation import pod as pods

NAMESPACE = "dynatrace"
INSTANCE_LABEL = "dynakube.internal.dynatrace.com/instance"
SIZES = ("S", "M", "L", "X")
SCENARIOS = ("inject", "skip", "reinvoke")
READY_NAMESPACE = "shop-0000"  # mapped to dynakube-000 (connection info complete)
PENDING_NAMESPACE = "shop-0001"  # mapped to dynakube-001 (no communicationHosts)
SETTINGS = pods.Settings(image="dynatrace-webhook:bench", version="0.1.0")


def dynakube(i: int, *, ready: bool) -> dict[str, Any]:
    hosts = [{"protocol": "https", "host": f"10.96.{i // 250}.{i % 250}", "port": 443}] if ready else []
    return {
        "apiVersion": "dynatrace.com/v1beta2",
        "kind": "DynaKube",
        "metadata": {
            "name": f"dynakube-{i:03d}",
            "namespace": NAMESPACE,
            "annotations": {"feature.dynatrace.com/automatic-injection": "true"},
        },
        "spec": {
            "apiUrl": "https://abc12345.live.dynatrace.com/api",
            "networkZone": f"zone-{i:03d}",
            "oneAgent": {
                "cloudNativeFullStack" if i % 2 == 0 else "applicationMonitoring": {
                    "namespaceSelector": {"matchLabels": {"monitoring": f"dynakube-{i:03d}"}},
                    "initResources": {"requests": {"cpu": "30m", "memory": "30Mi"}},
                }
            },
            "activeGate": {"capabilities": ["routing", "kubernetes-monitoring"]},
        },
        "status": {
            "kubeSystemUUID": "5a0c6c1e-3f7a-4d43-9a3e-2f0f1b7f9e11",
            "oneAgent": {
                "connectionInfoStatus": {
                    "tenantUUID": "abc12345",
                    "endpoints": f"https://{hosts[0]['host']}:443/communication" if hosts else "",
                    "communicationHosts": hosts,
                }
            },
            "activeGate": {
                "connectionInfoStatus": {
                    "tenantUUID": "abc12345",
                    "endpoints": "https://abc12345.live.dynatrace.com:443",
                }
            },
            "codeModules": {"version": "1.299.50.20240930-123456"},
        },
    }


def namespace(i: int, dynakubes: int) -> dict[str, Any]:
    d = i % dynakubes
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": f"shop-{i:04d}",
            "uid": str(uuid.UUID(int=i)),
            "labels": {
                "kubernetes.io/metadata.name": f"shop-{i:04d}",
                "team": f"team-{i % 37}",
                "monitoring": f"dynakube-{d:03d}",
                INSTANCE_LABEL: f"dynakube-{d:03d}",
            },
        },
    }


def state_documents(dynakubes: int = 100, namespaces: int = 5000) -> list[dict[str, Any]]:
    """DynaKube ``dynakube-001`` (and every other odd one) has no communication hosts; the rest are ready."""
    docs = [dynakube(i, ready=i % 2 == 0) for i in range(dynakubes)]
    docs += [namespace(i, dynakubes) for i in range(namespaces)]
    return docs


def state_yaml(dynakubes: int = 100, namespaces: int = 5000) -> str:
    return yaml.safe_dump_all(state_documents(dynakubes, namespaces), sort_keys=False)


def _env(count: int, prefix: str, tail: str = "abcdefghijklmnop") -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    for j in range(count):
        if j % 10 == 9:
            env.append(
                {
                    "name": f"{prefix}_SECRET_{j:04d}",
                    "valueFrom": {"secretKeyRef": {"name": "app-secrets", "key": f"key-{j:04d}"}},
                }
            )
        else:
            env.append({"name": f"{prefix}_SETTING_{j:04d}", "value": f"value-{j:04d}-{tail}"})
    return env


def _container(name: str, env: int, tail: str = "abcdefghijklmnop") -> dict[str, Any]:
    return {
        "name": name,
        "image": f"registry.example.com/shop/{name}:2.4.1",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": _env(env, name.upper().replace("-", "_"), tail),
        "resources": {
            "limits": {"cpu": "500m", "memory": "512Mi"},
            "requests": {"cpu": "100m", "memory": "256Mi"},
        },
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"},
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "volumeMounts": [
            {
                "name": "kube-api-access-9n4s2",
                "readOnly": True,
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            }
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def _managed_fields(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Roughly what a ReplicaSet-created pod carries: one FieldsV1 entry describing every field."""
    spec_containers: dict[str, Any] = {}
    for c in containers:
        spec_containers[f'k:{{"name":"{c["name"]}"}}'] = {
            ".": {},
            "f:env": {
                f'k:{{"name":"{e["name"]}"}}': {".": {}, "f:name": {}, "f:value": {}} for e in c["env"]
            },
            "f:image": {},
            "f:imagePullPolicy": {},
            "f:name": {},
            "f:ports": {
                ".": {},
                'k:{"containerPort":8080,"protocol":"TCP"}': {
                    ".": {},
                    "f:containerPort": {},
                    "f:name": {},
                    "f:protocol": {},
                },
            },
            "f:readinessProbe": {
                ".": {},
                "f:failureThreshold": {},
                "f:httpGet": {".": {}, "f:path": {}, "f:port": {}, "f:scheme": {}},
                "f:periodSeconds": {},
                "f:successThreshold": {},
                "f:timeoutSeconds": {},
            },
            "f:resources": {
                ".": {},
                "f:limits": {".": {}, "f:cpu": {}, "f:memory": {}},
                "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}},
            },
            "f:terminationMessagePath": {},
            "f:terminationMessagePolicy": {},
        }
    return [
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2024-10-01T12:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:generateName": {},
                    "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}, "f:version": {}},
                    "f:ownerReferences": {
                        ".": {},
                        'k:{"uid":"5dca312e-1f5d-498c-b717-7a57f69707b9"}': {},
                    },
                },
                "f:spec": {
                    "f:containers": spec_containers,
                    "f:dnsPolicy": {},
                    "f:enableServiceLinks": {},
                    "f:restartPolicy": {},
                    "f:schedulerName": {},
                    "f:securityContext": {},
                    "f:terminationGracePeriodSeconds": {},
                },
            },
        }
    ]


def pod(size: str, ns: str) -> dict[str, Any]:
    if size == "S":
        containers = [_container("checkout", 16)]
    elif size == "M":
        containers = [_container("checkout", 26), _container("istio-proxy", 18)]
    elif size == "L":
        containers = [_container(n, 40) for n in ("checkout", "worker", "istio-proxy")]
    elif size == "X":
        containers = [_container("app", 1000, "abcdefg")]
    else:
        raise ValueError(f"size {size!r} is not one of {', '.join(SIZES)}")
    meta: dict[str, Any] = {
        "generateName": "checkout-785cb95b9f-",
        "namespace": ns,
        "creationTimestamp": None,
        "labels": {"app": "checkout", "pod-template-hash": "785cb95b9f", "version": "2.4.1"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-10-01T12:00:00Z"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "checkout-785cb95b9f",
                "uid": "5dca312e-1f5d-498c-b717-7a57f69707b9",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if size in ("M", "L"):
        meta["managedFields"] = _managed_fields(containers)
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": meta,
        "spec": {
            "containers": containers,
            "volumes": [
                {
                    "name": "kube-api-access-9n4s2",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "namespace",
                                            "fieldRef": {
                                                "apiVersion": "v1",
                                                "fieldPath": "metadata.namespace",
                                            },
                                        }
                                    ]
                                }
                            },
                        ],
                    },
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
            "schedulerName": "default-scheduler",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
        },
        "status": {},
    }


def review(obj: dict[str, Any], ns: str, uid: str = "3f33db0e-e2bf-4ccc-812f-b712a66f202d") -> dict[str, Any]:
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    gvr = {"group": "", "version": "v1", "resource": "pods"}
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "namespace": ns,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "0d9b2c4e-7d1e-4b8e-9e7a-3c1f0b2a4d55",
                "groups": [
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
            },
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


def injected_pod(size: str) -> dict[str, Any]:
    """The pod as it looks after this webhook injected it (what a reinvocation carries)."""
    original = pod(size, READY_NAMESPACE)
    ready = dynakube(0, ready=True)
    ns = namespace(0, 100)
    result = pods.decide(original, ns, ready, SETTINGS, namespace_name=READY_NAMESPACE)
    if result.outcome != pods.INJECTED:
        raise RuntimeError(f"bench pod {size} was not injected: {result.outcome} {result.reasons}")
    return jsonpatch.apply_patch(copy.deepcopy(original), result.ops)


def body(size: str, scenario: str) -> bytes:
    if scenario == "inject":
        obj, ns = pod(size, READY_NAMESPACE), READY_NAMESPACE
    elif scenario == "skip":
        obj, ns = pod(size, PENDING_NAMESPACE), PENDING_NAMESPACE
    elif scenario == "reinvoke":
        obj, ns = injected_pod(size), READY_NAMESPACE
    else:
        raise ValueError(f"scenario {scenario!r} is not one of {', '.join(SCENARIOS)}")
    return orjson.dumps(review(obj, ns))


BASELINE_ANSWER = orjson.dumps(
    {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "3f33db0e-e2bf-4ccc-812f-b712a66f202d", "allowed": True},
    }
)
