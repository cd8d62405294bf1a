"""Learning curves and evaluation suites: budgets read off a log by hand, and both commands end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deeprx.cli import app
from deeprx.config import RunConfig
from deeprx.evaluate.suites import ROBUSTNESS, suite
from deeprx.io import InputError
from deeprx.link.testset import testset_key
from deeprx.train.curves import LearningCurve

runner = CliRunner()


def _log(bers: list[float], ls: float = 4e-2) -> list[dict]:
    rows = []
    for i, ber in enumerate(bers):
        rows.append({"step": 10 * (i + 1), "loss": 0.1})  # a loss row between validations is skipped
        rows.append({"step": 10 * (i + 1), "val_sinr_db": [0.0, 20.0, 40.0], "val_ber": [0.2, 0.1, ber],
                     "val_ls_ber": [0.3, 0.2, ls]})  # fmt: skip
    return rows


def test_budgets_read_off_a_curve_by_hand() -> None:
    # batch 4: checkpoints at 40, 80, ..., 240 slots; LS-LMMSE 4e-2, so 0.1x = 4e-3 and 0.01x = 4e-4
    curve = LearningCurve.from_log(_log([3e-2, 5e-3, 4e-3, 1e-3, 6e-4, 5e-4]), 4, "run", "dense_eighth", "", 256)
    assert curve.slots == [40, 80, 120, 160, 200, 240]
    assert curve.slots_to_ls_fraction(0.1) == 120  # 4e-3 <= 4e-3: the first to reach it
    assert curve.slots_to_ls_fraction(0.01) is None  # 5e-4 > 4e-4: never crossed
    assert curve.final_ber == 5e-4
    assert curve.floor_ber == pytest.approx((1e-3 + 6e-4 + 5e-4) / 3)  # the last three checkpoints
    summary = curve.summary()
    assert summary["slots_to_ls_fraction"] == {"0.1": 120, "0.01": None}
    assert summary["slots_to_stay_at_ls_fraction"] == {"0.1": 120, "0.01": None}
    bouncing = LearningCurve.from_log(_log([3e-3, 5e-3, 1e-3, 2e-3]), 4, "run", "m", "", 256)
    assert bouncing.slots_to_reach(4e-3) == 40 and bouncing.slots_to_stay(4e-3) == 120  # back above at 80
    assert bouncing.slots_to_stay(1.5e-3) is None  # the last point is above
    assert summary["floor_vs_ls"] == pytest.approx(7e-4 / 4e-2)
    assert curve.crossed and summary["crossed"] is True  # below 4e-3 from 120 slots to the end
    still_learning = LearningCurve.from_log(_log([3e-2, 2e-3, 5e-3]), 4, "run", "m", "", 256)
    assert still_learning.crossed is False  # it reached 0.1x once, then went back above
    # a twin that reaches curve's floor 7e-4 first at 80 slots; curve itself first at 200 (6e-4); bouncing never
    twin = LearningCurve.from_log(_log([4e-3, 7e-4, 5e-4]), 4, "kd", "m", "teacher", 256)
    assert twin.slots_to_match(curve) == 80 and curve.slots_to_match(curve) == 200
    assert bouncing.slots_to_match(curve) is None
    error_free_ls = LearningCurve.from_log(_log([1e-3, 0.0], ls=0.0), 4, "run", "m", "", 256)
    assert error_free_ls.crossed is None  # nothing to cross


def test_a_zero_error_checkpoint_reaches_any_target() -> None:
    curve = LearningCurve.from_log(_log([1e-2, 0.0]), 8, "run", "m", "teacher", 64)
    assert curve.slots_to_reach(1e-9) == 160


def test_a_log_without_validation_is_refused() -> None:
    with pytest.raises(InputError, match="no validation"):
        LearningCurve.from_log([{"step": 1, "loss": 0.5}], 4, "run", "m", "", 64)


def test_curves_and_suite_commands_on_a_trained_run(tmp_path: Path) -> None:
    tiny = ["--set", "link.n_prb=1", "--set", "train.batch_size=4", "--set", "train.checkpoint_every=2", "--set",
            "train.validation_slots=4", "--set", "eval.slots_per_point=2", "--model", "deeprx_eighth"]  # fmt: skip
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", "--out", str(run), "--steps", "4", "--json", *tiny]).exit_code == 0

    result = runner.invoke(app, ["curves", str(run), "--out", str(tmp_path / "curves"), "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)["runs"]
    assert summary["slots_to_reference_floor"] in (8, 16)  # its own floor, the mean of its points, is reached
    assert summary["curve"]["slots"] == [8, 16]  # checkpoints at steps 2 and 4, batch 4
    assert summary["validation_slots"] == 4 and summary["model"] == "deeprx_eighth"
    assert (tmp_path / "curves" / "learning_curves.png").exists()

    result = runner.invoke(app, ["evaluate", "--checkpoint", str(run), "--suite", "robustness", "--out",
                                 str(tmp_path / "suite"), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [c["slug"] for c in data["cases"]] == [c.slug for c in ROBUSTNESS.cases]
    assert data["cases"][1]["curves"][0]["sinr_db"] == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0]
    assert len(data["rows"]) == len(ROBUSTNESS.cases) and all(r["ratio_to_ls"] > 0 for r in data["rows"])
    for case in ROBUSTNESS.cases:
        assert (tmp_path / "suite" / case.slug / "ber_vs_sinr.png").exists()

    bad = runner.invoke(app, ["evaluate", "--checkpoint", str(run), "--suite", "nope", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "robustness" in bad.stderr and not (tmp_path / "x").exists()


def test_suite_cases_change_only_the_test_set() -> None:
    assert suite("robustness") is ROBUSTNESS
    for case in ROBUSTNESS.cases:
        assert all(key.startswith("eval.") for key in case.overrides), case.name
        RunConfig().with_overrides({**ROBUSTNESS.common, **case.overrides})  # every case is a valid config
    with pytest.raises(KeyError, match="robustness"):
        suite("nope")


def test_the_test_set_does_not_depend_on_the_training_mix() -> None:
    base = RunConfig()
    broad = base.with_overrides({"link.channel_models": ["UMi"], "link.speed_mps": [0, 80],
                                 "link.delay_spread_ns": [10, 1000], "link.sinr_db": [-5, 40]})  # fmt: skip
    assert testset_key(broad) == testset_key(base)
    for changed in ({"eval.delay_spread_ns": [300, 1000]}, {"link.n_prb": 8}, {"seed": 1}):
        assert testset_key(base.with_overrides(changed)) != testset_key(base), changed
    assert dataclasses.replace(base).eval.delay_spread_ns == (10.0, 300.0)


def test_the_learning_figure_draws_an_error_free_ls_lmmse_and_checkpoint(tmp_path: Path) -> None:
    from deeprx.studies.figures import plot_learning_curves

    clean = LearningCurve.from_log(_log([1e-3, 0.0], ls=0.0), 4, "2 DMRS", "m", "", 8)  # LS-LMMSE error-free
    other = LearningCurve.from_log(_log([2e-3, 1e-4]), 4, "1 DMRS", "m", "", 8)
    for curves in ([clean], [clean, other]):
        png = plot_learning_curves(curves, tmp_path / f"fig{len(curves)}", "t")[0]
        assert png.exists() and png.stat().st_size < 500_000  # a normal figure, not one stretched to infinity


def test_figure_titles_name_the_test_channels() -> None:
    from deeprx.report.plots import channel_label, link_title

    assert channel_label(("CDL-A", "CDL-C", "UMi", "TDL-B")) == "CDL-A/C, UMi, TDL-B"
    umi = RunConfig().with_overrides({**ROBUSTNESS.common, **suite("robustness").cases[2].overrides})
    assert "; UMi, 20-40 m/s" in link_title(umi)


def test_the_cpu_plan_budget_comes_from_the_students_learning_curve() -> None:
    """The cpu plan trains its main student at least as long as the shipped run of that preset took to first reach
    0.1x LS-LMMSE (results/students/): a plan whose students have not crossed compares nothing."""
    from deeprx.studies.plan import plan_for

    plan = plan_for("cpu")
    curve = LearningCurve.of_run(Path(__file__).parents[1] / "results" / "students" / "dense_eighth-dmrs1-scratch")
    assert plan.student == curve.model
    first_crossing = curve.slots_to_ls_fraction(0.1)
    assert first_crossing is not None and plan.base.train.steps * plan.base.train.batch_size >= first_crossing
