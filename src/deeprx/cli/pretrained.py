"""Shipped, pretrained receivers: list them, ship a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deeprx.cli.common import (
    JsonOpt,
    console,
    emit,
    guard,
)
from deeprx.io import InputError

app = typer.Typer(no_args_is_help=True, help="Shipped, pretrained receivers: list them, ship a run.")


@app.command("list")
def pretrained_list(as_json: JsonOpt = False) -> None:
    """The shipped checkpoints: how each was made and its BER beside LS-LMMSE on its profile's test set."""
    from deeprx.pretrained import names, record

    with guard():
        records = [record(n).to_dict() for n in names()]
        if emit(records, as_json):
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
    from deeprx.pretrained import add, evaluate_run

    with guard():
        if not command.startswith("deeprx "):
            raise InputError("--command must be the deeprx command that trained the run, starting with 'deeprx '")
        evaluation = evaluate_run(run_dir, cache, show_progress=not as_json)
        rec = add(run_dir, name, command, commit, evaluation, description)
        if not emit(rec.to_dict(), as_json):
            console.print(f"shipped {run_dir} as {name!r}")
