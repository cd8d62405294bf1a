"""The paper's claims beside this run's measurements: the analysis behind the first table of ``report.md``.

Each claim reads the typed study results (:class:`~deeprx.studies.results.StudyResults`) and says where its
number comes from (the profile, ``counted``, ``metric0``, a meter).
"""

from __future__ import annotations

import itertools

from deeprx.studies.plan import StudyPlan
from deeprx.studies.results import Comparison, StudyResults


def fmt_ci(value: float | None, ci: tuple[float, float], spec: str = "+.3f") -> str:
    """``value [lo, hi]`` in ``spec``, or ``not reached`` where there is no value."""
    if value is None:
        return "not reached"
    return f"{value:{spec}} [{ci[0]:{spec}}, {ci[1]:{spec}}]"


def claims(results: StudyResults, plan: StudyPlan) -> list[dict[str, str]]:
    profile = results.profile
    energy = results.energy
    target = plan.base.eval.target_ber
    c1, c2 = results.curves[1]["comparison"], results.curves[2]["comparison"]
    best_alpha = min(results.alpha, key=lambda r: r.geo)
    temps = [r for rows in results.temperature.values() for r in rows]
    best_t = min(temps, key=lambda r: r.diff_vs_scratch)
    best_teacher = min(results.teacher, key=lambda r: r.geo)
    sizes = results.size[:-1]
    monotone = all(a.geo >= b.geo for a, b in itertools.pairwise(sizes))
    cycle = energy["life_cycle_measured"]
    paper_cycle = energy["life_cycle_paper_inputs"]
    return [
        {
            "claim": "Performance falls as the model shrinks (Fig. 3)",
            "ours": ", ".join(f"{r.model.removeprefix('deeprx_')} {r.geo:.3f}" for r in sizes)
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
            "ours": f"best alpha {best_alpha.alpha:g} (geo-mean {best_alpha.geo:.3f}, 95% CI "
            f"[{best_alpha.geo_ci[0]:.3f}, {best_alpha.geo_ci[1]:.3f}]; paper scaling)",
            "source": profile,
        },
        {
            "claim": "Best temperature T = 3 (Fig. 5)",
            "ours": f"best T = {best_t.temperature:g} ({best_t.model}, KD - scratch "
            f"{fmt_ci(best_t.diff_vs_scratch, best_t.diff_ci)} geo-mean"
            + ("" if best_t.diff_vs_scratch < 0 else "; KD is worse than scratch at every T")
            + ")",
            "source": profile,
        },
        {
            "claim": "A mid-size teacher is best (Fig. 4)",
            "ours": f"best teacher {best_teacher.teacher}; KD - scratch per teacher: "
            + "; ".join(f"{r.teacher} {fmt_ci(r.diff_vs_scratch, r.diff_ci)}" for r in results.teacher),
            "source": profile,
        },
        {
            "claim": "KD beats scratch by ~4 dB at BER 1e-3 (Fig. 6)",
            "ours": f"1 DMRS: gain {fmt_ci(c1.gain_db, c1.gain_db_ci, '+.2f')} dB at BER {target:g}, geo-mean "
            f"{fmt_ci(c1.geo_diff, c1.geo_diff_ci)}; 2 DMRS: gain "
            f"{fmt_ci(c2.gain_db, c2.gain_db_ci, '+.2f')} dB, "
            f"geo-mean {fmt_ci(c2.geo_diff, c2.geo_diff_ci)}",
            "source": profile,
        },
        {
            "claim": "(ours) headroom: teacher - scratch student, the most KD could gain",
            "ours": f"geo-mean {fmt_ci(results.kd_headroom.diff_vs_scratch, results.kd_headroom.diff_ci)}"
            f" ({plan.teacher} vs {plan.student}, 1 DMRS)",
            "source": profile,
        },
        *_teacher_quality_claim(results),
        *_learning_claim(results),
        *_quantized_claim(results),
        {
            "claim": "KD lowers the error floor (Fig. 6)",
            "ours": "BER at the highest SINR, KD vs scratch: "
            f"{c1.floor_kd:.2e} vs {c1.floor_scratch:.2e} (1 DMRS), "
            f"{c2.floor_kd:.2e} vs {c2.floor_scratch:.2e} (2 DMRS)",
            "source": profile,
        },
        {
            "claim": "Student at a fraction of the teacher's cost",
            "ours": f"student/teacher FLOPs = {energy['student_over_teacher_flops']:.2f}",
            "source": "counted",
        },
    ]


def _quantized_claim(results: StudyResults) -> list[dict[str, str]]:
    if not results.quantized:
        return []
    k = Comparison.from_dict(results.quantized["kd_vs_scratch_int8"])
    kd = next(x for x in results.quantized["students"] if x["source"] == "kd")
    cost = Comparison.from_dict(kd["int8_vs_fp32"])
    return [{
        "claim": "(ours) KD combined with int8 QAT (the paper's future work)",
        "ours": f"int8 KD - int8 scratch geo-mean {fmt_ci(k.geo_diff, k.geo_diff_ci)}; int8 KD student - its fp32 "
        f"self {fmt_ci(cost.geo_diff, cost.geo_diff_ci)}",
        "source": results.profile,
    }]  # fmt: skip


def _learning_claim(results: StudyResults) -> list[dict[str, str]]:
    """(ours) KD as speed: slots the KD student needs to reach the scratch student's final validation BER."""
    if not results.learning:
        return []
    parts = []
    for dmrs, x in results.learning.items():
        reached, total = x["kd_slots_to_scratch_final"], x["scratch_slots"]
        if total is None:
            continue
        when = "never within its budget" if reached is None else f"after {reached:,} slots ({reached / total:.0%})"
        parts.append(f"{dmrs} DMRS: scratch ends at {x['scratch_final_ber']:.2e} after {total:,} slots; KD {when}")
    if not parts:
        return []
    return [{
        "claim": "(ours) KD reaches the scratch student's final floor in at most half its steps",
        "ours": "; ".join(parts) + " (validation BER at the highest validation SINR)",
        "source": results.profile,
    }]  # fmt: skip


def _teacher_quality_claim(results: StudyResults) -> list[dict[str, str]]:
    if not results.teacher_quality:
        return []
    parts = []
    for q in results.teacher_quality:
        k, n = q["comparison"], q["network_teacher"]
        parts.append(
            f"{q['dmrs']} DMRS: from {q['teacher']} ({q['teacher_geo']:.3f}) "
            f"{fmt_ci(k.geo_diff, k.geo_diff_ci)}, from {n['teacher']} ({n['teacher_geo']:.3f}) "
            f"{fmt_ci(n['comparison'].geo_diff, n['comparison'].geo_diff_ci)}"
        )
    return [
        {
            "claim": "(ours) a far better teacher: the student distilled from classical receivers' LLRs, "
            "KD - scratch geo-mean (teacher's geo-mean)",
            "ours": "; ".join(parts),
            "source": results.profile,
        }
    ]
