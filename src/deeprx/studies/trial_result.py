"""What a study trial produced, typed: :class:`TrialResult`, and the two states of a trial in the store.

The store keeps a result as the JSON of :meth:`TrialResult.to_dict` (record format
:data:`deeprx.studies.store.RECORD_FORMAT`); :meth:`TrialResult.from_dict` reads every record a store of that
format holds, older ones included (fields added later take the value they stood for before they existed).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from deeprx.evaluate.ber import BerCurve
from deeprx.train.curves import LearningCurve


class TrialStatus(enum.Enum):
    """A trial in the store: ``RUNNING`` from its start until its result is written (a killed one stays so and
    resumes from its checkpoint), then ``DONE`` for good."""

    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class TrialRef:
    """A trial known only by its key: what a planning walk hands on for work not run yet, and what a read-only
    walk hands on for a trial the store does not hold (the chain records why)."""

    key: str


# Fields only an int8 (QAT) trial has, and fields it does not carry over from its fp32 source.
_QAT_ONLY = ("source", "qat")
_NOT_IN_QAT = ("validation_log", "shipped")


@dataclass(frozen=True)
class TrialResult:
    """One trained (or shipped) receiver scored on every slot of its study's test set.

    Attributes:
        key, role: the trial's store key and its role (``scratch``, ``teacher``, ``kd``, ``shipped student``,
            ``qat``).
        model: the preset; kd: the run's ``kd`` config where it distilled, else ``None``; dmrs_symbols.
        parameters: trainable parameters; trained_steps, slots_seen: its training (slots = steps x batch;
            ``None`` in records older than the field);
            init_from_slots_seen: slots behind the weights it started from (0: a fresh start).
        train_seconds: training wall time, s (``None``: a shipped receiver, trained elsewhere).
        testset: hash of the test set's key; curve: its BER curve there.
        geometric_mean_ber: log10 geometric-mean BER over the curve; sinr_at_target_db: SINR at the profile's
            target BER (``None``: not reached), dB; ber_at_max_sinr: the curve's floor.
        validation_log: the run's log records that hold a validation (``[]`` for an int8 trial).
        flops_per_slot: the network's convolution FLOPs per slot; all_flops_per_slot: every network FLOP;
            front_end: the input features; front_end_flops_per_slot: the front end's FLOPs per slot.
        metric0_joules_per_slot: metric-0 energy of network plus front end per slot, J, by processor key.
        shipped: the record of the shipped checkpoint it stands for, else ``None``.
        source, qat: for an int8 trial, its fp32 source's key and the QAT facts; else ``None``.
    """

    key: str
    role: str
    model: str
    kd: dict[str, Any] | None
    dmrs_symbols: int
    parameters: int
    trained_steps: int
    slots_seen: int | None
    init_from_slots_seen: int
    train_seconds: float | None
    testset: str
    curve: BerCurve
    geometric_mean_ber: float
    sinr_at_target_db: float | None
    ber_at_max_sinr: float
    flops_per_slot: float
    all_flops_per_slot: float
    front_end: str | None
    front_end_flops_per_slot: float
    metric0_joules_per_slot: dict[str, float]
    validation_log: list[dict[str, Any]] = field(default_factory=list)
    shipped: dict[str, Any] | None = None
    source: str | None = None
    qat: dict[str, Any] | None = None

    @property
    def teacher(self) -> str:
        """The KD teacher's reference, ``""`` for a receiver trained without one."""
        return (self.kd or {}).get("teacher", "")

    def named_curve(self, name: str | None = None) -> BerCurve:
        """Its curve, renamed ``name`` for plots and tables (a copy: the result stays as stored)."""
        curve = BerCurve.from_dict(self.curve.to_dict())
        if name is not None:
            curve.receiver = name
        return curve

    def learning_curve(self, validation_slots: int) -> LearningCurve:
        """Its learning curve from its validation log, each checkpoint validated on ``validation_slots`` slots
        (the config it was trained with says how many); the batch size is its own (slots seen / steps)."""
        batch_size = (self.slots_seen or 0) // max(1, self.trained_steps)
        return LearningCurve.from_log(self.validation_log, batch_size, self.key, self.model, self.teacher,
                                      validation_slots)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The stored record: every field by its name, the curve as :meth:`BerCurve.to_dict`; an int8 trial
        without ``validation_log`` and ``shipped``, any other without ``source`` and ``qat``."""
        left_out = _NOT_IN_QAT if self.qat is not None else _QAT_ONLY
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in left_out}
        return {**d, "curve": self.curve.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrialResult:
        """A stored record; one written before a field existed reads that field as it was then meant (no prior
        weights, no front-end FLOPs counted; slots seen and front end not recorded: ``None``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in d.items() if k in names}
        return cls(**{
            "init_from_slots_seen": 0,
            "front_end_flops_per_slot": 0.0,
            "slots_seen": None,
            "front_end": None,
            **known,
            "curve": BerCurve.from_dict(d["curve"]),
        })  # fmt: skip

    def as_int8(self, key: str, source: str, qat: dict[str, Any], curve: BerCurve, target_ber: float) -> TrialResult:
        """This fp32 result's int8 version, scored anew on the same slots: same network facts (FLOPs, energy:
        the same operations in int8), its own key, curve and QAT facts."""
        return dataclasses.replace(
            self,
            key=key,
            role="qat",
            source=source,
            qat=qat,
            curve=curve,
            geometric_mean_ber=curve.geometric_mean_ber(),
            sinr_at_target_db=curve.sinr_at_ber(target_ber),
            ber_at_max_sinr=curve.ber[-1],
            validation_log=[],
            shipped=None,
        )
