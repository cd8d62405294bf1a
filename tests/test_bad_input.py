"""The battery of bad input and bad disks: one line on stderr, exit code 2, no traceback, nothing lost.

Each group of cases is one parametrised test. Every case snapshots the files that exist before the command
and checks that they are byte-identical afterwards.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from safetensors import SafetensorError
from typer.testing import CliRunner

from deeprx.cli import app, main
from deeprx.config import EvalConfig, LinkConfig, RunConfig, TrainConfig
from deeprx.energy.assess import lifecycle_table
from deeprx.energy.meters import EnergyMeter
from deeprx.energy.protocol import measure, resolution_problem
from deeprx.io import LOCK_FILE, InputError, atomic_write, claim_output_folder, remove_stale_temporaries
from deeprx.runs import checkpoint
from deeprx.train.trainer import train

runner = CliRunner()
# the tiny link every case runs on: seconds, not minutes
TINY = ["--set", "link.n_prb=1", "--set", "train.batch_size=4", "--set", "eval.slots_per_point=4",
        "--set", "eval.sinr_step_db=40", "--set", "train.checkpoint_every=2", "--model", "deeprx_eighth"]  # fmt: skip


def tiny_config() -> RunConfig:
    return RunConfig(
        model="deeprx_eighth",
        link=LinkConfig(n_prb=1),
        train=TrainConfig(steps=2, batch_size=4, checkpoint_every=2),
        eval=EvalConfig(sinr_step_db=40.0, slots_per_point=4, batch_size=4),
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-step run folder (never modified by the tests: they copy it)."""
    run_dir = tmp_path_factory.mktemp("trained")
    train(tiny_config(), run_dir, show_progress=False)
    return run_dir


def snapshot(*roots: Path) -> dict[Path, bytes]:
    """Every regular file under ``roots`` (or ``roots`` themselves) with its bytes."""
    files = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        files.update({p: p.read_bytes() for p in paths})
    return files


def assert_one_line_exit_2(result, *contains: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in contains:
        assert text in lines[0], lines[0]


def run_cli(args: list[str], keep: tuple[Path, ...] = (), *contains: str) -> None:
    """Run ``deeprx args``: one line, exit 2, and every file under ``keep`` byte-identical afterwards."""
    before = snapshot(*keep)
    assert_one_line_exit_2(runner.invoke(app, args), *contains)
    after = snapshot(*keep)
    assert {p: after.get(p) for p in before} == before  # new files (the folder's lock) may appear


# --- values that pass validation and crash later ------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("link.n_prb=4.5", "must be an integer"),
        ("train.steps=2.5", "must be an integer"),
        ("eval.sinr_stop_db=Infinity", "finite"),
        ("kd.alpha=NaN", "finite"),
        ("seed=x", "seed='x': must be an integer"),
        ("train.bf16=1", "true or false"),
        ("link.n_prb=true", "must be an integer"),
        ('link.sinr_db=[0, "a"]', "2 finite numbers"),
        ('link.channel_models=["CDL-A", 3]', "list of strings"),
    ],
)
def test_values_of_the_wrong_type_are_refused_before_any_work(override: str, says: str, tmp_path: Path) -> None:
    for command in (["config"], ["simulate", "--out", str(tmp_path)], ["train", "--out", str(tmp_path / "t")]):
        run_cli([*command, "--set", override], (), says)
    assert not (tmp_path / "t").exists()  # refused before the output folder was made


