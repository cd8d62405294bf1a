"""Training throughput: slots per second of the trainer's step, and where the time of a step goes.

For a preset and grid, on whatever device it runs (``--device auto``: the GPU when there is one), it times
side by side in one process, each after warm-up steps, the device synchronised around every timed part:

* ``simulate``: drawing a batch with Sionna (transmitter, 3GPP channel, noise), as the trainer does;
* ``front end``: the receiver's input features (paper or enhanced: LS + interpolation + LMMSE);
* ``step``: the trainer's own optimisation step (:class:`deeprx.train.trainer.TrainingStep`) on a fixed batch,
  for each precision / memory-format variant asked for (fp32, bf16 autocast, channels-last);
* ``train loop``: simulate + step, as ``deeprx train`` runs it, with the variant the trainer would use.

    python benchmarks/train_throughput.py --model deeprx_half --n-prb 4 --batch 256 [--device cuda] [--json]

Goal (issue 13): >= 10,000 training slots/s for deeprx_half at 4 PRB on one H100/H200.
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

from deeprx.config import FEATURES, LinkConfig, input_channels
from deeprx.link.simulator import UplinkSimulator
from deeprx.models.registry import create_model
from deeprx.receivers import FrontEnd, NeuralReceiver
from deeprx.runtime import RunContext, bf16_supported, use_all_cores
from deeprx.train.trainer import TrainingStep, bce_loss

console = Console()


def timed(fn: Callable[[int], Any], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of ``fn(i)`` over ``repeats`` calls after ``warmup`` calls, synchronising the device."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for i in range(warmup):
        fn(i)
    sync()
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(warmup + i)
        sync()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main(
    model: Annotated[str, typer.Option(help="model preset")] = "deeprx_half",
    n_prb: Annotated[int, typer.Option(help="PRBs of the grid")] = 4,
    modulation: Annotated[str, typer.Option(help="qpsk | 16qam | 64qam | 256qam")] = "16qam",
    features: Annotated[str, typer.Option(help=f"{' | '.join(FEATURES)}")] = "enhanced",
    batch: Annotated[int, typer.Option(help="slots per step")] = 256,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    repeats: Annotated[int, typer.Option(help="timed calls per part (median)")] = 10,
    warmup: Annotated[int, typer.Option(help="untimed calls first")] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    use_all_cores()
    dev = RunContext.resolve(device).device
    link = LinkConfig(n_prb=n_prb, modulation=modulation)
    simulator = UplinkSimulator(link, dev)
    front_end = FrontEnd(simulator, features)
    slot = simulator.sample(batch, seed=0)

    rows: list[dict[str, Any]] = []

    def add(part: str, seconds: float) -> None:
        rows.append({"part": part, "seconds": seconds, "slots_per_s": batch / seconds})

    add("simulate", timed(lambda i: simulator.sample(batch, seed=i), dev, warmup, repeats))
    add(f"front end ({features})", timed(lambda i: front_end(slot), dev, warmup, repeats))

    variants = [("fp32", False, False), ("fp32 channels-last", False, True)]
    if bf16_supported(dev):
        variants += [("bf16", True, False), ("bf16 channels-last", True, True)]
    step_seconds = {}
    for name, bf16, channels_last in variants:
        net = create_model(model, link.n_rx, link.bits_per_symbol, input_channels(features, link.n_rx)).to(dev)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        receiver = NeuralReceiver(net, front_end)
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
        step = TrainingStep(receiver, optimizer, bce_loss, 1.0, bf16)
        step_seconds[name] = timed(lambda i, step=step: step(slot), dev, warmup, repeats)
        add(f"step {name} (front end + fwd/bwd + AdamW)", step_seconds[name])

    # The loop as the trainer runs it (bf16 where supported, the trainer's default), simulation included.
    bf16 = bf16_supported(dev)
    net = create_model(model, link.n_rx, link.bits_per_symbol, input_channels(features, link.n_rx)).to(dev)
    receiver = NeuralReceiver(net, front_end)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    step = TrainingStep(receiver, optimizer, bce_loss, 1.0, bf16)
    loop = timed(lambda i: step(simulator.sample(batch, seed=i)), dev, warmup, repeats)
    add(f"train loop ({'bf16' if bf16 else 'fp32'}: simulate + step)", loop)
    sim = rows[0]["seconds"]
    result = {
        "device": str(dev) if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})",
        "torch": torch.__version__,
        "model": model,
        "features": features,
        "grid": [14, link.n_subcarriers],
        "batch": batch,
        "rows": rows,
        "simulation_share_of_loop": sim / loop,
        "train_slots_per_s": batch / loop,
    }
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    table = Table(title=f"Training throughput: {model}, 14 x {link.n_subcarriers}, batch {batch}, {result['device']}")
    for col in ("part", "ms per batch", "slots/s"):
        table.add_column(col, justify="left" if col == "part" else "right")
    for r in rows:
        table.add_row(r["part"], f"{r['seconds'] * 1e3:.1f}", f"{r['slots_per_s']:,.0f}")
    console.print(table)
    console.print(
        f"train loop: {result['train_slots_per_s']:,.0f} slots/s; simulation is "
        f"{100 * result['simulation_share_of_loop']:.0f} % of a step (median of {repeats}, torch {torch.__version__})"
    )


if __name__ == "__main__":
    typer.run(main)
