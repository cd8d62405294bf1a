"""Matplotlib figures, written as PNG and SVG side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from deeprx.config import RunConfig
from deeprx.evaluate.ber import BerCurve, clopper_pearson
from deeprx.io import atomic_write


def save_figure(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` atomically; returns both paths."""
    paths = []
    for ext in ("png", "svg"):
        path = stem.with_suffix(f".{ext}")
        atomic_write(path, lambda p, ext=ext: fig.savefig(p, format=ext, dpi=150, bbox_inches="tight"))
        paths.append(path)
    plt.close(fig)
    return paths


def plot_ber(curves: list[BerCurve], stem: Path, title: str, target_ber: float | None = None) -> list[Path]:
    """BER vs SINR on a log axis with each point's 95 % interval shaded (bootstrap over slots where the curve kept
    per-slot errors, else Clopper-Pearson on bits); points with zero errors are drawn hollow at the zero-error
    floor, their band reaching Clopper-Pearson's upper end."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for curve in curves:
        floor = [(e if e > 0 else 0.5) / n for e, n in zip(curve.bit_errors, curve.bits, strict=True)]
        (line,) = ax.semilogy(curve.sinr_db, floor, marker="o", ms=4, label=curve.receiver)
        iv = curve.intervals()
        bands = [s or b for s, b in zip(iv["ci_slots"], iv["ci_bits"], strict=True)]
        # a log axis has no 0: a lower end of 0 is drawn a decade under the point (the floor at zero errors)
        lows = [max(lo, f if e == 0 else f / 10) for (lo, _), f, e in zip(bands, floor, curve.bit_errors, strict=True)]
        ax.fill_between(curve.sinr_db, lows, [hi for _, hi in bands], color=line.get_color(), alpha=0.15, lw=0)
        zero = [i for i, e in enumerate(curve.bit_errors) if e == 0]
        if zero:
            line.set_markevery([i for i in range(len(floor)) if i not in zero])
            ax.semilogy(
                [curve.sinr_db[i] for i in zero],
                [floor[i] for i in zero],
                "o",
                ms=5,
                mfc="none",
                color=line.get_color(),
            )
    if target_ber is not None:
        ax.axhline(target_ber, color="grey", lw=0.8, ls="--", label=f"target BER {target_ber:g}")
    _finish_axes(ax, "SINR [dB]    (shaded: 95 % interval, bootstrap over slots)", "uncoded BER", title, 10, 8)
    return save_figure(fig, stem)


def _finish_axes(ax: plt.Axes, xlabel: str, ylabel: str, title: str, title_size: int, legend_size: int) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=title_size)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size)


def channel_label(models: tuple[str, ...]) -> str:
    """Channel models, each family once: ``("CDL-A", "CDL-C", "UMi")`` -> ``CDL-A/C, UMi``."""
    families: dict[str, list[str]] = {}
    for m in models:
        family, _, variant = m.partition("-")
        families.setdefault(family, []).append(variant)
    return ", ".join(f"{f}-{'/'.join(v)}" if all(v) else f for f, v in families.items())


def link_title(cfg: RunConfig) -> str:
    """The evaluated link and test channels, for a figure's title."""
    link, ev = cfg.link, cfg.eval
    return (
        f"{link.modulation.upper()}, {link.n_prb} PRB, {link.n_rx} RX, {link.dmrs_symbols} DMRS symbol(s); "
        f"{channel_label(ev.channel_models)}, {ev.speed_mps[0]:g}-{ev.speed_mps[1]:g} m/s"
    )


