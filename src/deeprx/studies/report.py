"""``report.md`` of ``deeprx reproduce``: the table of the paper's claims beside ours (:mod:`~deeprx.studies.claims`),
then each study's tables and figures (:mod:`~deeprx.studies.figures`), in markdown."""

from __future__ import annotations

from typing import Any

from deeprx.config import TrainConfig
from deeprx.energy.assess import PAPER_RATE_PER_S
from deeprx.evaluate.ber import BerCurve
from deeprx.evaluate.summary import CurveSummary, llr_quality_table, markdown_table, summary_table
from deeprx.studies.claims import fmt_ci
from deeprx.studies.frontier import GENIE
from deeprx.studies.results import Comparison, StudyResults


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
            f"| {x['source']} | {x['geo_fp32']:.3f} | {x['geo_int8']:.3f} | {fmt_ci(c.geo_diff, c.geo_diff_ci)} | "
            f"{x['floor_int8']:.2e} | {kept:.2%} |"
        )
    lines += [
        "",
        f"In int8, KD - scratch: geo-mean {fmt_ci(k.geo_diff, k.geo_diff_ci)}, gain at the target BER "
        f"{fmt_ci(k.gain_db, k.gain_db_ci, '+.2f')} dB (P[KD better] {k.p_kd_better:.2f}).",
    ]
    return lines


def _coded_section(coded: dict[int, dict[str, Any]], plan: dict[str, Any]) -> list[str]:
    """Fig. 6 after the decoder: BLER, goodput and LLR quality of its receivers, KD against scratch at BLER 10 %,
    and the other studies' KD students against their scratch twins."""
    link = coded[1]["link"]
    grid = f"{link['sinr_start_db']:g}-{link['sinr_stop_db']:g} dB in {link['sinr_step_db']:g} dB steps"
    lines = [
        "## BLER and goodput on the coded link (Fig. 6 after the decoder)",
        "",
        f"MCS {link['mcs_index']} of table {link['mcs_table']} ({link['modulation'].upper()}): one LDPC transport "
        f"block of {link['tb_size']} information bits per slot, made by Sionna's TB encoder and decoded by its TB "
        f"decoder ({link['bp_iterations']} BP iterations for every receiver), on the test channels of Fig. 6 at "
        f"{grid}, {link['slots_per_point']} slots per point. BLER intervals are Clopper-Pearson 95 %, the KD gains' "
        "paired bootstraps over slots. BMD rate: the achievable rate of the LLRs (bits per channel use); calibration: "
        "observed over predicted errors (1: calibrated, > 1: over-confident, < 1: under-confident).",
        "",
    ]
    for dmrs, c in coded.items():
        curves = [BerCurve.from_dict(x) for x in c["curves"]]
        rows = [CurveSummary.from_dict(x) for x in c["receivers"]]
        k = Comparison.from_dict(c["kd_vs_scratch"])
        lines += [
            f"### {dmrs} DMRS symbol(s)",
            "",
            f"![BLER dmrs{dmrs}](fig6_bler_dmrs{dmrs}.png) "
            f"![LLR calibration dmrs{dmrs}](fig6_llr_calibration_dmrs{dmrs}.png)",
            "",
            *markdown_table(*summary_table(rows, plan["base"]["eval"]["target_ber"])),
            "",
            *markdown_table(*llr_quality_table(curves)),
            "",
            f"KD - scratch: SINR gain at BLER {k.target_bler:g} {_gain(k.gain_at_bler_db, k.gain_at_bler_db_ci)}; "
            f"geo-mean BER {fmt_ci(k.geo_diff, k.geo_diff_ci)} (the same slots, uncoded).",
            "",
        ]
        for t in c["kd_comparisons"]:
            kt = Comparison.from_dict(t["kd_vs_scratch"])
            lines.append(f"- ({t['study']}) {t['student']} - scratch: SINR gain at BLER {kt.target_bler:g} "
                         f"{_gain(kt.gain_at_bler_db, kt.gain_at_bler_db_ci)}, geo-mean BER "
                         f"{fmt_ci(kt.geo_diff, kt.geo_diff_ci)}")  # fmt: skip
        lines += [""] if c["kd_comparisons"] else []
    return lines


def _gain(value: float | None, ci: tuple[float, float] | None) -> str:
    """A gain in dB with its interval (> 0: the first better), or why there is none."""
    return "not reached by both" if value is None or ci is None else f"{fmt_ci(value, ci, '+.2f')} dB (> 0: KD better)"


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
        able = [x for x in rows if x["sustains"] and x["role"] != GENIE]  # a bound is not a choice (recommend)
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
            f"KD - scratch geo-mean: {fmt_ci(k.geo_diff, k.geo_diff_ci)} "
            f"(P[KD better] = {k.p_kd_better:.2f}); SINR gain at target: "
            f"{fmt_ci(k.gain_db, k.gain_db_ci, '+.2f')} dB "
            f"(both curves reach the target in {k.gain_reached_fraction:.0%} of resamples).",
            "",
        ]
    if r.coded:
        lines += _coded_section(r.coded, plan)
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
        f"Headroom (teacher - scratch student): {fmt_ci(headroom.diff_vs_scratch, headroom.diff_ci)}.",
        "",
        "| alpha (scaling) | geo-mean BER [95% CI] | KD - scratch [95% CI] | P[better] |",
        "|---|---|---|---|",
    ]
    for x in r.alpha + ([r.alpha_mean_scaling] if r.alpha_mean_scaling else []):
        lines.append(
            f"| {x.alpha:g} ({x.scaling}) | {x.geo:.3f} [{x.geo_ci[0]:.3f}, {x.geo_ci[1]:.3f}] | "
            f"{fmt_ci(x.diff_vs_scratch, x.diff_ci)} | {x.p_better_than_scratch:.2f} |"
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
                f"{fmt_ci(x.diff_vs_scratch, x.diff_ci)} | {x.p_better_than_scratch:.2f} |"
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
                + ("-" if x.diff_vs_scratch is None else fmt_ci(x.diff_vs_scratch, x.diff_ci))
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
                f"{fmt_ci(x.diff_vs_scratch, x.diff_ci)} | {x.p_better_than_scratch:.2f} |"
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
            f"{fmt_ci(x.diff_vs_scratch, x.diff_ci)} |"
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
                    f"{t['student_geo']:.3f} | {fmt_ci(k.geo_diff, k.geo_diff_ci)} | {k.p_kd_better:.2f} | "
                    f"{fmt_ci(k.gain_db, k.gain_db_ci, '+.2f')} dB |"
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
