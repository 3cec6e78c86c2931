"""What a run measured: figures (each the median of its runs), beside their
baseline and target, plus the tables and notes of each scenario."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench.stats import median


@dataclass(frozen=True)
class Target:
    """`at_least`/`at_most` a ratio to the baseline, or an absolute bound."""

    kind: str  # "ratio_min", "ratio_max", "abs_max"
    bound: float

    def text(self) -> str:
        if self.kind == "ratio_min":
            return f">= {self.bound:g}x"
        if self.kind == "ratio_max":
            return f"< {self.bound:g}x"
        return f"< {self.bound:g}"

    def met(self, value: float, ratio: float | None) -> bool | None:
        if self.kind == "abs_max":
            return None if math.isnan(value) else value < self.bound
        if ratio is None or math.isnan(ratio):
            return None
        return ratio >= self.bound if self.kind == "ratio_min" else ratio < self.bound


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    samples: list[float] = field(default_factory=list)
    baseline: str | None = None  # key of the figure it is compared with
    target: Target | None = None
    note: str = ""

    @property
    def value(self) -> float:
        return median(self.samples)


@dataclass
class Results:
    figures: dict[str, Figure] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)  # per-scenario detail
    meta: dict[str, Any] = field(default_factory=dict)

    def figure(
        self,
        key: str,
        label: str,
        unit: str,
        *,
        baseline: str | None = None,
        target: Target | None = None,
        note: str = "",
    ) -> Figure:
        """The figure `key`, created on first use (each run adds a sample)."""
        if key not in self.figures:
            self.figures[key] = Figure(
                key, label, unit, baseline=baseline, target=target, note=note
            )
        return self.figures[key]

    def add(self, key: str, value: float, label: str, unit: str, **kwargs: Any) -> None:
        self.figure(key, label, unit, **kwargs).samples.append(value)

    def skip(self, scenario: str, reason: str) -> None:
        self.skipped.append({"scenario": scenario, "reason": reason})

    def ratio(self, fig: Figure) -> float | None:
        if fig.baseline is None or fig.baseline not in self.figures:
            return None
        base = self.figures[fig.baseline].value
        if not base or math.isnan(base) or math.isnan(fig.value):
            return None
        return fig.value / base

    def to_json(self) -> dict[str, Any]:
        figures = []
        for fig in self.figures.values():
            ratio = self.ratio(fig)
            met = fig.target.met(fig.value, ratio) if fig.target else None
            figures.append(
                {
                    "key": fig.key,
                    "label": fig.label,
                    "unit": fig.unit,
                    "median": _num(fig.value),
                    "samples": [_num(s) for s in fig.samples],
                    "baseline": fig.baseline,
                    "baseline_median": _num(self.figures[fig.baseline].value)
                    if fig.baseline in self.figures
                    else None,
                    "ratio": _num(ratio),
                    "target": fig.target.text() if fig.target else None,
                    "target_met": met,
                    "note": fig.note or None,
                }
            )
        return {
            "meta": self.meta,
            "figures": figures,
            "skipped": self.skipped,
            "sections": self.sections,
        }


def _num(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, 6)
