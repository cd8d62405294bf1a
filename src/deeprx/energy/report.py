"""``deeprx energy report``: the paper's energy analysis for one model, as JSON, markdown and figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deeprx.energy.assess import (
    Subject,
    check_processor,
    check_protocol_args,
    estimates,
    lifecycle_table,
    metered,
)
from deeprx.energy.estimate import metric0_joules
from deeprx.energy.processors import load_catalogue, load_memory_energy
from deeprx.io import atomic_write, write_json
from deeprx.report.energy_plots import plot_breakdown, plot_lifecycle, plot_processors
from deeprx.runtime import use_all_cores

# Training FLOPs per sample ~ 3 x forward (backward ~ 2 x forward; Kaplan et al. 2020, arXiv 2001.08361).
TRAIN_FLOPS_PER_FORWARD = 3


def energy_report(
    subject: Subject,
    out: Path,
    *,
    catalogue: Path | None,
    processor: str,
    meter: str,
    batch: int,
    repeats: int,
    window_s: float,
    training_steps: int,
    rate: float,
    train_batch: int = 8,
    idle_s: float = 3.0,
) -> dict[str, Any]:
    procs = load_catalogue(catalogue)
    check_processor(procs, processor)
    check_protocol_args(min(batch, train_batch), repeats, training_steps, window_s, idle_s, rate)
    use_all_cores()
    est = estimates(subject, procs, load_memory_energy(catalogue))
    res, description, why = metered(subject, meter, procs["host"], batch=batch, train_batch=train_batch,
                                    repeats=repeats, window_s=window_s, idle_s=idle_s)  # fmt: skip
    inf, step = res["inference"], res["training_step"]
    flops = est["totals"]["flops"]
    proc = procs[processor]
    cycles = {
        "metered": lifecycle_table(step.joules_per_item, training_steps, inf.joules_per_item, inf.method, rate),
        f"metric0 on {processor}": lifecycle_table(
            metric0_joules(TRAIN_FLOPS_PER_FORWARD * flops * train_batch, proc),
            training_steps,
            metric0_joules(flops, proc),
            f"metric0 on {proc.name}, training step = 3 x forward FLOPs x {train_batch} slots",
            rate,
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    figures = [
        *plot_processors(est, inf.to_dict(), out / "energy_per_processor"),
        *plot_breakdown(est, processor, out / "energy_breakdown"),
        *(plot_lifecycle(cycles["metered"], out / "lifecycle_metered") if cycles["metered"]["resolved"] else []),
        *plot_lifecycle(cycles[f"metric0 on {processor}"], out / "lifecycle_metric0"),
    ]
    data = {
        "model": subject.name,
        "estimates": est,
        "meter_choice": why,
        "meter": description,
        "inference": inf.to_dict(),
        "training_step": step.to_dict(),
        "life_cycle": cycles,
        "figures": [str(p) for p in figures],
    }
    write_json(out / "energy.json", data)
    text = render_markdown(data, processor)
    atomic_write(out / "energy.md", lambda p: p.write_text(text))
    return data


def render_markdown(data: dict[str, Any], processor: str) -> str:
    est, inf, step = data["estimates"], data["inference"], data["training_step"]
    t = est["totals"]
    lines = [
        f"# Energy of {data['model']} (grid {est['grid'][0]} x {est['grid'][1]})",
        "",
        f"{t['params']:,} parameters; {t['conv_flops'] / 1e9:.3f} GFLOP per slot in convolutions "
        f"(FLOP = 2 x MAC, equal to torch's FlopCounterMode) plus {t['other_flops'] / 1e6:.1f} MFLOP of bias, "
        "BatchNorm, ReLU and residual adds.",
        "",
        "## Estimated energy per inference (mJ per slot) — estimates, not measurements",
        "",
        "| processor | metric0 | metric1 | metric2 | memory-aware |",
        "|---|---|---|---|---|",
    ]
    for p in est["processors"].values():
        j = p["joules_per_slot"]
        lines.append(f"| {p['name']} | " + " | ".join(f"{j[m] * 1e3:.3g}" for m in
                     ("metric0", "metric1", "metric2", "memory-aware")) + " |")  # fmt: skip
    kind = "measured" if inf["is_measurement"] else "**modeled, not measured**"
    lines += [
        "",
        "![estimated vs metered](energy_per_processor.png)",
        "",
        f"## Metered on this host ({inf['method']}, {kind})",
        "",
        f"Meter: {data['meter']} — {data['meter_choice']}.",
        "",
        "| work | J per item | spread (std) | base W | absolute W | relative W | items | s per window |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in (inf, step):
        joules = "unresolved" if r["joules_per_item"] is None else f"{r['joules_per_item']:.4g}"
        spread = "-" if r["joules_per_item_spread"] is None else f"{r['joules_per_item_spread']:.2g}"
        lines.append(
            f"| {r['unit']} | {joules} | {spread} | {r['base_watts']:.2f} | "
            f"{r['absolute_watts']:.2f} | {r['relative_watts']:.2f} | {r['items']} | {r['seconds']:.1f} |"
        )
    lines += [f"\n{r['unit']}: unresolved, {r['why_unresolved']}." for r in (inf, step) if not r["resolved"]]
    proc = est["processors"][processor]
    blocks = proc["blocks_joules"]["metric0"]
    total = sum(blocks.values())
    top = sorted(blocks, key=blocks.get, reverse=True)[:3]
    lines += [
        "",
        f"## Where the energy goes ({proc['name']}, metric0)",
        "",
        f"The three most expensive blocks are {', '.join(top)}: "
        f"{sum(blocks[b] for b in top) / total:.0%} of the energy per inference.",
        "",
        "![block and layer breakdown](energy_breakdown.png)",
        "",
        "## Training vs inference",
        "",
        "| basis | training J | J per inference | break-even inferences | time to break-even at rate |",
        "|---|---|---|---|---|",
    ]
    for name, c in data["life_cycle"].items():
        if not c["resolved"]:
            lines.append(f"| {name} ({c['method']}) | {c['why']} | | | |")
            continue
        lines.append(
            f"| {name} ({c['method']}) | {c['training_joules']:.3g} | {c['joules_per_inference']:.3g} | "
            f"{c['break_even_inferences']:.3g} | {c['break_even_seconds']:.3g} s at {c['rate_per_s']:g}/s |"
        )
    shown = [
        f"![life cycle]({Path(f).name})"
        for f in data["figures"]
        if Path(f).name.startswith("lifecycle") and f.endswith(".png")
    ]
    lines += ["", " ".join(dict.fromkeys(shown)), ""]
    return "\n".join(lines)
