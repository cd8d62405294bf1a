"""The ``deeprx`` command line. Bad input prints one line naming the problem and the fix, and exits 2."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from deeprx.config import ConfigError, RunConfig, load_profile, parse_override
from deeprx.io import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Energy-efficient neural 5G receivers.")
console = Console()
err_console = Console(stderr=True)

ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="quick | cpu | paper")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="output folder")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override, e.g. --set train.steps=50")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="model preset (see `deeprx info`)")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="the one seed of the run")]
StepsOpt = Annotated[int | None, typer.Option("--steps", help="training steps")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda")]


@contextlib.contextmanager
def _guard() -> Iterator[None]:
    """Turn bad input into one line on stderr and exit code 2."""
    try:
        yield
    except (ConfigError, InputError) as e:
        err_console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyError as e:  # unknown preset or channel model, from the registries
        err_console.print(f"[red]error:[/red] {e.args[0] if e.args else e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _config(profile: str, sets: list[str] | None, **direct: Any) -> RunConfig:
    overrides = dict(parse_override(s) for s in sets or [])
    overrides.update({k: v for k, v in direct.items() if v is not None})
    return load_profile(profile).with_overrides(overrides)


def _emit(data: Any, as_json: bool) -> bool:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    return as_json


@app.command()
def info(
    model: Annotated[str, typer.Option("--model", "-m")] = "deeprx_full",
    n_prb: Annotated[int, typer.Option(help="PRBs of the grid (26 = the paper's 312 subcarriers)")] = 26,
    n_rx: Annotated[int, typer.Option(help="receive antennas")] = 2,
    modulation: Annotated[str, typer.Option(help="qpsk | 16qam | 64qam | 256qam")] = "256qam",
    as_json: JsonOpt = False,
) -> None:
    """Parameters and FLOPs per slot of a model preset (all presets with --model all)."""
    from deeprx.config import LinkConfig
    from deeprx.models.deeprx import PRESETS, count_parameters, create_model, flops_per_slot

    with _guard():
        link = LinkConfig(n_prb=n_prb, n_rx=n_rx, modulation=modulation)
        names = sorted(PRESETS) if model == "all" else [model]
        rows = []
        for name in names:
            net = create_model(name, link.n_rx, link.bits_per_symbol)
            rows.append(
                {
                    "model": name,
                    "parameters": count_parameters(net),
                    "flops_per_slot": flops_per_slot(net, link.n_subcarriers),
                    "grid": [14, link.n_subcarriers],
                    "n_rx": n_rx,
                    "bits_per_symbol": link.bits_per_symbol,
                }
            )
        rows.sort(key=lambda r: r["flops_per_slot"])
        if _emit(rows, as_json):
            return
        table = Table(title=f"DeepRx presets on a 14 x {link.n_subcarriers} grid, {n_rx} RX, {modulation}")
        for col in ("model", "parameters", "GFLOP / slot", "GMAC / slot"):
            table.add_column(col, justify="right" if col != "model" else "left")
        for r in rows:
            table.add_row(
                r["model"],
                f"{r['parameters']:,}",
                f"{r['flops_per_slot'] / 1e9:.3f}",
                f"{r['flops_per_slot'] / 2e9:.3f}",
            )
        console.print(table)
        console.print("FLOPs: torch FlopCounterMode over the convolutions, FLOP = 2 x MAC.")


@app.command()
def config(profile: ProfileOpt = "quick", sets: SetOpt = None) -> None:
    """Print the resolved configuration of a profile (with overrides) as JSON."""
    with _guard():
        _emit(_config(profile, sets).to_dict(), True)


@app.command()
def simulate(
    profile: ProfileOpt = "quick",
    out: OutOpt = Path("out"),
    sets: SetOpt = None,
    seed: SeedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build (or verify) the profile's fixed test set in OUT/testsets."""
    from deeprx.link.testset import TestSet

    with _guard():
        cfg = _config(profile, sets, seed=seed)
        ts = TestSet.ensure(cfg, out / "testsets", show_progress=not as_json)
        data = {
            "path": str(ts.path),
            "sinr_points_db": ts.sinr_points_db,
            "slots_per_point": ts.slots_per_point,
        }
        if not _emit(data, as_json):
            console.print(f"test set {ts.path}: {len(ts.sinr_points_db)} SINR points x {ts.slots_per_point} slots")


