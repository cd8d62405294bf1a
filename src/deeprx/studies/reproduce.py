"""``deeprx reproduce``: the paper's whole chain for one profile, resumable, ending in a report.

Test sets -> baselines -> teacher -> students from scratch (size study) -> KD students (alpha, T x size,
teacher size) -> BER curves with 1 and 2 DMRS symbols -> energy of teacher and students -> life cycle
-> figures and ``report.md`` whose first table puts each paper claim beside our measured value.

Every comparison that decides something carries a 95 % paired-bootstrap interval over test slots. The
trials are built by :mod:`~deeprx.studies.chain`, the results are typed in :mod:`~deeprx.studies.results`,
the energy section is :mod:`~deeprx.studies.energy_section` and the report :mod:`~deeprx.studies.report`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deeprx.config import TrainConfig
from deeprx.energy.assess import PAPER_RATE_PER_S
from deeprx.evaluate.ber import BerCurve, bootstrap, interval, never_better
from deeprx.evaluate.summary import CurveSummary
from deeprx.io import atomic_write, write_json
from deeprx.link.baselines import BASELINES, LS_LMMSE
from deeprx.runs.layout import OutputLayout
from deeprx.runtime import RunContext
from deeprx.studies.chain import Chain
from deeprx.studies.claims import claims
from deeprx.studies.coded import coded_figures, coded_section
from deeprx.studies.energy_section import energy_section
from deeprx.studies.figures import FRONTIER_PROCESSORS, figures, frontier_figure, learning_figures, named_curves
from deeprx.studies.frontier import Candidate, assess, classical_candidates
from deeprx.studies.plan import StudyPlan, plan_for
from deeprx.studies.report import render_report
from deeprx.studies.results import Row, StudyResults, compare
from deeprx.studies.trial_result import TrialResult
from deeprx.studies.walk import run_studies
from deeprx.train.distill import CLASSICAL_TEACHERS
from deeprx.train.trainer import train


def reproduce(
    profile: str,
    out: Path,
    show_progress: bool = True,
    trainer: Callable[..., Any] = train,
    plan: StudyPlan | None = None,
    executor: str = "local",
    address: str | None = None,
    cpus_per_task: float = 1.0,
    gpus_per_task: float = 0.0,
) -> dict[str, Any]:
    """Run (or resume) the whole chain for ``profile`` and write ``report.md``, ``reproduce.json`` and figures.

    ``plan`` replaces the profile's plan (tests use a tiny one); ``trainer`` replaces the training loop.
    ``executor``: ``local`` runs the trials one after another in this process; ``ray`` runs them as Ray tasks
    (on the cluster at ``address``, else a local Ray), each asking for ``cpus_per_task`` CPUs and
    ``gpus_per_task`` GPUs, and this process only writes the store and the report
    (:mod:`deeprx.studies.distributed`). Trials that failed there are listed in the report, not re-run here.
    """
    t0 = time.perf_counter()
    plan = plan or plan_for(profile)
    if executor == "ray":
        from deeprx.studies.distributed import run_on_ray

        run_on_ray(plan, out, address, show_progress, cpus_per_task, gpus_per_task)
    ctx = RunContext.resolve(plan.base.device)  # this process's device (Ray tasks resolve their own)
    chain = Chain(plan, out, show_progress, trainer, ctx, run_missing=executor == "local")
    collected = run_studies(chain, plan)
    if chain.failed:
        return _failure_report(profile, chain, chain.failed, out)
    target = plan.base.eval.target_ber
    n_boot = plan.n_boot
    results = StudyResults(profile=profile, plan=_plan_dict(plan))
    curves = {
        dmrs: {
            **c,
            "baselines": c["baselines"]["curves"],
            "comparison": compare(c["kd"].curve, c["scratch"].curve, target, n_boot),
        }
        for dmrs, c in collected.curves.items()
    }
    size_results, teacher_result = collected.size, collected.teacher
    alpha_results, mean_alpha, mean_result = collected.alpha, plan.mean_scaling_alpha, collected.mean_scaling
    temp_results, student_scratch = collected.temperature, collected.temperature_scratch
    teacher_rows, classical = collected.teachers, collected.classical
    variant_results, hardware_results, quantized = collected.variants, collected.hardware, collected.quantized

    # Uncertainty for every dmrs-1 result: all on one test set, so one joint bootstrap.
    scratch_student = curves[1]["scratch"]
    pool = {
        r.key: r
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
            *curves[1]["shipped"],
            *(r for _, r in variant_results),
            *(r for pair in hardware_results for r in pair),
        ]
    }
    results.models = _models_summary(
        [
            *pool.values(),
            *(curves[2][k] for k in ("teacher", "scratch", "kd")),
            *curves[2]["shipped"],
            *(r for _, _, r in classical),
        ]
    )
    keys = list(pool)
    boot = bootstrap([pool[k].named_curve(k) for k in keys], target, n_boot)
    rows = {k: Row.of(pool[k], boot[k]) for k in keys}
    scratch_boot = boot[scratch_student.key][:, 0]

    def vs_scratch(key: str, scratch_key: str | None = None, **varied: Any) -> Row:
        ref = boot[scratch_key][:, 0] if scratch_key else scratch_boot
        diff = boot[key][:, 0] - ref
        return dataclasses.replace(
            rows[key],
            diff_vs_scratch=float(np.mean(diff)),
            diff_ci=interval(diff),
            p_better_than_scratch=float(np.mean(diff < 0)),
            **varied,
        )

    results.size = [rows[r.key] for r in size_results] + [rows[teacher_result.key]]
    # How much KD could gain at most: a student that matched its teacher exactly would be this much better.
    results.kd_headroom = vs_scratch(teacher_result.key)
    results.alpha = [
        vs_scratch(r.key, alpha=a, scaling=plan.scaling) for r, a in zip(alpha_results, plan.alphas, strict=True)
    ]
    if mean_result:
        results.alpha_mean_scaling = vs_scratch(mean_result.key, alpha=mean_alpha, scaling="mean")
    results.temperature_scratch = {s: rows[r.key] for s, r in student_scratch.items()}
    results.temperature = {
        s: [
            vs_scratch(r.key, student_scratch[s].key, temperature=t) for r, t in zip(rs, plan.temperatures, strict=True)
        ]
        for s, rs in temp_results.items()
    }
    results.teacher = [
        vs_scratch(k.key, teacher=teacher_label(t), teacher_flops=t.flops_per_slot, teacher_row=rows[t.key])
        for t, k in teacher_rows
    ]
    results.kd_variants = [vs_scratch(r.key, variant=name) for name, r in variant_results]
    results.hardware = [
        row
        for scratch_hw, kd_hw in hardware_results
        for row in (rows[scratch_hw.key], vs_scratch(kd_hw.key, scratch_hw.key))
    ]
    results.teacher_quality = [
        _teacher_quality(name, dmrs, result, curves[dmrs], target, n_boot) for name, dmrs, result in classical
    ]
    if quantized:
        results.quantized = _quantized_summary(quantized, curves[1], target, n_boot)
    results.curves = {d: _curves_summary(c, target) for d, c in curves.items()}
    if plan.coded:
        kd_pairs = [
            *(("temperature", f"{s} by KD at T = {t:g}", r, student_scratch[s])
              for s, rs in temp_results.items() for r, t in zip(rs, plan.temperatures, strict=True)),
            *(("alpha", f"{plan.student} by KD at alpha = {a:g}", r, scratch_student)
              for r, a in zip(alpha_results, plan.alphas, strict=True)),
            *(("kd-variants", f"{plan.student} by {name}", r, scratch_student) for name, r in variant_results),
        ]  # fmt: skip
        results.coded = coded_section(chain, curves, kd_pairs, n_boot)
    results.energy = energy_section(plan, chain, teacher_result, scratch_student)
    results.quality_vs_energy = list(rows.values())
    references = {name: BerCurve.from_dict(c).geometric_mean_ber() for name, c in curves[1]["baselines"].items()}
    one_dmrs = plan.base.with_overrides({"link.dmrs_symbols": 1}).link
    candidates = [Candidate.of(r) for r in pool.values()]
    candidates += classical_candidates(references, one_dmrs)
    frontier = {key: assess(candidates, chain.processors[key], PAPER_RATE_PER_S) for key in FRONTIER_PROCESSORS}
    results.frontier = {key: [a.to_dict() for a in rows_] for key, rows_ in frontier.items()}
    results.learning = {d: _learning(c, plan.base.train) for d, c in curves.items()}
    results.figures = [
        *figures(results, curves, plan, out),
        *frontier_figure(frontier, references, plan, out),
        *learning_figures(curves, plan, out),
        *(coded_figures(results.coded, plan, out) if plan.coded else []),
    ]
    results.claims = claims(results, plan)
    results.seconds_this_run = time.perf_counter() - t0
    results.train_seconds_all_trials = chain.store.train_seconds()
    results.store = chain.store.status_counts()
    chain.store.close()
    data = results.to_dict()
    write_json(OutputLayout(out).study_results, data)
    text = render_report(results)
    atomic_write(OutputLayout(out).report, lambda p: p.write_text(text))
    return data


def _failure_report(profile: str, chain: Chain, failed: dict[str, str], out: Path) -> dict[str, Any]:
    """``report.md`` and ``failed.json`` that name the trials that failed (and their studies and errors)
    instead of results: the studies need every one of their trials. Re-running the command retries them."""
    studies = chain.store.studies_of(list(failed))
    chain.store.close()
    rows = [{"key": key, "studies": studies.get(key, []), "error": error} for key, error in failed.items()]
    data = {"profile": profile, "failed": rows}
    write_json(out / "failed.json", data)
    lines = [
        f"# deeprx reproduce --profile {profile}: {len(rows)} trial(s) failed",
        "",
        "The studies need every one of their trials, so no figures or claims were made. Finished trials are "
        "kept in `studies.sqlite`; re-run the same command to try the failed ones again.",
        "",
        "| trial | studies | error |",
        "|---|---|---|",
        *(f"| `{r['key']}` | {', '.join(r['studies'])} | {r['error'].splitlines()[-1][:300]} |" for r in rows),
    ]
    atomic_write(OutputLayout(out).report, lambda p: p.write_text("\n".join(lines) + "\n"))
    return data


def teacher_label(result: TrialResult) -> str:
    """A teacher by its preset and training budget (teachers of one size may differ only in budget)."""
    slots = result.slots_seen
    return result.model if slots is None else f"{result.model} ({slots / 1000:,.0f}k slots)"


def _models_summary(trial_results: list[TrialResult]) -> dict[str, Any]:
    """Which models this chain trained (role, preset, steps, seconds) and which it took shipped, with records."""
    trained: dict[str, dict[str, Any]] = {}
    shipped: dict[str, dict[str, Any]] = {}
    for r in trial_results:
        if r.shipped:
            shipped[r.shipped["name"]] = r.shipped
        else:
            trained[r.key] = {k: getattr(r, k) for k in ("key", "role", "model", "dmrs_symbols", "trained_steps",
                                                         "train_seconds")}  # fmt: skip
    return {"trained": list(trained.values()), "shipped": list(shipped.values())}


def _plan_dict(plan: StudyPlan) -> dict[str, Any]:
    d = {k: v for k, v in plan.__dict__.items() if k != "base"}
    return {**d, "base": plan.base.to_dict()}


def _curves_summary(c: dict[str, Any], target: float) -> dict[str, Any]:
    named = named_curves(c)
    ls = next(x for x in named if x.receiver == LS_LMMSE)
    neural = [x for x in named if x.receiver not in BASELINES]
    return {
        "never_better_than_ls": [x.receiver for x in neural if never_better(x, ls)],
        "receivers": [CurveSummary.of(x, target).to_dict() for x in named],
        "comparison": c["comparison"],
        "curves": [x.to_dict() | {"slot_errors": []} for x in named],
    }


def _teacher_quality(
    name: str, dmrs: int, result: TrialResult, c: dict[str, Any], target: float, n_boot: int
) -> dict[str, Any]:
    """A student distilled from a classical receiver beside the same student from scratch and from DeepRx."""
    receiver = CLASSICAL_TEACHERS[name]
    teacher_curve = BerCurve.from_dict(c["baselines"][receiver])
    return {
        "teacher": receiver,
        "dmrs": dmrs,
        "key": result.key,
        "teacher_geo": teacher_curve.geometric_mean_ber(),
        "teacher_floor": teacher_curve.ber[-1],
        "student_geo": result.geometric_mean_ber,
        "comparison": compare(result.curve, c["scratch"].curve, target, n_boot),
        "network_teacher": {
            "teacher": c["teacher"].model,
            "teacher_geo": c["teacher"].geometric_mean_ber,
            "teacher_floor": c["teacher"].ber_at_max_sinr,
            "student_geo": c["kd"].geometric_mean_ber,
            "comparison": c["comparison"],
        },
    }


def _quantized_summary(quantized: list[TrialResult], c: dict[str, Any], target: float, n_boot: int) -> dict[str, Any]:
    """The int8 students (scratch, then KD) beside their fp32 selves, and KD against scratch in int8."""
    scratch_int8, kd_int8 = quantized
    return {
        "students": [
            {
                "source": role,
                "model": q.model,
                "key": q.key,
                "qat": q.qat,
                "geo_fp32": c[role].geometric_mean_ber,
                "geo_int8": q.geometric_mean_ber,
                "floor_int8": q.ber_at_max_sinr,
                "int8_vs_fp32": compare(q.curve, c[role].curve, target, n_boot).to_dict(),
            }
            for role, q in (("scratch", scratch_int8), ("kd", kd_int8))
        ],
        "kd_vs_scratch_int8": compare(kd_int8.curve, scratch_int8.curve, target, n_boot).to_dict(),
    }


def _learning(c: dict[str, Any], train: TrainConfig) -> dict[str, Any]:
    """KD's promise as speed: the students' validation BER at high SINR vs slots seen, and after how many slots
    the KD student first reaches the scratch student's final value (``None``: never within its budget); which of
    the two has not crossed 0.1x LS-LMMSE for good (still learning: its comparisons are not results)."""
    kd, scratch = (c[role].learning_curve(train.validation_slots) for role in ("kd", "scratch"))
    return {
        "not_crossed": [
            {
                "role": role,
                "model": curve.model,
                "slots": curve.slots[-1],
                "final_ber": curve.final_ber,
                "ls_ber": curve.ls_ber,
            }
            for role, curve in (("KD student", kd), ("scratch student", scratch))
            if curve.crossed is False
        ],
        "kd": {"slots": kd.slots, "ber": kd.ber},
        "scratch": {"slots": scratch.slots, "ber": scratch.ber},
        "scratch_final_ber": scratch.final_ber,
        "scratch_slots": scratch.slots[-1],
        "kd_slots_to_scratch_final": kd.slots_to_reach(scratch.final_ber),
    }
