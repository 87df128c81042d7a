"""One row of ``make bench``: a measure, its goal, and the baseline it was measured beside in the same run.

Every part of the bench that feeds ``make bench`` returns ``Row``s. A row's ``ratio`` (value over its baseline,
both from the same run) is what is compared across runs: the machine's load moves both sides. A row without a
baseline compares its value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    key: str  # stable identifier, e.g. "ready_20k"
    measure: str  # what is measured, as the table prints it
    value: float
    unit: str  # "s", "ms", "MiB", "x", "req/s"
    goal: float
    better: str  # "lower" or "higher": which side of the goal meets it
    baseline_name: str = ""  # what ran beside it in the same run ("" for none)
    baseline_value: float | None = None
    # how the row's figure is formed: "value" (the value is the figure), "ratio" (value / baseline),
    # "inverse" (baseline / value: for costs, where the baseline's cost over ours is the throughput ratio)
    # or "difference" (value - baseline); the goal and the regression check apply to the figure
    figure_of: str = "value"
    note: str = ""

    @property
    def figure(self) -> float:
        if self.figure_of == "value" or self.baseline_value is None:
            return self.value
        if self.figure_of == "ratio":
            return self.value / self.baseline_value if self.baseline_value else float("inf")
        if self.figure_of == "inverse":
            return self.baseline_value / self.value if self.value else float("inf")
        return self.value - self.baseline_value

    @property
    def met(self) -> bool:
        return self.figure <= self.goal if self.better == "lower" else self.figure >= self.goal

    def regressed(self, reference: float, tolerance: float = 0.2) -> bool:
        """Worse than ``reference`` (the same row's figure in the kept results) by more than ``tolerance``."""
        if self.better == "lower":
            return self.figure > reference * (1 + tolerance)
        return self.figure < reference * (1 - tolerance)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "figure": self.figure, "met": self.met}
