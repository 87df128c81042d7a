"""`dynatrace-webhook explain` and `POST /debug/decision` on the golden fixtures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

from tests.conftest import SETTINGS
from webhook import __version__
from webhook.explain import explain
from webhook.observe import health_app
from webhook.state.local import LocalState
from webhook.state.store import Store

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "inject"
# the cases that need nothing but examples/local-state.yaml (no contract state, no options)
CASES = sorted(
    p.name.removesuffix(".review.json")
    for p in FIXTURES.glob("*.review.json")
    if json.loads(p.read_text())["request"]["namespace"] in ("shop", "payments")
    and not (FIXTURES / p.name.replace(".review.json", ".options.json")).exists()
)


@pytest.fixture(scope="module")
def store() -> Store:
    s = Store("dynatrace")
    assert LocalState(ROOT / "examples" / "local-state.yaml", s).load()
    return s


@pytest.mark.parametrize("case", CASES)
def test_explain_gives_the_golden_patch(case, store):
    pod = json.loads((FIXTURES / f"{case}.review.json").read_text())["request"]["object"]
    namespace = json.loads((FIXTURES / f"{case}.review.json").read_text())["request"]["namespace"]
    report = explain(pod, store, SETTINGS, namespace)
    assert report["patch"] == json.loads((FIXTURES / f"{case}.patch.json").read_text())
    assert report["checks"][-1]["passed"] is (report["outcome"] in ("injected", "reinvoked"))


def test_explain_names_the_failing_check_for_an_empty_connection_info_skip(store):
    pod = json.loads((FIXTURES / "skip-empty-connection-info.review.json").read_text())["request"]["object"]
    report = explain(pod, store, SETTINGS)
    assert report["dynakube"] == "zone-pending"
    assert report["reasons"] == ["EmptyConnectionInfo"]
    assert report["connectionInfo"]["missing"] == ["EmptyConnectionInfo"]
    assert report["connectionInfo"]["networkZone"] == "eu-west-zone-b"
    failed = [c for c in report["checks"] if not c["passed"] and c["check"] != "already injected"]
    assert [c["check"] for c in failed] == ["connection info complete"]
    assert report["annotationsAfter"]["oneagent.dynatrace.com/reason"] == "EmptyConnectionInfo"


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "webhook", "explain", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_json_from_a_yaml_pod_on_stdin():
    pod = json.loads((FIXTURES / "inject-cloud-native.review.json").read_text())["request"]["object"]
    done = run_cli(
        "-",
        "--state-file",
        "examples/local-state.yaml",
        "-o",
        "json",
        "--init-image",
        SETTINGS.image,
        stdin=yaml.safe_dump(pod),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "injected"
    golden = (FIXTURES / "inject-cloud-native.patch.json").read_text()
    golden = golden.replace(f"script_version={SETTINGS.version}", f"script_version={__version__}")
    assert report["patch"] == json.loads(golden)


def test_cli_text_for_an_admission_review_file():
    done = run_cli(
        "tests/fixtures/inject/skip-empty-connection-info.review.json",
        "--state-file",
        "examples/local-state.yaml",
    )
    assert done.returncode == 0, done.stderr
    assert "[FAIL] connection info complete" in done.stdout
    assert "outcome    skipped (EmptyConnectionInfo)" in done.stdout


def test_cli_reports_unreadable_input():
    done = run_cli("does-not-exist.yaml", "--state-file", "examples/local-state.yaml")
    assert done.returncode == 2 and "cannot read the pod manifest" in done.stderr


def test_debug_endpoint_is_off_by_default_and_explains_when_on(store):
    off = TestClient(health_app(lambda: {"ok": True}))
    assert off.post("/debug/decision", content=b"{}").status_code in (404, 405)
    on = TestClient(health_app(lambda: {"ok": True}, lambda pod, ns: explain(pod, store, SETTINGS, ns)))
    pod = json.loads((FIXTURES / "inject-cloud-native.review.json").read_text())["request"]["object"]
    response = on.post("/debug/decision?namespace=payments", content=yaml.safe_dump(pod))
    assert response.status_code == 200
    assert response.json()["dynakube"] == "zone-pending" and response.json()["outcome"] == "skipped"
    assert on.post("/debug/decision", content=b"- just a list").status_code == 400


def test_explain_says_when_a_stored_pod_never_reached_the_webhook(store):
    """A pod read from the cluster (it has a creationTimestamp) with no injection annotation, which the webhook
    would have changed: explain says it was admitted without the webhook."""
    review = json.loads((FIXTURES / "inject-cloud-native.review.json").read_text())
    pod = review["request"]["object"]
    namespace = review["request"]["namespace"]
    stored = {**pod, "metadata": {**pod["metadata"], "creationTimestamp": "2024-01-01T00:00:00Z"}}
    report = explain(stored, store, SETTINGS, namespace)
    assert "never reached the webhook" in report["notSeenByWebhook"]
    from webhook.explain import render_text

    assert "missed     this pod carries no injection annotation" in render_text(report)
    assert "notSeenByWebhook" not in explain(pod, store, SETTINGS, namespace)  # a manifest, not yet created
    annotated = {
        **stored,
        "metadata": {**stored["metadata"], "annotations": {"oneagent.dynatrace.com/injected": "true"}},
    }
    assert "notSeenByWebhook" not in explain(annotated, store, SETTINGS, namespace)
    opted_out = {
        **stored,
        "metadata": {**stored["metadata"], "annotations": {"dynatrace.com/inject": "false"}},
    }
    assert "notSeenByWebhook" not in explain(opted_out, store, SETTINGS, namespace)
