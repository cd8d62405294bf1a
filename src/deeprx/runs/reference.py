"""What a model reference names: a classical receiver, a shipped receiver, a model preset or a run folder.

Wherever a command or a config names a model (``kd.teacher``, ``train.init_from``, ``deeprx compare A B``, a study's
teacher), :func:`parse` decides what the text is, in one order: the name of a classical receiver, then of a
shipped receiver (:mod:`deeprx.runs.registry`), then of a preset (:mod:`deeprx.models.registry`), else a path to
a run folder. Callers say which kinds they accept and what to do when the folder holds no checkpoint.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from deeprx.io import InputError
from deeprx.runs import registry

# Classical receivers as teachers (their max-log LLRs): the probes of "is the teacher good enough". The genie
# (perfect-CSI LMMSE) sees the true channel, which the student never does (privileged-information distillation);
# LS-LMMSE sees what the student sees.
GENIE_TEACHER = "genie-perfect-csi-lmmse"
LS_LMMSE_TEACHER = "ls-lmmse"
CLASSICAL_NAMES: tuple[str, ...] = (GENIE_TEACHER, LS_LMMSE_TEACHER)


class RefKind(enum.Enum):
    CLASSICAL = "classical receiver"
    SHIPPED = "shipped receiver"
    PRESET = "model preset"
    RUN = "run folder"


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference: the ``text`` as given and the ``kind`` it names."""

    text: str
    kind: RefKind

    @property
    def name(self) -> str:
        """The reference without where it lies: a run folder's own name (what a trial key counts, so an output
        folder can move), else the text."""
        return Path(self.text).name if self.kind is RefKind.RUN else self.text

    @property
    def trained(self) -> bool:
        """Whether it names trained weights (a run folder or a shipped receiver)."""
        return self.kind in (RefKind.RUN, RefKind.SHIPPED)

    def folder(self) -> Path:
        """The run folder of trained weights: a shipped receiver's (hash-checked) or the path itself."""
        if self.kind is RefKind.SHIPPED:
            return registry.resolve(self.text)
        if self.kind is RefKind.RUN:
            return Path(self.text)
        raise InputError(f"{self.text!r} is a {self.kind.value}, not trained weights; name a run folder or a "
                         "shipped receiver (deeprx pretrained list)")  # fmt: skip


def parse(text: str) -> ModelRef:
    """What ``text`` names (the module docstring's order)."""
    from deeprx.models.registry import is_model  # local: torch only once a preset may be named

    if text in CLASSICAL_NAMES:
        return ModelRef(text, RefKind.CLASSICAL)
    if registry.is_pretrained(text):
        return ModelRef(text, RefKind.SHIPPED)
    if is_model(text):
        return ModelRef(text, RefKind.PRESET)
    return ModelRef(text, RefKind.RUN)


def trained_folder(text: str, what: str) -> Path:
    """The run folder of ``text``, which must name trained weights (a run folder with a checkpoint or a shipped
    receiver); else one line naming ``what`` was given."""
    from deeprx.runs import checkpoint

    ref = parse(text)
    if not ref.trained or not checkpoint.exists(folder := ref.folder()):
        raise InputError(f"{what} {text!r} is neither a run folder with a checkpoint nor a shipped receiver "
                         "(deeprx pretrained list)")  # fmt: skip
    return folder
