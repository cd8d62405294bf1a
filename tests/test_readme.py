"""Every command of the README's command table runs as written (with tiny settings), and the Python example runs.

The commands are read from README.md, not copied here: a row added to the README without tiny settings here fails
the test, and a row that stops working fails it too. The tiny settings go *in front of* the row's own options, so
whatever the README spells out wins (click keeps the last value of an option, and a later ``--set`` wins).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import ENERGY_WINDOW_S
from deeprx.cli import app
from deeprx.config import PROFILES, RunConfig
from deeprx.studies.plan import StudyPlan

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"

# A small grid and test set; the shipped receivers run on it too (any grid).
TINY_SETS = [word for s in ("link.n_prb=1", "eval.slots_per_point=4", "eval.sinr_step_db=20", "eval.batch_size=4",
                             "train.batch_size=4", "train.checkpoint_every=2") for word in ("--set", s)]  # fmt: skip
TINY_TRAIN = [*TINY_SETS, "--steps", "2", "--model", "deeprx_eighth"]
TINY_METER = ["--model", "deeprx_eighth", "--n-prb", "1", "--window", "0.05", "--idle", "0.1", "--repeats", "1",
              "--batch", "1"]  # fmt: skip
# Tiny settings per command (the words before the first option).
TINY: dict[str, list[str]] = {
    "deeprx info": [],
    "deeprx config": [],
    "deeprx simulate": TINY_SETS,
    "deeprx pretrained list": [],
    "deeprx evaluate": TINY_SETS,
    "deeprx curves": [],
    "deeprx compare": TINY_SETS,
    "deeprx train": TINY_TRAIN,
    "deeprx run": TINY_TRAIN,
    "deeprx distill": [*TINY_SETS, "--steps", "2"],
    "deeprx reproduce": [],  # its plan is made tiny below
    "torchrun": TINY_TRAIN,
    "deeprx qat": ["--steps", "2"],
    "deeprx recommend": [],
    "deeprx energy estimate": [],
    "deeprx energy measure": [*TINY_METER, "--train-batch", "1"],
    "deeprx energy report": TINY_METER,
    "deeprx energy processors": [],
    "deeprx export": [],
    "deeprx serve-bench": ["--path", "eager"],  # auto tries every path first: tested in test_infer
}


def readme_commands() -> list[str]:
    """The first cell of every row of the README's ``## Commands`` table, in order."""
    section = README.read_text().split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return [m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)]


def command_key(words: list[str]) -> str:
    head = words[: next((i for i, w in enumerate(words) if w.startswith("-")), len(words))]
    return " ".join(head) if head[0] == "deeprx" else head[0]


def with_tiny(words: list[str]) -> list[str]:
    """The command with its tiny settings after its command words (for torchrun: after ``deeprx.cli train``)."""
    key = command_key(words)
    at = len(key.split()) if key != "torchrun" else words.index("deeprx.cli") + 2
    return [*words[:at], *TINY[key], *words[at:]]


def tiny_profile(name: str) -> RunConfig:
    cfg = PROFILES_BEFORE[name]()
    return cfg.with_overrides({"model": "deeprx_eighth", "link.n_prb": 1, "train.steps": 2, "train.batch_size": 4,
                               "train.checkpoint_every": 2, "eval.slots_per_point": 4, "eval.sinr_step_db": 20,
                               "eval.batch_size": 4})  # fmt: skip


PROFILES_BEFORE = dict(PROFILES)


def tiny_plan(profile: str) -> StudyPlan:
    """The studies of a profile in miniature: the shipped teachers, one student size, one alpha and T."""
    return StudyPlan(base=tiny_profile(profile), teacher="deeprx_half", teacher_steps=2, teachers=("deeprx_half",),
                     shipped_teachers=((1, "cpu-teacher-dmrs1"), (2, "cpu-teacher-dmrs2")), student="deeprx_eighth",
                     students=("deeprx_eighth",), sizes=("deeprx_eighth",), alphas=(300.0,), temperatures=(3.0,),
                     alpha=300.0, temperature=3.0, mean_scaling_alpha=None, classical_teachers=(), n_boot=20,
                     energy_window_s=ENERGY_WINDOW_S)  # fmt: skip


def test_every_readme_command_has_tiny_settings() -> None:
    commands = readme_commands()
    assert len(commands) >= 20, commands
    missing = sorted({command_key(shlex.split(c)) for c in commands} - set(TINY))
    assert not missing, f"README commands without tiny settings in tests/test_readme.py: {missing}"
    shipped = {w for c in commands for w in re.findall(r"--pretrained (\S+)", c)}
    assert {"cpu-teacher-broad-dmrs1", "cpu-teacher-broad-dmrs2"} <= shipped  # the studies' teachers are exercised


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the README's relative out/ folders land here
    for name in PROFILES:
        monkeypatch.setitem(PROFILES, name, lambda name=name: tiny_profile(name))
    monkeypatch.setattr("deeprx.studies.reproduce.plan_for", tiny_plan)
    runner = CliRunner()
    seconds = {}
    for command in readme_commands():
        words = with_tiny(shlex.split(command))
        t0 = time.perf_counter()
        if words[0] == "torchrun":  # its own processes: the package's profiles, made tiny by the options
            torchrun = Path(sys.executable).parent / "torchrun"
            done = subprocess.run([str(torchrun), *words[1:]], capture_output=True, text=True, timeout=600,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
            output, code = done.stdout + done.stderr, done.returncode
        else:
            result = runner.invoke(app, words[1:])
            output, code = result.output, result.exit_code
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                code = code or 1
                output += f"\n{type(result.exception).__name__}: {result.exception}"
        assert code == 0, f"`{shlex.join(words)}` exited {code}:\n{output[-3000:]}"
        assert "Traceback" not in output, f"`{shlex.join(words)}` printed a traceback:\n{output[-3000:]}"
        seconds[command] = time.perf_counter() - t0
        print(f"{seconds[command]:6.1f} s  {command}", flush=True)  # shown with pytest -s


def test_the_python_example_runs(tmp_path: Path) -> None:
    args = ["--n-prb", "2", "--slots", "4", "--steps", "3", "--sinr", "10", "30", "20", "--out", str(tmp_path),
            "--json"]  # fmt: skip
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "api_tour.py"), *args], capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    names = [q["receiver"] for q in report["quality"]]
    assert names == ["DeepRx (cpu-teacher-broad-dmrs1)", "LS-LMMSE", "Perfect-CSI LMMSE"]
    assert "2 PRB" in report["link"] and report["student"]["steps"] == 3
    assert all(e["network_uJ_per_slot"] > 0 for e in report["energy"].values()) and len(report["energy"]) == 2
