"""Where trained receivers live: the model-reference parser and the output layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from deeprx.io import InputError
from deeprx.runs import checkpoint, registry
from deeprx.runs.layout import OutputLayout
from deeprx.runs.reference import GENIE_TEACHER, RefKind, parse, trained_folder


def test_a_reference_is_classical_then_shipped_then_a_preset_then_a_path() -> None:
    assert parse(GENIE_TEACHER).kind is RefKind.CLASSICAL and not parse(GENIE_TEACHER).trained
    assert parse("cpu-teacher-broad-dmrs1").kind is RefKind.SHIPPED
    assert parse("dense_eighth").kind is RefKind.PRESET
    run = parse("out/runs/dense_eighth-0123")
    assert run.kind is RefKind.RUN and run.trained
    # what a trial key counts: the folder's own name, so a moved output folder keeps its keys
    assert run.name == "dense_eighth-0123" and parse("cpu-teacher-broad-dmrs1").name == "cpu-teacher-broad-dmrs1"


def test_trained_folder_takes_run_folders_and_shipped_names_only(tmp_path: Path) -> None:
    shipped = trained_folder("cpu-teacher-broad-dmrs1", "kd.teacher")
    assert shipped == registry.resolve("cpu-teacher-broad-dmrs1") and checkpoint.exists(shipped)
    for text in ("dense_eighth", GENIE_TEACHER, str(tmp_path / "nothing")):
        with pytest.raises(InputError, match=r"train.init_from '.*' is neither a run folder with a checkpoint"):
            trained_folder(text, "train.init_from")
    with pytest.raises(InputError, match="not trained weights"):
        parse("dense_eighth").folder()


def test_the_output_layout() -> None:
    layout = OutputLayout(Path("out"))
    assert layout.run("k") == Path("out/runs/k") and layout.holds_run(Path("out/runs/k"))
    assert not layout.holds_run(registry.WEIGHTS_DIR / "cpu-teacher-broad-dmrs1")
    assert (layout.store, layout.testsets) == (Path("out/studies.sqlite"), Path("out/testsets"))
    assert (layout.results, layout.study_results, layout.report) == (
        Path("out/results.json"), Path("out/reproduce.json"), Path("out/report.md"))  # fmt: skip
