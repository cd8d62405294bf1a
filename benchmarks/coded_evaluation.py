"""Coded vs uncoded evaluation side by side: the cost of decoding every receiver's transport blocks.

One run, the same receivers (a shipped network, LS-LMMSE and perfect-CSI LMMSE) on the cpu profile's test set,
once uncoded and once on the same grid with an MCS (each test set built first, apart from the timing): the
seconds of each evaluation, their ratio (issue 25's goal: coded at most 2x uncoded), and per receiver the SINR
at BLER 10 % and 1 %, beside the uncoded summary.

    python benchmarks/coded_evaluation.py                              # cpu-teacher-broad-dmrs1, MCS 14, seed 1
    python benchmarks/coded_evaluation.py --pretrained cpu-student-dense8-dmrs1 --dmrs 2 --json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from deeprx.config import load_profile
from deeprx.evaluate.ber import ALL_SLOTS, evaluate
from deeprx.link.baselines import baseline_receivers
from deeprx.link.simulator import UplinkSimulator
from deeprx.link.testset import TestSet
from deeprx.receivers import load_receiver
from deeprx.runs import registry
from deeprx.runtime import CPU, use_all_cores


def main(
    pretrained: Annotated[str, typer.Option(help="the shipped network evaluated beside the baselines")] = (
        "cpu-teacher-broad-dmrs1"
    ),
    mcs_index: Annotated[int, typer.Option(help="MCS of the coded run (table 1; 14: 16-QAM, rate 0.54)")] = 14,
    dmrs: Annotated[int, typer.Option(help="DMRS symbols (the network's own setting)")] = 1,
    seed: Annotated[int, typer.Option(help="test-set seed")] = 1,
    slots: Annotated[int, typer.Option(help="slots per SINR point")] = 256,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    threads = use_all_cores()
    uncoded = load_profile("cpu").with_overrides(
        {"link.dmrs_symbols": dmrs, "seed": seed, "eval.slots_per_point": slots}
    )
    coded = uncoded.with_overrides({"link.mcs_index": mcs_index})
    run_dir = registry.resolve(pretrained)
    data: dict = {"pretrained": pretrained, "mcs_index": mcs_index, "dmrs": dmrs, "seed": seed, "threads": threads}
    with tempfile.TemporaryDirectory() as folder:
        for name, cfg in (("uncoded", uncoded), ("coded", coded)):
            testset = TestSet.ensure(cfg, Path(folder), show_progress=False)  # built before the clock starts
            receivers = {pretrained: load_receiver(run_dir, CPU)[0], **baseline_receivers(UplinkSimulator(cfg.link))}
            t0 = time.perf_counter()
            curves = evaluate(receivers, testset, cfg.eval.batch_size, ALL_SLOTS, show_progress=False)
            data[name] = {
                "seconds": time.perf_counter() - t0,
                "receivers": {
                    c.receiver: {
                        "geometric_mean_ber": c.geometric_mean_ber(),
                        "ber_at_max_sinr": c.ber[-1],
                        **({"tb_size": c.tb_size, "sinr_at_bler_0.1_db": c.sinr_at_bler(0.1),
                            "sinr_at_bler_0.01_db": c.sinr_at_bler(0.01), "bler": c.bler} if c.coded else {}),
                    }
                    for c in curves
                },
                "sinr_db": curves[0].sinr_db,
            }  # fmt: skip
    data["coded_over_uncoded"] = data["coded"]["seconds"] / data["uncoded"]["seconds"]
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    table = Table(title=f"{pretrained} on the cpu link, {dmrs} DMRS, MCS {mcs_index}, seed {seed}, {slots} slots")
    for column in ("receiver", "geo-mean BER (uncoded)", "SINR at BLER 10 %", "SINR at BLER 1 %"):
        table.add_column(column)
    for receiver, row in data["coded"]["receivers"].items():
        cells = [row.get(f"sinr_at_bler_{t}_db") for t in ("0.1", "0.01")]
        table.add_row(receiver, f"{data['uncoded']['receivers'][receiver]['geometric_mean_ber']:.3f}",
                      *("not reached" if v is None else f"{v:.2f} dB" for v in cells))  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"evaluation: uncoded {data['uncoded']['seconds']:.1f} s, coded {data['coded']['seconds']:.1f} s "
                  f"({data['coded_over_uncoded']:.2f}x) on {threads} threads")  # fmt: skip


if __name__ == "__main__":
    typer.run(main)
