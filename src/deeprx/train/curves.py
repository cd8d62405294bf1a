"""Learning curves: a run's validation BER at its highest validation SINR vs training slots seen, beside LS-LMMSE
on the same validation slots, and the budgets read off them.

The trainer scores its fixed validation set at every checkpoint (``train.validation_slots`` slots per point,
:class:`deeprx.evaluate.validation.ValidationSet`) and keeps the scores in the checkpoint's log; a curve is read from
that log, so it costs no simulation. A point with no bit error has BER 0: it counts as reaching any target.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeprx.io import InputError
from deeprx.runs import checkpoint

# Budgets are read as "slots until the network first reaches this fraction of LS-LMMSE's BER at high SINR".
LS_FRACTIONS: tuple[float, ...] = (0.1, 0.01)
FLOOR_CHECKPOINTS = 3  # the floor: the mean validation BER of the run's last this many checkpoints


@dataclass(frozen=True)
class LearningCurve:
    """One run's validation BER at ``sinr_db`` at each checkpoint.

    Attributes:
        label: what the curve is (the run folder's name).
        model: the model preset.
        teacher: the KD teacher (run folder, shipped name or classical receiver), ``""`` from scratch.
        slots: training slots seen at each checkpoint (steps x batch size), increasing.
        ber: the network's validation BER at ``sinr_db`` at each checkpoint, same length as ``slots``.
        ls_ber: LS-LMMSE's BER on the same validation slots (fixed for the run).
        sinr_db: the highest validation SINR.
        validation_slots: slots of the validation set at that point.
        init_from: the checkpoint its weights started from (``train.init_from``), ``""`` for a fresh start.
    """

    label: str
    model: str
    teacher: str
    slots: list[int]
    ber: list[float]
    ls_ber: float
    sinr_db: float
    validation_slots: int
    init_from: str = ""

    @classmethod
    def from_log(
        cls, log: list[dict[str, Any]], batch_size: int, label: str, model: str, teacher: str, validation_slots: int
    ) -> LearningCurve:
        """The curve of a trainer log (its rows with ``val_ber``); ``InputError`` if it holds no validation."""
        rows = [r for r in log if "val_ber" in r]
        if not rows:
            raise InputError(f"{label}: its log has no validation yet; train it to a checkpoint first")
        return cls(
            label=label,
            model=model,
            teacher=teacher,
            slots=[r["step"] * batch_size for r in rows],
            ber=[r["val_ber"][-1] for r in rows],
            ls_ber=rows[-1]["val_ls_ber"][-1],
            sinr_db=rows[-1]["val_sinr_db"][-1],
            validation_slots=validation_slots,
        )

    @classmethod
    def of_run(cls, run_dir: Path) -> LearningCurve:
        """The curve of the checkpoint in ``run_dir`` (its JSON only; the tensors are not read)."""
        log = checkpoint.saved_log(run_dir)
        cfg = checkpoint.saved_config(run_dir)
        name = run_dir.resolve().name
        curve = cls.from_log(log, cfg.train.batch_size, name, cfg.model, cfg.kd.teacher, cfg.train.validation_slots)
        return dataclasses.replace(curve, init_from=cfg.train.init_from)

    def slots_to_reach(self, target_ber: float) -> int | None:
        """Slots seen at the first checkpoint whose BER is at or below ``target_ber``; ``None`` if none is."""
        return next((s for s, b in zip(self.slots, self.ber, strict=True) if b <= target_ber), None)

    def slots_to_stay(self, target_ber: float) -> int | None:
        """Slots seen at the first checkpoint from which every later one is at or below ``target_ber`` (a budget
        that a noisy crossing does not fool); ``None`` if the last one is above it."""
        settled = None
        for s, b in zip(reversed(self.slots), reversed(self.ber), strict=True):
            if b > target_ber:
                break
            settled = s
        return settled

    def slots_to_ls_fraction(self, fraction: float, stay: bool = False) -> int | None:
        """Slots seen until the network first reaches ``fraction`` x LS-LMMSE's BER (``stay``: and stays there)."""
        return (self.slots_to_stay if stay else self.slots_to_reach)(fraction * self.ls_ber)

    def slots_to_match(self, reference: LearningCurve) -> int | None:
        """Slots seen until this network first reaches ``reference``'s floor (e.g. a KD student against the floor
        of its scratch twin); ``None`` if it never does. Both curves should share their validation set."""
        return self.slots_to_reach(reference.floor_ber)

    @property
    def crossed(self) -> bool | None:
        """Whether the run ends below ``LS_FRACTIONS[0]`` x LS-LMMSE's BER and stays there (a student that has
        not is still learning, not a result); ``None`` where LS-LMMSE makes no error on the validation slots."""
        if self.ls_ber == 0:
            return None
        return self.slots_to_ls_fraction(LS_FRACTIONS[0], stay=True) is not None

    @property
    def final_ber(self) -> float:
        return self.ber[-1]

    @property
    def floor_ber(self) -> float:
        """The mean BER of the last ``FLOOR_CHECKPOINTS`` checkpoints: where the curve settles, less noisy than
        its last point."""
        tail = self.ber[-FLOOR_CHECKPOINTS:]
        return sum(tail) / len(tail)

    def summary(self) -> dict[str, Any]:
        """The curve's budgets as plain values, for tables and ``--json``."""
        return {
            "label": self.label,
            "model": self.model,
            "teacher": self.teacher,
            "sinr_db": self.sinr_db,
            "validation_slots": self.validation_slots,
            "slots_seen": self.slots[-1],
            "ls_ber": self.ls_ber,
            "slots_to_ls_fraction": {f"{f:g}": self.slots_to_ls_fraction(f) for f in LS_FRACTIONS},
            "slots_to_stay_at_ls_fraction": {f"{f:g}": self.slots_to_ls_fraction(f, stay=True) for f in LS_FRACTIONS},
            "final_ber": self.final_ber,
            "floor_ber": self.floor_ber,
            "floor_vs_ls": self.floor_ber / self.ls_ber if self.ls_ber > 0 else None,
            "crossed": self.crossed,
            "curve": {"slots": self.slots, "ber": self.ber},
        }
