"""The main job: test set -> train DeepRx (resuming) -> BER vs SINR beside the baselines -> plot + report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deeprx.config import RunConfig, config_hash
from deeprx.evaluate.ber import BerCurve, evaluate, never_better, sinr_gain_db
from deeprx.io import atomic_write, write_json
from deeprx.link.baselines import BASELINES, LS_LMMSE, baseline_receivers
from deeprx.link.simulator import UplinkSimulator
from deeprx.link.testset import TestSet
from deeprx.models.deeprx import count_parameters, flops_per_slot
from deeprx.receivers import load_receiver
from deeprx.report.plots import plot_ber
from deeprx.runtime import resolve_device
from deeprx.train import checkpoint
from deeprx.train.trainer import train


def run_dir_for(cfg: RunConfig, out: Path) -> Path:
    """One folder per distinct training setup, so a re-run resumes instead of starting over."""
    key = {k: v for k, v in cfg.to_dict().items() if k not in ("profile", "device", "eval")}
    return out / "runs" / f"{cfg.model}-{config_hash(key)}"


def train_or_resume(cfg: RunConfig, out: Path, show_progress: bool = True) -> Path:
    run_dir = run_dir_for(cfg, out)
    done = checkpoint.exists(run_dir) and checkpoint.load(run_dir).step >= cfg.train.steps
    if not done:
        train(cfg, run_dir, resume=True, show_progress=show_progress, description=f"train {cfg.model}")
    return run_dir


def summarize(curves: list[BerCurve], target_ber: float) -> list[dict[str, Any]]:
    """Per receiver: geometric-mean BER, SINR at the target BER, BER at the highest SINR, gain over LS."""
    ls = next((c for c in curves if c.receiver == LS_LMMSE), None)
    rows = []
    for c in curves:
        rows.append(
            {
                "receiver": c.receiver,
                "geometric_mean_ber": c.geometric_mean_ber(),
                "sinr_at_target_db": c.sinr_at_ber(target_ber),
                "ber_at_max_sinr": c.ber[-1],
                "gain_over_ls_db": None if ls is None or c is ls else sinr_gain_db(c, ls, target_ber),
                # a neural receiver that beats LS-LMMSE nowhere is flagged in every report
                "never_better_than_ls": bool(c.receiver not in BASELINES and ls and never_better(c, ls)),
            }
        )
    return rows


def run(cfg: RunConfig, out: Path, show_progress: bool = True) -> dict[str, Any]:
    """Run the main job and write ``results.json``, ``report.md`` and ``ber_vs_sinr.{png,svg}`` to ``out``."""
    t0 = time.perf_counter()
    testset = TestSet.ensure(cfg, out / "testsets", show_progress)
    run_dir = train_or_resume(cfg, out, show_progress)
    device = resolve_device(cfg.device)
    receiver, ckpt = load_receiver(run_dir, device, expected=cfg)
    model = receiver.model
    name = f"DeepRx ({cfg.model})"
    receivers = {name: receiver, **baseline_receivers(UplinkSimulator(cfg.link, device))}
    curves = evaluate(receivers, testset, cfg.eval.batch_size, cfg.eval.target_bit_errors, show_progress, device)
    title = (
        f"{cfg.link.modulation.upper()}, {cfg.link.n_prb} PRB, {cfg.link.n_rx} RX, "
        f"{cfg.link.dmrs_symbols} DMRS symbol(s), {cfg.eval.speed_mps[0]:g}-{cfg.eval.speed_mps[1]:g} m/s"
    )
    figures = plot_ber(curves, out / "ber_vs_sinr", title, cfg.eval.target_ber)
    results = {
        "config": cfg.to_dict(),
        "model": {
            "preset": cfg.model,
            "parameters": count_parameters(model),
            "flops_per_slot": flops_per_slot(model, cfg.link.n_subcarriers),
            "flops_method": "torch FlopCounterMode, convolutions, FLOP = 2 x MAC",
            "trained_steps": ckpt.step,
            "train_seconds": ckpt.extra.get("train_seconds"),
            "run_dir": str(run_dir),
        },
        "training_log": [r for r in ckpt.log if "val_ber" in r],
        "curves": [c.to_dict() for c in curves],
        "summary": summarize(curves, cfg.eval.target_ber),
        "figures": [str(p) for p in figures],
        "seconds": time.perf_counter() - t0,
    }
    write_json(out / "results.json", results)
    atomic_write(out / "report.md", lambda p: p.write_text(render_report(results)))
    return results


def _fmt(v: float | None, spec: str, none: str = "not reached") -> str:
    return none if v is None else format(v, spec)


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
        f"| receiver | geometric-mean BER (log10) | SINR at BER {ev['target_ber']:g} [dB] | BER at "
        f"{ev['sinr_stop_db']:g} dB | gain over LS-LMMSE [dB] |",
        "|---|---|---|---|---|",
    ]
    for row in results["summary"]:
        lines.append(
            f"| {row['receiver']} | {row['geometric_mean_ber']:.3f} | {_fmt(row['sinr_at_target_db'], '.2f')} | "
            f"{row['ber_at_max_sinr']:.2e} | {_fmt(row['gain_over_ls_db'], '+.2f', '-')} |"
        )
    lines += [
        "",
        *(
            f"**Flag: {row['receiver']} is no better than LS-LMMSE at any SINR point** (broken or under-trained)."
            for row in results["summary"]
            if row.get("never_better_than_ls")
        ),
        "",
        "Zero-error points count as half an error (BER = 0.5 / bits) in the geometric mean.",
        "",
        "![BER vs SINR](ber_vs_sinr.png)",
        "",
    ]
    return "\n".join(lines)
