"""Receiver quality: DeepRx vs LS-LMMSE vs perfect-CSI LMMSE, with 1 and with 2 DMRS symbols.

For each DMRS setting this trains DeepRx on the profile (resuming if interrupted), evaluates all three
receivers on the same fixed high-speed test set and prints, side by side: SINR at the profile's target
BER ("not reached" where a curve floors above it), BER at the highest SINR, geometric-mean BER, the
gain of DeepRx over LS-LMMSE, and the training step at which DeepRx's validation BER at the highest SINR
first fell below LS-LMMSE's.

    python benchmarks/receiver_quality.py --profile cpu [--out out/bench] [--json]

Goal (issue 2): DeepRx at least 1 dB better than LS-LMMSE with 1 DMRS symbol at high UE speed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from deeprx.config import load_profile
from deeprx.pipeline import run

console = Console()


def crossing_step(training_log: list[dict[str, Any]]) -> int | None:
    """First checkpoint step whose validation BER at the highest SINR is below LS-LMMSE's."""
    for row in training_log:
        if row["val_ber"][-1] < row["val_ls_ber"][-1]:
            return int(row["step"])
    return None


def main(
    profile: Annotated[str, typer.Option(help="quick | cpu | paper")] = "cpu",
    out: Annotated[Path, typer.Option(help="output folder (re-runs resume)")] = Path("out/bench"),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    base = load_profile(profile)
    rows = []
    for dmrs in (1, 2):
        cfg = base.with_overrides({"link.dmrs_symbols": dmrs})
        results = run(cfg, out / f"{profile}-dmrs{dmrs}", show_progress=not as_json)
        summary = {r["receiver"]: r for r in results["summary"]}
        deeprx = next(name for name in summary if name.startswith("DeepRx"))
        ls = summary["LS-LMMSE"]
        rows.append(
            {
                "dmrs_symbols": dmrs,
                "target_ber": cfg.eval.target_ber,
                "receivers": results["summary"],
                "deeprx_gain_over_ls_db": summary[deeprx]["gain_over_ls_db"],
                # None when LS-LMMSE made no error at the highest SINR (a ratio would be meaningless)
                "ber_ratio_deeprx_over_ls_at_max_sinr": summary[deeprx]["ber_at_max_sinr"] / ls["ber_at_max_sinr"]
                if ls["ber_at_max_sinr"] > 0
                else None,
                "geo_mean_difference_deeprx_minus_ls": summary[deeprx]["geometric_mean_ber"] - ls["geometric_mean_ber"],
                "crossing_step": crossing_step(results["training_log"]),
                "trained_steps": results["model"]["trained_steps"],
                "train_seconds": results["model"]["train_seconds"],
                "flops_per_slot": results["model"]["flops_per_slot"],
            }
        )
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"Receiver quality, profile {profile} (test UE speed {base.eval.speed_mps} m/s)")
    for col in (
        "DMRS",
        "receiver",
        f"SINR @ BER {base.eval.target_ber:g}",
        "BER @ max SINR",
        "geo-mean BER",
        "gain vs LS",
    ):
        table.add_column(col)
    for row in rows:
        for r in row["receivers"]:
            sinr = "not reached" if r["sinr_at_target_db"] is None else f"{r['sinr_at_target_db']:.2f} dB"
            gain = "-" if r["gain_over_ls_db"] is None else f"{r['gain_over_ls_db']:+.2f} dB"
            table.add_row(
                str(row["dmrs_symbols"]),
                r["receiver"],
                sinr,
                f"{r['ber_at_max_sinr']:.2e}",
                f"{r['geometric_mean_ber']:.3f}",
                gain,
            )
    console.print(table)
    for row in rows:
        step = row["crossing_step"]
        ratio = row["ber_ratio_deeprx_over_ls_at_max_sinr"]
        console.print(
            f"DMRS {row['dmrs_symbols']}: BER(DeepRx)/BER(LS) at max SINR = "
            f"{'n/a (LS-LMMSE made no error)' if ratio is None else f'{ratio:.2f}'}; geo-mean difference "
            f"{row['geo_mean_difference_deeprx_minus_ls']:+.3f}; validation BER passed LS-LMMSE at step "
            f"{step if step is not None else 'never'} of {row['trained_steps']} "
            f"({row['train_seconds']:.0f} s of training)"
        )


if __name__ == "__main__":
    typer.run(main)
