"""Inference paths side by side: speed, latency, energy per slot and BER cost, measured in one run.

For each model (a trained checkpoint, or an untrained preset for speed alone) and each path (eager fp32,
folded + channels-last, bf16, int8, ONNX Runtime fp32 and int8):

* slots per second at batch 1 and at the best batch, on the paper's grid (14 x 312, 2 RX) by default;
* latency percentiles at batch 1;
* with ``--workers N``, also slots per second of N copies of each path run in parallel, the cores split
  among them (how a server would fill the cores on small grids), at the best batch;
* energy per slot with the best available meter (on a VM without RAPL: ``modeled``, and labelled so);
* for checkpoints: BER on the checkpoint's own test set, as the SINR loss at the target BER and the change
  in geometric-mean BER against eager fp32 (a fully convolutional model runs on any grid width, so the
  same weights are timed on the paper grid and scored on the grid they were trained for).

Printed as ratios against eager fp32, and as the fraction of this machine's fp32 peak (a large GEMM,
timed in the same run) that each path's best throughput reaches: the bound on any fp32 path.

    python benchmarks/inference.py --checkpoint out/cpu/runs/<teacher> --checkpoint out/cpu/runs/<student>
    python benchmarks/inference.py --model deeprx_full          # speed only, untrained
    python benchmarks/inference.py --model deeprx_quarter --model dense_eighth --model dense_sixteenth  # blocks
    python benchmarks/inference.py --model deeprx_quarter --device cuda --batches 1,16,256  # GPU paths

On a GPU (``--device cuda``) the paths are eager fp32, folded + channels-last fp32, bf16, ``compile`` and
``cuda-graph`` (torch.compile), and ONNX Runtime on its CUDA/TensorRT provider when installed; the peak is
a bf16 GEMM on that GPU, and energy comes from NVML.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console
from rich.table import Table

from deeprx.config import LinkConfig
from deeprx.energy.flops import count_layers, model_totals
from deeprx.energy.meters import open_meter
from deeprx.energy.protocol import measure
from deeprx.evaluate.ber import evaluate
from deeprx.infer.engine import (
    agreement,
    build_copies,
    build_engine,
    parallel_throughput,
    paths_for,
    throughput,
)
from deeprx.io import write_json
from deeprx.link.simulator import UplinkSimulator
from deeprx.link.testset import TestSet
from deeprx.models.registry import create_model
from deeprx.receivers import FrontEnd, data_re_logits
from deeprx.runs import checkpoint
from deeprx.runtime import RunContext, use_all_cores

console = Console(width=200)
CPU = torch.device("cpu")


def _receiver(engine, front_end: FrontEnd):
    """The engine's network behind the checkpoint's front end (and its prior LLRs, for ``residual``)."""

    def receive(slot):
        x = front_end.prepare(slot)
        logits = data_re_logits(engine.run(x.z).to(slot.device), slot.data_mask).float()
        return logits if x.prior is None else logits + x.prior

    return receive


def _cpu_ticks() -> tuple[int, int]:
    """``(steal, total)`` CPU ticks from ``/proc/stat``: steal is time the hypervisor gave other guests."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[7], sum(fields)


