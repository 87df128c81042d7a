"""The pure parts of ``bench.create`` and its servers: the uid splice of the fixed answers, the choice of the
reinvocation answer, the percentiles and rows, the kubeconfig reading. No control plane, no timing."""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from bench import create, reviews
from bench.baseline import INJECTED_MARK, Answers, SplicedAnswer, Template, parse_route, uid_of
from bench.upstream import event_body, kube_tls
from webhook.admission.review import ReviewError
from webhook.tls.certs import generate_ca, generate_serving

UID = "3f33db0e-e2bf-4ccc-812f-b712a66f202d"


def test_uid_of_finds_the_request_uid_not_the_objects() -> None:
    body = reviews.body("M", "inject")  # the pod's ownerReference has a uid too, later in the body
    assert uid_of(body) == UID.encode()
    spaced = (
        b'{"kind": "AdmissionReview", "request": {"uid" : "abc-1", "object": {"metadata": {"uid": "x"}}}}'
    )
    assert uid_of(spaced) == b"abc-1"
    with pytest.raises(ValueError):
        uid_of(b'{"request": {}}')


def test_template_splices_the_uid_into_the_answer_it_was_made_of() -> None:
    answer = orjson.dumps({"response": {"uid": "u-1", "allowed": True, "patch": "W10="}})
    text = Template.of_answer(answer, b"u-1")
    assert Template.MARK in text and b"u-1" not in text
    template = Template.parse(text)
    assert template.answer(b"u-1") == answer
    assert orjson.loads(template.answer(b"other"))["response"]["uid"] == "other"
    with pytest.raises(ValueError):
        Template.of_answer(answer, b"not-there")
    with pytest.raises(ValueError):
        Template.parse(text + Template.MARK)


def answers() -> Answers:
    first = Template.parse(b'{"response":{"uid":"' + Template.MARK + b'","patch":"first"}}')
    again = Template.parse(b'{"response":{"uid":"' + Template.MARK + b'","status":"again"}}')
    return Answers(first, again)


def test_a_reinvocation_gets_the_reinvocation_answer() -> None:
    first, again = reviews.body("M", "inject"), reviews.body("M", "reinvoke")
    assert INJECTED_MARK not in first and INJECTED_MARK in again
    assert orjson.loads(answers().answer(first))["response"] == {"uid": UID, "patch": "first"}
    assert orjson.loads(answers().answer(again))["response"] == {"uid": UID, "status": "again"}


def test_the_spliced_endpoint_reads_the_whole_body() -> None:
    body = reviews.body("S", "inject")
    chunks = [body[:100], body[100:]]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(SplicedAnswer(answers())({}, receive, send))
    assert sent[0]["status"] == 200
    assert orjson.loads(sent[1]["body"])["response"]["uid"] == UID


def test_the_parse_route_parses_the_review_and_answers_with_its_uid() -> None:
    class Request:  # what the path operation reads of starlette's Request
        def __init__(self, body: bytes) -> None:
            self._body = body

        async def body(self) -> bytes:
            return self._body

    route = parse_route(answers().first)
    response = asyncio.run(route(Request(reviews.body("M", "inject"))))
    assert orjson.loads(response.body)["response"] == {"uid": UID, "patch": "first"}
    with pytest.raises(ReviewError):  # a body that does not parse is not answered
        asyncio.run(route(Request(b"{not json")))


def test_the_upstream_answer_has_no_token_mount_in_the_init_container() -> None:
    token = {"name": "kube-api-access-x", "readOnly": True, "mountPath": create.TOKEN_MOUNT_PATH}
    init = {
        "name": "dynatrace-operator",
        "volumeMounts": [{"name": "oneagent-bin", "mountPath": "/mnt/bin"}, token],
    }
    app_mounts = {"op": "add", "path": "/spec/containers/0/volumeMounts/-", "value": token}
    ops = [app_mounts, {"op": "add", "path": "/spec/initContainers", "value": [init]}]
    ours = orjson.dumps({"response": {"uid": "u", "patch": base64.b64encode(orjson.dumps(ops)).decode()}})
    upstream = orjson.loads(create.without_token_mount(ours))["response"]
    upstream_ops = orjson.loads(base64.b64decode(upstream["patch"]))
    assert upstream_ops[0] == app_mounts  # only the init container's
    assert upstream_ops[1]["value"][0]["volumeMounts"] == [{"name": "oneagent-bin", "mountPath": "/mnt/bin"}]
    assert upstream["uid"] == "u"


