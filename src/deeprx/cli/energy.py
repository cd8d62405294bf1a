"""Energy commands: processors, estimates, meters and the energy report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from deeprx.cli.common import (
    CheckpointOpt,
    DeviceOpt,
    JsonOpt,
    ModAnyOpt,
    NprbAnyOpt,
    NrxAnyOpt,
    OutOpt,
    PretrainedOpt,
    checkpoint_dir_of,
    console,
    emit,
    guard,
    run_context,
)
from deeprx.config import PAPER_LINK
from deeprx.io import InputError

app = typer.Typer(no_args_is_help=True, help="Energy: FLOPs per layer, estimates per processor, meters.")

CatalogueOpt = Annotated[Path | None, typer.Option("--catalogue", help="extra processors YAML (same schema)")]
ProcOpt = Annotated[str, typer.Option("--processor", help="catalogue key for the block breakdown")]
MeterOpt = Annotated[str, typer.Option("--meter", help="auto | rapl | nvml | codecarbon | modeled")]
BatchOpt = Annotated[int, typer.Option(help="slots per forward pass")]
RepeatsOpt = Annotated[int, typer.Option(help="working windows")]
WindowOpt = Annotated[float, typer.Option(help="shortest working window, s")]
IdleOpt = Annotated[float, typer.Option(help="idle window for the base power, s")]
LifeStepsOpt = Annotated[int, typer.Option(help="steps of the whole training, for the life cycle")]
RateOpt = Annotated[float, typer.Option(help="inferences (slots) per second in deployment")]


def _energy_subject(
    checkpoint: Path | None,
    pretrained: str | None,
    model: str,
    n_prb: int | None,
    n_rx: int | None,
    modulation: str | None,
    device: str | None,
):  # -> deeprx.energy.assess.Subject
    """A checkpoint on its own link or on ``n_prb`` PRBs (its n_rx and modulation are fixed by its weights), or
    an untrained preset on the paper's link with the options given."""
    import dataclasses

    from deeprx.config import LinkConfig
    from deeprx.runs.checkpoint import saved_config
    from deeprx.subjects import energy_subject

    run_dir = checkpoint_dir_of(checkpoint, pretrained, required=False)
    if run_dir is None:
        link = LinkConfig(n_prb=n_prb or PAPER_LINK.n_prb, n_rx=n_rx or PAPER_LINK.n_rx,
                          modulation=modulation or PAPER_LINK.modulation)  # fmt: skip
    else:
        saved = saved_config(run_dir).link
        for option, given, fixed in (("--n-rx", n_rx, saved.n_rx), ("--modulation", modulation, saved.modulation)):
            if given is not None and given != fixed:
                raise InputError(f"{option} {given}: the checkpoint's weights are for {fixed}; drop {option} "
                                 "(--n-prb may change)")  # fmt: skip
        link = dataclasses.replace(saved, n_prb=n_prb or saved.n_prb)
    return energy_subject(run_dir, model, link, run_context(device).device)


