"""``deeprx reproduce``: the paper's whole chain for one profile, resumable, ending in a report.

Test sets -> baselines -> teacher -> students from scratch (size study) -> KD students (alpha, T x size,
teacher size) -> BER curves with 1 and 2 DMRS symbols -> energy of teacher and students -> life cycle
-> figures and ``report.md`` whose first table puts each paper claim beside our measured value.

Every comparison that decides something carries a 95 % paired-bootstrap interval over test slots.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deeprx import pretrained
from deeprx.config import PAPER_LINK
from deeprx.energy.assess import lifecycle_table, measurements
from deeprx.energy.flops import block_totals, count_layers
from deeprx.energy.meters import open_meter
from deeprx.energy.processors import load_catalogue
from deeprx.evaluate.ber import BerCurve, bootstrap, interval, never_better
from deeprx.io import atomic_write, write_json
from deeprx.link.baselines import BASELINES, LS_LMMSE
from deeprx.models.deeprx import create_model
from deeprx.report.plots import plot_ber
from deeprx.report.study_plots import (
    plot_quality_vs_energy,
    plot_size_study,
    plot_teacher_study,
    plot_temperature_study,
)
from deeprx.studies.plan import StudyPlan, plan_for
from deeprx.studies.runner import Trial, curve_of, run_baselines, run_trial
from deeprx.studies.store import Store
from deeprx.subjects import energy_subject
from deeprx.train import checkpoint
from deeprx.train.distill import CLASSICAL_TEACHERS
from deeprx.train.trainer import BatchCache, train

BATCH_CACHE_BYTES = 6 * 2**30  # ~4,400 batches of 32 slots at 4 PRB; the paper grid's are ~6.5x larger
ENERGY_PROCESSOR = "host"  # quality-vs-energy axis: metric 0 on the machine the run is on
PAPER = {  # the paper's numbers, quoted for the claims table
    "kd_gain_db": 4.0,
    "kd_gain_target_ber": 1e-3,
    "coral_mj": 2.0,
    "break_even_inferences": 1e5,
    "train_step_joules": 20.0,
    "train_steps": 250_000,
    "best_alpha": 5e5,
    "best_temperature": 3.0,
}


class Chain:
    """Builds the trials of a plan and runs them through the store (each at most once)."""

    def __init__(self, plan: StudyPlan, out: Path, show_progress: bool, trainer: Callable[..., Any]) -> None:
        self.plan, self.out, self.show_progress = plan, out, show_progress
        # Every trial of one DMRS setting trains on the same batch stream: simulate each batch once.
        self.batches = BatchCache(BATCH_CACHE_BYTES)
        self.trainer = functools.partial(trainer, batch_cache=self.batches)
        self.store = Store(out / "studies.sqlite")
        self.processors = load_catalogue()

    def cfg(self, model: str, dmrs_symbols: int = 1, steps: int | None = None, kd: dict[str, Any] | None = None):
        overrides: dict[str, Any] = {"model": model, "link.dmrs_symbols": dmrs_symbols}
        overrides["eval.target_bit_errors"] = 10**15  # every slot counted
        if steps is not None:
            overrides["train.steps"] = steps
        overrides.update(kd or {})
        return self.plan.base.with_overrides(overrides)

    def teacher(self, model: str, dmrs_symbols: int = 1) -> Trial:
        """The teacher of ``model``: shipped where the plan names one for this DMRS setting, else trained."""
        shipped = dict(self.plan.shipped_teachers).get(dmrs_symbols) if model == self.plan.teacher else None
        if shipped is None:
            return Trial(self.cfg(model, dmrs_symbols, self.plan.teacher_steps), "teacher")
        saved = checkpoint.saved_config(pretrained.resolve(shipped))
        # The shipped run's own link, model and training; this chain's test set and device.
        cfg = dataclasses.replace(saved, profile=self.plan.base.profile, device=self.plan.base.device,
                                  eval=self.cfg(model, dmrs_symbols).eval)  # fmt: skip
        return Trial(cfg, "teacher", shipped=shipped)

    def scratch(self, model: str, dmrs_symbols: int = 1) -> Trial:
        return Trial(self.cfg(model, dmrs_symbols), "scratch")

    def kd(
        self,
        student: str,
        teacher: Trial | str,
        alpha: float,
        temperature: float,
        dmrs_symbols: int = 1,
        scaling: str | None = None,
    ) -> Trial:
        """A KD student of ``teacher``: a teacher trial, or a classical receiver (``CLASSICAL_TEACHERS``)."""
        kd = {
            "kd.teacher": teacher if isinstance(teacher, str) else teacher.shipped or str(teacher.run_dir(self.out)),
            "kd.alpha": alpha,
            "kd.temperature": temperature,
            "kd.scaling": scaling or self.plan.scaling,
        }
        return Trial(self.cfg(student, dmrs_symbols, kd=kd), "kd")

    def run(self, study: str, trial: Trial, **label: Any) -> dict[str, Any]:
        self.store.add_member(study, trial.key, label)
        return run_trial(trial, self.out, self.store, self.processors, self.show_progress, self.trainer)


def _row(result: dict[str, Any], samples: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {
        "model": result["model"],
        "role": result["role"],
        "key": result["key"],
        "flops": result["flops_per_slot"],
        "joules": result["metric0_joules_per_slot"][ENERGY_PROCESSOR],
        "geo": result["geometric_mean_ber"],
        "geo_ci": interval(samples[:, 0]),
        "sinr_at_target_db": result["sinr_at_target_db"],
        "ber_at_max_sinr": result["ber_at_max_sinr"],
        **extra,
    }


def compare(kd: dict[str, Any], scratch: dict[str, Any], target_ber: float, n_boot: int) -> dict[str, Any]:
    """KD vs scratch on the same slots: geo-mean difference and SINR gain at the target, with 95 % intervals."""
    a, b = curve_of(kd, "kd"), curve_of(scratch, "scratch")
    boot = bootstrap([a, b], target_ber, n_boot)
    geo_diff = boot["kd"][:, 0] - boot["scratch"][:, 0]
    gain = boot["scratch"][:, 1] - boot["kd"][:, 1]
    both = a.sinr_at_ber(target_ber) is not None and b.sinr_at_ber(target_ber) is not None
    return {
        "geo_diff": a.geometric_mean_ber() - b.geometric_mean_ber(),
        "geo_diff_ci": interval(geo_diff),
        "p_kd_better": float(np.mean(geo_diff < 0)),
        "gain_db": b.sinr_at_ber(target_ber) - a.sinr_at_ber(target_ber) if both else None,
        "gain_db_ci": interval(gain),
        "gain_reached_fraction": float(np.mean(np.isfinite(gain))),
        "floor_kd": a.ber[-1],
        "floor_scratch": b.ber[-1],
    }


def reproduce(
    profile: str,
    out: Path,
    show_progress: bool = True,
    trainer: Callable[..., Any] = train,
    plan: StudyPlan | None = None,
) -> dict[str, Any]:
    """Run (or resume) the whole chain for ``profile`` and write ``report.md``, ``reproduce.json`` and figures.

    ``plan`` replaces the profile's plan (tests use a tiny one); ``trainer`` replaces the training loop.
    """
    t0 = time.perf_counter()
    plan = plan or plan_for(profile)
    chain = Chain(plan, out, show_progress, trainer)
    target = plan.base.eval.target_ber
    n_boot = plan.n_boot
    results: dict[str, Any] = {"profile": profile, "plan": _plan_dict(plan)}

    # Fig. 6 first: the chain's headline, and the teacher every KD study shares.
    teacher = chain.teacher(plan.teacher)
    curves = {}
    for dmrs in (1, 2):
        t = chain.teacher(plan.teacher, dmrs)
        base = run_baselines(chain.cfg(plan.student, dmrs), out, chain.store, show_progress)
        res_t = chain.run(f"curves-dmrs{dmrs}", t, role="teacher")
        res_s = chain.run(f"curves-dmrs{dmrs}", chain.scratch(plan.student, dmrs), role="scratch")
        res_k = chain.run(
            f"curves-dmrs{dmrs}", chain.kd(plan.student, t, plan.alpha, plan.temperature, dmrs), role="kd"
        )
        curves[dmrs] = {
            "teacher": res_t,
            "scratch": res_s,
            "kd": res_k,
            "baselines": base["curves"],
            "comparison": compare(res_k, res_s, target, n_boot),
        }

    # Fig. 3: size from scratch.
    size_results = [chain.run("size", chain.scratch(m), model=m) for m in plan.sizes]
    teacher_result = chain.run("size", teacher, model=plan.teacher, role="teacher")
    # Table III: alpha.
    alpha_results = [
        chain.run("alpha", chain.kd(plan.student, teacher, a, plan.temperature), alpha=a) for a in plan.alphas
    ]
    mean_alpha, mean_result = plan.mean_scaling_alpha, None
    if mean_alpha is not None:
        mean_trial = chain.kd(plan.student, teacher, mean_alpha, plan.temperature, scaling="mean")
        mean_result = chain.run("alpha", mean_trial, alpha=mean_alpha, scaling="mean")
    # Fig. 5: T x student size.
    temp_results = {
        s: [
            chain.run("temperature", chain.kd(s, teacher, plan.alpha, t), student=s, temperature=t)
            for t in plan.temperatures
        ]
        for s in plan.students
    }
    student_scratch = {s: chain.run("temperature", chain.scratch(s), student=s, role="scratch") for s in plan.students}
    # Fig. 4: teacher size for a fixed student.
    teacher_rows = []
    for name in plan.teachers:
        t = chain.teacher(name)
        res_t = chain.run("teacher", t, teacher=name, role="teacher")
        res_k = chain.run("teacher", chain.kd(plan.student, t, plan.alpha, plan.temperature), teacher=name)
        teacher_rows.append((res_t, res_k))
    # (ours) Teacher quality: the same student distilled from classical receivers far better than DeepRx.
    classical = []
    for name, dmrs in plan.classical_teachers:
        trial = chain.kd(plan.student, name, plan.alpha, plan.temperature, dmrs)
        classical.append((name, dmrs, chain.run("teacher-quality", trial, teacher=name, dmrs=dmrs)))

    # Uncertainty for every dmrs-1 result: all on one test set, so one joint bootstrap.
    scratch_student = curves[1]["scratch"]
    pool = {
        r["key"]: r
        for r in [
            *size_results,
            teacher_result,
            *alpha_results,
            *([mean_result] if mean_result else []),
            scratch_student,
            *[r for rs in temp_results.values() for r in rs],
            *student_scratch.values(),
            *[x for pair in teacher_rows for x in pair],
            curves[1]["kd"],
        ]
    }
    results["models"] = _models_summary(
        [*pool.values(), *(curves[2][k] for k in ("teacher", "scratch", "kd")), *(r for _, _, r in classical)]
    )
    keys = list(pool)
    boot = bootstrap([curve_of(pool[k], k) for k in keys], target, n_boot)
    rows = {k: _row(pool[k], boot[k]) for k in keys}
    scratch_boot = boot[scratch_student["key"]][:, 0]

    def vs_scratch(key: str, scratch_key: str | None = None) -> dict[str, Any]:
        ref = boot[scratch_key][:, 0] if scratch_key else scratch_boot
        diff = boot[key][:, 0] - ref
        return {
            **rows[key],
            "diff_vs_scratch": float(np.mean(diff)),
            "diff_ci": interval(diff),
            "p_better_than_scratch": float(np.mean(diff < 0)),
        }

    results["size"] = [rows[r["key"]] for r in size_results] + [rows[teacher_result["key"]]]
    # How much KD could gain at most: a student that matched its teacher exactly would be this much better.
    results["kd_headroom"] = vs_scratch(teacher_result["key"])
    results["alpha"] = [
        {**vs_scratch(r["key"]), "alpha": a, "scaling": plan.scaling}
        for r, a in zip(alpha_results, plan.alphas, strict=True)
    ]
    if mean_result:
        results["alpha_mean_scaling"] = {**vs_scratch(mean_result["key"]), "alpha": mean_alpha, "scaling": "mean"}
    results["temperature_scratch"] = {s: rows[r["key"]] for s, r in student_scratch.items()}
    results["temperature"] = {
        s: [
            {**vs_scratch(r["key"], student_scratch[s]["key"]), "temperature": t}
            for r, t in zip(rs, plan.temperatures, strict=True)
        ]
        for s, rs in temp_results.items()
    }
    results["teacher"] = [
        {
            **vs_scratch(k["key"]),
            "teacher": t["model"],
            "teacher_flops": t["flops_per_slot"],
            "teacher_row": rows[t["key"]],
        }
        for t, k in teacher_rows
    ]
    results["teacher_quality"] = [
        _teacher_quality(name, dmrs, result, curves[dmrs], target, n_boot) for name, dmrs, result in classical
    ]
    results["curves"] = {d: _curves_summary(c, target) for d, c in curves.items()}
    results["energy"] = _energy_section(plan, chain, teacher_result, scratch_student)
    results["quality_vs_energy"] = list(rows.values())
    results["figures"] = _figures(results, curves, plan, out)
    results["claims"] = _claims(results, plan)
    results["seconds_this_run"] = time.perf_counter() - t0
    results["train_seconds_all_trials"] = chain.store.train_seconds()
    results["store"] = chain.store.status_counts()
    write_json(out / "reproduce.json", results)
    text = render_report(results)
    atomic_write(out / "report.md", lambda p: p.write_text(text))
    chain.store.close()
    return results


def _models_summary(trial_results: list[dict[str, Any]]) -> dict[str, Any]:
    """Which models this chain trained (role, preset, steps, seconds) and which it took shipped, with records."""
    trained: dict[str, dict[str, Any]] = {}
    shipped: dict[str, dict[str, Any]] = {}
    for r in trial_results:
        if r.get("shipped"):
            shipped[r["shipped"]["name"]] = r["shipped"]
        else:
            trained[r["key"]] = {k: r[k] for k in ("key", "role", "model", "dmrs_symbols", "trained_steps")}
            trained[r["key"]]["train_seconds"] = r["train_seconds"]
    return {"trained": list(trained.values()), "shipped": list(shipped.values())}


def _plan_dict(plan: StudyPlan) -> dict[str, Any]:
    d = {k: v for k, v in plan.__dict__.items() if k != "base"}
    return {**d, "base": plan.base.to_dict()}


def _named_curves(c: dict[str, Any]) -> list[BerCurve]:
    """Fig. 6's curves for one DMRS setting: teacher, KD student, scratch student, then the baselines."""
    return [
        curve_of(c["teacher"], f"teacher ({c['teacher']['model']})"),
        curve_of(c["kd"], f"KD student ({c['kd']['model']})"),
        curve_of(c["scratch"], f"scratch student ({c['scratch']['model']})"),
        *(BerCurve.from_dict(v) for v in c["baselines"].values()),
    ]


