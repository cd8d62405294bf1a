"""The ``deeprx`` command line. Bad input prints one line naming the problem and the fix, and exits 2.

Every command that writes claims its output folder before any work starts (a writable folder, locked for
this process: see :func:`deeprx.io.claim_output_folder`); errors of the operating system (disk full,
read-only folder) become one line and exit 2 as well.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from deeprx.config import ConfigError, RunConfig, load_profile, parse_override
from deeprx.io import InputError, check_writable_folder, claim_output_folder, os_error_message

# Two CPU-heavy processes on a small machine stall each other when OpenMP threads spin while they wait
# (measured: see docs/architecture.md, "Threads"). Set here, before any command imports torch (and with it
# its OpenMP runtime, which reads this once); a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Energy-efficient neural 5G receivers.")
console = Console()
err_console = Console(stderr=True)

ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="quick | cpu | gpu | paper")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="output folder")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override, e.g. --set train.steps=50")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="model preset (see `deeprx info`)")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="the one seed of the run")]
StepsOpt = Annotated[int | None, typer.Option("--steps", help="training steps")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda | cuda:N")]
PretrainedOpt = Annotated[
    str | None,
    typer.Option("--pretrained", help="a shipped checkpoint instead of --checkpoint (deeprx pretrained list)"),
]


def _checkpoint_dir(checkpoint: Path | None, pretrained: str | None, required: bool = True) -> Path | None:
    """The run folder named by ``--checkpoint`` or ``--pretrained`` (one of them; both is an error)."""
    if checkpoint is not None and pretrained is not None:
        raise InputError("give --checkpoint or --pretrained, not both")
    if pretrained is not None:
        from deeprx.pretrained import resolve

        return resolve(pretrained)
    if checkpoint is None and required:
        raise InputError("name a model: --checkpoint RUN_DIR or --pretrained NAME (deeprx pretrained list)")
    return checkpoint


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as one line on stderr; the caller raises the returned exit."""
    one_line = " ".join(str(message).split())
    err_console.print(f"[red]error:[/red] {one_line}", highlight=False, soft_wrap=True, markup=True)
    return typer.Exit(code)


@contextlib.contextmanager
def _guard() -> Iterator[Callable[[Path], Path]]:
    """Turn bad input and OS errors (disk full, read-only folder) into one line on stderr and exit code 2.

    Yields ``claim(out)``: call it once the arguments are checked and before any work, to check the output
    folder and lock it for this process until the command ends.
    """
    try:
        with contextlib.ExitStack() as claimed:
            yield lambda out: claimed.enter_context(claim_output_folder(out))
    except (ConfigError, InputError) as e:
        raise _fail(str(e)) from None
    except KeyError as e:  # unknown preset or channel model, from the registries
        raise _fail(str(e.args[0] if e.args else e)) from None
    except OSError as e:
        raise _fail(os_error_message(e)) from None


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

    with _guard() as claim:
        cfg = _config(profile, sets, seed=seed)
        claim(out)
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

    with _guard() as claim:
        cfg = _config(profile, sets, model=model, seed=seed, device=device, **{"train.steps": steps})
        claim(out)
        result = train(cfg, out, resume=resume, show_progress=not as_json)
        last = result.log[-1] if result.log else {}
        data = {"run_dir": str(out), "step": result.step, "seconds": result.seconds, "last": last,
                "verdict": result.verdict}  # fmt: skip
        if not _emit(data, as_json):
            console.print(f"trained to step {result.step} in {result.seconds:.0f} s; checkpoint in {out}")
            console.print(result.verdict)


