"""Commands that simulate, train, evaluate and reproduce: parse, call the library, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deeprx.cli.common import (
    CheckpointOpt,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    ModOpt,
    NprbOpt,
    NrxOpt,
    OutOpt,
    PretrainedOpt,
    ProfileOpt,
    SeedOpt,
    SetOpt,
    StepsOpt,
    checkpoint_dir_of,
    config_from,
    console,
    emit,
    guard,
    print_coded,
    print_summary,
    run_context,
)
from deeprx.config import PAPER_LINK, RunConfig, parse_override
from deeprx.evaluate.suites import Suite
from deeprx.io import InputError
from deeprx.runs.layout import OutputLayout

app = typer.Typer()


@app.command()
def info(
    model: Annotated[str, typer.Option("--model", "-m")] = "deeprx_full",
    n_prb: NprbOpt = PAPER_LINK.n_prb,
    n_rx: NrxOpt = PAPER_LINK.n_rx,
    modulation: ModOpt = PAPER_LINK.modulation,
    as_json: JsonOpt = False,
) -> None:
    """Parameters and FLOPs per slot of a model preset (all presets with --model all)."""
    from deeprx.config import LinkConfig
    from deeprx.energy.flops import slot_flops
    from deeprx.models.deeprx import count_parameters
    from deeprx.models.registry import create_model, list_models

    with guard():
        link = LinkConfig(n_prb=n_prb, n_rx=n_rx, modulation=modulation)
        names = list_models() if model == "all" else [model]
        rows = []
        for name in names:
            net = create_model(name, link.n_rx, link.bits_per_symbol)
            rows.append(
                {
                    "model": name,
                    "parameters": count_parameters(net),
                    "flops_per_slot": slot_flops(net, "paper", link.n_subcarriers, link.n_data_re).network_conv,
                    "grid": [14, link.n_subcarriers],
                    "n_rx": n_rx,
                    "bits_per_symbol": link.bits_per_symbol,
                }
            )
        rows.sort(key=lambda r: r["flops_per_slot"])
        if emit(rows, as_json):
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
        console.print("FLOPs: the network's convolution products, FLOP = 2 x MAC (equal to torch's FlopCounterMode).")


@app.command()
def config(profile: ProfileOpt = "quick", sets: SetOpt = None) -> None:
    """Print the resolved configuration of a profile (with overrides) as JSON."""
    with guard():
        emit(config_from(profile, sets).to_dict(), True)


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

    with guard() as claim:
        cfg = config_from(profile, sets, seed=seed)
        claim(out)
        ts = TestSet.ensure(cfg, OutputLayout(out).testsets, show_progress=not as_json)
        data = {
            "path": str(ts.path),
            "sinr_points_db": ts.sinr_points_db,
            "slots_per_point": ts.slots_per_point,
        }
        if not emit(data, as_json):
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
    with guard() as claim:
        cfg = config_from(profile, sets, model=model, seed=seed, device=device, **{"train.steps": steps})
        claim(out)
        _train_and_report(cfg, out, resume, as_json, "train", "trained")


def _train_and_report(cfg: RunConfig, out: Path, resume: bool, as_json: bool, description: str, done: str) -> None:
    """Train (or distil) ``cfg`` into ``out`` and print or emit the outcome with the verdict vs LS-LMMSE."""
    from deeprx.train.trainer import train

    ctx = run_context(cfg.device)  # under torchrun: this rank's device and ranks
    result = train(cfg, out, resume=resume, show_progress=not as_json, description=f"{description} {cfg.model}",
                   ctx=ctx)  # fmt: skip
    if not ctx.ranks.main:  # under torchrun, rank 0 reports for all
        return
    last = result.log[-1] if result.log else {}
    data = {"run_dir": str(out), "step": result.step, "seconds": result.seconds, "last": last,
            "verdict": result.verdict}  # fmt: skip
    if not emit(data, as_json):
        console.print(f"{done} to step {result.step} in {result.seconds:.0f} s; checkpoint in {out}")
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
    with guard() as claim:
        direct = {"kd.teacher": str(teacher), "kd.alpha": alpha, "kd.temperature": temperature,
                  "kd.scaling": scaling, "train.steps": steps}  # fmt: skip
        cfg = config_from(profile, sets, model=model, seed=seed, device=device, **direct)
        claim(out)
        _train_and_report(cfg, out, resume, as_json, "distill", "distilled")


HeldOutOpt = Annotated[
    int | None,
    typer.Option(
        "--held-out-seed",
        help="coded link: fit every receiver's LLR scale on this test-set seed, then evaluate them scaled too",
    ),
]


@app.command("evaluate")
def evaluate_cmd(
    checkpoint_dir: CheckpointOpt = None,
    pretrained: PretrainedOpt = None,
    out: OutOpt = Path("out/eval"),
    profile: Annotated[str | None, typer.Option("--profile", "-p")] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="test-set seeds, e.g. 0,1: each evaluated, then pooled")
    ] = None,
    device: DeviceOpt = None,
    suite_name: Annotated[
        str | None, typer.Option("--suite", help="a named set of test conditions: robustness (TDL, UMi, speed, delay)")
    ] = None,
    sets: SetOpt = None,
    held_out_seed: HeldOutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """BER vs SINR of a checkpoint beside LS-LMMSE and perfect-CSI LMMSE, on a fixed test set.

    Without --profile the checkpoint's own link and test set are used; --set changes them (any grid: --set
    link.n_prb=26). Runs where --device says (default auto), wherever the checkpoint was trained. --suite
    robustness evaluates it on each of the suite's test sets (deeprx.evaluate.suites), one folder each in OUT.
    On a coded link (--set link.mcs_index=14) also BLER, goodput, the BMD rate and the LLRs' calibration;
    --held-out-seed S adds a temperature-scaling fit of every receiver's LLRs on seed S and its BLER.
    """
    from deeprx.evaluate.suites import suite
    from deeprx.evaluation import check_held_out, evaluate_checkpoint, evaluation_config
    from deeprx.runs import checkpoint

    with guard() as claim:
        checkpoint_dir = checkpoint_dir_of(checkpoint_dir, pretrained)
        seed_list = parse_seeds(seeds)
        chosen_suite = suite(suite_name) if suite_name else None
        if chosen_suite is not None and held_out_seed is not None:
            raise InputError("--held-out-seed fits LLR scales on one test set, not a suite's: drop one of them")
        overrides = dict(parse_override(s) for s in sets or [])
        cfg = evaluation_config(checkpoint_dir, profile, overrides, device)
        checkpoint.load_model(checkpoint_dir, cfg)  # verified (and n_rx, modulation checked) before any work
        if held_out_seed is not None:
            check_held_out(cfg, seed_list or [cfg.seed], held_out_seed)
        claim(out)
        if chosen_suite is not None:
            _evaluate_suite(checkpoint_dir, cfg, chosen_suite, out, seed_list, as_json)
            return
        ctx = run_context(cfg.device)
        data = evaluate_checkpoint(checkpoint_dir, cfg, out, ctx, not as_json, seed_list, held_out_seed)
        if not emit(data, as_json):
            for seed, rows in data.get("per_seed", {}).items():
                print_summary(rows, cfg.eval.target_ber, f"test-set seed {seed}")
            pooled = "pooled over seeds " + ", ".join(map(str, data["seeds"])) if "per_seed" in data else ""
            print_summary(data["summary"], cfg.eval.target_ber, f"BER vs SINR summary {pooled}".strip())
            print_coded(data)
            console.print("plots: " + ", ".join(p for p in data["figures"] if p.endswith(".png")))


@app.command("compare")
def compare_cmd(
    a: Annotated[str, typer.Argument(help="run folder or shipped name: A (e.g. the KD student)")],
    b: Annotated[str, typer.Argument(help="run folder or shipped name: B (e.g. its scratch twin)")],
    out: OutOpt = Path("out/compare"),
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="test on this profile's test set")] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", help="test-set seeds, e.g. 1 or 0,1: pooled")] = None,
    device: DeviceOpt = None,
    sets: SetOpt = None,
    held_out_seed: HeldOutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Two checkpoints on the same test slots beside LS-LMMSE and perfect-CSI LMMSE, and A - B with 95 % paired
    bootstrap intervals over the slots: the geometric-mean BER difference (< 0: A better) and the SINR gain at the
    target BER (> 0: A better). Both are tested on A's test set (or --profile's); their test sets must agree."""
    from deeprx.evaluation import check_held_out, compare_checkpoints, evaluation_config, weights_of
    from deeprx.link.testset import testset_key
    from deeprx.runs import checkpoint
    from deeprx.runs.reference import trained_folder

    with guard() as claim:
        overrides = dict(parse_override(s) for s in sets or [])
        seed_list = parse_seeds(seeds)
        folders: dict[str, Path] = {}
        for name in (a, b):
            folders[name] = trained_folder(name, "compare A or B")
        if len(folders) < 2:
            raise InputError(f"compare needs two different checkpoints, got {a!r} twice")
        cfg = evaluation_config(folders[a], profile, overrides, device)
        if testset_key(evaluation_config(folders[b], profile, overrides, device)) != testset_key(cfg):
            raise InputError(f"{a} and {b} have different test sets (their links or eval settings differ): pass "
                             "--profile P to test both on that profile's")  # fmt: skip
        for folder in folders.values():
            checkpoint.load_model(folder, weights_of(folder, cfg))  # verified (n_rx, modulation) before any work
        if held_out_seed is not None:
            check_held_out(cfg, seed_list or [cfg.seed], held_out_seed)
        claim(out)
        data = compare_checkpoints(folders, cfg, out, run_context(cfg.device), not as_json, seed_list, held_out_seed)
        if emit(data, as_json):
            return
        pooled = "pooled over seeds " + ", ".join(map(str, data["seeds"])) if len(data["seeds"]) > 1 else ""
        print_summary(data["summary"], cfg.eval.target_ber, f"{a} vs {b} {pooled}".strip())
        d = data["a_minus_b"]
        gain = "not reached by both" if d["gain_db"] is None else (
            f"{d['gain_db']:+.2f} dB [{d['gain_db_ci'][0]:+.2f}, {d['gain_db_ci'][1]:+.2f}]")  # fmt: skip
        console.print(
            f"A - B geo-mean BER: {d['geo_diff']:+.3f} [{d['geo_diff_ci'][0]:+.3f}, {d['geo_diff_ci'][1]:+.3f}] "
            f"(P[A better] = {d['p_kd_better']:.2f}); SINR gain of A at BER {cfg.eval.target_ber:g}: {gain}; "
            f"95 % paired bootstrap over test slots",
            soft_wrap=True,
        )
        if d.get("target_bler") is not None:  # a coded test set
            at = d["gain_at_bler_db"]
            text = "not reached by both" if at is None else (
                f"{at:+.2f} dB [{d['gain_at_bler_db_ci'][0]:+.2f}, {d['gain_at_bler_db_ci'][1]:+.2f}]")  # fmt: skip
            console.print(f"SINR gain of A at BLER {d['target_bler']:g}: {text}")
        print_coded(data)
        console.print("plots: " + ", ".join(p for p in data["figures"] if p.endswith(".png")))


