"""The main job, one trial: test set -> train DeepRx (resuming) -> BER vs SINR beside the baselines -> plot + report.

``deeprx run`` is a one-trial use of the study runner (:mod:`deeprx.studies.runner`): the same trial key, run
folder, store (``OUT/studies.sqlite``) and evaluation as ``deeprx reproduce``, so the two commands on one
``--out`` share what they trained. ``deeprx evaluate`` scores any checkpoint the same way (:mod:`deeprx.evaluation`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deeprx.config import RunConfig
from deeprx.energy.processors import load_catalogue
from deeprx.evaluate.ber import BerCurve
from deeprx.evaluate.summary import CurveSummary, flags, llr_quality_table, markdown_table, summarize, summary_table
from deeprx.io import atomic_write, write_json
from deeprx.report.plots import link_title, plot_ber, plot_bler, plot_calibration
from deeprx.runs.layout import OutputLayout
from deeprx.runtime import RunContext
from deeprx.studies.runner import Trial, baseline_curves, run_trial
from deeprx.studies.store import Store


def run(cfg: RunConfig, out: Path, show_progress: bool = True) -> dict[str, Any]:
    """Run the main job and write ``results.json``, ``report.md`` and ``ber_vs_sinr.{png,svg}`` to ``out``."""
    t0 = time.perf_counter()
    trial = Trial(cfg, "scratch")
    ctx = RunContext.resolve(cfg.device)  # the job's entry point
    with Store(OutputLayout(out).store) as store:
        result = run_trial(trial, out, store, load_catalogue(), ctx, show_progress)
        baselines = baseline_curves(cfg, out, store, ctx, show_progress)
    curves = [result.named_curve(f"DeepRx ({cfg.model})"), *baselines]
    figures = plot_ber(curves, out / "ber_vs_sinr", link_title(cfg), cfg.eval.target_ber)
    if cfg.link.coded:
        figures += plot_bler(curves, out / "bler_vs_sinr", link_title(cfg), cfg.link.slot_duration_s)
        figures += plot_calibration(curves, out / "llr_calibration", link_title(cfg))
    results = {
        "config": cfg.to_dict(),
        "model": {
            "preset": cfg.model,
            "parameters": result.parameters,
            "flops_per_slot": result.flops_per_slot,
            "flops_method": "counted per layer (deeprx.energy.flops), convolutions, FLOP = 2 x MAC",
            "trained_steps": result.trained_steps,
            "train_seconds": result.train_seconds,
            "run_dir": str(trial.run_dir(out)),
            "trial": trial.key,
        },
        "training_log": result.validation_log,
        "curves": [c.to_dict() for c in curves],
        "summary": [row.to_dict() for row in summarize(curves, cfg.eval.target_ber, cfg.link.slot_duration_s)],
        "figures": [str(p) for p in figures],
        "seconds": time.perf_counter() - t0,
    }
    write_json(OutputLayout(out).results, results)
    atomic_write(OutputLayout(out).report, lambda p: p.write_text(render_report(results)))
    return results


def render_report(results: dict[str, Any]) -> str:
    cfg, m = results["config"], results["model"]
    link, ev = cfg["link"], cfg["eval"]
    lines = [
        "# DeepRx vs classical receivers",
        "",
        f"Profile `{cfg['profile']}`, seed {cfg['seed']}. {link['modulation'].upper()}, {link['n_prb']} PRB "
        f"({12 * link['n_prb']} subcarriers), {link['n_rx']} RX, {link['dmrs_symbols']} DMRS symbol(s), "
        f"{link['subcarrier_spacing_khz']} kHz.",
        f"Training channels {', '.join(link['channel_models'])}; test channels {', '.join(ev['channel_models'])}, "
        f"UE speed {ev['speed_mps'][0]:g}-{ev['speed_mps'][1]:g} m/s, {ev['slots_per_point']} slots per SINR point.",
        "",
        f"Model `{m['preset']}`: {m['parameters']:,} parameters, {m['flops_per_slot'] / 1e9:.3f} GFLOP per slot "
        f"({m['flops_method']}), trained {m['trained_steps']} steps.",
        "",
    ]
    rows = [CurveSummary.from_dict(r) for r in results["summary"]]
    lines += [
        *markdown_table(*summary_table(rows, ev["target_ber"])),
        "",
        *(f"**Flag: {flag}.**" for flag in flags(rows)),
        "",
        "Zero-error points count as half an error (BER = 0.5 / bits) in the geometric mean.",
        "",
        "![BER vs SINR](ber_vs_sinr.png)",
        "",
    ]
    curves = [BerCurve.from_dict(c) for c in results["curves"]]
    if all(c.coded for c in curves):
        lines += [
            f"MCS {link['mcs_index']} (table {link['mcs_table']}): one LDPC transport block of {curves[0].tb_size} "
            "information bits per slot, decoded by Sionna's TB decoder for every receiver. LLR quality: the BMD rate "
            "(achievable rate of the LLRs, bits per channel use) and observed over predicted errors by |LLR| (1: "
            "calibrated, > 1: over-confident).",
            "",
            *markdown_table(*llr_quality_table(curves)),
            "",
            "![BLER and goodput vs SINR](bler_vs_sinr.png) ![LLR calibration](llr_calibration.png)",
            "",
        ]
    return "\n".join(lines)
