"""The layout of an output folder (``--out``), written down once.

``OUT/runs/<trial key>/`` holds each trained trial's run folder, ``OUT/testsets/`` the test sets (HDF5, rebuilt
from their seed when missing), ``OUT/studies.sqlite`` the store of results (:mod:`deeprx.studies.store`); the main
job writes ``results.json`` and ``report.md``, a study ``reproduce.json`` and ``report.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OutputLayout:
    """The paths inside the output folder ``root``."""

    root: Path

    def run(self, key: str) -> Path:
        """The run folder of the trial ``key``."""
        return self.runs / key

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def holds_run(self, folder: Path) -> bool:
        """Whether ``folder`` is a run folder of this output folder (a teacher trained here, not a shipped one)."""
        return folder.parent == self.runs

    @property
    def testsets(self) -> Path:
        return self.root / "testsets"

    @property
    def store(self) -> Path:
        return self.root / "studies.sqlite"

    @property
    def results(self) -> Path:
        """The main job's results (``deeprx run``)."""
        return self.root / "results.json"

    @property
    def study_results(self) -> Path:
        """A study's results (``deeprx reproduce``)."""
        return self.root / "reproduce.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"
