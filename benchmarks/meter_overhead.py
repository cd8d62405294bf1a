"""Overhead of each energy meter on the measured workload (goal: at most 1 %).

Runs DeepRx inference (default: full-size model, paper grid 14 x 312, 2 RX, batch 8) in windows, with no
meter and with each available meter reading as the protocol does (at window edges; CodeCarbon also runs
its own sampling thread), alternating A/B so slow drifts of a shared machine cancel. Prints slots per
second side by side and the overhead in percent.

    python benchmarks/meter_overhead.py [--model deeprx_full] [--window 5] [--repeats 4] [--json]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from deeprx.config import LinkConfig
from deeprx.energy.assess import Subject, inference_work
from deeprx.energy.meters import EnergyMeter, open_meter
from deeprx.io import InputError
from deeprx.models.registry import create_model
from deeprx.runtime import use_all_cores


def slots_per_second(work, window_s: float, meter: EnergyMeter | None) -> float:
    t0 = time.perf_counter()
    if meter is not None:
        meter.read_joules()
    n = 0
    while time.perf_counter() - t0 < window_s:
        n += work()
    if meter is not None:
        meter.read_joules()
    return n / (time.perf_counter() - t0)


def main(
    model: Annotated[str, typer.Option()] = "deeprx_full",
    n_prb: Annotated[int, typer.Option()] = 26,
    batch: Annotated[int, typer.Option()] = 8,
    window: Annotated[float, typer.Option(help="seconds per window")] = 5.0,
    repeats: Annotated[int, typer.Option(help="A/B pairs per meter")] = 4,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    use_all_cores()
    link = LinkConfig(n_prb=n_prb, modulation="256qam")
    work = inference_work(Subject(create_model(model, 2, 8), model, link.n_subcarriers), batch)
    for _ in range(3):
        work()
    rows = []
    for name in ("rapl", "nvml", "codecarbon", "modeled"):
        try:
            meter, _ = open_meter(name)
        except (InputError, ImportError) as err:
            rows.append({"meter": name, "available": False, "why": str(err).split(";")[0]})
            continue
        bare, metered = [], []
        for _ in range(repeats):
            bare.append(slots_per_second(work, window, None))
            metered.append(slots_per_second(work, window, meter))
        meter.close()
        b, m = statistics.median(bare), statistics.median(metered)
        rows.append({"meter": name, "available": True, "description": meter.description, "slots_per_s_bare": b,
                     "slots_per_s_metered": m, "overhead_percent": 100 * (b - m) / b,
                     "bare_spread_percent": 100 * statistics.pstdev(bare) / b})  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"Meter overhead on {model} inference, 14 x {link.n_subcarriers}, batch {batch}")
    for col in ("meter", "slots/s bare", "slots/s metered", "overhead", "run-to-run spread", "note"):
        table.add_column(col)
    for r in rows:
        if not r["available"]:
            table.add_row(r["meter"], "-", "-", "-", "-", f"not available: {r['why']}")
            continue
        speeds = (f"{r['slots_per_s_bare']:.2f}", f"{r['slots_per_s_metered']:.2f}")
        table.add_row(r["meter"], *speeds, f"{r['overhead_percent']:+.2f} %", f"{r['bare_spread_percent']:.2f} %",
                      r["description"])  # fmt: skip
    Console(width=160).print(table)


if __name__ == "__main__":
    typer.run(main)
