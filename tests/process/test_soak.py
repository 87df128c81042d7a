"""The soak script, tiny: the real server, 2 000 mixed admissions over TLS, the state file changing underneath."""

from __future__ import annotations

from bench import soak


def test_tiny_soak_answers_everything_without_5xx(tmp_path):
    parsed = soak.parser().parse_args(
        ["--requests", "2000", "--connections", "8", "--toggle-every", "0.3", "--log-level", "warning"]
    )
    parsed.work_dir = str(tmp_path)
    result = soak.run(parsed)
    assert sum(result["statuses"].values()) == 2000
    assert set(result["statuses"]) <= {"200", "400"}  # 400 only for the malformed share
    assert result["statuses"].get("400") == result["scenarios"]["malformed"]
    assert set(result["scenarios"]) == {name for name, _ in soak.MIX}
    assert result["dropped"] == 0 and result["worker_failures"] == []
    assert result["wrong"] == 0 and result["contradicting"] == 0
    assert result["toggles"] >= 1 and result["exit_code"] == 0
    assert set(result["checks"]) >= {"zero 5xx", "zero dropped connections", "no wrong answers"}
    assert result["checks"]["zero 5xx"] and result["checks"]["every request answered"]
    assert {"before_load", "after_load"} <= set(result["fds"]) and result["rss_kib"]["end"] > 0