def _curves_summary(c: dict[str, Any], target: float) -> dict[str, Any]:
    named = _named_curves(c)
    ls = next(x for x in named if x.receiver == LS_LMMSE)
    neural = [x for x in named if x.receiver not in BASELINES]
    return {
        "never_better_than_ls": [x.receiver for x in neural if never_better(x, ls)],
        "receivers": [
            {
                "receiver": x.receiver,
                "geometric_mean_ber": x.geometric_mean_ber(),
                "sinr_at_target_db": x.sinr_at_ber(target),
                "ber_at_max_sinr": x.ber[-1],
            }
            for x in named
        ],
        "comparison": c["comparison"],
        "curves": [x.to_dict() | {"slot_errors": []} for x in named],
    }


def _energy_section(plan: StudyPlan, chain: Chain, teacher: dict[str, Any], student: dict[str, Any]):
    """FLOPs and metric-0 energy of teacher and student at this grid and at the paper grid; a metered
    (or modeled) inference and training step of the teacher on this host; the life cycle."""
    paper_grid = PAPER_LINK.n_subcarriers
    full = create_model("deeprx_full", PAPER_LINK.n_rx, PAPER_LINK.bits_per_symbol)
    blocks = block_totals(count_layers(full, paper_grid))
    total = sum(b["flops"] for b in blocks.values())
    central = sum(blocks[f"block{i}"]["flops"] for i in (5, 6, 7)) / total
    coral = chain.processors["coral-edge-tpu"]
    full_flops = sum(b["flops"] for b in blocks.values())
    cache = chain.out / "energy_measured.json"
    link = plan.base.link
    if cache.exists():
        from deeprx.io import read_json

        measured = read_json(cache, "energy measurement")
    else:
        subject = energy_subject(chain.teacher(plan.teacher, 1).run_dir(chain.out), plan.teacher, link)
        meter, why = open_meter("auto", chain.processors["host"])
        window = plan.energy_window_s
        try:
            m = measurements(
                subject,
                meter,
                batch=16,
                train_batch=plan.base.train.batch_size,
                repeats=3,
                window_s=window,
                idle_s=window,
            )
        finally:
            meter.close()
        measured = {
            "meter": meter.description,
            "why": why,
            "inference": m["inference"].to_dict(),
            "training_step": m["training_step"].to_dict(),
        }
        write_json(cache, measured)
    inf, step = measured["inference"], measured["training_step"]
    batch = plan.base.train.batch_size
    shipped = teacher.get("shipped")
    teacher_slots = shipped["slots_seen"] if shipped else teacher["trained_steps"] * batch
    return {
        "paper_grid_full": {
            "flops_per_slot": full_flops,
            "central_blocks_share": central,
            "coral_metric0_joules": full_flops / coral.flops_per_watt,
        },
        "models": {
            r["model"]: {
                "role": r["role"],
                "flops_per_slot": r["flops_per_slot"],
                "metric0_joules_per_slot": r["metric0_joules_per_slot"],
            }
            for r in (teacher, student)
        },
        "student_over_teacher_flops": student["flops_per_slot"] / teacher["flops_per_slot"],
        "measured": measured,
        # The teacher's training on this host: its slots (a shipped teacher's, from its record) in this
        # host's metered steps of the plan's batch.
        "teacher_training_slots": teacher_slots,
        "life_cycle_measured": lifecycle_table(
            step["joules_per_item"], teacher_slots // batch, inf["joules_per_item"], inf["method"]
        ),
        "life_cycle_paper_inputs": lifecycle_table(
            PAPER["train_step_joules"], PAPER["train_steps"], PAPER["coral_mj"] * 1e-3, "paper's figures"
        ),
    }