def _evaluate_suite(
    checkpoint_dir: Path, cfg: RunConfig, chosen: Suite, out: Path, seeds: list[int] | None, as_json: bool
) -> None:
    from deeprx.evaluation import evaluate_suite, suite_rows
    from deeprx.io import write_json

    data = evaluate_suite(checkpoint_dir, cfg, chosen, out, run_context(cfg.device), show_progress=not as_json,
                          seeds=seeds)  # fmt: skip
    receiver = data["cases"][0]["summary"][0]["receiver"]
    data["rows"] = suite_rows(data, receiver)
    write_json(out / "suite.json", data)
    if emit(data, as_json):
        return
    print_suite(receiver, chosen.name, data, data["rows"])
    console.print(f"curves and plots: {out}/<case>/ber_vs_sinr.png; all numbers: {out / 'suite.json'}")


def print_suite(title: str, suite_name: str, data: dict, rows: list[dict]) -> None:
    """A suite's table: per case, the receiver's BER at the highest SINR beside both baselines'."""
    from deeprx.evaluate.summary import CurveSummary

    def high_sinr_cell(row: dict) -> str:
        return CurveSummary.from_dict(row).high_sinr_cell

    sinr = data["cases"][0]["curves"][0]["sinr_db"][-1]
    seeds = ", ".join(map(str, data["seeds"]))
    table = Table(title=f"{title}, suite {suite_name}, seed(s) {seeds}: BER at {sinr:g} dB")
    for col in ("case", "receiver", "LS-LMMSE", "x LS-LMMSE", "perfect-CSI LMMSE"):
        table.add_column(col)
    for r in rows:
        cells = (high_sinr_cell(r["receiver"]), high_sinr_cell(r["ls_lmmse"]), _ratio_cell(r),
                 high_sinr_cell(r["perfect_csi"]))  # fmt: skip
        table.add_row(r["case"], *cells)
    console.print(table)


