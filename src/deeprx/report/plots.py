"""Matplotlib figures, written as PNG and SVG side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from deeprx.config import RunConfig
from deeprx.evaluate.ber import BerCurve
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
    ax.set_xlabel("SINR [dB]    (shaded: 95 % interval, bootstrap over slots)")
    ax.set_ylabel("uncoded BER")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, stem)


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