@app.command("distill")
def distill_cmd(
    teacher: Annotated[
        Path,
        typer.Option(
            "--teacher",
            "-t",
            help="teacher run folder, shipped name (deeprx pretrained list), or genie-perfect-csi-lmmse | ls-lmmse",
        ),
    ],
    profile: ProfileOpt = "quick",
    out: OutOpt = Path("out/distill"),
    model: ModelOpt = None,
    alpha: Annotated[float | None, typer.Option(help="weight of the label loss (paper eq. 2)")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", "-T", help="softening temperature")] = None,
    scaling: Annotated[str | None, typer.Option(help="paper (KL summed per slot) | mean (per bit, x T^2)")] = None,
    steps: StepsOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    sets: SetOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the checkpoint in OUT")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Distil a frozen teacher into a student (MODEL): L = alpha * BCE + KL(teacher || student) at temperature T."""
    from deeprx.train.trainer import train

    with _guard() as claim:
        direct = {"kd.teacher": str(teacher), "kd.alpha": alpha, "kd.temperature": temperature,
                  "kd.scaling": scaling, "train.steps": steps}  # fmt: skip
        cfg = _config(profile, sets, model=model, seed=seed, device=device, **direct)
        claim(out)
        result = train(cfg, out, resume=resume, show_progress=not as_json, description=f"distill {cfg.model}")
        last = result.log[-1] if result.log else {}
        data = {"run_dir": str(out), "step": result.step, "seconds": result.seconds, "last": last}
        if not _emit(data, as_json):
            console.print(f"distilled to step {result.step} in {result.seconds:.0f} s; checkpoint in {out}")


@app.command("evaluate")
def evaluate_cmd(
    checkpoint_dir: Annotated[
        Path | None, typer.Option("--checkpoint", "-c", help="run folder of a checkpoint")
    ] = None,
    pretrained: PretrainedOpt = None,
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
    from deeprx.receivers import load_receiver
    from deeprx.report.plots import plot_ber
    from deeprx.runtime import resolve_device
    from deeprx.train import checkpoint

    with _guard() as claim:
        checkpoint_dir = _checkpoint_dir(checkpoint_dir, pretrained)
        saved = checkpoint.load(checkpoint_dir).config
        cfg = _config(profile, sets) if profile else saved.with_overrides(dict(parse_override(s) for s in sets or []))
        device = resolve_device(cfg.device)
        expected = cfg.with_overrides({"model": saved.model})
        receiver, _ = load_receiver(checkpoint_dir, device, expected)
        claim(out)
        testset = TestSet.ensure(cfg, out / "testsets", show_progress=not as_json)
        receivers = {
            f"DeepRx ({saved.model})": receiver,
            **baseline_receivers(UplinkSimulator(cfg.link, device)),
        }
        target_errors = cfg.eval.target_bit_errors
        curves = evaluate(receivers, testset, cfg.eval.batch_size, target_errors, not as_json, device)
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

    with _guard() as claim:
        cfg = _config(profile, sets, model=model, seed=seed, device=device, **{"train.steps": steps})
        claim(out)
        results = run_pipeline(cfg, out, show_progress=not as_json)
        if not _emit(results, as_json):
            _print_summary(results["summary"], cfg.eval.target_ber)
            console.print(f"report: {out / 'report.md'}  plot: {out / 'ber_vs_sinr.png'}")


@app.command()
def reproduce(
    profile: ProfileOpt = "quick",
    out: OutOpt = Path("out"),
    as_json: JsonOpt = False,
) -> None:
    """The paper's whole chain (sizes, teachers, KD studies, curves, energy), resumable, with a report in OUT."""
    from deeprx.config import PROFILES
    from deeprx.studies.reproduce import reproduce as run_chain

    with _guard() as claim:
        if profile not in PROFILES:
            raise InputError(f"unknown profile {profile!r}: choose one of {list(PROFILES)}")
        claim(out)
        results = run_chain(profile, out, show_progress=not as_json)
        if _emit(results, as_json):
            return
        table = Table(title=f"Paper claims vs ours (profile {profile})")
        for col in ("paper claim", "ours", "from"):
            table.add_column(col)
        for c in results["claims"]:
            table.add_row(c["claim"], c["ours"], c["source"])
        console.print(table)
        console.print(f"report: {out / 'report.md'}")


# --- inference ------------------------------------------------------------------------------------------


def _inference_subject(checkpoint_dir: Path | None, model: str, n_prb: int | None, sinr_db: float, n: int):
    """(model, link, front end, ``n`` slots at ``sinr_db``) from a checkpoint or an untrained preset."""
    from deeprx.config import LinkConfig, input_channels
    from deeprx.link.simulator import UplinkSimulator
    from deeprx.models.deeprx import create_model
    from deeprx.receivers import FrontEnd

    if checkpoint_dir is not None:
        from deeprx.train.checkpoint import load_model

        net, ckpt = load_model(checkpoint_dir)
        link, features = ckpt.config.link, ckpt.config.features
    else:
        link, features = LinkConfig(n_prb=26, modulation="256qam"), "paper"
        net = create_model(model, link.n_rx, link.bits_per_symbol, input_channels(features, link.n_rx)).eval()
    if n_prb is not None:
        link = LinkConfig(**{**link.__dict__, "n_prb": n_prb})
    simulator = UplinkSimulator(link)
    return net, link, FrontEnd(simulator, features), simulator.sample(n, seed=12345, sinr_db=sinr_db)


@app.command("export")
def export_cmd(
    checkpoint_dir: Annotated[
        Path | None, typer.Option("--checkpoint", "-c", help="run folder of a checkpoint")
    ] = None,
    pretrained: PretrainedOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="ONNX file to write")] = Path("out/deeprx.onnx"),
    tolerance: Annotated[float, typer.Option(help="max |logit difference| allowed vs PyTorch")] = 1e-3,
    force: Annotated[bool, typer.Option("--force", help="replace an existing --out file")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a checkpoint to ONNX (BatchNorm folded, depthwise convs split); check ONNX Runtime against PyTorch."""
    import tempfile

    import onnxruntime as ort
    import torch

    from deeprx.infer.engine import agreement, export_onnx
    from deeprx.io import atomic_write

    with _guard():
        if out.is_dir():
            raise InputError(f"--out {out} is a folder; name the ONNX file to write, e.g. {out / 'deeprx.onnx'}")
        if out.exists() and not force:
            raise InputError(f"--out {out} exists; pass --force to replace it or choose another --out")
        check_writable_folder(out.parent)
        net, link, front_end, slots = _inference_subject(_checkpoint_dir(checkpoint_dir, pretrained), "", None, 30.0, 8)
        z = front_end(slots)
        with tempfile.TemporaryDirectory() as tmp:
            export_onnx(net, Path(tmp) / "m.onnx", link.n_subcarriers)
            data = (Path(tmp) / "m.onnx").read_bytes()
        atomic_write(out, lambda p: p.write_bytes(data))
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        with torch.inference_mode():
            reference = net(z)
        check = agreement(reference, torch.from_numpy(session.run(None, {"z": z.numpy()})[0]))
        ok = check["max_abs_logit_diff"] <= tolerance and check["hard_decision_agreement"] == 1.0
        result = {"onnx": str(out), "tolerance": tolerance, "passed": ok, "test_batch": list(z.shape), **check}
        if not _emit(result, as_json):
            console.print(
                f"wrote {out}; ONNX Runtime vs PyTorch on {z.shape[0]} slots at 30 dB: max |logit diff| "
                f"{check['max_abs_logit_diff']:.2e} (tolerance {tolerance:g}), identical hard decisions "
                f"{check['hard_decision_agreement']:.4%}: {'PASS' if ok else 'FAIL'}"
            )
        if not ok:
            raise typer.Exit(1)


@app.command("serve-bench")
def serve_bench(
    checkpoint_dir: Annotated[
        Path | None, typer.Option("--checkpoint", "-c", help="run folder of a checkpoint")
    ] = None,
    pretrained: PretrainedOpt = None,
    model: Annotated[str, typer.Option("--model", "-m", help="untrained preset when no checkpoint")] = "deeprx_full",
    n_prb: Annotated[int | None, typer.Option("--n-prb", help="grid (default: the checkpoint's, else 26)")] = None,
    path: Annotated[
        str, typer.Option(help="auto | eager | folded | bf16 | int8 | onnx | onnx-int8 | compile | cuda-graph (GPU)")
    ] = "auto",
    rate: Annotated[float, typer.Option(help="offered slots per second")] = 400.0,
    duration: Annotated[float, typer.Option(help="seconds of offered traffic")] = 10.0,
    deadline_ms: Annotated[float, typer.Option(help="a result later than this after arrival is late")] = 50.0,
    max_batch: Annotated[int, typer.Option(help="largest batch the receiver forms from its queue")] = 32,
    workers: Annotated[int, typer.Option(help="parallel receivers sharing the queue, the cores split among them")] = 1,
    device: Annotated[str, typer.Option(help="where the receiver runs: auto | cpu | cuda | cuda:N")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Feed simulated slots at RATE for DURATION and report whether the receiver kept up."""
    import torch

    from deeprx.infer.engine import Engine, auto_select, build_copies, paths_for
    from deeprx.infer.serve import serve
    from deeprx.runtime import resolve_device, use_all_cores

    with _guard():
        where = resolve_device(device)
        if path != "auto" and path not in paths_for(where):
            raise InputError(f"unknown path {path!r} on {where.type}: choose auto or one of {list(paths_for(where))}")
        if min(rate, duration, deadline_ms) <= 0 or max_batch < 1 or workers < 1:
            raise InputError("--rate, --duration and --deadline-ms must be > 0, --max-batch and --workers >= 1")
        cores = use_all_cores()
        checkpoint_dir = _checkpoint_dir(checkpoint_dir, pretrained, required=False)
        net, link, front_end, slots = _inference_subject(checkpoint_dir, model, n_prb, 30.0, 64)
        slots = slots.to(where)
        z = front_end(slots)
        if path == "auto":
            path = auto_select(net, z[:32], z[32:48], device=where)[0].path
        # A served slot goes through the receiver's front end, then the network: the pool is slot indices.
        engines = [
            Engine(e.path, lambda ids, e=e: e.run(front_end(slots.select(ids))), f"{e.description} + "
                   f"{front_end.features} front end")
            for e in build_copies(net, path, z[:32], workers, cores, where)
        ]  # fmt: skip
        engine = engines[0]
        report = serve(engines, torch.arange(slots.batch_size), rate, duration, deadline_ms / 1e3, max_batch)
        if _emit(report.as_dict(), as_json):
            return
        r = report
        console.print(
            f"{engine.description}, {r.workers} worker(s): offered {r.offered} slots at {r.rate_per_s:g}/s "
            f"for {r.duration_s:g} s on a "
            f"14 x {link.n_subcarriers} grid; processed {r.processed} ({r.achieved_per_s:.1f}/s), dropped {r.dropped}, "
            f"late (> {r.deadline_ms:g} ms) {r.late}; latency p50 {r.latency_ms_p50:.1f} / p95 {r.latency_ms_p95:.1f} "
            f"/ p99 {r.latency_ms_p99:.1f} ms; mean batch {r.mean_batch:.1f} -> "
            + ("[green]kept up[/green]" if r.kept_up else "[red]did not keep up[/red]")
        )


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
    for r in rows:
        if r.get("never_better_than_ls"):
            console.print(f"[red]flag:[/red] {r['receiver']} is no better than LS-LMMSE at any SINR point")


# --- pretrained -----------------------------------------------------------------------------------------

pretrained_app = typer.Typer(no_args_is_help=True, help="Shipped, pretrained receivers: list them, ship a run.")
app.add_typer(pretrained_app, name="pretrained")


@pretrained_app.command("list")
def pretrained_list(as_json: JsonOpt = False) -> None:
    """The shipped checkpoints: how each was made and its BER beside LS-LMMSE on its profile's test set."""
    from deeprx.pretrained import names, record

    with _guard():
        records = [record(n).to_dict() for n in names()]
        if _emit(records, as_json):
            return
        table = Table(title="Shipped checkpoints (use with --pretrained NAME, or distill --teacher NAME)")
        for col in (
            "name",
            "model / input",
            "DMRS",
            "steps x batch = slots",
            "trained on",
            "BER @ max SINR vs LS-LMMSE",
        ):
            table.add_column(col)
        for r in records:
            ev = r["evaluation"]
            ours, ls = ev["receivers"]["DeepRx"], ev["receivers"]["LS-LMMSE"]
            table.add_row(
                r["name"], f"{r['model']} / {r['features']}", str(r["dmrs_symbols"]),
                f"{r['steps']:,} = {r['slots_seen']:,}", f"{r['device']}, {r['wall_seconds']:.0f} s, {r['commit'][:8]}",
                f"{ours['ber'][-1]:.2e} vs {ls['ber'][-1]:.2e} at {ev['sinr_db'][-1]:g} dB",
            )  # fmt: skip
        console.print(table)
        for r in records:
            console.print(f"[bold]{r['name']}[/bold]: {r['command']}")


@pretrained_app.command("add")
def pretrained_add(
    run_dir: Annotated[Path, typer.Argument(help="a finished run folder of deeprx train")],
    name: Annotated[str, typer.Option(help="the name to ship it under")],
    command: Annotated[str, typer.Option(help="the exact deeprx command that trained it")],
    commit: Annotated[str, typer.Option(help="the commit it was trained at")],
    description: Annotated[str, typer.Option(help="one line for the registry")] = "",
    cache: Annotated[Path, typer.Option(help="folder for test sets")] = Path("out/testsets"),
    as_json: JsonOpt = False,
) -> None:
    """Ship a finished run: evaluate it on its profile's test set, then copy it into the registry with its record."""
    from deeprx.pretrained import add, evaluate_run

    with _guard():
        if not command.startswith("deeprx "):
            raise InputError("--command must be the deeprx command that trained the run, starting with 'deeprx '")
        evaluation = evaluate_run(run_dir, cache, show_progress=not as_json)
        rec = add(run_dir, name, command, commit, evaluation, description)
        if not _emit(rec.to_dict(), as_json):
            console.print(f"shipped {run_dir} as {name!r}")


# --- energy ---------------------------------------------------------------------------------------------

energy_app = typer.Typer(no_args_is_help=True, help="Energy: FLOPs per layer, estimates per processor, meters.")
app.add_typer(energy_app, name="energy")

CheckpointOpt = Annotated[Path | None, typer.Option("--checkpoint", help="run folder of a trained model")]
NprbOpt = Annotated[int, typer.Option("--n-prb", help="PRBs of the grid (26 = the paper's 312 subcarriers)")]
NrxOpt = Annotated[int, typer.Option("--n-rx", help="receive antennas")]
ModOpt = Annotated[str, typer.Option("--modulation", help="qpsk | 16qam | 64qam | 256qam")]
CatalogueOpt = Annotated[Path | None, typer.Option("--catalogue", help="extra processors YAML (same schema)")]
ProcOpt = Annotated[str, typer.Option("--processor", help="catalogue key for the block breakdown")]
MeterOpt = Annotated[str, typer.Option("--meter", help="auto | rapl | nvml | codecarbon | modeled")]
BatchOpt = Annotated[int, typer.Option(help="slots per forward pass")]
RepeatsOpt = Annotated[int, typer.Option(help="working windows")]
WindowOpt = Annotated[float, typer.Option(help="shortest working window, s")]
IdleOpt = Annotated[float, typer.Option(help="idle window for the base power, s")]
LifeStepsOpt = Annotated[int, typer.Option(help="steps of the whole training, for the life cycle")]
RateOpt = Annotated[float, typer.Option(help="inferences (slots) per second in deployment")]


def _subject(
    model: str, n_prb: int, n_rx: int, modulation: str, checkpoint: Path | None, device: str = "cpu"
):  # -> Subject
    from deeprx.config import LinkConfig
    from deeprx.energy.assess import Subject
    from deeprx.models.deeprx import create_model
    from deeprx.runtime import resolve_device

    where = resolve_device(device)
    if checkpoint is not None:
        from deeprx.train.checkpoint import load_model

        net, ckpt = load_model(checkpoint)
        cfg = ckpt.config
        return Subject(net, cfg.model, cfg.link.n_subcarriers, device=where, features=cfg.features)
    link = LinkConfig(n_prb=n_prb, n_rx=n_rx, modulation=modulation)
    net = create_model(model, link.n_rx, link.bits_per_symbol).eval()
    return Subject(net, model, link.n_subcarriers, device=where)


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


@energy_app.command("processors")
def energy_processors(catalogue: CatalogueOpt = None, as_json: JsonOpt = False) -> None:
    """The processor catalogue with sources and assumptions (the host is detected at run time)."""
    import dataclasses

    from deeprx.energy.processors import load_catalogue

    with _guard():
        procs = load_catalogue(catalogue)
        rows = [{**dataclasses.asdict(p), "peak_flops": p.peak_flops, "flops_per_watt": p.flops_per_watt}
                for p in procs.values()]  # fmt: skip
        if _emit(rows, as_json):
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


@energy_app.command("estimate")
def energy_estimate(
    model: Annotated[str, typer.Option("--model", "-m")] = "deeprx_full",
    n_prb: NprbOpt = 26,
    n_rx: NrxOpt = 2,
    modulation: ModOpt = "256qam",
    checkpoint: CheckpointOpt = None,
    pretrained: PretrainedOpt = None,
    processor: ProcOpt = "coral-edge-tpu",
    method: Annotated[str, typer.Option(help="metric0 | metric1 | metric2 | memory-aware")] = "metric0",
    catalogue: CatalogueOpt = None,
    layers: Annotated[bool, typer.Option("--layers", help="also print the per-layer table")] = False,
    as_json: JsonOpt = False,
) -> None:
    """FLOPs per slot and estimated energy per inference on every processor, with the block breakdown."""
    from deeprx.energy.assess import check_processor, estimates
    from deeprx.energy.estimate import METHODS
    from deeprx.energy.processors import load_catalogue, load_memory_energy

    with _guard():
        if method not in METHODS:
            raise InputError(f"unknown method {method!r}: choose one of {list(METHODS)}")
        procs = load_catalogue(catalogue)
        check_processor(procs, processor)
        est = estimates(
            _subject(model, n_prb, n_rx, modulation, _checkpoint_dir(checkpoint, pretrained, required=False)),
            procs,
            load_memory_energy(catalogue),
        )
        if not _emit(est, as_json):
            _print_estimates(est, processor, method, layers)


def _print_measurement(name: str, r: Any) -> None:
    console.print(f"{name}: {r.summary()}", highlight=False)


@energy_app.command("measure")
def energy_measure(
    model: Annotated[str, typer.Option("--model", "-m")] = "deeprx_full",
    n_prb: NprbOpt = 26,
    n_rx: NrxOpt = 2,
    modulation: ModOpt = "256qam",
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
    device: Annotated[str, typer.Option(help="where the metered work runs: auto | cpu | cuda | cuda:N")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Energy per inference and per training step with a meter, under the paper's base-power protocol."""
    from deeprx.energy.assess import check_protocol_args, lifecycle_table, measurements
    from deeprx.energy.meters import open_meter
    from deeprx.runtime import use_all_cores

    with _guard():
        check_protocol_args(min(batch, train_batch), repeats, training_steps, window, idle, rate)
        use_all_cores()
        subject = _subject(
            model, n_prb, n_rx, modulation, _checkpoint_dir(checkpoint, pretrained, required=False), device
        )
        energy_meter, why = open_meter(meter, device=str(subject.device))
        try:
            res = measurements(subject, energy_meter, batch=batch, train_batch=train_batch, repeats=repeats,
                               window_s=window, idle_s=idle)  # fmt: skip
        finally:
            energy_meter.close()
        inf, step = res["inference"], res["training_step"]
        cycle = lifecycle_table(step.joules_per_item, training_steps, inf.joules_per_item, inf.method, rate)
        data = {"model": subject.name, "meter_choice": why, "inference": inf.as_dict(),
                "training_step": step.as_dict(), "life_cycle": cycle}  # fmt: skip
        if _emit(data, as_json):
            return
        console.print(f"meter: {energy_meter.description} — {why}")
        _print_measurement("inference", inf)
        _print_measurement("training step", step)
        if not cycle["resolved"]:
            console.print(f"life cycle: none ({cycle['why']})")
            return
        console.print(
            f"life cycle: training {training_steps:,} steps = {cycle['training_joules']:.3g} J; break-even after "
            f"{cycle['break_even_inferences']:.3g} inferences = {cycle['break_even_seconds']:.3g} s at {rate:g} slots/s"
        )


@energy_app.command("report")
def energy_report(
    out: OutOpt = Path("out/energy"),
    model: Annotated[str, typer.Option("--model", "-m")] = "deeprx_full",
    n_prb: NprbOpt = 26,
    n_rx: NrxOpt = 2,
    modulation: ModOpt = "256qam",
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
    as_json: JsonOpt = False,
) -> None:
    """Everything: counts, estimates, metered energy, life cycle, figures and energy.md/energy.json in OUT."""
    from deeprx.energy.report import energy_report as build

    with _guard() as claim:
        subject = _subject(model, n_prb, n_rx, modulation, _checkpoint_dir(checkpoint, pretrained, required=False))
        claim(out)
        data = build(
            subject, out, catalogue=catalogue, processor=processor,
            meter=meter, batch=batch, repeats=repeats, window_s=window, training_steps=training_steps, rate=rate,
            idle_s=idle,
        )  # fmt: skip
        if not _emit(data, as_json):
            _print_estimates(data["estimates"], processor, "metric0", show_layers=False)
            console.print(f"report: {out / 'energy.md'}  figures: {', '.join(data['figures'])}")


def main() -> None:
    """The ``deeprx`` entry point: usage errors (unknown option, a value of the wrong type) print one line too."""
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="deeprx", standalone_mode=False)
    except typer.Abort:
        raise SystemExit(_fail("interrupted", 130).exit_code) from None
    except typer.TyperException as e:  # click's exceptions, as typer vendors them
        if type(e).__name__ == "NoArgsIsHelpError":  # bare ``deeprx`` or ``deeprx energy``: the help
            e.show()
            raise SystemExit(0) from None
        ctx = getattr(e, "ctx", None)
        hint = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
        raise SystemExit(_fail(f"{e.format_message()}{hint}", getattr(e, "exit_code", 2)).exit_code) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