def test_a_bare_channel_model_is_a_list_of_one() -> None:
    result = runner.invoke(app, ["config", "--set", "link.channel_models=CDL-A"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["link"]["channel_models"] == ["CDL-A"]


# --- output folders -----------------------------------------------------------------------------------


def _out_commands(trained: Path) -> dict[str, list[str]]:
    return {
        "simulate": ["simulate", *TINY[:-2]],
        "train": ["train", "--steps", "2", *TINY],
        "distill": ["distill", "--teacher", "ls-lmmse", "--steps", "2", *TINY],
        "evaluate": ["evaluate", "--checkpoint", str(trained)],
        "run": ["run", "--steps", "2", *TINY],
        "reproduce": ["reproduce", "--profile", "quick"],
        "energy report": ["energy", "report", "--model", "deeprx_eighth", "--n-prb", "1"],
    }


@pytest.mark.parametrize("command", ["simulate", "train", "distill", "evaluate", "run", "reproduce", "energy report"])
def test_out_naming_a_file_is_refused_before_work(command: str, trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.txt"
    out.write_text("precious\n")
    run_cli([*_out_commands(trained)[command], "--out", str(out)], (out, trained), "is a file, not a folder")


@pytest.mark.parametrize("command", ["simulate", "train", "evaluate", "energy report"])
def test_a_read_only_out_is_refused_before_work(
    command: str, trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "mounted-read-only"
    out.mkdir()
    (out / "old.json").write_text("{}")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("deeprx.io.tempfile.TemporaryFile", read_only)  # the writability probe
    run_cli([*_out_commands(trained)[command], "--out", str(out)], (out, trained), "not a writable folder")


# --- disk full ----------------------------------------------------------------------------------------


def test_disk_full_at_a_checkpoint_names_the_last_good_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import save_file

    out = tmp_path / "run"
    calls = 0

    def full_disk_at_second_save(tensors, path) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # what safetensors raises on ENOSPC
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        save_file(tensors, path)

    monkeypatch.setattr("deeprx.runs.checkpoint.save_file", full_disk_at_second_save)
    first = runner.invoke(app, ["train", "--steps", "2", *TINY, "--out", str(out)])
    assert first.exit_code == 0, first.output
    run_cli(
        ["train", "--steps", "4", "--resume", *TINY, "--out", str(out)],
        (out,),
        "No space left on device",
        "the step-2 checkpoint is intact",
        "--resume",
    )
    assert checkpoint.load(out).step == 2
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]  # the half-written file is gone


def test_disk_full_elsewhere_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, write: Callable[[Path], None]) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("deeprx.link.testset.atomic_write", full)
    run_cli(["simulate", *TINY[:-2], "--out", str(tmp_path)], (tmp_path,), "No space left on device", "free disk space")


# --- export -------------------------------------------------------------------------------------------


def test_export_refuses_to_overwrite_and_to_write_a_folder(trained: Path, tmp_path: Path) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"an older export")
    run_cli(["export", "--checkpoint", str(trained), "--out", str(onnx)], (onnx,), "exists", "--force")
    run_cli(["export", "--checkpoint", str(trained), "--out", str(tmp_path)], (onnx,), "is a folder")
    forced = runner.invoke(app, ["export", "--checkpoint", str(trained), "--out", str(onnx), "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["passed"] and onnx.read_bytes() != b"an older export"


# --- processor catalogue ------------------------------------------------------------------------------

GOOD_ENTRY = {"name": "x", "kind": "cpu", "cores": 4, "base_ghz": 2.0, "turbo_ghz": 3.0,
              "flops_per_cycle_per_core": 16, "tdp_watts": 15, "source": "me"}  # fmt: skip


@pytest.mark.parametrize(
    ("catalogue", "says"),
    [
        ({"mine": {**GOOD_ENTRY, "tdp_watts": -15}}, "tdp_watts=-15"),
        ({"mine": {**GOOD_ENTRY, "flops_per_cycle_per_core": 0}}, "flops_per_cycle_per_core=0"),
        ({"mine": {**GOOD_ENTRY, "cores": 0}}, "cores=0"),
        ({"mine": {**GOOD_ENTRY, "cores": 2.5}}, "cores=2.5"),
        ({"mine": {**GOOD_ENTRY, "tdp_watts": "abc"}}, "tdp_watts='abc'"),
        ({"mine": {**GOOD_ENTRY, "kind": "abacus"}}, "kind='abacus'"),
        ({"mine": {**GOOD_ENTRY, "peak_basis": "boost"}}, "peak_basis='boost'"),
        ({"mine": {**GOOD_ENTRY, "metric2": {"a_c": -1, "b_c": 1, "a_f": 1}}}, "a_c=-1"),
        ({"mine": [1, 2]}, "must be a mapping"),
        ({"mine": {"name": "x"}}, "lacks"),
        ("processors:\n  mine: {name: x\n  kind: [\n", "not valid YAML"),
    ],
)
def test_catalogue_fields_are_validated(catalogue: object, says: str, tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    text = catalogue if isinstance(catalogue, str) else json.dumps({"processors": catalogue})
    path.write_text(text)
    for command in (["energy", "processors"], ["energy", "estimate", "--model", "deeprx_eighth", "--n-prb", "1"]):
        run_cli([*command, "--catalogue", str(path)], (path,), says)


# --- negative energies --------------------------------------------------------------------------------


class BusyMachineMeter(EnergyMeter):
    """The base power drops by 5 W once work starts (another job ended): the relative energy is negative."""

    method, is_measurement, update_interval_s, description = "synthetic", True, 0.001, "synthetic"

    def __init__(self) -> None:
        self.joules, self.watts, self.last = 0.0, 30.0, None

    def read_joules(self) -> float:
        import time

        now = time.perf_counter()
        if self.last is not None:
            self.joules += self.watts * (now - self.last)
        self.last = now
        return self.joules


def test_a_negative_relative_energy_is_unresolved_and_stays_out_of_the_life_cycle() -> None:
    meter = BusyMachineMeter()

    def work() -> int:
        meter.watts = 25.0
        return 1

    result = measure(meter, work, "inference", idle_s=0.1, min_window_s=0.05, repeats=2)
    assert not result.resolved and result.joules_per_item is None and result.joules_per_item_spread is None
    assert result.relative_watts == pytest.approx(-5.0, abs=0.5)
    assert "UNRESOLVED" in result.summary() and "mJ" not in result.summary()
    cycle = lifecycle_table(2.0, 100, result.joules_per_item, result.method)
    assert cycle["resolved"] is False and "break_even_inferences" not in cycle


def test_resolution_by_hand() -> None:
    assert resolution_problem(10.0, 1.0, [0.1, 0.2]) == ""
    assert "idle noise" in resolution_problem(1.9, 1.0, [0.1, 0.2])  # within 2 standard deviations
    assert "repeat read" in resolution_problem(10.0, 1.0, [0.1, -0.2])


def test_energy_measure_prints_no_negative_energy(monkeypatch: pytest.MonkeyPatch) -> None:
    meter = BusyMachineMeter()
    real_measure = measure

    def busy(m, work, unit, **kwargs):
        def drop() -> int:
            meter.watts = 25.0
            return work()

        meter.watts = 30.0
        return real_measure(meter, drop, unit, **kwargs)

    monkeypatch.setattr("deeprx.energy.meters.open_meter", lambda *a, **k: (meter, "test"))
    monkeypatch.setattr("deeprx.energy.assess.measure", busy)
    args = ["energy", "measure", "--model", "deeprx_eighth", "--n-prb", "1", "--window", "0.05", "--idle", "0.1",
            "--repeats", "2", "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "UNRESOLVED" in result.stdout and "life cycle: none" in result.stdout
    assert " -0." not in result.stdout and "mJ per" not in result.stdout


# --- two writers --------------------------------------------------------------------------------------


def test_a_second_writer_of_one_out_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    with claim_output_folder(out):  # the first run holds the folder
        run_cli(["train", "--steps", "2", *TINY, "--out", str(out)], (out,), "in use by another deeprx process")
        run_cli(["simulate", *TINY[:-2], "--out", str(out)], (out,), f"pid {os.getpid()}")
    again = runner.invoke(app, ["train", "--steps", "2", *TINY, "--out", str(out), "--json"])
    assert again.exit_code == 0, again.output  # released when the holder ends


def test_the_lock_holds_across_processes(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from deeprx.io import claim_output_folder
            with claim_output_folder(__import__("pathlib").Path({str(out)!r})):
                print("held", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=f"pid {holder.pid}"), claim_output_folder(out):
            pass
    finally:
        holder.kill()
        holder.wait()
    with claim_output_folder(out):  # a killed holder leaves no lock behind
        assert (out / LOCK_FILE).exists()


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "testsets" / f".testset-abc.h5.{dead.stdout.strip()}-x1y2.tmp"
    stale.parent.mkdir()
    stale.write_bytes(b"half a test set")
    alive = tmp_path / f".report.md.{os.getpid()}-a1b2.tmp"  # a live writer's file stays
    alive.write_bytes(b"being written")
    user_file = tmp_path / ".notes.tmp"  # not ours: stays
    user_file.write_bytes(b"mine")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert alive.exists() and user_file.exists()
    atomic_write(tmp_path / "x.txt", lambda p: p.write_text("x"))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == sorted([alive.name, user_file.name])


# --- messages that must be one clear line --------------------------------------------------------------


def _edited_copy(trained: Path, tmp_path: Path, edit: Callable[[dict], None]) -> Path:
    run_dir = tmp_path / "edited"
    run_dir.mkdir()
    for name in (checkpoint.TENSORS, checkpoint.META):
        (run_dir / name).write_bytes((trained / name).read_bytes())
    meta = json.loads((run_dir / checkpoint.META).read_text())
    edit(meta)
    (run_dir / checkpoint.META).write_text(json.dumps(meta))
    return run_dir


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda m: m["config"].update(model="deeprx_quarter"), "holds deeprx_eighth with paper input weights"),
        (lambda m: m.pop("step"), "lacks a valid 'step' field"),
        (lambda m: m.update(step="ten"), "lacks a valid 'step' field"),
        (lambda m: m["config"].pop("link"), "missing or has an unknown field"),
    ],
)
def test_a_damaged_checkpoint_is_one_line(edit, says: str, trained: Path, tmp_path: Path) -> None:
    run_dir = _edited_copy(trained, tmp_path, edit)
    for command in (["evaluate", "--out", str(tmp_path / "ev")], ["export", "--out", str(tmp_path / "m.onnx")]):
        run_cli([*command, "--checkpoint", str(run_dir)], (run_dir,), says)


def test_resuming_a_checkpoint_whose_json_names_another_preset_is_one_line(trained: Path, tmp_path: Path) -> None:
    run_dir = _edited_copy(trained, tmp_path, lambda m: m["config"].update(model="deeprx_quarter"))
    before = snapshot(run_dir)
    cfg = tiny_config().with_overrides({"model": "deeprx_quarter", "train.steps": 4})
    with pytest.raises(InputError, match="holds deeprx_eighth with paper input weights") as info:
        train(cfg, run_dir, resume=True, show_progress=False)
    assert "\n" not in str(info.value) and snapshot(run_dir) == before


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["train", "--steps", "abc"], "Invalid value for '--steps'"),
        (["trian"], "No such command 'trian'"),
        (["config", "--nope"], "No such option"),
    ],
)
def test_usage_errors_are_one_line_too(argv: list[str], says: str, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["deeprx", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err


# --- what a checkpoint's weights fix, and the options of issue 22 ----------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--set", "link.n_rx=4"], "link.n_rx: checkpoint has 2, config has 4"),
        (["--set", "link.modulation=qpsk"], "link.modulation: checkpoint has '16qam'"),
        (["--set", "features=enhanced"], "features='paper' weights"),
        (["--set", "model=deeprx_full"], "model='deeprx_eighth' weights"),
        (["--seeds", "0,x"], "--seeds '0,x' must be integers"),
        (["--seeds", "1,1"], "distinct"),
        (["--device", "tpu"], "device"),
        (["--held-out-seed", "3"], "needs a coded link"),
        (["--set", "link.mcs_index=14", "--held-out-seed", "0"], "also a test seed"),
    ],
)
def test_evaluate_refuses_what_the_weights_fix_in_one_line(args: list[str], says: str, trained: Path,
                                                           tmp_path: Path) -> None:  # fmt: skip
    run_cli(["evaluate", "--checkpoint", str(trained), "--out", str(tmp_path / "ev"), *args], (trained,), says)
    assert not (tmp_path / "ev").exists()


def test_other_commands_refuse_what_the_weights_fix_in_one_line(trained: Path, tmp_path: Path) -> None:
    run_cli(["energy", "estimate", "--checkpoint", str(trained), "--n-rx", "4"], (trained,), "--n-rx 4")
    run_cli(["energy", "estimate", "--checkpoint", str(trained), "--modulation", "qpsk"], (trained,), "16qam")
    run_cli(["qat", "--checkpoint", str(trained), "--device", "cuda", "--out", str(tmp_path / "q.onnx")], (trained,),
            "int8 QAT runs on the CPU")  # fmt: skip
    run_cli(["pretrained", "check", "cpu-teacher-dmrs1", "--sinr-db", "30,35,45", "--out", str(tmp_path / "c")], (),
            "even steps")  # fmt: skip
    assert not (tmp_path / "q.onnx").exists() and not (tmp_path / "c").exists()
