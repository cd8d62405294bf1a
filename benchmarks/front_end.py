"""The enhanced front end side by side: Sionna's blocks vs the fused LS-LMMSE, and a network beside them.

One run, the same slots: slots per second of the enhanced front end (LS estimate, interpolation, LMMSE
equaliser, input assembly) with Sionna's blocks (``SionnaLsLmmse``) and fused (``FusedLsLmmse``, the default),
at batch 1 and a larger batch, beside a network's eager forward pass on the same input, and the largest
difference of the two front ends' outputs. The front end's FLOPs (``deeprx.energy.flops.front_end_flops``)
and the network's are printed beside the times: they say little about which one is on the critical path.

    python benchmarks/front_end.py                       # cpu link (4 PRB, 2 RX, 16-QAM), dense_eighth
    python benchmarks/front_end.py --n-prb 26 --model deeprx_quarter --json
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import torch
import typer
from rich.console import Console
from rich.table import Table

from deeprx.config import load_profile
from deeprx.energy.flops import count_layers, front_end_flops, model_totals
from deeprx.link.fused import SionnaLsLmmse
from deeprx.link.simulator import UplinkSimulator
from deeprx.models.registry import create_model
from deeprx.receivers import FrontEnd
from deeprx.runtime import CPU, use_all_cores


def slots_per_second(fn: Callable[[], Any], batch: int, min_seconds: float) -> float:
    fn()  # warm-up
    calls, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < min_seconds or calls < 3:
        fn()
        calls += 1
    return calls * batch / elapsed


def main(
    n_prb: Annotated[int, typer.Option(help="PRBs of the grid")] = 4,
    dmrs: Annotated[int, typer.Option(help="DMRS symbols")] = 1,
    model: Annotated[str, typer.Option(help="the network timed beside the front ends")] = "dense_eighth",
    batches: Annotated[str, typer.Option(help="batch sizes, comma-separated")] = "1,64",
    min_seconds: Annotated[float, typer.Option(help="time per measurement")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    cores = use_all_cores()
    base = load_profile("cpu")
    link = base.with_overrides({"link.n_prb": n_prb, "link.dmrs_symbols": dmrs}).link
    sim = UplinkSimulator(link, CPU)
    fused, sionna = FrontEnd(sim, "enhanced"), FrontEnd(sim, "enhanced", SionnaLsLmmse(sim))
    net = create_model(model, link.n_rx, link.bits_per_symbol, fused.channels).eval()
    sizes = [int(b) for b in batches.split(",")]
    rows: list[dict[str, Any]] = []
    for batch in sizes:
        slot = sim.sample(batch, seed=1, sinr_db=30.0)
        z = fused(slot)
        with torch.no_grad():
            row = {
                "batch": batch,
                "sionna_front_end": slots_per_second(lambda slot=slot: sionna(slot), batch, min_seconds),
                "fused_front_end": slots_per_second(lambda slot=slot: fused(slot), batch, min_seconds),
                "network_eager": slots_per_second(lambda z=z: net(z), batch, min_seconds),
                "max_abs_difference": float((fused(slot) - sionna(slot)).abs().max()),
            }
        row["fused_speedup"] = row["fused_front_end"] / row["sionna_front_end"]
        rows.append(row)
    network_flops = model_totals(count_layers(net, link.n_subcarriers))["flops"]
    data = {
        "link": {"n_prb": n_prb, "n_rx": link.n_rx, "modulation": link.modulation, "dmrs_symbols": dmrs},
        "model": model,
        "threads": cores,
        "front_end_flops_per_slot": front_end_flops("enhanced", link.n_rx, link.n_subcarriers, sim.n_data_re),
        "network_flops_per_slot": network_flops,
        "rows": rows,
    }
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    console = Console()
    table = Table(title=f"Enhanced front end, 14 x {link.n_subcarriers}, {link.n_rx} RX, {dmrs} DMRS, {cores} threads")
    for col in ("batch", "Sionna blocks", "fused", "speed-up", f"{model} eager", "max |diff|"):
        table.add_column(col)
    for r in rows:
        rates = (r["sionna_front_end"], r["fused_front_end"])
        table.add_row(str(r["batch"]), *(f"{v:.0f}/s" for v in rates), f"{r['fused_speedup']:.1f}x",
                      f"{r['network_eager']:.0f}/s", f"{r['max_abs_difference']:.1e}")  # fmt: skip
    console.print(table)
    console.print(f"FLOPs per slot: front end {data['front_end_flops_per_slot']:,.0f}, network {network_flops:,.0f}")


if __name__ == "__main__":
    typer.run(main)
