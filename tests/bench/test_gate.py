"""``make bench``'s gate: figures, goals and the regression check (the measuring parts run in their own tests)."""

from __future__ import annotations

import json

import pytest

from bench import gate
from bench.rows import Row


def row(**kw) -> Row:
    base = dict(key="k", measure="m", value=2.0, unit="s", goal=1.0, better="lower")
    return Row(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "figure", "met"),
    [
        ({}, 2.0, False),
        ({"value": 0.9}, 0.9, True),
        ({"figure_of": "ratio", "baseline_value": 4.0, "baseline_name": "b"}, 0.5, True),
        ({"figure_of": "difference", "baseline_value": 1.5, "baseline_name": "b"}, 0.5, True),
        (
            {
                "figure_of": "inverse",
                "baseline_value": 1.0,
                "baseline_name": "b",
                "better": "higher",
                "goal": 0.8,
            },
            0.5,
            False,
        ),
        (
            {
                "better": "higher",
                "goal": 0.8,
                "figure_of": "ratio",
                "baseline_value": 4.0,
                "baseline_name": "b",
            },
            0.5,
            False,
        ),
        (
            {
                "better": "higher",
                "goal": 0.4,
                "figure_of": "ratio",
                "baseline_value": 4.0,
                "baseline_name": "b",
            },
            0.5,
            True,
        ),
    ],
)
def test_figure_and_goal(kw, figure, met) -> None:
    r = row(**kw)
    assert r.figure == pytest.approx(figure) and r.met is met
    assert r.as_dict()["figure"] == pytest.approx(figure) and r.as_dict()["met"] is met


@pytest.mark.parametrize(
    ("better", "figure", "kept", "regressed"),
    [
        ("lower", 1.19, 1.0, False),
        ("lower", 1.21, 1.0, True),
        ("lower", 0.5, 1.0, False),
        ("higher", 0.81, 1.0, False),
        ("higher", 0.79, 1.0, True),
        ("higher", 2.0, 1.0, False),
    ],
)
def test_regression_is_more_than_20_percent_worse(better, figure, kept, regressed) -> None:
    assert row(value=figure, better=better).regressed(kept) is regressed


def test_gate_fails_on_a_regression_and_keeps_figures(tmp_path, monkeypatch, capsys) -> None:
    rows = [
        row(key="a", value=1.0),
        row(
            key="b",
            value=0.5,
            better="higher",
            goal=0.8,
            figure_of="ratio",
            baseline_value=1.0,
            baseline_name="x",
        ),
    ]
    monkeypatch.setattr(gate, "parts", lambda: {"fake": lambda quick: rows})
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps({"a": 1.0, "b": 0.7}))  # b: 0.5 is 29 % below 0.7
    out = tmp_path / "rows.json"
    assert gate.main(["--quick", "--reference", str(reference), "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "| REGRESSED |" in printed and "worse than the kept figures: b" in printed
    assert [r["key"] for r in json.loads(out.read_text())] == ["a", "b"]

    assert (
        gate.main(["--quick", "--reference", str(reference), "--write-reference"]) == 1
    )  # still compared first
    assert json.loads(reference.read_text()) == {"a": 1.0, "b": 0.5}
    assert gate.main(["--quick", "--reference", str(reference)]) == 0  # the kept figures are this run's


def test_every_part_is_found() -> None:
    assert list(gate.parts()) == ["throughput", "create", "startup"]