def gemm_peak_gflops(seconds: float = 2.0, n: int = 2048, device: torch.device = CPU) -> float:
    """GFLOP/s of an ``n x n`` matrix product: the practical compute peak (fp32 on all CPU threads; bf16 on a
    GPU, at ``4 n``, the precision its fast paths use)."""
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    n = n if device.type == "cpu" else 4 * n
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        calls += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 2 * n**3 * calls / (time.perf_counter() - start) / 1e9


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """The round with the median throughput (its latency percentiles stay consistent with it)."""
    return sorted(runs, key=lambda r: r["slots_per_s"])[len(runs) // 2]


def _parallel_timings(
    net: Any,
    engines: dict[str, Any],
    calibration: torch.Tensor,
    z: torch.Tensor,
    batches: list[int],
    seconds: float,
    rounds: int,
    workers: int,
) -> dict[str, dict[str, Any]]:
    """Per path, the best batch of ``workers`` engine copies run concurrently (median of ``rounds``)."""
    if workers < 2:
        return {}
    cores = torch.get_num_threads()
    try:
        copies = {path: build_copies(net, path, calibration, workers, cores) for path in engines}
        timings: dict[tuple[str, int], list[dict[str, float]]] = {}
        for _ in range(rounds):
            for path, group in copies.items():
                for b in batches:
                    timings.setdefault((path, b), []).append(parallel_throughput(group, z[:b], seconds))
    finally:
        torch.set_num_threads(cores)
    out = {}
    for path in copies:
        best = max(batches, key=lambda b: _median(timings[path, b])["slots_per_s"])
        out[path] = {**_median(timings[path, best]), "batch": best}
    return out


def bench_model(
    name: str,
    net: Any,
    ckpt: Any,
    n_prb: int,
    batches: list[int],
    seconds: float,
    paths: list[str],
    cache: Path,
    rounds: int,
    workers: int,
    device: torch.device,
) -> list[dict[str, Any]]:
    bits = net.config.bits_per_symbol
    modulation = {2: "qpsk", 4: "16qam", 6: "64qam", 8: "256qam"}[bits]
    speed_link = LinkConfig(n_prb=n_prb, n_rx=net.config.n_rx, modulation=modulation)
    features = ckpt.config.features if ckpt is not None else "paper"
    sim = UplinkSimulator(speed_link)
    speed_front_end = FrontEnd(sim, features)
    z = speed_front_end(sim.sample(max(batches), seed=7, sinr_db=25.0)).to(device)
    calibration = speed_front_end(sim.sample(32, seed=8, sinr_db=20.0))
    testset = TestSet.ensure(ckpt.config, cache, show_progress=False) if ckpt is not None else None
    if ckpt is not None:
        eval_sim = UplinkSimulator(ckpt.config.link, device)
        eval_front_end = FrontEnd(eval_sim, features)
        eval_cal = eval_front_end(eval_sim.sample(32, seed=8, sinr_db=20.0)).cpu()
    flops_per_slot = model_totals(count_layers(net, z.shape[-1]))["flops"]
    engines, rows = {}, []
    for path in paths:
        try:
            engines[path] = build_engine(net, path, calibration, device=device)
        except Exception as err:
            rows.append({"model": name, "path": path, "error": f"{type(err).__name__}: {err}"})
    # Rounds interleave the paths, so a slow spell of the (virtual) machine hits every path alike; the
    # median round is reported, and the hypervisor's steal time over the timings is printed beside it.
    timings: dict[tuple[str, int], list[dict[str, float]]] = {}
    steal_before, total_before = _cpu_ticks()
    for _ in range(rounds):
        for path, engine in engines.items():
            for b in batches:
                timings.setdefault((path, b), []).append(throughput(engine, z[:b], min_seconds=seconds))
    parallel = _parallel_timings(
        net, engines, calibration, z, batches, seconds, rounds, workers if device.type == "cpu" else 1
    )
    steal_after, total_after = _cpu_ticks()
    steal = (steal_after - steal_before) / max(1, total_after - total_before)
    reference = None
    meter, why = open_meter("auto", device=device)
    for path, engine in engines.items():
        speeds = {b: _median(timings[path, b]) for b in batches}
        best = max(speeds, key=lambda b: speeds[b]["slots_per_s"])
        energy = measure(meter, lambda e=engine, b=best: (e.run(z[:b]), b)[1], "slot",
                         idle_s=1.0, min_window_s=seconds, repeats=2)  # fmt: skip
        row = {"model": name, "path": path, "description": engine.description, "batch1": speeds[batches[0]],
               "flops_per_slot": flops_per_slot, "gflops_per_s": flops_per_slot * speeds[best]["slots_per_s"] / 1e9,
               "best_batch": best, "best": speeds[best], "rounds": rounds, "steal_fraction": steal,
               "energy_joules_per_slot": energy.joules_per_item, "energy_method": energy.method,
               "energy_is_measurement": energy.is_measurement}  # fmt: skip
        if path in parallel:
            row["parallel"] = parallel[path]
        if testset is not None:
            # ONNX graphs have a fixed grid width: the scoring engine is built on the checkpoint's grid.
            eval_engine = build_engine(net, path, eval_cal, device=device)
            receiver = _receiver(eval_engine, eval_front_end)
            curve = evaluate({path: receiver}, testset, 32, 10**15, show_progress=False, device=device)[0]
            row["geo_mean_ber"] = curve.geometric_mean_ber()
            row["sinr_at_target_db"] = curve.sinr_at_ber(ckpt.config.eval.target_ber)
            row["target_ber"] = ckpt.config.eval.target_ber
            probe = eval_front_end(eval_sim.sample(16, seed=9, sinr_db=30.0))
            out = eval_engine.run(probe).cpu()
            reference = out if path == "eager" else reference
            row.update(agreement(reference, out) if reference is not None else {})
        rows.append(row)
    meter.close()
    eager = next((r for r in rows if r["path"] == "eager" and "error" not in r), None)
    for r in rows:
        if eager is None or "error" in r:
            continue
        r["speedup_best_vs_eager_best"] = r["best"]["slots_per_s"] / eager["best"]["slots_per_s"]
        r["speedup_batch1"] = r["batch1"]["slots_per_s"] / eager["batch1"]["slots_per_s"]
        if "parallel" in r:
            r["parallel"]["speedup_vs_eager_best"] = r["parallel"]["slots_per_s"] / eager["best"]["slots_per_s"]
        r["energy_ratio"] = r["energy_joules_per_slot"] / eager["energy_joules_per_slot"]
        if "geo_mean_ber" in r:
            r["geo_mean_change"] = r["geo_mean_ber"] - eager["geo_mean_ber"]
            a, b = r["sinr_at_target_db"], eager["sinr_at_target_db"]
            r["sinr_loss_db"] = None if a is None or b is None else a - b
    console.print(f"[dim]{name}: meter {meter.description} ({why}); hypervisor steal {steal:.1%} of CPU time[/dim]")
    return rows


def _parallel_cell(parallel: dict[str, Any] | None) -> str:
    if parallel is None:
        return "-"
    return f"{parallel['slots_per_s']:.1f} ({parallel['batch']}, {parallel.get('speedup_vs_eager_best', 1):.2f})"


def main(
    checkpoints: Annotated[list[Path] | None, typer.Option("--checkpoint", help="trained run folders")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="untrained presets (speed only)")] = None,
    n_prb: Annotated[int, typer.Option(help="PRBs of the timing grid (26 = 312 subcarriers)")] = 26,
    batches: Annotated[str, typer.Option(help="batch sizes to time, comma-separated")] = "1,4,16,32",
    seconds: Annotated[float, typer.Option(help="seconds per timing")] = 2.0,
    rounds: Annotated[int, typer.Option(help="timing rounds over all paths; the median is reported")] = 3,
    paths: Annotated[str | None, typer.Option(help="comma-separated paths (default: all on the device)")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N | auto")] = "cpu",
    cache: Annotated[Path, typer.Option(help="folder for test sets")] = Path("out/bench/testsets"),
    workers: Annotated[int, typer.Option(help="also time this many parallel copies of each path (1: off)")] = 1,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    save: Annotated[Path | None, typer.Option(help="also write the rows as JSON to this file")] = None,
) -> None:
    use_all_cores()
    dev = RunContext.resolve(device).device
    peak = gemm_peak_gflops(device=dev)
    path_list = paths.split(",") if paths else list(paths_for(dev))
    batch_sizes = sorted(int(b) for b in batches.split(","))
    subjects = []
    for run_dir in checkpoints or []:
        net, ckpt = checkpoint.load_model(run_dir)
        subjects.append((f"{ckpt.config.model} ({run_dir.name})", net, ckpt))
    for preset in model or ([] if checkpoints else ["deeprx_full"]):
        subjects.append((f"{preset} (untrained)", create_model(preset, 2, 8).eval(), None))
    rows = []
    for name, net, ckpt in subjects:
        rows += bench_model(name, net, ckpt, n_prb, batch_sizes, seconds, path_list, cache, rounds, workers, dev)
    for r in rows:
        if "error" not in r:
            r["fraction_of_fp32_peak"] = r["gflops_per_s"] / peak
    if save is not None:
        write_json(save, {"fp32_gemm_peak_gflops": peak, "rows": rows})
    if as_json:
        sys.stdout.write(json.dumps({"fp32_gemm_peak_gflops": peak, "rows": rows}, indent=2, default=str) + "\n")
        return
    grid = LinkConfig(n_prb=n_prb).n_subcarriers
    table = Table(
        title=f"Inference paths on {dev}, timing grid 14 x {grid}, {torch.get_num_threads()} threads, "
        f"median of {rounds} rounds"
    )
    for col in ("model", "path", "slots/s b=1", "x eager", "p50/p99 ms b=1", "best b", "slots/s", "x eager",
                "% fp32 peak", "mJ/slot", "ΔSINR@target dB", "Δgeo-mean", "same decisions"):  # fmt: skip
        table.add_column(col)
    if workers > 1:
        table.add_column(f"{workers} workers slots/s (b, x eager)")
    for r in rows:
        if "error" in r:
            table.add_row(r["model"], r["path"], f"[red]{r['error'][:60]}[/red]", *[""] * (10 + (workers > 1)))
            continue
        loss = r.get("sinr_loss_db")
        table.add_row(
            r["model"], r["path"], f"{r['batch1']['slots_per_s']:.1f}", f"{r.get('speedup_batch1', 1):.2f}",
            f"{r['batch1']['latency_ms_p50']:.0f}/{r['batch1']['latency_ms_p99']:.0f}", str(r["best_batch"]),
            f"{r['best']['slots_per_s']:.1f}", f"{r.get('speedup_best_vs_eager_best', 1):.2f}",
            f"{r['fraction_of_fp32_peak']:.0%}",
            f"{r['energy_joules_per_slot'] * 1e3:.2f} ({r['energy_method']})",
            "-" if "geo_mean_ber" not in r else ("not reached" if loss is None else f"{loss:+.2f}"),
            "-" if "geo_mean_change" not in r else f"{r['geo_mean_change']:+.3f}",
            "-" if "hard_decision_agreement" not in r else f"{r['hard_decision_agreement']:.4f}",
            *([] if workers < 2 else [_parallel_cell(r.get("parallel"))]),
        )  # fmt: skip
    console.print(table)
    kind = f"fp32 2048^2 GEMM, {torch.get_num_threads()} threads" if dev.type == "cpu" else f"bf16 8192^2 GEMM on {dev}"
    console.print(f"peak ({kind}): {peak:.0f} GFLOP/s")


if __name__ == "__main__":
    typer.run(main)