@app.command("train")
def train_cmd(
    profile: ProfileOpt = "quick",
    out: OutOpt = Path("out/train"),
    model: ModelOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    sets: SetOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the checkpoint in OUT")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train DeepRx on simulated slots; checkpoints go to OUT (safetensors + JSON)."""
    from deeprx.train.trainer import train

    with _guard():
        cfg = _config(profile, sets, model=model, seed=seed, device=device, **{"train.steps": steps})
        result = train(cfg, out, resume=resume, show_progress=not as_json)
        last = result.log[-1] if result.log else {}
        data = {"run_dir": str(out), "step": result.step, "seconds": result.seconds, "last": last}
        if not _emit(data, as_json):
            console.print(f"trained to step {result.step} in {result.seconds:.0f} s; checkpoint in {out}")


@app.command("evaluate")
def evaluate_cmd(
    checkpoint_dir: Annotated[Path, typer.Option("--checkpoint", "-c", help="run folder of a checkpoint")],
    out: OutOpt = Path("out/eval"),
    profile: Annotated[str | None, typer.Option("--profile", "-p")] = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """BER vs SINR of a checkpoint beside LS-LMMSE and perfect-CSI LMMSE, on a fixed test set.

    Without --profile the checkpoint's own configuration is used.
    """
    from deeprx.evaluate.ber import evaluate
    from deeprx.link.baselines import baseline_receivers
    from deeprx.link.simulator import UplinkSimulator
    from deeprx.link.testset import TestSet
    from deeprx.pipeline import summarize
    from deeprx.report.plots import plot_ber
    from deeprx.train import checkpoint

    with _guard():
        saved = checkpoint.load(checkpoint_dir).config
        cfg = _config(profile, sets) if profile else saved.with_overrides(dict(parse_override(s) for s in sets or []))
        model, _ = checkpoint.load_model(checkpoint_dir, expected=cfg.with_overrides({"model": saved.model}))
        testset = TestSet.ensure(cfg, out / "testsets", show_progress=not as_json)
        receivers = {
            f"DeepRx ({saved.model})": model.receive,
            **baseline_receivers(UplinkSimulator(cfg.link)),
        }
        curves = evaluate(receivers, testset, cfg.eval.batch_size, cfg.eval.target_bit_errors, not as_json)
        plot_ber(curves, out / "ber_vs_sinr", f"{checkpoint_dir}", cfg.eval.target_ber)
        data = {"curves": [c.to_dict() for c in curves], "summary": summarize(curves, cfg.eval.target_ber)}
        if not _emit(data, as_json):
            _print_summary(data["summary"], cfg.eval.target_ber)
            console.print(f"plot: {out / 'ber_vs_sinr.png'}")


@app.command()
def run(
    profile: ProfileOpt = "quick",
    out: OutOpt = Path("out"),
    model: ModelOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The main job: test set, training (resumed if interrupted), BER curves, plot and report in OUT."""
    from deeprx.pipeline import run as run_pipeline

    with _guard():
        cfg = _config(profile, sets, model=model, seed=seed, device=device, **{"train.steps": steps})
        results = run_pipeline(cfg, out, show_progress=not as_json)
        if not _emit(results, as_json):
            _print_summary(results["summary"], cfg.eval.target_ber)
            console.print(f"report: {out / 'report.md'}  plot: {out / 'ber_vs_sinr.png'}")


def _print_summary(rows: list[dict[str, Any]], target_ber: float) -> None:
    table = Table(title="BER vs SINR summary")
    for col in (
        "receiver",
        "geo-mean BER (log10)",
        f"SINR @ BER {target_ber:g}",
        "BER @ max SINR",
        "gain vs LS",
    ):
        table.add_column(col)
    for r in rows:
        sinr = "not reached" if r["sinr_at_target_db"] is None else f"{r['sinr_at_target_db']:.2f} dB"
        gain = "-" if r["gain_over_ls_db"] is None else f"{r['gain_over_ls_db']:+.2f} dB"
        table.add_row(r["receiver"], f"{r['geometric_mean_ber']:.3f}", sinr, f"{r['ber_at_max_sinr']:.2e}", gain)
    console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