def _figures(results: dict[str, Any], curves: dict[int, Any], plan: StudyPlan, out: Path) -> list[str]:
    link = plan.base.link
    grid = f"{link.modulation.upper()}, {link.n_prb} PRB"
    figs = []
    kd_rows = [r for r in results["quality_vs_energy"] if r["role"] == "kd"]
    figs += plot_size_study(results["size"][:-1], kd_rows, out / "fig3_size", f"Size study from scratch ({grid})")
    scratch = next(r for r in results["quality_vs_energy"] if r["key"] == curves[1]["scratch"]["key"])
    figs += plot_teacher_study(results["teacher"], scratch, out / "fig4_teacher", f"Student {plan.student}")
    figs += plot_temperature_study(
        results["temperature"], results["temperature_scratch"], out / "fig5_temperature", "T x student size"
    )
    for dmrs, c in curves.items():
        title = f"{grid}, {dmrs} DMRS symbol(s), {plan.base.eval.speed_mps[0]:g}-{plan.base.eval.speed_mps[1]:g} m/s"
        figs += plot_ber(_named_curves(c), out / f"fig6_ber_dmrs{dmrs}", title, plan.base.eval.target_ber)
    figs += plot_quality_vs_energy(results["quality_vs_energy"], out / "quality_vs_energy", grid, ENERGY_PROCESSOR)
    return [str(p) for p in figs]


