"""The command line: JSON output, and exit code 2 with one line on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from deeprx.cli import app

runner = CliRunner()


def test_info_json_lists_parameters_and_flops() -> None:
    result = runner.invoke(app, ["info", "--model", "deeprx_full", "--json"])
    assert result.exit_code == 0
    row = json.loads(result.stdout)[0]
    assert row["grid"] == [14, 312] and row["parameters"] > 1.2e6
    assert 9e9 < row["flops_per_slot"] < 12e9


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    cases = [
        ["info", "--model", "nope"],
        ["config", "--set", "link.n_prb=0"],
        ["config", "--set", 'link.channel_models=["CDL-X"]'],
        ["config", "--profile", "huge"],
        ["evaluate", "--checkpoint", str(tmp_path / "missing")],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_train_then_evaluate_json(tmp_path: Path) -> None:
    common = [
        "--set",
        "link.n_prb=1",
        "--set",
        "train.batch_size=4",
        "--set",
        "eval.slots_per_point=8",
        "--set",
        "eval.sinr_step_db=20",
        "--model",
        "deeprx_eighth",
    ]
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "run"), "--steps", "3", "--json", *common])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["step"] == 3
    again = runner.invoke(app, ["train", "--out", str(tmp_path / "run"), "--steps", "3", *common])
    assert again.exit_code == 2 and "--resume" in again.stderr
    result = runner.invoke(
        app, ["evaluate", "--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "ev"), "--json"]
    )
    assert result.exit_code == 0, result.output
    names = [c["receiver"] for c in json.loads(result.stdout)["curves"]]
    assert names == ["DeepRx (deeprx_eighth)", "LS-LMMSE", "Perfect-CSI LMMSE"]
    assert (tmp_path / "ev" / "ber_vs_sinr.png").exists()
    coded = ["--set", "link.mcs_index=14", "--held-out-seed", "5", "--out", str(tmp_path / "coded")]
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(tmp_path / "run"), *coded])
    assert result.exit_code == 0, result.output
    assert "LLR calibration" in result.stdout and "Temperature scaling" in result.stdout
    for figure in ("bler_vs_sinr.png", "llr_calibration.png"):
        assert (tmp_path / "coded" / figure).exists()
