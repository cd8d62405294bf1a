"""The report of ``deeprx reproduce``: figures, the table of the paper's claims beside ours, and ``report.md``."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

from deeprx.config import TrainConfig
from deeprx.energy.assess import PAPER_RATE_PER_S
from deeprx.evaluate.ber import BerCurve
from deeprx.evaluate.summary import CurveSummary, markdown_table, summary_table
from deeprx.report.plots import plot_ber
from deeprx.report.study_plots import (
    plot_frontier,
    plot_learning_curves,
    plot_quality_vs_energy,
    plot_size_study,
    plot_teacher_study,
    plot_temperature_study,
)
from deeprx.runs import checkpoint, registry
from deeprx.studies.plan import StudyPlan
from deeprx.studies.results import ENERGY_PROCESSOR, Comparison, StudyResults
from deeprx.studies.runner import SHIPPED_STUDENT, curve_of
from deeprx.train.curves import LearningCurve


def budget_label(role: str, result: dict[str, Any]) -> str:
    """A receiver of a study named by its role, preset and training budget: ``KD student (deeprx_eighth, 3.2k
    slots)``, or ``296k + 48k slots`` for one fine-tuned from a checkpoint. Students of one preset differ by what
    they were given to learn from."""

    def slots(n: int) -> str:
        return f"{n}" if n < 1000 else f"{n / 1000:,.3g}k"

    own, prior = result["slots_seen"], result.get("init_from_slots_seen", 0)
    budget = f"{slots(prior)} + {slots(own)} slots" if prior else f"{slots(own)} slots"
    return f"{role} ({result['model']}, {budget})"


def named_curves(c: dict[str, Any]) -> list[BerCurve]:
    """Fig. 6's curves for one DMRS setting: teacher, the shipped students, KD student, scratch student, then the
    baselines, each network labelled with its budget."""
    return [
        curve_of(c["teacher"], budget_label("teacher", c["teacher"])),
        *(curve_of(r, budget_label(SHIPPED_STUDENT, r)) for r in c.get("shipped", [])),
        curve_of(c["kd"], budget_label("KD student", c["kd"])),
        curve_of(c["scratch"], budget_label("scratch student", c["scratch"])),
        *(BerCurve.from_dict(v) for v in c["baselines"].values()),
    ]


def figures(results: StudyResults, curves: dict[int, Any], plan: StudyPlan, out: Path) -> list[str]:
    link = plan.base.link
    grid = f"{link.modulation.upper()}, {link.n_prb} PRB"
    figs = []
    kd_rows = [r for r in results.quality_vs_energy if r.role == "kd"]
    figs += plot_size_study(results.size[:-1], kd_rows, out / "fig3_size", f"Size study from scratch ({grid})")
    scratch = next(r for r in results.quality_vs_energy if r.key == curves[1]["scratch"]["key"])
    figs += plot_teacher_study(results.teacher, scratch, out / "fig4_teacher", f"Student {plan.student}")
    figs += plot_temperature_study(
        results.temperature, results.temperature_scratch, out / "fig5_temperature", "T x student size"
    )
    for dmrs, c in curves.items():
        title = f"{grid}, {dmrs} DMRS symbol(s), {plan.base.eval.speed_mps[0]:g}-{plan.base.eval.speed_mps[1]:g} m/s"
        figs += plot_ber(named_curves(c), out / f"fig6_ber_dmrs{dmrs}", title, plan.base.eval.target_ber)
    figs += plot_quality_vs_energy(results.quality_vs_energy, out / "quality_vs_energy", grid, ENERGY_PROCESSOR)
    return [str(p) for p in figs]


# The panels of the frontier figure: this host, a server CPU, a GPU and the paper's edge TPU.
FRONTIER_PROCESSORS = ("host", "xeon-gold-5320", "rtx-2080-ti", "coral-edge-tpu")


def trial_curve(result: dict[str, Any], train: TrainConfig) -> LearningCurve:
    """The learning curve of a study trial's result (its validation log), validated as ``train`` says (a shipped
    trial's own training config); its batch size is the trial's own (slots seen / steps)."""
    teacher = (result.get("kd") or {}).get("teacher", "")
    log = result["validation_log"]
    batch_size = result["slots_seen"] // max(1, result["trained_steps"])
    return LearningCurve.from_log(log, batch_size, result["key"], result["model"], teacher, train.validation_slots)


def learning_figures(curves: dict[int, dict[str, Any]], plan: StudyPlan, out: Path) -> list[str]:
    """Per DMRS setting: the KD and the scratch student's validation BER at high SINR vs slots seen, and the
    shipped students' (their own runs, on their own validation slots) for what a longer budget buys."""
    figs = []
    for dmrs, c in curves.items():
        if not c["scratch"]["validation_log"]:
            continue
        students = []
        for role in ("kd", "scratch"):  # the two students of a learning figure
            curve = trial_curve(c[role], plan.base.train)
            students.append(dataclasses.replace(curve, label=budget_label(f"{role} student", c[role])))
        for r in c.get("shipped", []):
            curve = trial_curve(r, checkpoint.saved_config(registry.resolve(r["shipped"]["name"])).train)
            students.append(dataclasses.replace(curve, label=budget_label(SHIPPED_STUDENT, r)))
        title = f"Learning curves, {dmrs} DMRS symbol(s) ({plan.base.eval.speed_mps[0]:g}-"
        title += f"{plan.base.eval.speed_mps[1]:g} m/s validation slots)"
        figs += plot_learning_curves(students, out / f"fig7_learning_dmrs{dmrs}", title)
    return [str(p) for p in figs]