def plot_bler(
    curves: list[BerCurve],
    stem: Path,
    title: str,
    slot_duration_s: float,
    scaled: dict[str, BerCurve] | None = None,
) -> list[Path]:
    """Coded curves: TB BLER vs SINR (log axis, each point's Clopper-Pearson 95 % interval shaded; points without
    block errors hollow at half a block, unshaded) beside the goodput in Mbit/s at ``slot_duration_s``.
    ``scaled``: a receiver's curve with temperature-scaled LLRs, by receiver, drawn dashed in its colour."""
    fig, (ax, ax_rate) = plt.subplots(1, 2, figsize=(11, 4.4))
    for curve in curves:
        line = _bler_line(ax, curve, curve.receiver, "-")
        mbps = [g / slot_duration_s / 1e6 for g in curve.goodput_bits_per_slot()]
        ax_rate.plot(curve.sinr_db, mbps, marker="o", ms=3, color=line.get_color())
        if scaled and curve.receiver in scaled:
            label = "  the same, LLRs x " + scaled[curve.receiver].receiver.rpartition(" x ")[2]
            _bler_line(ax, scaled[curve.receiver], label, "--", line.get_color())
    ax.set_xlabel("SINR [dB]    (shaded: 95 % Clopper-Pearson interval)")
    ax.set_ylabel(f"TB BLER ({curves[0].tb_size} information bits per block)")
    ax.grid(True, which="both", alpha=0.3)
    ax_rate.set_xlabel("SINR [dB]")
    ax_rate.set_ylabel("goodput [Mbit/s] (decoded information bits)")
    ax_rate.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.legend(*ax.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8)
    return save_figure(fig, stem)


def _bler_line(ax: plt.Axes, curve: BerCurve, label: str, style: str, color: str | None = None) -> plt.Line2D:
    floor = [(e if e > 0 else 0.5) / n for e, n in zip(curve.block_errors, curve.blocks, strict=True)]
    (line,) = ax.semilogy(curve.sinr_db, floor, style, marker="o", ms=3, color=color, label=label)
    color = line.get_color()
    bands = curve.bler_intervals()
    errors = [e > 0 for e in curve.block_errors]
    ax.fill_between(curve.sinr_db, [lo if e else f for (lo, _), f, e in zip(bands, floor, errors, strict=True)],
                    [hi for _, hi in bands], where=errors, color=color, alpha=0.12, lw=0)  # fmt: skip
    zero = [i for i, e in enumerate(errors) if not e]
    if zero:
        line.set_markevery([i for i in range(len(floor)) if errors[i]])
        ax.semilogy([curve.sinr_db[i] for i in zero], [floor[i] for i in zero], "o", ms=4, mfc="none", color=color)
    return line


MIN_BITS_DRAWN = 1000  # a bin of |LLR| is drawn from this many bits on


def plot_calibration(curves: list[BerCurve], stem: Path, title: str) -> list[Path]:
    """Coded curves' LLR calibration over all their points: per bin of |LLR|, the observed error probability
    (with its Clopper-Pearson 95 % interval) vs the one the LLRs predict, ``mean 1 / (1 + e^|L|)``; calibrated
    LLRs lie on the diagonal, over-confident ones above it. A bin without errors is drawn as its upper bound (v).
    Bins of fewer than :data:`MIN_BITS_DRAWN` bits are left out (a handful of bits says nothing); the tables keep
    them."""
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    lowest = 1.0
    for curve in curves:
        bits, errors, predicted = (list(row) for row in curve.calibration)
        kept = [i for i, n in enumerate(bits) if n >= MIN_BITS_DRAWN]
        x = [predicted[i] / bits[i] for i in kept]
        observed = [errors[i] / bits[i] for i in kept]
        ci = [clopper_pearson(int(errors[i]), int(bits[i])) for i in kept]
        hit = [j for j, i in enumerate(kept) if errors[i] > 0]
        xs, ys = [x[j] for j in hit], [observed[j] for j in hit]
        (line,) = ax.loglog(xs, ys, marker="o", ms=4, label=curve.receiver)
        spread = [[observed[j] - ci[j][0] for j in hit], [ci[j][1] - observed[j] for j in hit]]
        ax.errorbar(xs, ys, yerr=spread, fmt="none", ecolor=line.get_color(), elinewidth=0.8)
        none = [j for j, i in enumerate(kept) if errors[i] == 0]
        ax.loglog([x[j] for j in none], [ci[j][1] for j in none], "v", ms=5, mfc="none", color=line.get_color())
        lowest = min([lowest, *x, *(ci[j][1] for j in none)])
    ax.loglog([lowest, 0.5], [lowest, 0.5], color="grey", lw=0.8, ls="--", label="calibrated")
    xlabel = "predicted error probability, mean 1/(1+e^|L|) per |LLR| bin"
    _finish_axes(ax, xlabel, "observed error probability (95 % CI)", title, 9, 7)
    return save_figure(fig, stem)