def _fmt_ci(value: float | None, ci: tuple[float, float], spec: str = "+.3f") -> str:
    if value is None:
        return "not reached"
    return f"{value:{spec}} [{ci[0]:{spec}}, {ci[1]:{spec}}]"


def _claims(results: dict[str, Any], plan: StudyPlan) -> list[dict[str, str]]:
    profile = results["profile"]
    energy = results["energy"]
    target = plan.base.eval.target_ber
    c1, c2 = results["curves"][1]["comparison"], results["curves"][2]["comparison"]
    best_alpha = min(results["alpha"], key=lambda r: r["geo"])
    temps = [r for rows in results["temperature"].values() for r in rows]
    best_t = min(temps, key=lambda r: r["diff_vs_scratch"])
    best_teacher = min(results["teacher"], key=lambda r: r["geo"])
    sizes = results["size"][:-1]
    monotone = all(a["geo"] >= b["geo"] for a, b in itertools.pairwise(sizes))
    cycle = energy["life_cycle_measured"]
    paper_cycle = energy["life_cycle_paper_inputs"]
    return [
        {
            "claim": "Performance falls as the model shrinks (Fig. 3)",
            "ours": ", ".join(f"{r['model'].removeprefix('deeprx_')} {r['geo']:.3f}" for r in sizes)
            + (" (monotone)" if monotone else " (not monotone)"),
            "source": profile,
        },
        {
            "claim": "Central blocks 5-7 use the most energy (Fig. 2)",
            "ours": f"blocks 5-7 = {energy['paper_grid_full']['central_blocks_share']:.0%} of deeprx_full's FLOPs "
            "at 14 x 312",
            "source": "counted",
        },
        {
            "claim": "About 2 mJ per inference on the Coral Edge TPU (metric 0)",
            "ours": f"{energy['paper_grid_full']['coral_metric0_joules'] * 1e3:.2f} mJ for deeprx_full at 14 x 312 "
            f"({energy['paper_grid_full']['flops_per_slot'] / 1e9:.2f} GFLOP/slot)",
            "source": "metric0",
        },
        {
            "claim": "Training energy is passed after ~1e5 inferences (~10 min at 400/s)",
            "ours": "the paper's own inputs (20 J/step x 250k steps, 2 mJ) give "
            f"{paper_cycle['break_even_inferences']:.2g} "
            f"inferences ({paper_cycle['break_even_seconds'] / 86400:.0f} days at 400/s); our teacher "
            f"({energy['teacher_training_slots']:,} training slots as this host's steps, {cycle['method']}): "
            + (
                f"{cycle['break_even_inferences']:.2g} inferences ({cycle['break_even_seconds']:.3g} s)"
                if cycle.get("resolved", True)
                else f"none ({cycle['why']})"
            ),
            "source": f"{profile}, {cycle['method']}",
        },
        {
            "claim": "Best alpha = 5e5 (Table III)",
            "ours": f"best alpha {best_alpha['alpha']:g} (geo-mean {best_alpha['geo']:.3f}, 95% CI "
            f"[{best_alpha['geo_ci'][0]:.3f}, {best_alpha['geo_ci'][1]:.3f}]; paper scaling)",
            "source": profile,
        },
        {
            "claim": "Best temperature T = 3 (Fig. 5)",
            "ours": f"best T = {best_t['temperature']:g} ({best_t['model']}, KD - scratch "
            f"{_fmt_ci(best_t['diff_vs_scratch'], best_t['diff_ci'])} geo-mean"
            + ("" if best_t["diff_vs_scratch"] < 0 else "; KD is worse than scratch at every T")
            + ")",
            "source": profile,
        },
        {
            "claim": "A mid-size teacher is best (Fig. 4)",
            "ours": f"best teacher {best_teacher['teacher']} of {', '.join(r['teacher'] for r in results['teacher'])}",
            "source": profile,
        },
        {
            "claim": "KD beats scratch by ~4 dB at BER 1e-3 (Fig. 6)",
            "ours": f"1 DMRS: gain {_fmt_ci(c1['gain_db'], c1['gain_db_ci'], '+.2f')} dB at BER {target:g}, geo-mean "
            f"{_fmt_ci(c1['geo_diff'], c1['geo_diff_ci'])}; 2 DMRS: gain "
            f"{_fmt_ci(c2['gain_db'], c2['gain_db_ci'], '+.2f')} dB, "
            f"geo-mean {_fmt_ci(c2['geo_diff'], c2['geo_diff_ci'])}",
            "source": profile,
        },
        {
            "claim": "(ours) headroom: teacher - scratch student, the most KD could gain",
            "ours": f"geo-mean {_fmt_ci(results['kd_headroom']['diff_vs_scratch'], results['kd_headroom']['diff_ci'])}"
            f" ({plan.teacher} vs {plan.student}, 1 DMRS)",
            "source": profile,
        },
        *_teacher_quality_claim(results),
        {
            "claim": "KD lowers the error floor (Fig. 6)",
            "ours": "BER at the highest SINR, KD vs scratch: "
            f"{c1['floor_kd']:.2e} vs {c1['floor_scratch']:.2e} (1 DMRS), "
            f"{c2['floor_kd']:.2e} vs {c2['floor_scratch']:.2e} (2 DMRS)",
            "source": profile,
        },
        {
            "claim": "Student at a fraction of the teacher's cost",
            "ours": f"student/teacher FLOPs = {energy['student_over_teacher_flops']:.2f}",
            "source": "counted",
        },
    ]