def frontier_figure(
    frontier: dict[str, list[Any]], references: dict[str, float], plan: StudyPlan, out: Path
) -> list[str]:
    """The frontier figure of the 1-DMRS models, LS-LMMSE and perfect-CSI LMMSE (``references``: their geo-mean
    BER) as points and reference lines."""
    link = plan.base.link
    title = f"Quality vs energy per slot ({link.modulation.upper()}, {link.n_prb} PRB, 1 DMRS); ringed: Pareto set"
    return [str(p) for p in plot_frontier(frontier, references, out / "frontier", title)]


def _fmt_ci(value: float | None, ci: tuple[float, float], spec: str = "+.3f") -> str:
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
            f"{_fmt_ci(best_t.diff_vs_scratch, best_t.diff_ci)} geo-mean"
            + ("" if best_t.diff_vs_scratch < 0 else "; KD is worse than scratch at every T")
            + ")",
            "source": profile,
        },
        {
            "claim": "A mid-size teacher is best (Fig. 4)",
            "ours": f"best teacher {best_teacher.teacher}; KD - scratch per teacher: "
            + "; ".join(f"{r.teacher} {_fmt_ci(r.diff_vs_scratch, r.diff_ci)}" for r in results.teacher),
            "source": profile,
        },
        {
            "claim": "KD beats scratch by ~4 dB at BER 1e-3 (Fig. 6)",
            "ours": f"1 DMRS: gain {_fmt_ci(c1.gain_db, c1.gain_db_ci, '+.2f')} dB at BER {target:g}, geo-mean "
            f"{_fmt_ci(c1.geo_diff, c1.geo_diff_ci)}; 2 DMRS: gain "
            f"{_fmt_ci(c2.gain_db, c2.gain_db_ci, '+.2f')} dB, "
            f"geo-mean {_fmt_ci(c2.geo_diff, c2.geo_diff_ci)}",
            "source": profile,
        },
        {
            "claim": "(ours) headroom: teacher - scratch student, the most KD could gain",
            "ours": f"geo-mean {_fmt_ci(results.kd_headroom.diff_vs_scratch, results.kd_headroom.diff_ci)}"
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


def _quantized_section(q: dict[str, Any], plan: dict[str, Any]) -> list[str]:
    """KD + int8 QAT: each int8 student beside its fp32 self, and KD against scratch in int8."""
    k = Comparison.from_dict(q["kd_vs_scratch_int8"])
    lines = [
        "",
        f"## KD + int8 quantization-aware training (student {plan['student']}, 1 DMRS)",
        "",
        f"Each student fine-tuned {plan['qat_steps']} steps with fake quantization and its own loss (KD's keeps its "
        "teacher), exported as QDQ ONNX and scored by ONNX Runtime's int8 kernels on every test slot.",
        "",
        "| student | fp32 geo-mean | int8 geo-mean | int8 - fp32 [95% CI] | int8 BER at max SINR | "
        "hard decisions kept at max SINR |",
        "|---|---|---|---|---|---|",
    ]
    for x in q["students"]:
        c = Comparison.from_dict(x["int8_vs_fp32"])
        kept = x["qat"]["int8_vs_fp32"]["hard_decision_agreement"]
        lines.append(
            f"| {x['source']} | {x['geo_fp32']:.3f} | {x['geo_int8']:.3f} | {_fmt_ci(c.geo_diff, c.geo_diff_ci)} | "
            f"{x['floor_int8']:.2e} | {kept:.2%} |"
        )
    lines += [
        "",
        f"In int8, KD - scratch: geo-mean {_fmt_ci(k.geo_diff, k.geo_diff_ci)}, gain at the target BER "
        f"{_fmt_ci(k.gain_db, k.gain_db_ci, '+.2f')} dB (P[KD better] {k.p_kd_better:.2f}).",
    ]
    return lines


def _quantized_claim(results: StudyResults) -> list[dict[str, str]]:
    if not results.quantized:
        return []
    k = Comparison.from_dict(results.quantized["kd_vs_scratch_int8"])
    kd = next(x for x in results.quantized["students"] if x["source"] == "kd")
    cost = Comparison.from_dict(kd["int8_vs_fp32"])
    return [{
        "claim": "(ours) KD combined with int8 QAT (the paper's future work)",
        "ours": f"int8 KD - int8 scratch geo-mean {_fmt_ci(k.geo_diff, k.geo_diff_ci)}; int8 KD student - its fp32 "
        f"self {_fmt_ci(cost.geo_diff, cost.geo_diff_ci)}",
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
            f"{_fmt_ci(k.geo_diff, k.geo_diff_ci)}, from {n['teacher']} ({n['teacher_geo']:.3f}) "
            f"{_fmt_ci(n['comparison'].geo_diff, n['comparison'].geo_diff_ci)}"
        )
    return [
        {
            "claim": "(ours) a far better teacher: the student distilled from classical receivers' LLRs, "
            "KD - scratch geo-mean (teacher's geo-mean)",
            "ours": "; ".join(parts),
            "source": results.profile,
        }
    ]


def _frontier_lines(frontier: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Per processor: the Pareto set (quality vs energy per slot) and the best model that sustains 400 slots/s."""
    if not frontier:
        return []
    lines = [
        "## Frontier: quality vs energy per slot, per processor",
        "",
        "![frontier](frontier.png)",
        "",
        "Energies are metric-0 estimates; rates are the peak-FLOPs bound (estimated). "
        "`deeprx recommend --processor KEY --rate R --from OUT` measures the rate on this host.",
        "",
        f"| processor | Pareto set (model, geo-mean, µJ/slot) | best that sustains {PAPER_RATE_PER_S:g} slots/s |",
        "|---|---|---|",
    ]
    for key, rows in frontier.items():
        front = sorted((x for x in rows if x["pareto"]), key=lambda x: x["joules_per_slot"])
        able = [x for x in rows if x["sustains"]]
        best = min(able, key=lambda x: (x["geo"], x["joules_per_slot"])) if able else None
        shown = ", ".join(
            f"{x['model']} ({x['role']}) {x['geo']:.3f} @ {x['joules_per_slot'] * 1e6:.3g}" for x in front
        )
        pick = "none" if best is None else f"{best['model']} ({best['role']}, {best['geo']:.3f})"
        lines.append(f"| {key} | {shown} | {pick} |")
    return [*lines, ""]


def _models_lines(models: dict[str, Any]) -> list[str]:
    """The report's first lines: what this run trained, what it took shipped and how those were made."""
    if not models:
        return ["**Models:** not recorded in this result file (written before deeprx recorded them)."]
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


def render_report(r: StudyResults) -> str:
    plan = r.plan
    lines = [
        f"# deeprx reproduce — profile `{r.profile}`",
        "",
        *_models_lines(r.models),
        "",
        "Intervals are 95 % paired bootstraps over test slots. Geometric-mean BER is paper eq. (3), log10; "
        "lower is better. Energies say how they were obtained.",
        "",
        "## Paper claims beside our measurements",
        "",
        "| paper claim | ours | from |",
        "|---|---|---|",
        *(f"| {c['claim']} | {c['ours']} | {c['source']} |" for c in r.claims),
        "",
        "## BER vs SINR: teacher, shipped and trained students (Fig. 6)",
        "",
    ]
    for dmrs in (1, 2):
        c = r.curves[dmrs]
        lines += [
            f"### {dmrs} DMRS symbol(s)",
            "",
            f"![BER dmrs{dmrs}](fig6_ber_dmrs{dmrs}.png)",
            "",
            *markdown_table(
                *summary_table([CurveSummary.from_dict(x) for x in c["receivers"]], plan["base"]["eval"]["target_ber"])
            ),
        ]
        k = c["comparison"]
        lines += [
            "",
            *(
                f"**Flag: {name} is no better than LS-LMMSE at any SINR point** (broken or under-trained)."
                for name in c.get("never_better_than_ls", [])
            ),
            f"KD - scratch geo-mean: {_fmt_ci(k.geo_diff, k.geo_diff_ci)} "
            f"(P[KD better] = {k.p_kd_better:.2f}); SINR gain at target: "
            f"{_fmt_ci(k.gain_db, k.gain_db_ci, '+.2f')} dB "
            f"(both curves reach the target in {k.gain_reached_fraction:.0%} of resamples).",
            "",
        ]
    # results written before train.validation_slots existed validated on its default
    validation_slots = plan["base"]["train"].get("validation_slots", TrainConfig().validation_slots)
    lines += [
        "## Learning curves: KD and scratch students",
        "",
        "KD's promise is also speed: reaching a quality in fewer steps. Validation BER at the highest validation "
        f"SINR ({validation_slots} slots per checkpoint) vs training slots seen; shipped students on their own "
        "runs' validation slots.",
        "",
        *(f"![learning dmrs{d}](fig7_learning_dmrs{d}.png)" for d in r.learning),
        "",
        *(
            f"**Not a result: the {x['role']} {x['model']} ({dmrs} DMRS) has not crossed 0.1x LS-LMMSE for good "
            f"within its {x['slots']:,} slots** (validation BER {x['final_ber']:.2e} vs LS-LMMSE {x['ls_ber']:.2e}): "
            "it is still learning, and every comparison made with it says nothing about KD at convergence.\n"
            for dmrs, learning in r.learning.items()
            for x in learning.get("not_crossed", [])
        ),
        "## Size from scratch (Fig. 3)",
        "",
        "![size](fig3_size.png)",
        "",
        "| model | role | GFLOP/slot | µJ/slot (metric0, host) | geo-mean BER [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for x in r.size:
        lines.append(
            f"| {x.model} | {x.role} | {x.flops / 1e9:.3f} | {x.joules * 1e6:.1f} | "
            f"{x.geo:.3f} [{x.geo_ci[0]:.3f}, {x.geo_ci[1]:.3f}] |"
        )
    headroom = r.kd_headroom
    lines += [
        "",
        f"## Alpha (Table III; student {plan['student']}, teacher {plan['teacher']}, T = {plan['temperature']:g})",
        "",
        "`paper` scaling: KL summed over a slot's bits, labels' BCE a per-bit mean; `mean`: both per-bit means, "
        "KL times T². KD - scratch is against the same student from scratch. "
        f"Headroom (teacher - scratch student): {_fmt_ci(headroom.diff_vs_scratch, headroom.diff_ci)}.",
        "",
        "| alpha (scaling) | geo-mean BER [95% CI] | KD - scratch [95% CI] | P[better] |",
        "|---|---|---|---|",
    ]
    for x in r.alpha + ([r.alpha_mean_scaling] if r.alpha_mean_scaling else []):
        lines.append(
            f"| {x.alpha:g} ({x.scaling}) | {x.geo:.3f} [{x.geo_ci[0]:.3f}, {x.geo_ci[1]:.3f}] | "
            f"{_fmt_ci(x.diff_vs_scratch, x.diff_ci)} | {x.p_better_than_scratch:.2f} |"
        )
    if r.kd_variants:
        lines += [
            "",
            f"## KD variants beyond the paper (student {plan['student']}, alpha = {plan['alpha']:g}, "
            f"T = {plan['temperature']:g})",
            "",
            "| variant | geo-mean BER [95% CI] | KD - scratch [95% CI] | P[better] |",
            "|---|---|---|---|",
            *(
                f"| {x.variant} | {x.geo:.3f} [{x.geo_ci[0]:.3f}, {x.geo_ci[1]:.3f}] | "
                f"{_fmt_ci(x.diff_vs_scratch, x.diff_ci)} | {x.p_better_than_scratch:.2f} |"
                for x in r.kd_variants
            ),
        ]
    if r.quantized:
        lines += _quantized_section(r.quantized, plan)
    if r.hardware:
        lines += [
            "",
            "## Students built for the hardware (dense 3x3 blocks)",
            "",
            "Judged by quality and measured speed, not FLOPs alone: `deeprx recommend --processor host --from OUT` "
            "measures every model's slots/s here, `benchmarks/inference.py` compares the paths.",
            "",
            "| model | role | GFLOP/slot | geo-mean BER [95% CI] | KD - its scratch [95% CI] |",
            "|---|---|---|---|---|",
            *(
                f"| {x.model} | {x.role} | {x.flops / 1e9:.3f} | {x.geo:.3f} [{x.geo_ci[0]:.3f}, {x.geo_ci[1]:.3f}] | "
                + ("-" if x.diff_vs_scratch is None else _fmt_ci(x.diff_vs_scratch, x.diff_ci))
                + " |"
                for x in r.hardware
            ),
        ]
    lines += [
        "",
        f"## Temperature x student size (Fig. 5; alpha = {plan['alpha']:g})",
        "",
        "![T](fig5_temperature.png)",
        "",
        "| student | T | geo-mean BER | KD - scratch [95% CI] | P[better] |",
        "|---|---|---|---|---|",
    ]
    for student, rows in r.temperature.items():
        for x in rows:
            lines.append(
                f"| {student} | {x.temperature:g} | {x.geo:.3f} | "
                f"{_fmt_ci(x.diff_vs_scratch, x.diff_ci)} | {x.p_better_than_scratch:.2f} |"
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
    for x in r.teacher:
        lines.append(
            f"| {x.teacher} | {x.teacher_flops / 1e9:.3f} | {x.teacher_row.geo:.3f} | {x.geo:.3f} | "
            f"{_fmt_ci(x.diff_vs_scratch, x.diff_ci)} |"
        )
    if r.teacher_quality:
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
        for q in r.teacher_quality:
            for t in (q, q["network_teacher"]):
                k = t["comparison"]
                lines.append(
                    f"| {q['dmrs']} | {t['teacher']} | {t['teacher_geo']:.3f} | {t['teacher_floor']:.2e} | "
                    f"{t['student_geo']:.3f} | {_fmt_ci(k.geo_diff, k.geo_diff_ci)} | {k.p_kd_better:.2f} | "
                    f"{_fmt_ci(k.gain_db, k.gain_db_ci, '+.2f')} dB |"
                )
    e = r.energy
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
    lines += _frontier_lines(r.frontier)
    lines += [
        f"Store: {r.store}; training time summed over every trial in the store: "
        f"{r.train_seconds_all_trials / 3600:.2f} h; this invocation took {r.seconds_this_run:.0f} s.",
        "",
    ]
    return "\n".join(lines)