def _print_estimates(est: dict[str, Any], processor: str, method: str, show_layers: bool) -> None:
    t = est["totals"]
    console.print(
        f"[bold]{est['model']}[/bold] on a {est['grid'][0]} x {est['grid'][1]} grid: {t['params']:,} parameters, "
        f"{t['conv_flops'] / 1e9:.3f} GFLOP per slot in convolutions ({t['macs'] / 1e9:.3f} GMAC) + "
        f"{t['other_flops'] / 1e6:.1f} MFLOP other (bias, BatchNorm, ReLU, add); "
        f"weights {t['weight_bytes'] / 2**20:.2f} MiB, "
        f"activations {(t['act_read_bytes'] + t['act_write_bytes']) / 2**20:.0f} MiB moved"
    )
    fe = est["front_end"]
    console.print(
        f"front end ({fe['features']} input): {fe['flops'] / 1e6:.3f} MFLOP per slot, "
        f"{fe['metric0_joules'][processor] * 1e6:.3g} µJ on {processor} (metric0; not in the table below)"
    )
    table = Table(title="Estimated energy per inference (one slot), mJ — estimates, not measurements")
    for col in ("processor", "peak TFLOP/s", "GFLOP/s per W", "metric0", "metric1", "metric2", "memory-aware"):
        table.add_column(col, justify="left" if col == "processor" else "right")
    for key, p in est["processors"].items():
        j = p["joules_per_slot"]
        table.add_row(key, f"{p['peak_flops'] / 1e12:.3g}", f"{p['flops_per_watt'] / 1e9:.3g}",
                      *(f"{j[m] * 1e3:.3g}" for m in ("metric0", "metric1", "metric2", "memory-aware")))  # fmt: skip
    console.print(table)
    proc = est["processors"][processor]
    blocks = proc["blocks_joules"][method]
    total = sum(blocks.values())
    table = Table(title=f"Per block on {proc['name']} ({method})")
    for col in ("block", "params", "GFLOP", "µJ per slot", "share"):
        table.add_column(col, justify="left" if col == "block" else "right")
    for block, joules in blocks.items():
        b = est["blocks"][block]
        table.add_row(
            block, f"{b['params']:,}", f"{b['flops'] / 1e9:.3f}", f"{joules * 1e6:.1f}", f"{joules / total:.1%}"
        )
    console.print(table)
    if show_layers:
        table = Table(title=f"Per layer on {proc['name']} ({method})")
        for col in ("layer", "kind", "params", "MFLOP conv", "MFLOP other", "weights KiB", "act. KiB", "µJ"):
            table.add_column(col, justify="left" if col in ("layer", "kind") else "right")
        for layer in est["layers"]:
            joules = proc["layers_joules"][layer["name"]][method]
            acts = (layer["act_read_bytes"] + layer["act_write_bytes"]) / 1024
            table.add_row(layer["name"], layer["kind"], f"{layer['params']:,}", f"{layer['conv_flops'] / 1e6:.2f}",
                          f"{layer['other_flops'] / 1e6:.2f}", f"{layer['weight_bytes'] / 1024:.1f}", f"{acts:.0f}",
                          f"{joules * 1e6:.2f}")  # fmt: skip
        console.print(table)


@app.command("processors")
def energy_processors(catalogue: CatalogueOpt = None, as_json: JsonOpt = False) -> None:
    """The processor catalogue with sources and assumptions (the host is detected at run time)."""
    import dataclasses

    from deeprx.energy.processors import load_catalogue

    with guard():
        procs = load_catalogue(catalogue)
        rows = [{**dataclasses.asdict(p), "peak_flops": p.peak_flops, "flops_per_watt": p.flops_per_watt}
                for p in procs.values()]  # fmt: skip
        if emit(rows, as_json):
            return
        table = Table(title="Processor catalogue")
        for col in ("key", "name", "cores", "GHz", "FLOP/cycle/core", "peak TFLOP/s", "TDP W", "source / assumptions"):
            table.add_column(col)
        for r in rows:
            notes = r["source"] + "".join(f"\n  assumption: {a}" for a in r["assumptions"])
            table.add_row(r["key"], r["name"], str(r["cores"]), f"{r['base_ghz']:g}/{r['turbo_ghz']:g}",
                          f"{r['flops_per_cycle_per_core']:g}", f"{r['peak_flops'] / 1e12:.3g}", f"{r['tdp_watts']:g}",
                          notes)  # fmt: skip
        console.print(table)