def _teacher_quality(
    name: str, dmrs: int, result: dict[str, Any], c: dict[str, Any], target: float, n_boot: int
) -> dict[str, Any]:
    """A student distilled from a classical receiver beside the same student from scratch and from DeepRx."""
    receiver = CLASSICAL_TEACHERS[name]
    teacher_curve = BerCurve.from_dict(c["baselines"][receiver])
    return {
        "teacher": receiver,
        "dmrs": dmrs,
        "key": result["key"],
        "teacher_geo": teacher_curve.geometric_mean_ber(),
        "teacher_floor": teacher_curve.ber[-1],
        "student_geo": result["geometric_mean_ber"],
        "comparison": compare(result, c["scratch"], target, n_boot),
        "network_teacher": {
            "teacher": c["teacher"]["model"],
            "teacher_geo": c["teacher"]["geometric_mean_ber"],
            "teacher_floor": c["teacher"]["ber_at_max_sinr"],
            "student_geo": c["kd"]["geometric_mean_ber"],
            "comparison": c["comparison"],
        },
    }


def _teacher_quality_claim(results: dict[str, Any]) -> list[dict[str, str]]:
    if not results.get("teacher_quality"):
        return []
    parts = []
    for q in results["teacher_quality"]:
        k, n = q["comparison"], q["network_teacher"]
        parts.append(
            f"{q['dmrs']} DMRS: from {q['teacher']} ({q['teacher_geo']:.3f}) "
            f"{_fmt_ci(k['geo_diff'], k['geo_diff_ci'])}, from {n['teacher']} ({n['teacher_geo']:.3f}) "
            f"{_fmt_ci(n['comparison']['geo_diff'], n['comparison']['geo_diff_ci'])}"
        )
    return [
        {
            "claim": "(ours) a far better teacher: the student distilled from classical receivers' LLRs, "
            "KD - scratch geo-mean (teacher's geo-mean)",
            "ours": "; ".join(parts),
            "source": results["profile"],
        }
    ]


