"""The start-up bench still works: it starts the real webhook against fake clusters and returns its rows.

Smaller clusters than the bench's (the sizes are the bench's, not the structure); timings are not asserted."""

from __future__ import annotations

import pytest

from bench import startup


@pytest.mark.timeout(300)
def test_startup_rows_measure_every_goal_beside_an_empty_cluster(monkeypatch) -> None:
    monkeypatch.setattr(
        startup, "SIZES", (startup.Size("20k", 300, 5, 1.0), startup.Size("50k", 600, 10, 2.5))
    )
    rows = startup.startup_rows(quick=True)
    assert [row.key for row in rows] == ["ready_20k", "ready_50k", "rss_20k"]
    for row in rows:
        assert row.better == "lower" and row.figure_of == "value"
        assert row.value > 0 and row.baseline_value is not None and row.baseline_value > 0
        assert "load average" in row.note
        assert row.as_dict()["figure"] == row.value
    assert [row.goal for row in rows] == [1.0, 2.5, 100.0]
    assert rows[2].unit == "MiB" and rows[0].unit == "s"