def _ratio_cell(row: dict) -> str:
    text = f"{row['ratio_to_ls']:.3g}x"
    return f"{text} (0 errors: half an error)" if row["receiver"]["ber_at_max_sinr"] == 0 else text


def _here(reference: str) -> str:
    """A run folder below the working directory as a relative path (shipped names and others as they are)."""
    path = Path(reference)
    return str(path.relative_to(Path.cwd())) if path.is_absolute() and path.is_relative_to(Path.cwd()) else reference


def _reach(first: int | None, settled: int | None) -> str:
    if first is None:
        return "never"
    return f"{first // 1000}k ({settled // 1000}k)" if settled is not None else f"{first // 1000}k (-)"


def _times(ratio: float | None) -> str:
    return "LS-LMMSE error-free" if ratio is None else f"{ratio:.3g}x"


def parse_seeds(text: str | None) -> list[int] | None:
    """``--seeds 0,1`` -> ``[0, 1]``; one clear line for anything else."""
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise InputError(f"--seeds {text!r} must be integers separated by commas, e.g. --seeds 0,1") from None
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise InputError(f"--seeds {text!r} must be distinct integers >= 0, e.g. --seeds 0,1")
    return seeds


@app.command("curves")
def curves_cmd(
    runs: Annotated[list[Path], typer.Argument(help="run folders of deeprx train or distill")],
    out: OutOpt = Path("out/curves"),
    title: Annotated[str, typer.Option("--title", help="the figure's title")] = "Learning curves",
    as_json: JsonOpt = False,
) -> None:
    """Learning curves of runs: validation BER at the highest validation SINR vs slots seen, beside LS-LMMSE.

    For each run: the slots it took to first reach 0.1x and 0.01x LS-LMMSE's BER, its final BER, its floor (the
    mean of its last checkpoints) and the slots it took to first reach the first run's floor (name a scratch run
    first: the slots its KD twin needs for the same quality). Reads the runs' checkpoint logs; writes
    learning_curves.png/.svg in OUT.
    """
    from deeprx.studies.figures import plot_learning_curves
    from deeprx.train.curves import FLOOR_CHECKPOINTS, LS_FRACTIONS, LearningCurve

    with guard() as claim:
        curves = [LearningCurve.of_run(run) for run in runs]
        claim(out)
        figure = plot_learning_curves(curves, out / "learning_curves", title)[0]
        reference = curves[0]
        data = {"runs": [{**c.summary(), "slots_to_reference_floor": c.slots_to_match(reference)} for c in curves],
                "reference": reference.label, "figure": str(figure)}  # fmt: skip
        if emit(data, as_json):
            return
        table = Table(title=f"{title}: validation BER at {curves[0].sinr_db:g} dB")
        table.add_column("run", overflow="fold")
        for col in ("slots", *(f"to {f:g}x" for f in LS_FRACTIONS), "floor", "/LS", "to 1st's floor"):
            table.add_column(col, no_wrap=True)
        for c, row in zip(curves, data["runs"], strict=True):
            reach = [_reach(c.slots_to_ls_fraction(f), c.slots_to_ls_fraction(f, stay=True)) for f in LS_FRACTIONS]
            match = row["slots_to_reference_floor"]
            table.add_row(
                c.label, f"{c.slots[-1]:,}", *reach, f"{c.floor_ber:.1e}", _times(row["floor_vs_ls"]),
                "never" if match is None else f"{match // 1000}k ({match / reference.slots[-1]:.2g}x)",
            )  # fmt: skip
        console.print(table)
        for c in curves:
            start = f"from {_here(c.init_from)}'s weights" if c.init_from else "from scratch"
            console.print(f"{c.label}: {c.model}, {start}{', KD from ' + _here(c.teacher) if c.teacher else ''}; "
                          f"final BER {c.final_ber:.2e}, LS-LMMSE {c.ls_ber:.2e} on the same "
                          f"{c.validation_slots} validation slots", soft_wrap=True)  # fmt: skip
        console.print(
            "to 0.1x, 0.01x: slots seen at the first checkpoint at or below that fraction of LS-LMMSE's BER (and, "
            "in brackets, from which it stays there); "
            f"floor: the mean of the last {FLOOR_CHECKPOINTS} checkpoints, /LS: over LS-LMMSE's; to 1st's floor: "
            f"slots to first reach {reference.label}'s floor {reference.floor_ber:.2e} (x its {reference.slots[-1]:,})"
        )
        console.print(f"plot: {figure}")


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

    with guard() as claim:
        cfg = config_from(profile, sets, model=model, seed=seed, device=device, **{"train.steps": steps})
        claim(out)
        results = run_pipeline(cfg, out, show_progress=not as_json)
        if not emit(results, as_json):
            print_summary(results["summary"], cfg.eval.target_ber)
            console.print(f"report: {out / 'report.md'}  plot: {out / 'ber_vs_sinr.png'}")


