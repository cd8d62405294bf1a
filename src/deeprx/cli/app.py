"""The ``deeprx`` application: the command groups put together, and the console script's entry point."""

from __future__ import annotations

import os

import typer

from deeprx.cli.common import fail
from deeprx.cli.energy import app as energy_app
from deeprx.cli.inference import app as inference_app
from deeprx.cli.pretrained import app as pretrained_app
from deeprx.cli.run import app as run_app

# Two CPU-heavy processes on a small machine stall each other when OpenMP threads spin while they wait
# (measured: see docs/architecture.md, "Threads"). Set here, before any command imports torch (and with it
# its OpenMP runtime, which reads this once); a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Energy-efficient neural 5G receivers.")
app.add_typer(run_app)
app.add_typer(inference_app)
app.add_typer(pretrained_app, name="pretrained")
app.add_typer(energy_app, name="energy")


def main() -> None:
    """The ``deeprx`` entry point: usage errors (unknown option, a value of the wrong type) print one line too."""
    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="deeprx", standalone_mode=False)
    except typer.Abort:
        raise SystemExit(fail("interrupted", 130).exit_code) from None
    except typer.TyperException as e:  # click's exceptions, as typer vendors them
        if type(e).__name__ == "NoArgsIsHelpError":  # bare ``deeprx`` or ``deeprx energy``: the help
            e.show()
            raise SystemExit(0) from None
        ctx = getattr(e, "ctx", None)
        hint = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
        raise SystemExit(fail(f"{e.format_message()}{hint}", getattr(e, "exit_code", 2)).exit_code) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
