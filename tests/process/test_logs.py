"""The admission log: one JSON line per request, exact fields, and never the object itself."""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.conftest import make_pod, make_review
from webhook.logs import JsonFormatter, TextFormatter

SECRET = "s3cr3t-token-value"


def pod_with_secret(**kw: Any) -> dict[str, Any]:
    return make_pod(
        containers=[
            {
                "name": "checkout",
                "image": "registry.example.com/shop/checkout:2.4.1",
                "env": [{"name": "API_TOKEN", "value": SECRET}],
            }
        ],
        annotations={"team": "shop-private-annotation"},
        **kw,
    )


def post(client, body: bytes | dict[str, Any]):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/inject", content=data, headers={"Content-Type": "application/json"})


def admission_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The captured webhook.admission.review records as the JSON formatter writes them, without the time."""
    lines = []
    for record in caplog.records:
        if record.name == "webhook.admission.review":
            line = orjson.loads(JsonFormatter().format(record))
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("ts"))
            assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 10_000
            line["duration_ms"] = "<float>"
            lines.append(line)
    return lines


def patch_ops(response) -> int:
    answer = response.json()["response"]
    return len(orjson.loads(base64.b64decode(answer["patch"]))) if "patch" in answer else 0


BASE = {"level": "info", "logger": "webhook.admission.review", "msg": "admission", "duration_ms": "<float>"}


def test_injection_log_line(client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    response = post(client, make_review(pod_with_secret(), uid="uid-inject"))
    assert response.status_code == 200
    ops = patch_ops(response)
    assert ops > 5
    assert admission_lines(caplog) == [
        {
            **BASE,
            "uid": "uid-inject",
            "path": "/inject",
            "code": 200,
            "namespace": "shop",
            "object": "checkout-785cb95b9f-",
            "operation": "CREATE",
            "dry_run": False,
            "allowed": True,
            "decision": "injected",
            "reasons": [],
            "patch_ops": ops,
        }
    ]


def test_skip_log_line(client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    review = make_review(
        pod_with_secret(namespace="payments", name="pay-0", generate_name=None),
        namespace="payments",
        uid="uid-skip",
        dryRun=True,
    )
    response = post(client, review)
    assert patch_ops(response) == 2  # injected=false and the reason, next to the pod's own annotation
    assert admission_lines(caplog) == [
        {
            **BASE,
            "uid": "uid-skip",
            "path": "/inject",
            "code": 200,
            "namespace": "payments",
            "object": "pay-0",
            "operation": "CREATE",
            "dry_run": True,
            "allowed": True,
            "decision": "skipped",
            "reasons": ["EmptyConnectionInfo"],
            "patch_ops": 2,
        }
    ]


def test_malformed_request_log_line(client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert post(client, b"{not json").status_code == 400
    (line,) = admission_lines(caplog)
    assert line["reasons"][0].startswith("request body is not valid JSON")
    line["reasons"] = ["<parse error>"]
    assert line == {
        **BASE,
        "uid": "",
        "path": "/inject",
        "code": 400,
        "namespace": "",
        "object": "",
        "operation": "",
        "dry_run": False,
        "allowed": None,
        "decision": "error",
        "reasons": ["<parse error>"],
        "patch_ops": 0,
    }


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
def test_no_object_body_is_logged_at_info(client, caplog: pytest.LogCaptureFixture, formatter) -> None:
    caplog.set_level(logging.INFO)
    post(client, make_review(pod_with_secret()))
    post(client, make_review(pod_with_secret(namespace="payments"), namespace="payments"))
    post(client, make_review(pod_with_secret(), operation="UPDATE"))
    assert len(caplog.records) >= 3
    for record in caplog.records:
        text = formatter.format(record)
        for leaked in (SECRET, "registry.example.com/shop/checkout", "shop-private-annotation", "API_TOKEN"):
            assert leaked not in text, f"{leaked!r} logged by {record.name}: {text}"


FIELDS = {"uid": "u-1", "path": "/inject", "code": 200, "reasons": ["A", "B"], "dry_run": False, "x": None}


@contextlib.contextmanager
def json_setup() -> Iterator[tuple[Any, io.StringIO]]:
    """``logs.setup`` as the server makes it (JSON), writing into a buffer and heard by nothing else (pytest's
    capture handlers are set aside for the duration); restored after."""
    from webhook import logs

    root = logging.getLogger()
    saved = root.handlers[:], root.level, logs._direct
    logs.setup("info", "json")
    out = io.StringIO()
    assert logs._direct is not None
    logs._direct.setStream(out)
    try:
        yield logs, out
    finally:
        root.handlers[:], root.level, logs._direct = saved


def test_direct_admission_line_is_the_formatters_line() -> None:
    log = logging.getLogger("webhook.admission.review")
    with json_setup() as (logs, out):
        logs.info_fields(log, "admission", dict(FIELDS))
        log.info("admission", extra=dict(FIELDS))
    direct, through_record = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert direct.pop("ts")[:16] == through_record.pop("ts")[:16]
    assert list(direct) == list(through_record) and direct == through_record
    assert direct == {"level": "info", "logger": "webhook.admission.review", "msg": "admission", **FIELDS}


def test_direct_line_is_written_without_a_record(monkeypatch) -> None:
    log = logging.getLogger("webhook.admission.review")
    with json_setup() as (logs, out):
        monkeypatch.setattr(logging.Logger, "makeRecord", lambda *a, **kw: pytest.fail("a record was made"))
        logs.info_fields(log, "admission", dict(FIELDS))
    assert orjson.loads(out.getvalue())["uid"] == "u-1"


def test_any_other_listener_gets_the_record() -> None:
    log = logging.getLogger("webhook.admission.review")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    extra = Keep()
    with json_setup() as (logs, out):
        logging.getLogger("webhook").addHandler(extra)  # a handler on the way to the root
        try:
            logs.info_fields(log, "admission", dict(FIELDS))
        finally:
            logging.getLogger("webhook").removeHandler(extra)
        log.setLevel(logging.WARNING)
        try:
            logs.info_fields(log, "admission", dict(FIELDS))  # not enabled: nothing at all
        finally:
            log.setLevel(logging.NOTSET)
    assert [(r.getMessage(), r.uid) for r in seen] == [("admission", "u-1")]  # type: ignore[attr-defined]
    assert [orjson.loads(line)["uid"] for line in out.getvalue().splitlines()] == ["u-1"]


def test_another_formatter_on_the_json_handler_gets_the_record() -> None:
    log = logging.getLogger("webhook.admission.review")
    with json_setup() as (logs, out):
        assert logs._direct is not None
        logs._direct.setFormatter(logging.Formatter("%(message)s uid=%(uid)s"))
        logs.info_fields(log, "admission", dict(FIELDS))
    assert out.getvalue() == "admission uid=u-1\n"