def _models_lines(models: dict[str, Any]) -> list[str]:
    """The report's first lines: what this run trained, what it took shipped and how those were made."""
    trained = models["trained"]
    roles = sorted({t["role"] for t in trained})
    counts = ", ".join(f"{sum(t['role'] == role for t in trained)} {role}" for role in roles)
    lines = [f"**Trained in this run:** {len(trained)} models ({counts}); every one from scratch or by KD here."]
    for s in models["shipped"]:
        lines.append(
            f"**Shipped, not trained here:** `{s['name']}` ({s['model']}, {s['features']} input, "
            f"{s['dmrs_symbols']} DMRS): {s['steps']:,} steps = {s['slots_seen']:,} slots on {s['device']} in "
            f"{s['wall_seconds']:.0f} s, commit {s['commit'][:8]}, made by `{s['command']}`."
        )
    return lines


def render_report(r: dict[str, Any]) -> str:
    plan = r["plan"]
    lines = [
        f"# deeprx reproduce — profile `{r['profile']}`",
        "",
        *_models_lines(r["models"]),
        "",
        "Intervals are 95 % paired bootstraps over test slots. Geometric-mean BER is paper eq. (3), log10; "
        "lower is better. Energies say how they were obtained.",
        "",
        "## Paper claims beside our measurements",
        "",
        "| paper claim | ours | from |",
        "|---|---|---|",
        *(f"| {c['claim']} | {c['ours']} | {c['source']} |" for c in r["claims"]),
        "",
        "## BER vs SINR: teacher, KD student, scratch student (Fig. 6)",
        "",
    ]
    for dmrs in (1, 2):
        c = r["curves"][dmrs]
        lines += [
            f"### {dmrs} DMRS symbol(s)",
            "",
            f"![BER dmrs{dmrs}](fig6_ber_dmrs{dmrs}.png)",
            "",
            "| receiver | geo-mean BER | SINR at target | BER at max SINR |",
            "|---|---|---|---|",
        ]
        for x in c["receivers"]:
            sinr = "not reached" if x["sinr_at_target_db"] is None else f"{x['sinr_at_target_db']:.2f} dB"
            lines.append(f"| {x['receiver']} | {x['geometric_mean_ber']:.3f} | {sinr} | {x['ber_at_max_sinr']:.2e} |")
        k = c["comparison"]
        lines += [
            "",
            *(
                f"**Flag: {name} is no better than LS-LMMSE at any SINR point** (broken or under-trained)."
                for name in c.get("never_better_than_ls", [])
            ),
            f"KD - scratch geo-mean: {_fmt_ci(k['geo_diff'], k['geo_diff_ci'])} "
            f"(P[KD better] = {k['p_kd_better']:.2f}); SINR gain at target: "
            f"{_fmt_ci(k['gain_db'], k['gain_db_ci'], '+.2f')} dB "
            f"(both curves reach the target in {k['gain_reached_fraction']:.0%} of resamples).",
            "",
        ]
    lines += [
        "## Size from scratch (Fig. 3)",
        "",
        "![size](fig3_size.png)",
        "",
        "| model | role | GFLOP/slot | µJ/slot (metric0, host) | geo-mean BER [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for x in r["size"]:
        lines.append(
            f"| {x['model']} | {x['role']} | {x['flops'] / 1e9:.3f} | {x['joules'] * 1e6:.1f} | "
            f"{x['geo']:.3f} [{x['geo_ci'][0]:.3f}, {x['geo_ci'][1]:.3f}] |"
        )
    headroom = r["kd_headroom"]
    lines += [
        "",
        f"## Alpha (Table III; student {plan['student']}, teacher {plan['teacher']}, T = {plan['temperature']:g})",
        "",
        "`paper` scaling: KL summed over a slot's bits, labels' BCE a per-bit mean; `mean`: both per-bit means, "
        "KL times T². KD - scratch is against the same student from scratch. "
        f"Headroom (teacher - scratch student): {_fmt_ci(headroom['diff_vs_scratch'], headroom['diff_ci'])}.",
        "",
        "| alpha (scaling) | geo-mean BER [95% CI] | KD - scratch [95% CI] | P[better] |",
        "|---|---|---|---|",
    ]
    for x in r["alpha"] + ([r["alpha_mean_scaling"]] if "alpha_mean_scaling" in r else []):
        lines.append(
            f"| {x['alpha']:g} ({x['scaling']}) | {x['geo']:.3f} [{x['geo_ci'][0]:.3f}, {x['geo_ci'][1]:.3f}] | "
            f"{_fmt_ci(x['diff_vs_scratch'], x['diff_ci'])} | {x['p_better_than_scratch']:.2f} |"
        )
    lines += [
        "",
        f"## Temperature x student size (Fig. 5; alpha = {plan['alpha']:g})",
        "",
        "![T](fig5_temperature.png)",
        "",
        "| student | T | geo-mean BER | KD - scratch [95% CI] | P[better] |",
        "|---|---|---|---|---|",
    ]
    for student, rows in r["temperature"].items():
        for x in rows:
            lines.append(
                f"| {student} | {x['temperature']:g} | {x['geo']:.3f} | "
                f"{_fmt_ci(x['diff_vs_scratch'], x['diff_ci'])} | {x['p_better_than_scratch']:.2f} |"
            )
    lines += [
        "",
        f"## Teacher size (Fig. 4; student {plan['student']})",
        "",
        "![teacher](fig4_teacher.png)",
        "",
        "| teacher | teacher GFLOP/slot | teacher geo-mean | student geo-mean | KD - scratch [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for x in r["teacher"]:
        lines.append(
            f"| {x['teacher']} | {x['teacher_flops'] / 1e9:.3f} | {x['teacher_row']['geo']:.3f} | {x['geo']:.3f} | "
            f"{_fmt_ci(x['diff_vs_scratch'], x['diff_ci'])} |"
        )
    if r.get("teacher_quality"):
        lines += [
            "",
            "### Teacher quality probe: classical teachers",
            "",
            f"The same student ({plan['student']}, alpha = {plan['alpha']:g}, T = {plan['temperature']:g}) distilled "
            "from a classical receiver's max-log LLRs, beside the student distilled from the DeepRx teacher. "
            "Perfect-CSI LMMSE is a genie: it sees the true channel, which the student never does. LS-LMMSE sees "
            "what the student sees. If KD from DeepRx fails because that teacher is barely better than the "
            "student, a far better teacher should help.",
            "",
            "| DMRS | teacher | teacher geo-mean | teacher BER at max SINR | student geo-mean | KD - scratch [95% CI] "
            "| P[better] | SINR gain at target [95% CI] |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for q in r["teacher_quality"]:
            for t in (q, q["network_teacher"]):
                k = t["comparison"]
                lines.append(
                    f"| {q['dmrs']} | {t['teacher']} | {t['teacher_geo']:.3f} | {t['teacher_floor']:.2e} | "
                    f"{t['student_geo']:.3f} | {_fmt_ci(k['geo_diff'], k['geo_diff_ci'])} | {k['p_kd_better']:.2f} | "
                    f"{_fmt_ci(k['gain_db'], k['gain_db_ci'], '+.2f')} dB |"
                )
    e = r["energy"]
    m = e["measured"]
    kind = "measured" if m["inference"]["is_measurement"] else "modeled, not measured"
    lines += [
        "",
        "## Energy",
        "",
        "![quality vs energy](quality_vs_energy.png)",
        "",
        "| model | role | GFLOP/slot | metric0 µJ/slot (host) | metric0 µJ/slot (Coral Edge TPU) |",
        "|---|---|---|---|---|",
    ]
    for name, x in e["models"].items():
        j = x["metric0_joules_per_slot"]
        lines.append(
            f"| {name} | {x['role']} | {x['flops_per_slot'] / 1e9:.3f} | {j['host'] * 1e6:.1f} | "
            f"{j['coral-edge-tpu'] * 1e6:.2f} |"
        )
    lc = e["life_cycle_measured"]
    inf, step = m["inference"], m["training_step"]
    if lc.get("resolved", True):  # results written before unresolved measurements existed were all resolved
        metered = (
            f"{inf['joules_per_item'] * 1e3:.3g} mJ per inference, {step['joules_per_item']:.3g} J per training "
            f"step; training ({lc['training_steps']} steps) = {lc['training_joules']:.3g} J, passed by inference "
            f"after {lc['break_even_inferences']:.3g} slots ({lc['break_even_seconds']:.3g} s at 400 slots/s)."
        )
    else:
        unresolved = [f"{r['unit']}: {r['why_unresolved']}" for r in (inf, step) if not r["resolved"]]
        metered = "unresolved (" + "; ".join(unresolved) + "), so no life cycle."
    lines += ["", f"Teacher on this host ({inf['method']}, {kind}; {m['why']}): {metered}", ""]
    lines += [
        f"Store: {r['store']}; training time summed over every trial in the store: "
        f"{r['train_seconds_all_trials'] / 3600:.2f} h; this invocation took {r['seconds_this_run']:.0f} s.",
        "",
    ]
    return "\n".join(lines)
