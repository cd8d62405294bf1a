"""Receiver quality: what makes DeepRx reach and pass LS-LMMSE with the fewest slots, measured side by side.

Every variant trains the profile's model for the same number of slots, on the same batches (same seed), from
the same initialisation, then is scored on the same fixed test set beside LS-LMMSE and perfect-CSI LMMSE.
Variants change one thing against the profile's default (the enhanced input, AdamW, fp32):

* input features: the DeepRx paper's ``[Y, Xp, H_raw]`` vs the enhanced input (LS + interpolation + LMMSE),
  and the enhanced input with the output added to LS-LMMSE's LLRs (``residual``);
* the training SINR range (0-35 dB, the default, vs 0-40 dB, the test set's);
* the optimizer: the DeepRx paper's LAMB at lr 1e-2 vs AdamW at the profile's lr;
* batch size (twice the batch, half the steps: the same slots);
* bf16 autocast vs fp32.

Printed per variant and DMRS setting: slots seen when the validation BER at the highest SINR first fell below
LS-LMMSE's, BER at the highest test SINR (the floor) and its ratio to LS-LMMSE's, geometric-mean BER, SINR at
the profile's target BER, and training seconds.

    python benchmarks/receiver_quality.py --profile cpu --steps 300 [--out out/bench] [--json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from deeprx.config import RunConfig, load_profile
from deeprx.evaluate.ber import evaluate
from deeprx.link.baselines import baseline_receivers
from deeprx.link.simulator import UplinkSimulator
from deeprx.link.testset import TestSet
from deeprx.receivers import load_receiver
from deeprx.runtime import RunContext
from deeprx.studies.runner import Trial, train_trial

console = Console(width=160)

# name -> (overrides, DMRS settings it runs at)
VARIANTS: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "paper input": ({"features": "paper"}, (1, 2)),
    "enhanced input (default)": ({}, (1, 2)),
    "residual on LS-LMMSE's LLRs": ({"features": "residual"}, (1,)),
    "enhanced, train SINR 0-40 dB": ({"link.sinr_db": [0.0, 40.0]}, (1,)),
    "enhanced, LAMB lr 1e-2": ({"train.optimizer": "lamb", "train.lr": 1e-2}, (1,)),
    "enhanced, 2x batch, 1/2 steps": ({"train.batch_size": "2x"}, (1,)),
    "enhanced, bf16": ({"train.bf16": True}, (1,)),
}
EVERY_SLOT = 10**15


def crossing_slots(cfg: RunConfig, log: list[dict[str, Any]]) -> int | None:
    """Slots seen at the first checkpoint whose validation BER at the highest SINR is below LS-LMMSE's."""
    for row in log:
        if "val_ber" in row and row["val_ber"][-1] < row["val_ls_ber"][-1]:
            return int(row["step"]) * cfg.train.batch_size
    return None


def variant_config(base: RunConfig, overrides: dict[str, Any], dmrs: int, steps: int) -> RunConfig:
    o = {"link.dmrs_symbols": dmrs, "train.steps": steps, "train.checkpoint_every": max(1, steps // 6), **overrides}
    if o.get("train.batch_size") == "2x":
        o["train.batch_size"] = 2 * base.train.batch_size
        o["train.steps"] = steps // 2
        o["train.checkpoint_every"] = max(1, steps // 12)
    return base.with_overrides(o)


def main(
    profile: Annotated[str, typer.Option(help="quick | cpu | gpu")] = "cpu",
    steps: Annotated[int, typer.Option(help="training steps of every variant (at the profile's batch)")] = 300,
    slots_per_point: Annotated[int, typer.Option(help="test slots per SINR point")] = 64,
    only: Annotated[str | None, typer.Option(help="comma-separated variant names to run")] = None,
    out: Annotated[Path, typer.Option(help="output folder (re-runs resume)")] = Path("out/bench-quality"),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    base = load_profile(profile).with_overrides({"eval.slots_per_point": slots_per_point, "features": "enhanced"})
    ctx = RunContext.resolve(base.device)  # the benchmark's entry point
    device = ctx.device
    chosen = {k: v for k, v in VARIANTS.items() if only is None or k in only.split(",")}
    baselines: dict[int, list[Any]] = {}
    rows = []
    for name, (overrides, dmrs_settings) in chosen.items():
        for dmrs in dmrs_settings:
            cfg = variant_config(base, overrides, dmrs, steps)
            testset = TestSet.ensure(cfg, out / "testsets", show_progress=not as_json)
            if dmrs not in baselines:
                receivers = baseline_receivers(UplinkSimulator(cfg.link, device))
                baselines[dmrs] = evaluate(receivers, testset, 32, EVERY_SLOT, not as_json, device)
            run_dir = train_trial(Trial(cfg, "scratch"), out, ctx, show_progress=not as_json)
            receiver, ckpt = load_receiver(run_dir, device, expected=cfg)
            ours = evaluate({name: receiver}, testset, 32, EVERY_SLOT, not as_json, device)[0]
            ls = baselines[dmrs][0]
            floor = ours.ber[-1]
            rows.append(
                {
                    "variant": name,
                    "dmrs_symbols": dmrs,
                    "slots_seen": ckpt.step * cfg.train.batch_size,
                    "slots_to_pass_ls": crossing_slots(cfg, ckpt.log),
                    "ber_at_max_sinr": floor,
                    "ls_ber_at_max_sinr": ls.ber[-1],
                    "ratio_to_ls_at_max_sinr": floor / ls.ber[-1] if ls.ber[-1] > 0 else None,
                    "geometric_mean_ber": ours.geometric_mean_ber(),
                    "ls_geometric_mean_ber": ls.geometric_mean_ber(),
                    "sinr_at_target_db": ours.sinr_at_ber(cfg.eval.target_ber),
                    "ls_sinr_at_target_db": ls.sinr_at_ber(cfg.eval.target_ber),
                    "train_seconds": ckpt.extra.get("train_seconds"),
                    "overrides": overrides,
                }
            )
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(
        title=f"Receiver quality at {steps} x {base.train.batch_size} slots, profile {profile} "
        f"({base.model}; test {slots_per_point} slots/point, {base.eval.sinr_stop_db:g} dB max)"
    )
    for col in ("variant", "DMRS", "slots to pass LS", f"BER @ {base.eval.sinr_stop_db:g} dB (x LS)",
                "geo-mean (LS)", f"SINR @ {base.eval.target_ber:g} (LS)", "train s"):  # fmt: skip
        table.add_column(col)
    for r in rows:
        ratio = "-" if r["ratio_to_ls_at_max_sinr"] is None else f"{r['ratio_to_ls_at_max_sinr']:.2g}x"
        sinr = "not reached" if r["sinr_at_target_db"] is None else f"{r['sinr_at_target_db']:.1f} dB"
        ls_sinr = "not reached" if r["ls_sinr_at_target_db"] is None else f"{r['ls_sinr_at_target_db']:.1f}"
        table.add_row(
            r["variant"], str(r["dmrs_symbols"]),
            "never" if r["slots_to_pass_ls"] is None else f"{r['slots_to_pass_ls']:,}",
            f"{r['ber_at_max_sinr']:.2e} ({ratio})",
            f"{r['geometric_mean_ber']:.3f} ({r['ls_geometric_mean_ber']:.3f})",
            f"{sinr} ({ls_sinr})", f"{r['train_seconds']:.0f}",
        )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
