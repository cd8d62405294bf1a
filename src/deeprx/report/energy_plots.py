"""Energy figures: estimated vs metered energy per processor (paper Fig. 1), block- and layer-wise
energy (Fig. 2) and the training-vs-inference life cycle. PNG and SVG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.patches import Patch

from deeprx.report.plots import plt, save_figure


def plot_processors(est: dict[str, Any], metered: dict[str, Any] | None, stem: Path) -> list[Path]:
    """Energy per inference per processor: metric 0/1/2 and memory-aware estimates, plus the host's
    metered value (hatched and labelled ``modeled`` when the meter only models power)."""
    procs = est["processors"]
    keys = list(procs)
    methods = ("metric0", "metric1", "metric2", "memory-aware")
    fig, ax = plt.subplots(figsize=(9, 4.4))
    width = 0.8 / (len(methods) + 1)
    x = np.arange(len(keys))
    for i, method in enumerate(methods):
        ax.bar(x + i * width, [procs[k]["joules_per_slot"][method] * 1e3 for k in keys], width, label=method)
    if metered is not None and metered["joules_per_item"] is not None:
        j = metered["joules_per_item"] * 1e3
        label = (
            f"host, {metered['method']} meter ({'measured' if metered['is_measurement'] else 'modeled, not measured'})"
        )
        ax.bar(x[keys.index("host")] + len(methods) * width, j, width, hatch="" if metered["is_measurement"] else "//",
               color="black" if metered["is_measurement"] else "white", edgecolor="black", label=label)  # fmt: skip
    ax.set_xticks(
        x + width * len(methods) / 2, [procs[k]["name"].split(" (")[0] for k in keys], rotation=20, ha="right"
    )
    ax.set_yscale("log")
    ax.set_ylabel("energy per inference (mJ per slot)")
    ax.set_title(f"{est['model']}, grid {est['grid'][0]} x {est['grid'][1]}: estimated vs metered")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    return save_figure(fig, stem)


def plot_breakdown(est: dict[str, Any], processor: str, stem: Path, method: str = "metric0") -> list[Path]:
    """Block-wise (top) and layer-wise (bottom) energy per inference on one processor."""
    proc = est["processors"][processor]
    blocks = proc["blocks_joules"][method]
    layers = {k: v[method] for k, v in proc["layers_joules"].items()}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5))
    top.bar(list(blocks), [v * 1e6 for v in blocks.values()], color="tab:blue")
    top.set_ylabel("µJ per slot")
    top.set_title(f"{est['model']} on {proc['name']} ({method}): per block")
    top.tick_params(axis="x", rotation=45)
    colors = {"conv": "tab:gray", "depthwise": "tab:orange", "pointwise": "tab:blue", "batchnorm": "tab:green",
              "relu": "tab:red", "add": "tab:purple"}  # fmt: skip
    kinds = {layer["name"]: layer["kind"] for layer in est["layers"]}
    bottom.bar(range(len(layers)), [v * 1e6 for v in layers.values()], color=[colors[kinds[n]] for n in layers])
    bottom.set_ylabel("µJ per slot")
    bottom.set_xlabel("layer (execution order)")
    bottom.set_title("per layer")
    handles = [Patch(color=color, label=kind) for kind, color in colors.items()]
    bottom.legend(handles=handles, fontsize=7, ncol=6)
    fig.tight_layout()
    return save_figure(fig, stem)


def plot_lifecycle(cycle: dict[str, Any], stem: Path) -> list[Path]:
    """Cumulative inference energy vs number of inferences, against the one-off training energy."""
    n_even = cycle["break_even_inferences"]
    n = np.logspace(0, np.log10(max(n_even, 1.0)) + 2, 200)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.loglog(n, n * cycle["joules_per_inference"], label="cumulative inference energy")
    ax.axhline(cycle["training_joules"], color="tab:red", label=f"training ({cycle['training_steps']:,} steps)")
    ax.axvline(n_even, color="gray", ls="--",
               label=f"break-even: {n_even:.3g} slots = {cycle['break_even_seconds']:.3g} s at "
                     f"{cycle['rate_per_s']:g} slots/s")  # fmt: skip
    ax.set_xlabel("inferences (slots)")
    ax.set_ylabel("energy (J)")
    ax.set_title(f"Training vs inference energy ({cycle['method']})")
    ax.legend(fontsize=8)
    ax.grid(which="both", alpha=0.3)
    return save_figure(fig, stem)
