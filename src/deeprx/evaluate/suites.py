"""Named evaluation suites: a receiver tested on channels beyond its own test set, one case per condition.

A case is a set of config overrides applied to the evaluated link and test set (``eval.*``: the test set's
channel families, speeds and delay spreads); each case is a test set of its own (its own key), evaluated
beside LS-LMMSE and perfect-CSI LMMSE like any ``deeprx evaluate``. ``deeprx evaluate --suite NAME`` runs one.

The ``robustness`` suite changes one thing at a time from the cpu profile's test set (CDL-A/C/D/E, 20-40 m/s,
10-300 ns): the tapped-delay family, the UMi scenario, higher speeds, longer delay spreads. The cpu profile
trains on CDL-B/C/D, TDL-B/C/D and UMi at 0-80 m/s and 10-1000 ns, so TDL-A/E, CDL-A/E and the UMi drops of a
test seed are unseen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SuiteCase:
    """One condition of a suite: a name, a file-system-safe slug and the overrides that make it."""

    name: str
    slug: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """Cases evaluated one after another, each with ``common`` applied first (e.g. a coarser SINR grid)."""

    name: str
    cases: tuple[SuiteCase, ...]
    common: dict[str, Any] = field(default_factory=dict)


# The cpu profile's test set; each robustness case below changes one of its three entries.
CPU_TEST_SET: dict[str, Any] = {
    "eval.channel_models": ["CDL-A", "CDL-C", "CDL-D", "CDL-E"],
    "eval.speed_mps": [20.0, 40.0],
    "eval.delay_spread_ns": [10.0, 300.0],
}

ROBUSTNESS = Suite(
    name="robustness",
    cases=(
        SuiteCase("CDL-A/C/D/E, 20-40 m/s, 10-300 ns (cpu test set)", "cdl", CPU_TEST_SET),
        SuiteCase("TDL-A..E", "tdl", {**CPU_TEST_SET, "eval.channel_models": [f"TDL-{v}" for v in "ABCDE"]}),
        # UMi draws its delay spread from the scenario's large-scale parameters: the range does not apply
        SuiteCase("UMi", "umi", {**CPU_TEST_SET, "eval.channel_models": ["UMi"]}),
        SuiteCase("CDL-A/C/D/E at 40-80 m/s", "fast", {**CPU_TEST_SET, "eval.speed_mps": [40.0, 80.0]}),
        SuiteCase(
            "CDL-A/C/D/E at 300-1000 ns", "long-delay", {**CPU_TEST_SET, "eval.delay_spread_ns": [300.0, 1000.0]}
        ),
    ),
    common={"eval.sinr_start_db": 0.0, "eval.sinr_stop_db": 40.0, "eval.sinr_step_db": 5.0},
)

SUITES: dict[str, Suite] = {s.name: s for s in (ROBUSTNESS,)}


def suite(name: str) -> Suite:
    """The suite called ``name``; ``KeyError`` names the known ones."""
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}: one of {sorted(SUITES)}")
    return SUITES[name]
