"""Figures of the paper's studies (Figs. 3-7), quality vs energy per inference, the frontier and learning curves.
PNG and SVG; the drawing primitives are :mod:`deeprx.report.plots`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from deeprx.evaluate.ber import BerCurve
from deeprx.report.plots import plot_ber, plt, save_figure
from deeprx.runs import checkpoint, registry
from deeprx.studies.frontier import Assessed
from deeprx.studies.plan import StudyPlan
from deeprx.studies.results import ENERGY_PROCESSOR, Row, StudyResults
from deeprx.studies.runner import SHIPPED_STUDENT
from deeprx.studies.trial_result import TrialResult
from deeprx.train.curves import LearningCurve

# A marker per role of a study's models (the frontier adds the classical receivers'); stars: shipped networks.
ROLE_MARKERS = {"scratch": "o", "kd": "s", "teacher": "^", "shipped student": "*", "shipped": "*", "classical": "D",
                "genie": "P"}  # fmt: skip


def _errorbar(ax: Any, xs: list[float], rows: list[Row], **kw: Any) -> None:
    ys = [r.geo for r in rows]
    # a percentile interval of few slots can miss its own point estimate: the bar then ends at the point
    lo = [max(0.0, r.geo - r.geo_ci[0]) for r in rows]
    hi = [max(0.0, r.geo_ci[1] - r.geo) for r in rows]
    ax.errorbar(xs, ys, yerr=[lo, hi], capsize=3, **kw)


def _scratch_band(ax: Any, row: Row | None, label: str) -> None:
    if row is None:
        return
    ax.axhline(row.geo, color="gray", ls="--", label=label)
    ax.axhspan(*row.geo_ci, color="gray", alpha=0.15)


def _finish(fig: Any, ax: Any, stem: Path, xlabel: str, title: str, log_x: bool = True) -> list[Path]:
    """The axes every study figure shares: geometric-mean BER on y, optional log x, grid and legend."""
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("geometric-mean BER (log10, lower is better)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both" if log_x else "major")
    ax.legend(fontsize=8)
    return save_figure(fig, stem)


def plot_size_study(scratch: list[Row], kd: list[Row], stem: Path, title: str) -> list[Path]:
    """Fig. 3: geometric-mean BER vs FLOPs per slot (95 % bootstrap intervals)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    _errorbar(ax, [r.flops for r in scratch], scratch, fmt="o-", label="from scratch")
    if kd:
        _errorbar(ax, [r.flops for r in kd], kd, fmt="s", label="KD student")
    for r in scratch:
        ax.annotate(r.model.removeprefix("deeprx_"), (r.flops, r.geo), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    return _finish(fig, ax, stem, "FLOPs per slot", title)


def plot_teacher_study(rows: list[Row], scratch: Row | None, stem: Path, title: str) -> list[Path]:
    """Fig. 4: the student's geometric-mean BER vs its teacher's FLOPs."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    _errorbar(ax, [r.teacher_flops for r in rows], rows, fmt="o-", label="KD student")
    _errorbar(ax, [r.teacher_flops for r in rows], [r.teacher_row for r in rows], fmt="^:", label="teacher")
    _scratch_band(ax, scratch, "student from scratch")
    return _finish(fig, ax, stem, "teacher FLOPs per slot", title)


def plot_temperature_study(
    by_student: dict[str, list[Row]], scratch: dict[str, Row], stem: Path, title: str
) -> list[Path]:
    """Fig. 5: geometric-mean BER vs T, one line per student size, scratch levels dashed."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, (student, rows) in enumerate(by_student.items()):
        color = f"C{i}"
        _errorbar(ax, [r.temperature for r in rows], rows, fmt="o-", color=color, label=f"KD {student}")
        if student in scratch:
            ax.axhline(scratch[student].geo, color=color, ls="--", label=f"scratch {student}")
    return _finish(fig, ax, stem, "temperature T", title, log_x=False)


def plot_quality_vs_energy(rows: list[Row], stem: Path, title: str, processor: str) -> list[Path]:
    """Geometric-mean BER vs metric-0 energy per inference: the trade-off the paper is about."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for role, marker in ROLE_MARKERS.items():
        sel = [r for r in rows if r.role == role]
        if sel:
            _errorbar(ax, [r.joules * 1e6 for r in sel], sel, fmt=marker, label=role)
    return _finish(fig, ax, stem, f"energy per inference, metric0 on {processor} (µJ per slot)", title)


def plot_frontier(
    per_processor: dict[str, list[Assessed]], references: dict[str, float], stem: Path, title: str
) -> list[Path]:
    """Quality (geometric-mean BER) vs energy per slot, one panel per processor, the Pareto set joined and
    ringed, the classical receivers as points (their counted FLOPs) and as horizontal reference lines. Energies
    say how they were obtained."""
    n = len(per_processor)
    cols = 2 if n > 1 else 1
    rows_n = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(6.2 * cols, 4.4 * rows_n), squeeze=False, layout="constrained")
    labels = {"classical": "LS-LMMSE (counted FLOPs)", "genie": "perfect-CSI LMMSE (a bound)"}
    for ax, (name, rows) in zip(axes.flat, per_processor.items(), strict=False):
        for role, marker in ROLE_MARKERS.items():
            sel = [r for r in rows if r.candidate.role == role]
            if sel:
                ax.scatter([r.joules_per_slot * 1e6 for r in sel], [r.candidate.geo for r in sel], marker=marker,
                           s=90 if marker == "*" else None, label=labels.get(role, role), zorder=3)  # fmt: skip
        front = sorted((r for r in rows if r.pareto), key=lambda r: r.joules_per_slot)
        ax.plot([r.joules_per_slot * 1e6 for r in front], [r.candidate.geo for r in front], "k-", lw=1,
                label="Pareto set", zorder=2)  # fmt: skip
        ax.scatter([r.joules_per_slot * 1e6 for r in front], [r.candidate.geo for r in front], s=120,
                   facecolors="none", edgecolors="k", zorder=4)  # fmt: skip
        for i, (ref, geo) in enumerate(references.items()):
            ax.axhline(geo, color=f"C{i + 5}", ls="--", lw=1, label=ref)
        method = rows[0].energy_method if rows else ""
        ax.set_xscale("log")
        ax.set_xlabel(f"energy per slot, µJ ({method})")
        ax.set_ylabel("geometric-mean BER (log10)")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    return save_figure(fig, stem)


def plot_learning_curves(curves: list[LearningCurve], stem: Path, title: str) -> list[Path]:
    """Validation BER at the highest validation SINR vs training slots seen, one line per run, each beside
    LS-LMMSE on its own validation slots (dashed, in the run's colour; one gray line where all runs share it),
    with 0.1x and 0.01x that BER dotted when they do. A checkpoint (or an LS-LMMSE) with no errors in its
    validation bits has no point or line on the log scale."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    shared = len({c.ls_ber for c in curves}) == 1
    for i, c in enumerate(curves):
        ax.plot(c.slots, c.ber, "o-", ms=3, color=f"C{i}", label=c.label)
        if not shared and c.ls_ber > 0:  # an error-free LS-LMMSE has no place on the log scale
            ax.axhline(c.ls_ber, color=f"C{i}", ls="--", lw=0.8)
    ls = curves[0].ls_ber
    if shared and ls > 0:
        ax.axhline(ls, color="gray", ls="--", label="LS-LMMSE")
        for fraction in (0.1, 0.01):
            ax.axhline(fraction * ls, color="gray", ls=":", lw=0.8)
            ax.annotate(f"{fraction:g}x LS-LMMSE", (1.0, fraction * ls), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=7, color="gray")  # fmt: skip
    elif not shared:
        ax.plot([], [], color="gray", ls="--", label="LS-LMMSE (each run's colour)")
    ax.set_yscale("log")
    budgets = [c.slots[-1] for c in curves]
    if max(budgets) > 10 * min(budgets):  # a demo's students beside converged ones: each budget readable
        ax.set_xscale("log")
    ax.set_xlabel("training slots seen")
    ax.set_ylabel(f"validation BER at {curves[0].sinr_db:g} dB")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return save_figure(fig, stem)


def budget_label(role: str, result: TrialResult) -> str:
    """A receiver of a study named by its role, preset and training budget: ``KD student (deeprx_eighth, 3.2k
    slots)``, or ``296k + 48k slots`` for one fine-tuned from a checkpoint. Students of one preset differ by what
    they were given to learn from."""

    def slots(n: int) -> str:
        return f"{n}" if n < 1000 else f"{n / 1000:,.3g}k"

    own, prior = result.slots_seen, result.init_from_slots_seen
    budget = f"{slots(prior)} + {slots(own)} slots" if prior else f"{slots(own)} slots"
    return f"{role} ({result.model}, {budget})"


def fig6_receivers(c: dict[str, Any]) -> list[tuple[str, TrialResult]]:
    """Fig. 6's networks for one DMRS setting, each with its label (role, preset, budget): teacher, the shipped
    students, KD student, scratch student."""
    return [
        (budget_label("teacher", c["teacher"]), c["teacher"]),
        *((budget_label(SHIPPED_STUDENT, r), r) for r in c.get("shipped", [])),
        (budget_label("KD student", c["kd"]), c["kd"]),
        (budget_label("scratch student", c["scratch"]), c["scratch"]),
    ]


def named_curves(c: dict[str, Any]) -> list[BerCurve]:
    """Fig. 6's curves for one DMRS setting: its networks (:func:`fig6_receivers`), then the baselines."""
    return [
        *(r.named_curve(label) for label, r in fig6_receivers(c)),
        *(BerCurve.from_dict(v) for v in c["baselines"].values()),
    ]


def figures(results: StudyResults, curves: dict[int, Any], plan: StudyPlan, out: Path) -> list[str]:
    link = plan.base.link
    grid = f"{link.modulation.upper()}, {link.n_prb} PRB"
    figs = []
    kd_rows = [r for r in results.quality_vs_energy if r.role == "kd"]
    figs += plot_size_study(results.size[:-1], kd_rows, out / "fig3_size", f"Size study from scratch ({grid})")
    scratch = next(r for r in results.quality_vs_energy if r.key == curves[1]["scratch"].key)
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


def learning_figures(curves: dict[int, dict[str, Any]], plan: StudyPlan, out: Path) -> list[str]:
    """Per DMRS setting: the KD and the scratch student's validation BER at high SINR vs slots seen, and the
    shipped students' (their own runs, on their own validation slots) for what a longer budget buys."""
    figs = []
    for dmrs, c in curves.items():
        if not c["scratch"].validation_log:
            continue
        students = []
        for role in ("kd", "scratch"):  # the two students of a learning figure
            curve = c[role].learning_curve(plan.base.train.validation_slots)
            students.append(dataclasses.replace(curve, label=budget_label(f"{role} student", c[role])))
        for r in c.get("shipped", []):
            own_validation = checkpoint.saved_config(registry.resolve(r.shipped["name"])).train.validation_slots
            curve = r.learning_curve(own_validation)
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
