"""The ``deeprx`` command line: a package that parses, calls the library and prints.

``app`` (the typer application) and ``main`` (the console script) live in :mod:`deeprx.cli.app`; the commands
live by topic in ``run``, ``inference``, ``pretrained`` and ``energy``, and what they share in ``common``.
"""

from deeprx.cli.app import app, main

__all__ = ["app", "main"]