EXECUTORS = ("local", "ray")
RECOMMEND_SERVE_S = 3.0  # seconds of traffic recommend offers each receiver on the host: its verdict, not a batch rate


@app.command()
def reproduce(
    profile: ProfileOpt = "quick",
    out: OutOpt = Path("out"),
    executor: Annotated[
        str, typer.Option(help="local: trials one after another here; ray: as Ray tasks (docs/scale-out.md)")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (auto: the one `ray start` made); default: a local Ray")
    ] = None,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs each Ray task asks for")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs (or a fraction) each Ray training task asks for")] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """The paper's whole chain (sizes, teachers, KD studies, curves, energy), resumable, with a report in OUT."""
    from deeprx.config import PROFILES
    from deeprx.studies.reproduce import reproduce as run_chain

    with guard() as claim:
        if profile not in PROFILES:
            raise InputError(f"unknown profile {profile!r}: choose one of {list(PROFILES)}")
        if executor not in EXECUTORS:
            raise InputError(f"unknown executor {executor!r}: choose one of {list(EXECUTORS)}")
        if executor == "local" and address is not None:
            raise InputError("--address is for --executor ray; add --executor ray or drop --address")
        if cpus_per_trial <= 0 or gpus_per_trial < 0:
            raise InputError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
        claim(out)
        results = run_chain(profile, out, not as_json, executor=executor, address=address,
                            cpus_per_task=cpus_per_trial, gpus_per_task=gpus_per_trial)  # fmt: skip
        if emit(results, as_json):
            return
        if "failed" in results:
            console.print(f"[red]{len(results['failed'])} trial(s) failed[/red]; see {out / 'report.md'}")
            raise typer.Exit(1)
        table = Table(title=f"Paper claims vs ours (profile {profile})")
        for col in ("paper claim", "ours", "from"):
            table.add_column(col)
        for c in results["claims"]:
            table.add_row(c["claim"], c["ours"], c["source"])
        console.print(table)
        console.print(f"report: {out / 'report.md'}")