@app.command("estimate")
def energy_estimate(
    model: Annotated[str, typer.Option("--model", "-m")] = "deeprx_full",
    n_prb: NprbAnyOpt = None,
    n_rx: NrxAnyOpt = None,
    modulation: ModAnyOpt = None,
    checkpoint: CheckpointOpt = None,
    pretrained: PretrainedOpt = None,
    processor: ProcOpt = "coral-edge-tpu",
    method: Annotated[str, typer.Option(help="metric0 | metric1 | metric2 | memory-aware")] = "metric0",
    catalogue: CatalogueOpt = None,
    layers: Annotated[bool, typer.Option("--layers", help="also print the per-layer table")] = False,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """FLOPs per slot and estimated energy per inference on every processor, with the block breakdown."""
    from deeprx.energy.assess import check_processor, estimates
    from deeprx.energy.estimate import METHODS
    from deeprx.energy.processors import load_catalogue, load_memory_energy

    with guard():
        if method not in METHODS:
            raise InputError(f"unknown method {method!r}: choose one of {list(METHODS)}")
        procs = load_catalogue(catalogue)
        check_processor(procs, processor)
        est = estimates(
            _energy_subject(checkpoint, pretrained, model, n_prb, n_rx, modulation, device),
            procs,
            load_memory_energy(catalogue),
        )
        if not emit(est, as_json):
            _print_estimates(est, processor, method, layers)


def _print_measurement(name: str, r: Any) -> None:
    console.print(f"{name}: {r.summary()}", highlight=False)


@app.command("measure")
def energy_measure(
    model: Annotated[str, typer.Option("--model", "-m")] = "deeprx_full",
    n_prb: NprbAnyOpt = None,
    n_rx: NrxAnyOpt = None,
    modulation: ModAnyOpt = None,
    checkpoint: CheckpointOpt = None,
    pretrained: PretrainedOpt = None,
    meter: MeterOpt = "auto",
    batch: BatchOpt = 8,
    train_batch: Annotated[int, typer.Option(help="slots per training step")] = 8,
    repeats: RepeatsOpt = 3,
    window: WindowOpt = 3.0,
    idle: IdleOpt = 3.0,
    training_steps: LifeStepsOpt = 250_000,
    rate: RateOpt = 400.0,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Energy per inference and per training step with a meter, under the paper's base-power protocol."""
    from deeprx.energy.assess import check_protocol_args, lifecycle_table, metered
    from deeprx.runtime import use_all_cores

    with guard():
        check_protocol_args(min(batch, train_batch), repeats, training_steps, window, idle, rate)
        use_all_cores()
        subject = _energy_subject(checkpoint, pretrained, model, n_prb, n_rx, modulation, device)
        res, description, why = metered(subject, meter, batch=batch, train_batch=train_batch, repeats=repeats,
                                        window_s=window, idle_s=idle)  # fmt: skip
        inf, step = res["inference"], res["training_step"]
        cycle = lifecycle_table(step.joules_per_item, training_steps, inf.joules_per_item, inf.method, rate)
        data = {"model": subject.name, "meter_choice": why, "inference": inf.to_dict(),
                "training_step": step.to_dict(), "life_cycle": cycle}  # fmt: skip
        if emit(data, as_json):
            return
        console.print(f"meter: {description} — {why}")
        _print_measurement("inference", inf)
        _print_measurement("training step", step)
        if not cycle["resolved"]:
            console.print(f"life cycle: none ({cycle['why']})")
            return
        console.print(
            f"life cycle: training {training_steps:,} steps = {cycle['training_joules']:.3g} J; break-even after "
            f"{cycle['break_even_inferences']:.3g} inferences = {cycle['break_even_seconds']:.3g} s at {rate:g} slots/s"
        )


@app.command("report")
def energy_report(
    out: OutOpt = Path("out/energy"),
    model: Annotated[str, typer.Option("--model", "-m")] = "deeprx_full",
    n_prb: NprbAnyOpt = None,
    n_rx: NrxAnyOpt = None,
    modulation: ModAnyOpt = None,
    checkpoint: CheckpointOpt = None,
    pretrained: PretrainedOpt = None,
    processor: ProcOpt = "coral-edge-tpu",
    catalogue: CatalogueOpt = None,
    meter: MeterOpt = "auto",
    batch: BatchOpt = 8,
    repeats: RepeatsOpt = 3,
    window: WindowOpt = 3.0,
    idle: IdleOpt = 3.0,
    training_steps: LifeStepsOpt = 250_000,
    rate: RateOpt = 400.0,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Everything: counts, estimates, metered energy, life cycle, figures and energy.md/energy.json in OUT."""
    from deeprx.energy.report import energy_report as build

    with guard() as claim:
        subject = _energy_subject(checkpoint, pretrained, model, n_prb, n_rx, modulation, device)
        claim(out)
        data = build(
            subject, out, catalogue=catalogue, processor=processor,
            meter=meter, batch=batch, repeats=repeats, window_s=window, training_steps=training_steps, rate=rate,
            idle_s=idle,
        )  # fmt: skip
        if not emit(data, as_json):
            _print_estimates(data["estimates"], processor, "metric0", show_layers=False)
            console.print(f"report: {out / 'energy.md'}  figures: {', '.join(data['figures'])}")
