"""Studies: the SQLite store, the paired bootstrap, and a tiny reproduce chain that is killed and resumed."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import ENERGY_WINDOW_S
from deeprx.cli import app
from deeprx.config import RunConfig
from deeprx.evaluate.ber import BerCurve, bootstrap, interval
from deeprx.studies.plan import StudyPlan
from deeprx.studies.reproduce import reproduce
from deeprx.studies.results import StudyResults
from deeprx.studies.store import Store
from deeprx.studies.trial_result import TrialResult, TrialStatus
from deeprx.train.trainer import train


def test_store_keeps_finished_results_and_memberships(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.start("k1", "scratch", {"a": 1})
    assert store.result("k1") is None  # running, not finished
    store.add_member("size", "k1", {"model": "m"})
    store.finish("k1", {"geo": -1.5})
    store.close()
    again = Store(tmp_path / "s.sqlite")
    assert again.result("k1") == {"geo": -1.5}
    assert again.members("size") == [({"model": "m"}, {"geo": -1.5})]
    (tmp_path / "bad.sqlite").write_text("not a database" * 100)
    with pytest.raises(Exception, match="not a deeprx study store"):
        Store(tmp_path / "bad.sqlite")


def test_bootstrap_is_paired_and_centred() -> None:
    rng = np.random.default_rng(1)
    errors = [rng.poisson(20, 50).tolist(), rng.poisson(2, 50).tolist()]
    a = BerCurve("a", [0.0, 10.0], [0, 0], [sum(e) for e in errors], [5000, 5000], errors)
    a.ber = [e / n for e, n in zip(a.bit_errors, a.bits, strict=True)]
    b = BerCurve("b", a.sinr_db, a.ber, a.bit_errors, a.bits, errors)
    boot = bootstrap([a, b], target_ber=1e-3, n_boot=200)
    assert np.array_equal(boot["a"], boot["b"], equal_nan=True)  # same slots drawn for both: a zero difference exactly
    lo, hi = interval(boot["a"][:, 0])
    assert lo < a.geometric_mean_ber() < hi and hi - lo < 0.2
    short = BerCurve("c", a.sinr_db, a.ber, a.bit_errors, a.bits, [errors[0][:10], errors[1]])
    with pytest.raises(ValueError, match="every slot"):
        bootstrap([a, short], 1e-3)


def _tiny_plan(cfg: RunConfig) -> StudyPlan:
    return StudyPlan(
        base=cfg.with_overrides({"train.steps": 3, "train.checkpoint_every": 3, "eval.slots_per_point": 8}),
        teacher="deeprx_quarter_c32",
        teacher_steps=4,
        teachers=("deeprx_quarter_c32",),
        student="deeprx_eighth",
        students=("deeprx_eighth",),
        sizes=("deeprx_eighth",),
        alphas=(300.0,),
        temperatures=(3.0,),
        alpha=300.0,
        temperature=3.0,
        mean_scaling_alpha=1.0,
        n_boot=50,
        energy_window_s=ENERGY_WINDOW_S,
    )


class Killed(Exception):
    pass


@pytest.mark.slow
def test_reproduce_killed_midway_resumes_without_repeating_trials(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    plan = _tiny_plan(tiny_cfg)
    calls: list[str] = []

    def dies_on_third(cfg: RunConfig, run_dir: Path, **kw) -> None:
        calls.append(str(run_dir))
        if len(calls) == 3:
            raise Killed
        train(cfg, run_dir, **kw)

    with pytest.raises(Killed):
        reproduce("quick", tmp_path, show_progress=False, trainer=dies_on_third, plan=plan)
    finished_before = set(calls[:2])
    resumed: list[str] = []

    def counting(cfg: RunConfig, run_dir: Path, **kw) -> None:
        resumed.append(str(run_dir))
        train(cfg, run_dir, **kw)

    results = reproduce("quick", tmp_path, show_progress=False, trainer=counting, plan=plan)
    assert not finished_before & set(resumed), "a finished trial was trained again"
    assert calls[2] in resumed  # the killed trial is the first to resume
    # distinct trials: teacher, scratch student, KD student for dmrs 1 and 2, the mean-scaling KD student,
    # the students of the two classical teachers (the other studies share them)
    assert len(set(calls[:2]) | set(resumed)) == 9
    assert results["store"] == {"done": 11}  # 9 trials + baselines for 2 test sets
    assert results["alpha_mean_scaling"]["scaling"] == "mean" and "kd_headroom" in results
    probes = results["teacher_quality"]
    assert [(q["teacher"], q["dmrs"]) for q in probes] == [("Perfect-CSI LMMSE", 1), ("LS-LMMSE", 2)]
    assert probes[0]["teacher_geo"] < probes[0]["network_teacher"]["teacher_geo"]  # the genie teaches better
    text = (tmp_path / "report.md").read_text()
    assert "Paper claims beside our measurements" in text and "KD beats scratch" in text
    assert "Teacher quality probe" in text
    for stem in ("fig3_size", "fig4_teacher", "fig5_temperature", "fig6_ber_dmrs1", "fig6_ber_dmrs2",
                 "quality_vs_energy", "fig7_learning_dmrs1", "fig7_learning_dmrs2"):  # fmt: skip
        assert (tmp_path / f"{stem}.png").exists(), stem
    # the learning curves: one point per checkpoint of each student
    learning = results["learning"][1]
    assert learning["kd"]["slots"] == learning["scratch"]["slots"] == [3 * plan.base.train.batch_size]  # 1 checkpoint
    assert learning["scratch_final_ber"] == learning["scratch"]["ber"][-1]
    assert any(c["claim"].startswith("(ours) KD reaches") for c in results["claims"])
    # the frontier: every 1-DMRS model on each processor, a Pareto set, and a recommendation from the CLI
    assert str(tmp_path / "frontier.png") in results["figures"] and (tmp_path / "frontier.png").exists()
    tpu = results["frontier"]["coral-edge-tpu"]
    assert any(r["pareto"] for r in tpu) and all(r["energy_method"] == "estimated (metric0)" for r in tpu)
    picked = CliRunner().invoke(app, ["recommend", "--from", str(tmp_path), "--processor", "coral-edge-tpu",
                                      "--rate", "400", "--json"])  # fmt: skip
    assert picked.exit_code == 0, picked.output
    rec = json.loads(picked.stdout)["recommendation"]
    able = [r for r in tpu if r["sustains"] and r["role"] != "genie"]  # the genie is a bound, not a choice
    assert rec["geo"] == min(r["geo"] for r in able)
    nothing = CliRunner().invoke(app, ["recommend", "--from", str(tmp_path), "--processor", "coral-edge-tpu",
                                       "--rate", "1e12", "--json"])  # fmt: skip
    assert nothing.exit_code == 0 and json.loads(nothing.stdout)["recommendation"] is None
    again: list[str] = []
    moved = tmp_path.parent / f"{tmp_path.name}-moved"
    shutil.move(tmp_path, moved)  # trial keys do not depend on where the folder is
    # a finished study that gains a coded plan evaluates its receivers on the coded link, and trains nothing
    coded = dataclasses.replace(plan, coded=(("link.mcs_index", 14), ("eval.sinr_start_db", 0.0),
                                             ("eval.sinr_stop_db", 20.0), ("eval.sinr_step_db", 10.0)))  # fmt: skip
    results = reproduce("quick", moved, show_progress=False, trainer=lambda *a, **k: again.append("x"), plan=coded)
    assert again == []  # everything done: nothing trains
    section = results["coded"]
    for dmrs in (1, 2):
        rows = section[dmrs]["receivers"]
        assert [r["receiver"] for r in rows][-2:] == ["LS-LMMSE", "Perfect-CSI LMMSE"]
        assert all(len(r["coded"]["points"]["bler"]) == 3 for r in rows)  # 0, 10, 20 dB
        assert section[dmrs]["kd_vs_scratch"]["target_bler"] == 0.1
        for stem in (f"fig6_bler_dmrs{dmrs}", f"fig6_llr_calibration_dmrs{dmrs}"):
            assert (moved / f"{stem}.png").exists(), stem
    assert [t["study"] for t in section[1]["kd_comparisons"]] == ["temperature", "alpha"]  # T = 3, alpha = 300
    assert section[2]["kd_comparisons"] == []
    # one record per receiver: teacher, KD and scratch per DMRS setting (T = 3 is the KD one), and the baselines
    assert results["store"] == {"done": 11 + 6 + 2}
    assert "BLER and goodput on the coded link" in (moved / "report.md").read_text()
    assert StudyResults.from_dict(json.loads((moved / "reproduce.json").read_text())).coded.keys() == {1, 2}


@pytest.mark.slow
def test_reproduce_takes_shipped_teachers_without_training_them(tmp_path: Path) -> None:
    from deeprx.config import load_profile

    base = load_profile("quick").with_overrides(
        {"train.steps": 2, "train.checkpoint_every": 2, "eval.slots_per_point": 8, "eval.sinr_step_db": 20.0}
    )
    plan = StudyPlan(
        base=base, teacher="deeprx_half", shipped_teachers=((1, "cpu-teacher-dmrs1"), (2, "cpu-teacher-dmrs2")),
        shipped_students=((1, "cpu-student-dense8-dmrs1"),), teacher_steps=4,
        teachers=("cpu-teacher-half-32k", "deeprx_half"), student="deeprx_eighth",
        students=("deeprx_eighth",),
        sizes=("deeprx_eighth",), alphas=(300.0,), temperatures=(3.0,), alpha=300.0, temperature=3.0,
        mean_scaling_alpha=None, classical_teachers=(), n_boot=20, energy_window_s=ENERGY_WINDOW_S,
    )  # fmt: skip
    trained: list[RunConfig] = []

    def counting(cfg: RunConfig, run_dir: Path, **kw) -> None:
        trained.append(cfg)
        train(cfg, run_dir, **kw)

    results = reproduce("quick", tmp_path, show_progress=False, trainer=counting, plan=plan)
    assert trained and all(c.model == "deeprx_eighth" for c in trained)  # the shipped teacher never trains
    shipped = ["cpu-student-dense8-dmrs1", "cpu-teacher-dmrs1", "cpu-teacher-dmrs2", "cpu-teacher-half-32k"]
    assert sorted(s["name"] for s in results["models"]["shipped"]) == shipped
    # the shipped student beside the teacher and the students trained here, each named with its budget
    labels = [r["receiver"] for r in results["curves"][1]["receivers"]]
    assert labels[:4] == [
        "teacher (deeprx_half, 296k slots)",
        "shipped student (dense_eighth, 240k slots)",
        "KD student (deeprx_eighth, 64 slots)",
        "scratch student (deeprx_eighth, 64 slots)",
    ]
    host = {r["key"]: r for r in results["frontier"]["host"]}
    student = next(r for r in host.values() if r["role"] == "shipped student")
    assert host["LS-LMMSE"]["role"] == "classical" and host["Perfect-CSI LMMSE"]["role"] == "genie"
    assert student["geo"] < host["LS-LMMSE"]["geo"]
    assert student["total_flops_per_slot"] > host["LS-LMMSE"]["total_flops_per_slot"]
    # students of 64 slots are still learning: the report says their comparisons are no results
    assert [x["role"] for x in results["learning"][1]["not_crossed"]] == ["KD student", "scratch student"]
    # teachers of one size are told apart by their budget
    assert [r["teacher"] for r in results["teacher"]] == ["deeprx_half (32k slots)", "deeprx_half (296k slots)"]
    assert all(t["model"] == "deeprx_eighth" for t in results["models"]["trained"])
    teacher = next(r for r in results["curves"][1]["receivers"] if r["receiver"].startswith("teacher"))
    ls = next(r for r in results["curves"][1]["receivers"] if r["receiver"] == "LS-LMMSE")
    assert teacher["ber_at_max_sinr"] < 0.1 * ls["ber_at_max_sinr"]
    text = (tmp_path / "report.md").read_text()
    assert "**Shipped, not trained here:** `cpu-teacher-dmrs1`" in text
    assert "**Not a result: the scratch student deeprx_eighth (1 DMRS) has not crossed 0.1x LS-LMMSE" in text
    picks = [line.rsplit("|", 2)[1] for line in text.splitlines() if line.startswith("| host |")]
    assert len(picks) == 1 and "genie" not in picks[0]  # the report recommends no bound


def test_shipped_results_read_as_typed_results_round_trip_and_render() -> None:
    """reproduce.json of format 1 (untyped, before record formats) reads, writes back the same and renders."""
    from deeprx.studies.report import render_report
    from deeprx.studies.results import RESULTS_FORMAT, Row, StudyResults

    shipped = Path(__file__).parents[1] / "results" / "reproduce-cpu-paper-input" / "reproduce.json"
    original = json.loads(shipped.read_text())
    typed = StudyResults.from_dict(original)
    assert isinstance(typed.size[0], Row) and typed.size[0].geo == original["size"][0]["geo"]
    assert typed.curves[1]["comparison"].geo_diff == original["curves"]["1"]["comparison"]["geo_diff"]
    back = json.loads(json.dumps(typed.to_dict()))
    assert back.pop("format") == RESULTS_FORMAT
    # every field of the file comes back as it was; fields added since (models, frontier, ...) come back empty
    assert json.dumps({k: back[k] for k in original}, sort_keys=True) == json.dumps(original, sort_keys=True)
    assert all(not back[k] for k in set(back) - set(original))
    text = render_report(typed)
    assert "## Paper claims beside our measurements" in text and "not recorded in this result file" in text


def test_a_store_from_before_record_formats_is_migrated_and_newer_records_refused(tmp_path: Path) -> None:
    import sqlite3

    from deeprx.io import InputError
    from deeprx.studies.store import RECORD_FORMAT

    old = tmp_path / "studies.sqlite"
    with sqlite3.connect(old) as db:  # the schema before the format column
        db.execute("CREATE TABLE trials (key TEXT PRIMARY KEY, role TEXT NOT NULL, config TEXT NOT NULL, "
                   "status TEXT NOT NULL, result TEXT, updated REAL NOT NULL)")  # fmt: skip
        db.execute("INSERT INTO trials VALUES ('k', 'scratch', '{}', 'done', '{\"geo\": -2.5}', 0)")
    with Store(old) as store:
        assert store.result("k") == {"geo": -2.5}
        store.start("new", "kd", {})
        store.finish("new", {"geo": -3.0})
    with sqlite3.connect(old) as db:
        assert dict(db.execute("SELECT key, format FROM trials").fetchall()) == {"k": 1, "new": RECORD_FORMAT}
        db.execute("UPDATE trials SET format = ? WHERE key = 'k'", (RECORD_FORMAT + 1,))
    with Store(old) as store, pytest.raises(InputError, match="record format"):
        store.result("k")


def test_pareto_and_recommendation_by_hand() -> None:
    from deeprx.energy.processors import Processor
    from deeprx.studies.frontier import Candidate, RateMeasurement, assess, pareto, recommend

    # (energy, quality): (1, -1) and (2, -3) and (4, -4) are on the front; (3, -2) is beaten by (2, -3)
    assert pareto([(1.0, -1.0), (2.0, -3.0), (3.0, -2.0), (4.0, -4.0)]) == [True, True, False, True]
    assert pareto([(1.0, -1.0), (1.0, -1.0)]) == [True, True]  # equal points do not beat each other
    proc = Processor(key="toy", name="toy", kind="cpu", cores=1, base_ghz=1.0, turbo_ghz=1.0,
                     flops_per_cycle_per_core=1e3, peak_basis="base", tdp_watts=10.0, cache_mib=0.0, source="hand",
                     kappa=1.0, a_c=0.0, b_c=0.0, a_f=0.0)  # fmt: skip
    # peak 1e12 FLOP/s, 1e11 FLOP/s per W
    small, big = Candidate("s", "small", "kd", -2.0, 1e9), Candidate("b", "big", "teacher", -3.0, 1e10)
    rows = assess([small, big], proc, rate_per_s=200.0)
    assert [r.slots_per_s for r in rows] == [1000.0, 100.0]  # 1e12 / FLOPs per slot
    assert [r.joules_per_slot for r in rows] == [pytest.approx(0.01), pytest.approx(0.1)]  # FLOPs / 1e11
    assert [r.sustains for r in rows] == [True, False] and all(r.pareto for r in rows)
    assert recommend(rows).candidate is small  # the better model cannot keep up: the best that can
    measured = assess([small, big], proc, 50.0, lambda c: RateMeasurement(60.0, "measured (test)"))
    assert recommend(measured).candidate is big and measured[0].rate_method == "measured (test)"
    # a streaming run's verdict overrules the rate: 60/s measured in batches, yet late at a 50/s stream
    served = assess([small, big], proc, 50.0, lambda c: RateMeasurement(60.0, "served (test)", c is small))
    assert [r.sustains for r in served] == [True, False] and recommend(served).candidate is small
    genie = Candidate("g", "Perfect-CSI LMMSE", "genie", -5.0, 1e6)  # better and cheaper than all: a bound
    with_genie = assess([small, big, genie], proc, rate_per_s=200.0)
    assert [r.pareto for r in with_genie] == [True, True, False]  # it knocks no receiver off the front
    assert recommend(with_genie).candidate is small  # and is never the choice


@pytest.mark.slow
def test_reproduce_runs_kd_variants_hardware_students_and_int8_qat(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    import dataclasses

    plan = dataclasses.replace(
        _tiny_plan(tiny_cfg),
        mean_scaling_alpha=None,
        classical_teachers=(),
        kd_variants=(("logit MSE", (("kd.term", "mse"),)), ("annealed", (("kd.anneal", "linear"),))),
        hardware_students=("dense_sixteenth",),
        qat_steps=2,
    )
    results = reproduce("quick", tmp_path, show_progress=False, plan=plan)
    q = results["quantized"]
    assert [x["source"] for x in q["students"]] == ["scratch", "kd"]
    for x in q["students"]:  # each int8 student scored on every test slot, in pairs with its fp32 self
        assert x["key"].endswith("-qat2-lr0.0001") and (tmp_path / "runs" / x["key"] / "model.int8.onnx").exists()
        assert x["int8_vs_fp32"]["geo_diff"] == pytest.approx(x["geo_int8"] - x["geo_fp32"])
    assert q["students"][1]["qat"]["teacher"] is not None  # the KD student's QAT keeps its teacher
    assert "KD + int8 quantization-aware training" in (tmp_path / "report.md").read_text()
    assert [r["variant"] for r in results["kd_variants"]] == ["logit MSE", "annealed"]
    assert all("diff_ci" in r for r in results["kd_variants"])  # each against the student from scratch
    hardware = results["hardware"]
    assert [(r["model"], r["role"]) for r in hardware] == [("dense_sixteenth", "scratch"), ("dense_sixteenth", "kd")]
    assert "diff_vs_scratch" in hardware[1] and "diff_vs_scratch" not in hardware[0]
    assert any(r["model"] == "dense_sixteenth" for r in results["frontier"]["host"])
    text = (tmp_path / "report.md").read_text()
    assert "## KD variants beyond the paper" in text and "## Students built for the hardware" in text


def _result(**fields: object) -> TrialResult:
    """A trial result of a tiny curve (2 points, 2 slots each), ``fields`` replacing the defaults."""
    curve = BerCurve("m", [0.0, 10.0], [0.05, 0.0], [50, 0], [1000, 1000], slot_errors=[[40, 10], [0, 0]])
    base = dict(key="m-1", role="scratch", model="m", kd=None, dmrs_symbols=1, parameters=10, trained_steps=20,
                slots_seen=640, init_from_slots_seen=0, train_seconds=1.5, testset="t", curve=curve,
                geometric_mean_ber=curve.geometric_mean_ber(), sinr_at_target_db=None, ber_at_max_sinr=0.0,
                flops_per_slot=1e6, all_flops_per_slot=1.1e6, front_end="enhanced", front_end_flops_per_slot=1e3,
                metric0_joules_per_slot={"host": 1e-6}, validation_log=[{"step": 20, "val_ber": [0.1]}])  # fmt: skip
    return TrialResult(**{**base, **fields})


def test_budget_labels_count_the_slots_behind_a_fine_tuned_network() -> None:
    from deeprx.studies.figures import budget_label

    assert budget_label("KD student", _result(model="deeprx_eighth", slots_seen=3200)) == (
        "KD student (deeprx_eighth, 3.2k slots)"
    )
    assert budget_label("teacher", _result(model="deeprx_half", slots_seen=48_000, init_from_slots_seen=295_936)) == (
        "teacher (deeprx_half, 296k + 48k slots)"
    )
    assert budget_label("scratch student", _result()) == "scratch student (m, 640 slots)"


def test_trial_result_is_stored_as_its_fields_and_read_back_from_old_records() -> None:
    result = _result(kd={"teacher": "cpu-teacher-dmrs1", "alpha": 300.0})
    stored = json.loads(json.dumps(result.to_dict()))
    assert set(stored) == {f.name for f in dataclasses.fields(TrialResult)} - {"source", "qat"}
    assert stored["curve"]["bit_errors"] == [50, 0] and stored["validation_log"] == [{"step": 20, "val_ber": [0.1]}]
    assert TrialResult.from_dict(stored) == result and result.teacher == "cpu-teacher-dmrs1"
    # a record from before init_from_slots_seen, the front end's fields and slots_seen: what they meant then
    old = {k: v for k, v in stored.items() if k not in ("init_from_slots_seen", "front_end", "slots_seen",
                                                        "front_end_flops_per_slot", "shipped")}  # fmt: skip
    read = TrialResult.from_dict(old)
    assert (read.init_from_slots_seen, read.front_end_flops_per_slot, read.slots_seen, read.shipped) == (
        0,
        0.0,
        None,
        None,
    )
    # the int8 version: its own curve and key, the source's network facts, no validation log or shipped record
    int8_curve = BerCurve("q", [0.0, 10.0], [0.06, 0.002], [60, 2], [1000, 1000])
    q = result.as_int8("m-1-qat2", "m-1", {"steps": 2}, int8_curve, 1e-3)
    d = q.to_dict()
    assert {"validation_log", "shipped"}.isdisjoint(d) and (d["source"], d["role"], d["qat"]) == (
        "m-1",
        "qat",
        {"steps": 2},
    )
    assert (q.ber_at_max_sinr, q.flops_per_slot, q.geometric_mean_ber) == (2e-3, 1e6, int8_curve.geometric_mean_ber())
    assert TrialResult.from_dict(json.loads(json.dumps(d))) == q
    # the curve handed out for a plot is a renamed copy: the stored result keeps its own
    named = result.named_curve("DeepRx")
    named.bit_errors[0] = 0
    assert (named.receiver, result.curve.receiver, result.curve.bit_errors[0]) == ("DeepRx", "m", 50)


def test_store_states_are_the_trial_status_values(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.start("k", "scratch", {})
        assert store.status_counts() == {TrialStatus.RUNNING.value: 1}
        store.finish("k", {"geo": -1.0})
        assert store.status_counts() == {TrialStatus.DONE.value: 1}
        with pytest.raises(sqlite3.IntegrityError):  # the schema admits no other state
            store.db.execute("UPDATE trials SET status = 'paused'")
