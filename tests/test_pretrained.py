"""Shipped checkpoints: they load, their hashes and records check out, and the 1-DMRS teacher really works."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from deeprx.cli import app
from deeprx.config import load_profile
from deeprx.energy.processors import load_catalogue
from deeprx.io import InputError, write_json
from deeprx.link.baselines import LmmseReceiver
from deeprx.link.simulator import UplinkSimulator
from deeprx.receivers import FrontEnd, load_receiver
from deeprx.runs import checkpoint, registry
from deeprx.train.distill import load_teacher

SHIPPED = registry.names()


def test_the_studies_draw_current_shipped_receivers() -> None:
    from deeprx.studies.plan import SHIPPED_STUDENTS, SHIPPED_TEACHERS

    for dmrs, name in (*SHIPPED_TEACHERS, *SHIPPED_STUDENTS):
        assert name in registry.current_names() and registry.record(name).dmrs_symbols == dmrs, name


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_checkpoint_loads_and_its_record_checks_out(name: str) -> None:
    folder = registry.resolve(name)  # checks the tensor hash
    rec = registry.record(name)
    ckpt = checkpoint.load(folder)
    cfg = ckpt.config
    assert (rec.model, rec.features, rec.dmrs_symbols, rec.steps) == (
        cfg.model, cfg.features, cfg.link.dmrs_symbols, ckpt.step
    )  # fmt: skip
    assert rec.slots_seen == ckpt.step * cfg.train.batch_size and rec.steps == cfg.train.steps
    assert len(rec.commit) >= 7 and rec.wall_seconds > 0 and rec.device
    # The record names a command that exists, with the profile the run was made with.
    words = rec.command.split()
    assert words[0] == "deeprx" and words[1] in typer.main.get_command(app).commands
    assert f"--profile {cfg.profile}" in rec.command
    receiver, _ = load_receiver(folder)
    assert receiver.model.config.in_channels == receiver.front_end.channels
    ev = rec.evaluation
    assert set(ev["receivers"]) == {"DeepRx", "LS-LMMSE", "Perfect-CSI LMMSE"}
    assert len(ev["sinr_db"]) == len(ev["receivers"]["DeepRx"]["ber"])


def test_a_tampered_checkpoint_fails_its_hash(tmp_path: Path) -> None:
    name = SHIPPED[0]
    shutil.copytree(registry.WEIGHTS_DIR / name, tmp_path / name)
    tensors = tmp_path / name / checkpoint.TENSORS
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(InputError, match="hash"):
        registry.resolve(name, root=tmp_path)
    with pytest.raises(InputError, match="no pretrained checkpoint named"):
        registry.resolve("nope", root=tmp_path)


# The receivers meant for use, with the most of LS-LMMSE's BER each may have at 35 dB on the fixed slots below: the
# teacher, and the students (the goals: <= 0.01x for the one at <= 1/4 of the teacher's FLOPs, <= 0.1x for the
# one at <= 1/10, at 40 dB on a full test set; 32 slots are too few for the tighter bound).
DEPLOYED = {
    "cpu-teacher-dmrs1": 0.1,
    "cpu-teacher-broad-dmrs1": 0.1,
    **{n: 0.3 for n in SHIPPED if n.startswith("cpu-student") and "dmrs1" in n},
}


def _ber_beside_ls_lmmse(name: str, dmrs_symbols: int, sinr_db: float) -> tuple[float, float]:
    """A shipped receiver's BER and LS-LMMSE's on 32 fixed slots of the cpu test set's channels, speeds and delay
    spreads at ``sinr_db``."""
    cfg = load_profile("cpu").with_overrides({"link.dmrs_symbols": dmrs_symbols})
    sim = UplinkSimulator(cfg.link)
    slot = sim.sample(32, seed=2024, sinr_db=sinr_db, channel_models=cfg.eval.channel_models,
                      speed_mps=cfg.eval.speed_mps, delay_spread_ns=cfg.eval.delay_spread_ns)  # fmt: skip
    receiver, _ = load_receiver(registry.resolve(name))
    ours = float(((receiver(slot) > 0).float() != slot.bits).float().mean())
    ls = float(((LmmseReceiver(sim, perfect_csi=False)(slot) > 0).float() != slot.bits).float().mean())
    return ours, ls


@pytest.mark.parametrize("name", sorted(DEPLOYED))
def test_shipped_1dmrs_receivers_beat_ls_lmmse_at_high_sinr(name: str) -> None:
    """On fresh slots of the test channels, speeds and delay spreads at 35 dB: fails if the weights were broken."""
    ours, ls = _ber_beside_ls_lmmse(name, 1, 35.0)
    assert ls > 0.01  # LS-LMMSE's floor with 1 DMRS symbol at 20-40 m/s
    assert ours < DEPLOYED[name] * ls


# With 2 DMRS symbols LS-LMMSE is within ~0.5 dB of perfect CSI and error-free at high SINR on these channels: the
# shipped receivers' margin is small, so they are held to LS-LMMSE's BER at 10 dB (the test set: 0.94-0.98x it).
DEPLOYED_2DMRS = [n for n in SHIPPED if n.startswith(("cpu-teacher", "cpu-student")) and n.endswith("dmrs2")]


@pytest.mark.parametrize("name", DEPLOYED_2DMRS)
def test_shipped_2dmrs_receivers_hold_ls_lmmse(name: str) -> None:
    """On fresh slots at 10 dB, where LS-LMMSE still makes thousands of errors: fails if the weights were broken."""
    ours, ls = _ber_beside_ls_lmmse(name, 2, 10.0)
    assert ls > 0.01
    assert ours < 1.05 * ls


def test_a_shipped_checkpoint_can_teach() -> None:
    cfg = load_profile("quick").with_overrides({"kd.teacher": "cpu-teacher-dmrs1"})
    teacher, facts = load_teacher(cfg, UplinkSimulator(cfg.link))
    assert facts["teacher_model"] == "deeprx_half" and len(facts["teacher_sha256"]) == 64
    sim = UplinkSimulator(cfg.link)
    slot = sim.sample(2, seed=0)
    # the student's input (residual) is not the teacher's (enhanced): the teacher builds its own
    assert teacher(slot, FrontEnd(sim, cfg.features).prepare(slot)).shape == slot.bits.shape


def test_pretrained_cli() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["pretrained", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [r["name"] for r in json.loads(listed.stdout)] == SHIPPED
    bad = runner.invoke(app, ["evaluate", "--pretrained", "nope"])
    assert bad.exit_code == 2 and "no pretrained checkpoint named" in bad.output
    both = runner.invoke(app, ["export", "--checkpoint", "x", "--pretrained", SHIPPED[0]])
    assert both.exit_code == 2 and "not both" in both.output


def test_serve_bench_runs_the_front_end_of_a_shipped_receiver() -> None:
    args = ["serve-bench", "--pretrained", "cpu-teacher-dmrs1", "--path", "eager", "--rate", "20", "--duration",
            "1", "--device", "cpu", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["processed"] > 0 and "enhanced front end" in report["description"]


def test_a_run_from_a_shipped_receiver_takes_this_machines_device_not_the_training_one() -> None:
    from deeprx.evaluation import evaluation_config

    folder = registry.resolve("cpu-teacher-dmrs1")
    assert checkpoint.saved_config(folder).device.startswith("cuda")  # trained on a GPU, as its record says
    assert evaluation_config(folder, None, {}, None).device == "auto"
    assert evaluation_config(folder, None, {"device": "cpu"}, None).device == "cpu"
    assert evaluation_config(folder, "quick", {}, "cpu").model == "deeprx_half"  # the weights fix the model
    with pytest.raises(InputError, match="features='enhanced' weights"):
        evaluation_config(folder, None, {"features": "paper"}, None)


def test_a_shipped_receiver_evaluates_on_this_cpu_machine_on_its_own_and_other_grids(tmp_path: Path) -> None:
    small = ["--set", "eval.slots_per_point=4", "--set", "eval.sinr_step_db=20", "--set", "eval.sinr_start_db=0"]
    runner = CliRunner()
    own = runner.invoke(app, ["evaluate", "--pretrained", "cpu-teacher-dmrs1", "--out", str(tmp_path / "a"), "--json",
                              *small])  # fmt: skip
    assert own.exit_code == 0, own.output
    wide = runner.invoke(app, ["evaluate", "--pretrained", "cpu-teacher-dmrs1", "--out", str(tmp_path / "b"),
                               "--json", "--set", "link.n_prb=8", "--seeds", "0,1", *small])  # fmt: skip
    assert wide.exit_code == 0, wide.output
    data = json.loads(wide.stdout)
    ours = data["summary"][0]
    assert ours["receiver"] == "DeepRx (deeprx_half)" and ours["points"]["sinr_db"] == [0.0, 20.0, 40.0]
    assert ours["points"]["slots"] == [8, 8, 8]  # 4 slots of each seed, pooled
    assert ours["points"]["bit_errors"][0] > 0 and len(ours["points"]["ci_bits"]) == 3
    assert set(data["per_seed"]) == {"0", "1"} or set(data["per_seed"]) == {0, 1}
    bits_8prb = data["curves"][0]["bits"][0]
    bits_4prb = json.loads(own.stdout)["curves"][0]["bits"][0]
    assert bits_8prb == 2 * 2 * bits_4prb  # twice the subcarriers, twice the slots
    refused = runner.invoke(app, ["evaluate", "--pretrained", "cpu-teacher-dmrs1", "--out", str(tmp_path / "c"),
                                  "--set", "link.n_rx=4"])  # fmt: skip
    assert refused.exit_code == 2 and "link.n_rx: checkpoint has 2, config has 4" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "c").exists()


def test_pretrained_list_prints_every_name_whole_at_80_columns() -> None:
    result = CliRunner().invoke(app, ["pretrained", "list"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    table_rows = [line for line in result.output.splitlines() if line.startswith("│")]
    for name in SHIPPED:
        assert any(line.split("│")[1].strip() == name for line in table_rows), (name, result.output)
    assert max(len(line) for line in table_rows) <= 80


def test_a_record_check_is_kept_and_read_back(tmp_path: Path) -> None:
    root = tmp_path / "weights"
    shutil.copytree(registry.WEIGHTS_DIR / "cpu-teacher-half-32k", root / "cpu-teacher-half-32k")
    evaluation = {"seeds": [0, 1], "per_seed": {0: [_row(1)], 1: [_row(2)]}, "summary": [_row(3, slots=8)]}
    check = registry.seed_check(evaluation, "deeprx pretrained check X", "abc1234", "cpu")
    assert check["slots_per_point"] == 4 and check["per_seed"]["1"]["DeepRx (x)"]["bit_errors"] == [2]
    shipped_checks = registry.record("cpu-teacher-half-32k", root).checks  # other seeds and points: kept
    registry.add_check("cpu-teacher-half-32k", check, root)
    registry.add_check("cpu-teacher-half-32k", check, root)  # the same check again replaces the first
    rec = registry.record("cpu-teacher-half-32k", root)
    assert rec.format_version == registry.RECORD_VERSION and rec.checks == [*shipped_checks, check]
    assert registry.resolve("cpu-teacher-half-32k", root)  # the tensors are untouched: the hash holds


def _row(errors: int, slots: int = 4) -> dict:
    points = {"sinr_db": [40.0], "ber": [errors / 1000], "bit_errors": [errors], "ci_bits": [[0.0, 0.01]],
              "ci_slots": [[0.0, 0.02]], "slots": [slots], "slots_with_errors": [1]}  # fmt: skip
    return {"receiver": "DeepRx (x)", "points": points}


def test_a_record_suite_is_kept_replaced_and_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "weights"
    shutil.copytree(registry.WEIGHTS_DIR / "cpu-teacher-half-32k", root / "cpu-teacher-half-32k")
    summary = [_row(1), {**_row(400), "receiver": "LS-LMMSE"}, {**_row(0), "receiver": "Perfect-CSI LMMSE"}]
    data = {"suite": "robustness", "seeds": [1],
            "cases": [{"case": "TDL-A..E", "slug": "tdl", "overrides": {"eval.channel_models": ["TDL-A"]},
                       "summary": summary}]}  # fmt: skip
    result = registry.suite_result(data, [{"ratio_to_ls": 1 / 400}], "deeprx pretrained check X", "abc1234", "cpu")
    assert result["cases"][0]["receivers"]["LS-LMMSE"]["bit_errors"] == [400]
    registry.add_suite("cpu-teacher-half-32k", result, root)
    registry.add_suite("cpu-teacher-half-32k", {**result, "commit": "def5678"}, root)  # the same suite: replaced
    rec = registry.record("cpu-teacher-half-32k", root)
    assert list(rec.suites) == ["robustness"] and rec.suites["robustness"]["commit"] == "def5678"
    assert registry.resolve("cpu-teacher-half-32k", root)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", root)
    monkeypatch.setattr(registry.names, "__defaults__", (root,))
    monkeypatch.setattr(registry.record, "__defaults__", (root,))
    listed = CliRunner().invoke(app, ["pretrained", "list"], terminal_width=200)
    assert "suite robustness at def5678 (seed 1, 40 dB): tdl 1.0e-03 (0.0025x LS)" in listed.output, listed.output


def test_a_superseded_receiver_stays_shipped_but_is_not_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "weights"
    for name in ("cpu-teacher-half-32k", "cpu-teacher-broad-dmrs1", "cpu-teacher-dmrs2"):
        shutil.copytree(registry.WEIGHTS_DIR / name, root / name)
        fresh = dataclasses.replace(registry.record(name, root), superseded={})  # as it was shipped
        write_json(root / name / registry.RECORD, fresh.to_dict())
    with pytest.raises(InputError, match="DMRS"):
        registry.supersede("cpu-teacher-half-32k", "cpu-teacher-dmrs2", "why", "abc1234", root)
    with pytest.raises(InputError, match="itself"):
        registry.supersede("cpu-teacher-half-32k", "cpu-teacher-half-32k", "why", "abc1234", root)
    with pytest.raises(InputError, match="say why"):
        registry.supersede("cpu-teacher-half-32k", "cpu-teacher-broad-dmrs1", " ", "abc1234", root)
    assert "cpu-teacher-half-32k" in registry.current_names(root)
    rec = registry.supersede("cpu-teacher-half-32k", "cpu-teacher-broad-dmrs1", "trained longer", "abc1234", root)
    assert rec.superseded == {"by": "cpu-teacher-broad-dmrs1", "why": "trained longer", "commit": "abc1234"}
    assert registry.current_names(root) == ["cpu-teacher-broad-dmrs1", "cpu-teacher-dmrs2"]
    assert "cpu-teacher-half-32k" in registry.names(root) and registry.resolve("cpu-teacher-half-32k", root)
    with pytest.raises(InputError, match="itself superseded"):  # a chain of successors is not followed
        registry.supersede("cpu-teacher-broad-dmrs1", "cpu-teacher-half-32k", "why", "abc1234", root)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", root)
    for f in (registry.names, registry.record, registry.resolve):
        monkeypatch.setattr(f, "__defaults__", (root,))
    listed = CliRunner().invoke(app, ["pretrained", "list"], terminal_width=200)
    assert "superseded by cpu-teacher-broad-dmrs1 (at abc1234): trained longer" in listed.output, listed.output
    used = CliRunner().invoke(app, ["energy", "estimate", "--pretrained", "cpu-teacher-half-32k", "--json"])
    assert used.exit_code == 0 and json.loads(used.stdout), used.output  # stdout stays JSON
    assert "note: cpu-teacher-half-32k is superseded by cpu-teacher-broad-dmrs1" in used.stderr
    refused = CliRunner().invoke(app, ["evaluate", "--pretrained", "cpu-teacher-half-32k", "--set", "link.n_rx=4"])
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1  # bad input: its one line only


def test_recommend_chooses_among_the_shipped_receivers() -> None:
    result = CliRunner().invoke(app, ["recommend", "--shipped", "--rate", "400", "--processor", "coral-edge-tpu",
                                      "--no-measure", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    one_dmrs = {n for n in registry.current_names() if registry.record(n).dmrs_symbols == 1}
    classical = {"LS-LMMSE", "Perfect-CSI LMMSE"}
    assert {c["key"] for c in data["candidates"]} == one_dmrs | classical  # the classical receivers as points
    assert set(data["references_geo_mean_ber"]) == classical
    peak = load_catalogue()["coral-edge-tpu"].peak_flops
    for c in data["candidates"]:  # the estimated rate: the processor's peak over the counted FLOPs
        assert c["slots_per_s"] == pytest.approx(peak / c["total_flops_per_slot"])
        assert c["total_flops_per_slot"] > 0.4e9 if c["model"] == "deeprx_half" else c["total_flops_per_slot"] > 0
    by_key = {c["key"]: c for c in data["candidates"]}
    assert by_key["LS-LMMSE"]["total_flops_per_slot"] < 1e-3 * by_key["cpu-teacher-broad-dmrs1"]["total_flops_per_slot"]
    assert by_key["Perfect-CSI LMMSE"]["role"] == "genie" and not by_key["Perfect-CSI LMMSE"]["pareto"]
    assert by_key["LS-LMMSE"]["pareto"]  # nothing spends less
    assert data["recommendation"]["key"] in one_dmrs  # a shipped network beats LS-LMMSE, the genie is no choice


def test_compare_two_receivers_on_the_same_slots(tmp_path: Path) -> None:
    tiny = ["--set", "eval.slots_per_point=8", "--set", "eval.sinr_step_db=20", "--set", "eval.batch_size=8"]
    result = CliRunner().invoke(app, ["compare", "cpu-student-dense8-dmrs1", "cpu-teacher-dmrs1", *tiny, "--seeds",
                                      "1", "--out", str(tmp_path), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    geo = {r["receiver"]: r["geometric_mean_ber"] for r in data["summary"]}
    assert set(geo) == {"cpu-student-dense8-dmrs1", "cpu-teacher-dmrs1", "LS-LMMSE", "Perfect-CSI LMMSE"}
    d = data["a_minus_b"]
    assert d["geo_diff"] == pytest.approx(geo["cpu-student-dense8-dmrs1"] - geo["cpu-teacher-dmrs1"])
    assert d["geo_diff_ci"][0] <= d["geo_diff"] <= d["geo_diff_ci"][1]  # the paired bootstrap brackets it
    assert data["seeds"] == [1]
    refusals = {
        ("cpu-teacher-dmrs1", "cpu-teacher-dmrs1"): "two different",
        ("cpu-teacher-dmrs1", "cpu-teacher-dmrs2"): "different test sets",  # 1 vs 2 DMRS symbols
        ("cpu-teacher-dmrs1", str(tmp_path / "nothing")): "neither a run folder",
    }
    for (a, b), message in refusals.items():
        refused = CliRunner().invoke(app, ["compare", a, b, "--out", str(tmp_path / "x")])
        assert refused.exit_code == 2 and message in refused.output, refused.output
