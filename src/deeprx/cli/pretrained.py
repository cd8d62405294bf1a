"""Shipped, pretrained receivers: list them, ship a run."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deeprx.cli.common import (
    DeviceOpt,
    JsonOpt,
    console,
    emit,
    guard,
    run_context,
)
from deeprx.io import InputError

app = typer.Typer(no_args_is_help=True, help="Shipped, pretrained receivers: list them, ship a run.")


@app.command("list")
def pretrained_list(as_json: JsonOpt = False) -> None:
    """The shipped checkpoints: how each was made and its BER beside LS-LMMSE on its profile's test set."""
    from deeprx.runs.registry import names, record

    with guard():
        records = [record(n).to_dict() for n in names()]
        if emit(records, as_json):
            return
        table = Table(title="Shipped receivers: --pretrained NAME, or distill --teacher NAME")
        # the name is what the user types next: it never wraps or truncates; the details give way instead
        table.add_column("name", no_wrap=True, min_width=max(len(r["name"]) for r in records) if records else 4)
        for col in ("model / input", "DMRS", "BER at max SINR vs LS-LMMSE"):
            table.add_column(col, overflow="fold")
        for r in records:
            ev = r["evaluation"]
            ours, ls = ev["receivers"]["DeepRx"], ev["receivers"]["LS-LMMSE"]
            superseded = f"superseded by {r['superseded']['by']}; " if r.get("superseded") else ""
            table.add_row(r["name"], f"{r['model']} / {r['features']}", str(r["dmrs_symbols"]),
                          f"{superseded}{ours['ber'][-1]:.1e} vs {ls['ber'][-1]:.1e} at {ev['sinr_db'][-1]:g} dB "
                          f"(seed 0, {ev['slots_per_point']} slots)")  # fmt: skip
        console.print(table)
        for r in records:
            console.print(f"\n[bold]{r['name']}[/bold]", highlight=False)
            if r.get("superseded"):
                s = r["superseded"]
                console.print(f"  superseded by {s['by']} (at {s['commit']}): {s['why']}", highlight=False,
                              soft_wrap=True)  # fmt: skip
            console.print(f"  made by: {r['command']}", highlight=False, soft_wrap=True)
            console.print(f"  at {r['commit'][:8]} on {r['device']}, {r['wall_seconds']:.0f} s, "
                          f"{r['steps']:,} steps = {r['slots_seen']:,} slots", highlight=False)  # fmt: skip
            for check in r.get("checks", []):
                for line in _check_lines(check):
                    console.print(f"  {line}", highlight=False, soft_wrap=True)
            for result in r.get("suites", {}).values():
                console.print(f"  {_suite_line(result)}", highlight=False, soft_wrap=True)


def _suite_line(result: dict) -> str:
    """A record's suite in one line: per case, the receiver's BER at the highest SINR and its ratio to LS-LMMSE's."""
    from deeprx.link.baselines import LS_LMMSE  # Sionna: not at import time of the CLI

    cells = []
    for case in result["cases"]:
        ours = next(v for k, v in case["receivers"].items() if k.startswith("DeepRx"))
        if ours["ber"][-1] == 0 and case["receivers"][LS_LMMSE]["ber"][-1] == 0:
            cells.append(f"{case['slug']} 0 (LS-LMMSE error-free too)")
        else:
            cells.append(f"{case['slug']} {ours['ber'][-1]:.1e} ({case['ratio_to_ls_at_max_sinr']:.2g}x LS)")
    sinr = result["cases"][0]["sinr_db"][-1]
    seeds = ",".join(map(str, result["seeds"]))
    return f"suite {result['suite']} at {result['commit']} (seed {seeds}, {sinr:g} dB): " + "; ".join(cells)


