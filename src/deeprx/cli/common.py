"""What every command shares: consoles, options, the error guard, config parsing and JSON output.

Bad input prints one line naming the problem and the fix, and exits 2. Every command that writes claims its
output folder before any work starts (a writable folder, locked for this process: see
:func:`deeprx.io.claim_output_folder`); errors of the operating system (disk full, read-only folder) become
one line and exit 2 as well.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from deeprx.config import PAPER_LINK, ConfigError, RunConfig, load_profile, parse_override
from deeprx.io import InputError, check_writable_folder, claim_output_folder, os_error_message

if TYPE_CHECKING:
    from deeprx.runtime import RunContext

console = Console()
err_console = Console(stderr=True)
# Notes for the user that are not errors (a superseded receiver named): printed on stderr when a command succeeds,
# so that bad input still ends in its one line.
NOTES: list[str] = []

ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="quick | cpu | gpu | paper")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="output folder")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override, e.g. --set train.steps=50")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output on stdout")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="model preset (see `deeprx info`)")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="the one seed of the run")]
StepsOpt = Annotated[int | None, typer.Option("--steps", help="training steps")]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="where it runs: auto (a GPU if there is one) | cpu | cuda | cuda:N")
]
PretrainedOpt = Annotated[
    str | None,
    typer.Option("--pretrained", help="a shipped checkpoint instead of --checkpoint (deeprx pretrained list)"),
]


CheckpointOpt = Annotated[Path | None, typer.Option("--checkpoint", "-c", help="run folder of a checkpoint")]
NprbOpt = Annotated[int, typer.Option("--n-prb", help=f"PRBs of the grid ({PAPER_LINK.n_prb} = the paper's)")]
NprbAnyOpt = Annotated[
    int | None,
    typer.Option("--n-prb", help=f"PRBs of the grid (default: the checkpoint's, else {PAPER_LINK.n_prb}, the paper's)"),
]
NrxOpt = Annotated[int, typer.Option("--n-rx", help="receive antennas")]
NrxAnyOpt = Annotated[
    int | None, typer.Option("--n-rx", help=f"receive antennas (default: the checkpoint's, else {PAPER_LINK.n_rx})")
]
ModOpt = Annotated[str, typer.Option("--modulation", help="qpsk | 16qam | 64qam | 256qam")]
ModAnyOpt = Annotated[
    str | None,
    typer.Option(
        "--modulation", help=f"qpsk | 16qam | 64qam | 256qam (default: the checkpoint's, else {PAPER_LINK.modulation})"
    ),
]


def checkpoint_dir_of(checkpoint: Path | None, pretrained: str | None, required: bool = True) -> Path | None:
    """The run folder named by ``--checkpoint`` or ``--pretrained`` (one of them; both is an error)."""
    if checkpoint is not None and pretrained is not None:
        raise InputError("give --checkpoint or --pretrained, not both")
    if pretrained is not None:
        from deeprx.runs.registry import record, resolve

        folder = resolve(pretrained)
        if superseded := record(pretrained).superseded:
            NOTES.append(f"note: {pretrained} is superseded by {superseded['by']}: {superseded['why']}")
        return folder
    if checkpoint is None and required:
        raise InputError("name a model: --checkpoint RUN_DIR or --pretrained NAME (deeprx pretrained list)")
    return checkpoint


def run_context(device: str | None) -> RunContext:
    """The command's run context, resolved here for every command: its device (``None``: auto) and, under
    torchrun, this rank's GPU and ranks. Everything the command calls receives it."""
    from deeprx.runtime import RunContext  # local: torch only once a command runs

    return RunContext.resolve(device or "auto")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as one line on stderr; the caller raises the returned exit."""
    one_line = " ".join(str(message).split())
    err_console.print(f"[red]error:[/red] {one_line}", highlight=False, soft_wrap=True, markup=True)
    return typer.Exit(code)


@contextlib.contextmanager
def guard() -> Iterator[Callable[[Path], Path]]:
    """Turn bad input and OS errors (disk full, read-only folder) into one line on stderr and exit code 2.

    Yields ``claim(out)``: call it once the arguments are checked and before any work, to check the output
    folder and lock it for this process until the command ends. ``NOTES`` gathered meanwhile are printed on stderr
    when the block succeeds and dropped when it fails.
    """
    # Under torchrun only rank 0 writes the output folder (train/ddp.py), so only it claims it.
    from deeprx.runtime import Ranks  # local: torch only once a command runs

    main = Ranks.from_env().main
    NOTES.clear()
    try:
        with contextlib.ExitStack() as claimed:
            yield lambda out: claimed.enter_context(claim_output_folder(out)) if main else out
        for note in NOTES:
            err_console.print(note, highlight=False, soft_wrap=True)
    except (ConfigError, InputError) as e:
        raise fail(str(e)) from None
    except KeyError as e:  # unknown preset or channel model, from the registries
        raise fail(str(e.args[0] if e.args else e)) from None
    except OSError as e:
        raise fail(os_error_message(e)) from None


def check_new_file(out: Path, force: bool, example_name: str) -> None:
    """``--out`` names a file to write: not a folder, not an existing file unless ``--force``, in a writable folder."""
    if out.is_dir():
        raise InputError(f"--out {out} is a folder; name the file to write, e.g. {out / example_name}")
    if out.exists() and not force:
        raise InputError(f"--out {out} exists; pass --force to replace it or choose another --out")
    check_writable_folder(out.parent)


def config_from(profile: str, sets: list[str] | None, **direct: Any) -> RunConfig:
    overrides = dict(parse_override(s) for s in sets or [])
    overrides.update({k: v for k, v in direct.items() if v is not None})
    return load_profile(profile).with_overrides(overrides)


def emit(data: Any, as_json: bool) -> bool:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    return as_json


def print_table(header: list[str], cells: list[list[str]], title: str) -> None:
    """A table of cells (from :mod:`deeprx.evaluate.summary`) on the console."""
    table = Table(title=title)
    for col in header:
        table.add_column(col)
    for row in cells:
        table.add_row(*row)
    console.print(table)


def print_coded(data: dict[str, Any]) -> None:
    """An evaluation's LLR calibration table, and its temperature fits where it made them (coded curves only)."""
    from deeprx.evaluate.ber import BerCurve
    from deeprx.evaluate.summary import CurveSummary, calibration_table, temperature_table

    curves = [BerCurve.from_dict(c) for c in data["curves"]]
    if not all(c.coded for c in curves):
        return
    print_table(*calibration_table(curves), "LLR calibration over all points: observed vs predicted error probability")
    if "temperature" in data:
        rows = [CurveSummary.from_dict(r) for r in data["summary"]]
        print_table(*temperature_table(rows, data["temperature"]), "Temperature scaling of the LLRs")


def print_summary(rows: list[dict[str, Any]], target_ber: float, title: str = "BER vs SINR summary") -> None:
    """Summary rows (:class:`deeprx.evaluate.summary.CurveSummary` as dicts) as the one summary table."""
    from deeprx.evaluate.summary import CurveSummary, flags, summary_table

    summaries = [CurveSummary.from_dict(r) for r in rows]
    print_table(*summary_table(summaries, target_ber), title)
    for flag in flags(summaries):
        console.print(f"[red]flag:[/red] {flag}")