@app.command()
def recommend(
    rate: Annotated[float, typer.Option(help="slots per second the receiver must sustain")] = 400.0,
    processor: Annotated[str, typer.Option(help="catalogue key (deeprx energy processors); host: here")] = "host",
    study: Annotated[Path, typer.Option("--from", help="output folder of deeprx reproduce")] = Path("out"),
    shipped: Annotated[bool, typer.Option("--shipped", help="choose among the shipped receivers, not a study")] = False,
    catalogue: Annotated[Path | None, typer.Option("--catalogue", help="extra processors YAML")] = None,
    measure: Annotated[
        bool, typer.Option(help="on host: serve each receiver at RATE for a few seconds (else estimate)")
    ] = True,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The best receiver of a study (or, with --shipped, of the shipped 1-DMRS ones) that sustains RATE slots/s on
    PROCESSOR, beside every other model.

    Energy per slot is metric 0 on the processor (estimated); on this host (--processor host --measure) each
    receiver serves a stream at RATE and sustains it if it keeps up (nothing dropped, at most 1 % late), else the
    rate is estimated as the processor's peak FLOP/s over the model's FLOPs per slot.
    """
    from deeprx.energy.assess import check_processor
    from deeprx.energy.processors import load_catalogue
    from deeprx.studies.frontier import CLASSICAL, GENIE, assess, shipped_candidates, study_candidates
    from deeprx.studies.frontier import recommend as pick

    with guard():
        if rate <= 0:
            raise InputError("--rate must be > 0 slots per second")
        procs = load_catalogue(catalogue)
        check_processor(procs, processor)
        found = shipped_candidates() if shipped else study_candidates(study)
        candidates, references = found.candidates, found.references
        measured = None
        if measure and processor == "host":
            import torch

            from deeprx.config import SERVE_DEADLINE_MS
            from deeprx.infer.serve import serve
            from deeprx.runtime import use_all_cores
            from deeprx.studies.frontier import RateMeasurement
            from deeprx.subjects import (
                SERVE_POOL_SLOTS,
                classical_engine,
                inference_subject,
                on_device,
                serving_engines,
            )

            where, cores = run_context(device).device, use_all_cores()
            how = (f"served on {where} at {rate:g} slots/s for {RECOMMEND_SERVE_S:g} s, deadline "
                   f"{SERVE_DEADLINE_MS:g} ms (networks: fastest decision-keeping path + front end; classical: fused "
                   "LS-LMMSE + Sionna's demapper)")  # fmt: skip

            def measured(c) -> RateMeasurement:  # a stream at the asked rate: batch throughput flatters
                if c.role in (CLASSICAL, GENIE):
                    engines = [classical_engine(found.link, c.role == GENIE, SERVE_POOL_SLOTS, where)]
                else:
                    subject = on_device(inference_subject(found.folders[c.key], "", None, SERVE_POOL_SLOTS), where)
                    engines = serving_engines(subject, "auto", 1, cores, where)
                report = serve(
                    engines, torch.arange(SERVE_POOL_SLOTS), rate, RECOMMEND_SERVE_S, SERVE_DEADLINE_MS / 1e3
                )
                return RateMeasurement(report.achieved_per_s, how, report.kept_up)

        rows = assess(candidates, procs[processor], rate, measured)
        best = pick(rows)
        data = {"processor": processor, "rate_per_s": rate, "recommendation": best.to_dict() if best else None,
                "candidates": [r.to_dict() for r in rows], "references_geo_mean_ber": references}  # fmt: skip
        if emit(data, as_json):
            return
        source = "the shipped receivers" if shipped else str(study)
        table = Table(title=f"Receivers of {source} on {procs[processor].name} at {rate:g} slots/s")
        for col in ("model", "role", "geo-mean BER", "µJ/slot", "slots/s", "sustains", "Pareto"):
            table.add_column(col, justify="left" if col in ("model", "role") else "right")
        for r in sorted(rows, key=lambda r: r.candidate.geo):
            c = r.candidate
            table.add_row(c.name, c.role, f"{c.geo:.3f}", f"{r.joules_per_slot * 1e6:.3g}", f"{r.slots_per_s:,.0f}",
                          "yes" if r.sustains else "no", "*" if r.pareto else "")  # fmt: skip
        console.print(table)
        methods = sorted({r.rate_method for r in rows})
        console.print(f"energy: {rows[0].energy_method}; rate: {'; '.join(methods)}; {GENIE}: a bound, never "
                      "recommended")  # fmt: skip
        if best is None:
            console.print(f"[red]no model of {source} sustains {rate:g} slots/s on {processor}[/red]")
        else:
            c = best.candidate
            what = c.model if c.shipped else "fused LS-LMMSE" if c.role == CLASSICAL else f"trial {c.key}"
            console.print(
                f"recommended: [bold]{c.name}[/bold] ({c.role}, {what}): "
                f"geo-mean BER {c.geo:.3f}, "
                f"{best.joules_per_slot * 1e6:.3g} µJ/slot, {best.slots_per_s:,.0f} slots/s"
            )