def _check_lines(check: dict) -> list[str]:
    """A record's check, a line per seed: the receiver's BER at each point with its 95 % interval over slots and the
    slots with errors, then LS-LMMSE's."""
    lines = [f"checked at {check['commit']} ({check['slots_per_point']:,} slots per point and seed):"]
    for seed, rows in check["per_seed"].items():
        ours = next(v for k, v in rows.items() if k.startswith("DeepRx"))
        cells = []
        for i, sinr in enumerate(check["sinr_db"]):
            ci = ours["ci_slots"][i] or ours["ci_bits"][i]
            ber = f"{ours['ber'][i]:.1e} [{ci[0]:.1e}, {ci[1]:.1e}]" if ours["ber"][i] else f"0 (< {ci[1]:.1e})"
            cells.append(f"{sinr:g} dB {ber} ({ours['slots_with_errors'][i]} slots)")
        ls = rows.get("LS-LMMSE")
        baseline = f"; LS-LMMSE {', '.join(f'{b:.1e}' for b in ls['ber'])}" if ls else ""
        lines.append(f"  seed {seed}: " + "; ".join(cells) + baseline)
    return lines


@app.command("check")
def pretrained_check(
    name: Annotated[str, typer.Argument(help="a shipped checkpoint (deeprx pretrained list)")],
    seeds: Annotated[str, typer.Option(help="test-set seeds: the tuning seed and fresh ones")] = "0,1",
    sinr_db: Annotated[str, typer.Option("--sinr-db", help="evenly spaced SINR points, dB")] = "30,35,40",
    slots: Annotated[int, typer.Option(help="slots per SINR point and seed")] = 1024,
    suite_name: Annotated[
        str | None,
        typer.Option("--suite", help="a named suite instead (robustness): its SINR grid, the record's slots per point"),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the test sets and the plot")] = Path(
        "out/pretrained-check"
    ),
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a shipped receiver at high SINR on the test sets of several seeds (the tuning seed beside fresh
    ones) and record the BERs, their 95 % intervals and the slots with errors in its record.

    With --suite, evaluate it on the suite's cases instead (e.g. --suite robustness --seeds 1) and record them.
    """
    from deeprx.cli.run import parse_seeds
    from deeprx.evaluation import evaluate_checkpoint, evaluation_config
    from deeprx.runs.registry import add_check, resolve, seed_check

    with guard() as claim:
        seed_list = parse_seeds(seeds) or []
        if suite_name is not None:
            _check_suite(name, suite_name, seeds, seed_list, out, device, as_json, claim)
            return
        points = _even_points(sinr_db)
        if slots < 1:
            raise InputError("--slots must be >= 1")
        run_dir = resolve(name)
        step = points[1] - points[0] if len(points) > 1 else 1.0
        overrides = {"eval.sinr_start_db": points[0], "eval.sinr_stop_db": points[-1], "eval.sinr_step_db": step,
                     "eval.slots_per_point": slots}  # fmt: skip
        cfg = evaluation_config(run_dir, None, overrides, device)
        commit = source_commit()
        claim(out)
        ctx = run_context(cfg.device)
        evaluation = evaluate_checkpoint(run_dir, cfg, out, ctx, show_progress=not as_json, seeds=seed_list)
        command = f"deeprx pretrained check {name} --seeds {seeds} --sinr-db {sinr_db} --slots {slots}"
        check = seed_check(evaluation, command, commit, str(ctx.device))
        add_check(name, check)
        if emit(check, as_json):
            return
        _print_check(name, check)


def _check_suite(
    name: str,
    suite_name: str,
    seeds: str,
    seed_list: list[int],
    out: Path,
    device: str | None,
    as_json: bool,
    claim: Callable[[Path], Path],
) -> None:
    from deeprx.cli.run import print_suite
    from deeprx.evaluate.suites import suite
    from deeprx.evaluation import evaluate_suite, evaluation_config, suite_rows
    from deeprx.runs.registry import add_suite, resolve, suite_result

    chosen = suite(suite_name)
    run_dir = resolve(name)
    cfg = evaluation_config(run_dir, None, {}, device)
    commit = source_commit()
    claim(out)
    ctx = run_context(cfg.device)
    data = evaluate_suite(run_dir, cfg, chosen, out, ctx, show_progress=not as_json, seeds=seed_list)
    rows = suite_rows(data, data["cases"][0]["summary"][0]["receiver"])
    command = f"deeprx pretrained check {name} --suite {suite_name} --seeds {seeds}"
    result = suite_result(data, rows, command, commit, str(ctx.device))
    add_suite(name, result)
    if not emit(result, as_json):
        print_suite(name, chosen.name, data, rows)


def _even_points(text: str) -> list[float]:
    try:
        points = [float(x) for x in text.split(",")]
    except ValueError:
        raise InputError(f"--sinr-db {text!r} must be numbers separated by commas, e.g. 30,35,40") from None
    steps = {round(b - a, 6) for a, b in itertools.pairwise(points)}
    if len(steps) > 1 or any(s <= 0 for s in steps):
        raise InputError(f"--sinr-db {text!r} must rise in even steps, e.g. 30,35,40")
    return points


def source_commit() -> str:
    """The commit of the deeprx source this runs from, else ``unknown``; ``-dirty`` with uncommitted changes to
    the tracked source (``src/``, ``pyproject.toml``) other than the shipped weights' records, which checks
    themselves write (results and run folders that a training job beside it updates do not count)."""
    import subprocess

    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "--short=8", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--",
                                ":(top)src", ":(top)pyproject.toml", ":(top,exclude)src/deeprx/weights/*/record.json"],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def _print_check(name: str, check: dict) -> None:
    table = Table(title=f"{name}: BER at high SINR, {check['slots_per_point']:,} slots per point and seed")
    table.add_column("receiver", no_wrap=True)
    table.add_column("seed")
    for sinr in check["sinr_db"]:
        table.add_column(f"{sinr:g} dB [95% CI over slots] (slots with errors)")
    for seed, rows in [*check["per_seed"].items(), ("pooled", check["pooled"])]:
        for receiver, r in rows.items():
            cells = []
            for i in range(len(check["sinr_db"])):
                ci = r["ci_slots"][i] or r["ci_bits"][i]
                ber = f"{r['ber'][i]:.2e} [{ci[0]:.1e}, {ci[1]:.1e}]" if r["ber"][i] else f"0 (< {ci[1]:.1e})"
                cells.append(f"{ber} ({r['slots_with_errors'][i]})")
            table.add_row(receiver, str(seed), *cells)
    console.print(table)


@app.command("add")
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
    from deeprx.evaluation import evaluate_run
    from deeprx.runs.registry import add

    with guard():
        if not command.startswith("deeprx "):
            raise InputError("--command must be the deeprx command that trained the run, starting with 'deeprx '")
        evaluation = evaluate_run(run_dir, cache, run_context("auto"), show_progress=not as_json)
        rec = add(run_dir, name, command, commit, evaluation, description)
        if not emit(rec.to_dict(), as_json):
            console.print(f"shipped {run_dir} as {name!r}")


@app.command("supersede")
def pretrained_supersede(
    name: Annotated[str, typer.Argument(help="the shipped receiver no longer offered for use")],
    by: Annotated[str, typer.Option("--by", help="the shipped receiver to use instead (same DMRS setting)")],
    why: Annotated[str, typer.Option("--why", help="one line: what the successor does that this one does not")],
    as_json: JsonOpt = False,
) -> None:
    """Mark a shipped receiver as superseded: it stays shipped (records and studies name it) but recommend and the
    frontier leave it out, and its entry says what to use instead and why."""
    from deeprx.runs.registry import supersede

    with guard():
        rec = supersede(name, by, why, source_commit())
        if not emit(rec.to_dict(), as_json):
            console.print(f"{name} is superseded by {by}")