def test_summary_is_nearest_rank_in_ms() -> None:
    seconds = [i / 1000 for i in range(100, 0, -1)]  # 1 .. 100 ms, unsorted
    assert create.summary(seconds) == {"n": 100, "p50_ms": 50.0, "p90_ms": 90.0}


def test_rows_compare_ours_with_the_floor_and_upstream() -> None:
    p50 = {"none": 5.0, "floor": 8.0, "ours": 8.2, "upstream": 15.0}
    stats = {k: {"n": 10, "p50_ms": v, "p90_ms": v * 2} for k, v in p50.items()}
    overhead, versus = create.rows_of(stats, "1.00 0.50 0.25")
    assert overhead.key == "create_overhead_ms" and overhead.figure_of == "difference"
    assert overhead.figure == pytest.approx(0.2) and overhead.met
    assert (overhead.value, overhead.baseline_value, overhead.goal) == (8.2, 8.0, 0.3)
    assert versus.key == "create_vs_upstream" and versus.figure_of == "ratio"
    assert (versus.value, versus.baseline_value) == (3.2, 10.0)
    assert versus.figure == pytest.approx(0.32) and not versus.met
    for row in (overhead, versus):
        assert row.better == "lower" and "load average 1.00 0.50 0.25" in row.note
    assert "not its Go runtime" in versus.note
    assert "(floor - none) / (upstream - none) = 0.300" in versus.note


def test_the_plan_rotates_enough_rounds() -> None:
    quick, full = create.Plan.make(True), create.Plan.make(False)
    assert quick.rounds * quick.batch >= quick.creates and full.rounds * full.batch >= full.creates
    assert full.creates >= 300


def test_the_bench_pod_is_sent_as_a_replica_set_sends_it() -> None:
    body = create.pod("bench-ours")
    meta = body["metadata"]
    assert "name" not in meta and meta["generateName"].endswith("-")
    assert "managedFields" not in meta and "status" not in body
    assert meta["namespace"] == "bench-ours"


def test_kube_tls_reads_inline_certificates(tmp_path: Path) -> None:
    ca = generate_ca()
    client = generate_serving(ca, ["dynatrace-webhook"])

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    config = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [
            {
                "name": "k",
                "cluster": {
                    "server": "https://127.0.0.1:18443/",
                    "certificate-authority-data": b64(ca.cert_pem),
                },
            }
        ],
        "users": [
            {
                "name": "u",
                "user": {
                    "client-certificate-data": b64(client.cert_pem),
                    "client-key-data": b64(client.key_pem),
                },
            }
        ],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    server, ctx = kube_tls(path)
    assert server == "https://127.0.0.1:18443"
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert len(ctx.get_ca_certs()) == 1


def test_the_event_names_the_pod() -> None:
    event = event_body("checkout-abc12", "bench-upstream", "pod-uid")
    assert event["involvedObject"] == {
        "kind": "Pod",
        "name": "checkout-abc12",
        "namespace": "bench-upstream",
        "uid": "pod-uid",
    }
    assert event["metadata"]["name"].startswith("checkout-abc12.")
    assert event["metadata"]["namespace"] == "bench-upstream"


def test_per_round_differences_pair_the_rounds() -> None:
    times = {"ours": [0.010, 0.011, 0.020, 0.022], "floor": [0.009, 0.010, 0.015, 0.016]}
    # round 0: p50 11 - 10 ms; round 1: 22 - 16 ms (nearest rank of two values: the lower)
    assert create.per_round(times, 2, "ours", "floor") == {"median_ms": 1.0, "min_ms": 1.0, "max_ms": 5.0}


def test_handler_times_come_from_the_admission_log_lines(tmp_path: Path) -> None:
    def line(decision: str, ms: float, dry_run: bool = False) -> str:
        entry = {
            "msg": "admission",
            "path": "/inject",
            "dry_run": dry_run,
            "decision": decision,
            "duration_ms": ms,
        }
        return orjson.dumps(entry).decode()

    log = tmp_path / "webhook.log"
    lines = [line("injected", 1.0), line("injected", 3.0), line("injected", 50.0, dry_run=True)]
    lines += [line("reinvoked", 0.5), '{"msg": "started"}']
    log.write_text("\n".join(lines) + "\n")
    assert create.handler_ms(log) == {
        "injected": {"n": 2, "p50_ms": 1.0, "p90_ms": 3.0},
        "reinvoked": {"n": 1, "p50_ms": 0.5, "p90_ms": 0.5},
    }
