"""Knowledge distillation: the student's training loss given a frozen teacher checkpoint (paper Sec. III-B)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deeprx import pretrained
from deeprx.config import RunConfig, derive_seed
from deeprx.io import InputError, sha256_file
from deeprx.link.baselines import LS_LMMSE, PERFECT_CSI_LMMSE
from deeprx.link.simulator import Slot, UplinkSimulator
from deeprx.receivers import NetworkInput, NeuralReceiver, load_receiver
from deeprx.train import checkpoint
from deeprx.train.losses import annealed_kd_weight, kd_loss, sobolev_term

# The teacher runs on the student's link (its front end built for it): only what its weights fix must match.
TEACHER_MUST_MATCH = ("link.n_rx", "link.modulation")
# Teachers that are not networks: classical receivers' max-log LLRs, the probes of "is the teacher good
# enough". The genie (perfect-CSI LMMSE) sees the true channel, which the student never does
# (privileged-information distillation); LS-LMMSE sees what the student sees and, with 2 DMRS symbols,
# beats a briefly trained DeepRx by far.
GENIE_TEACHER = "genie-perfect-csi-lmmse"
LS_LMMSE_TEACHER = "ls-lmmse"
CLASSICAL_TEACHERS: dict[str, str] = {  # name -> receiver, as keyed in baseline_receivers
    GENIE_TEACHER: PERFECT_CSI_LMMSE,
    LS_LMMSE_TEACHER: LS_LMMSE,
}

TeacherLogits = Callable[[Slot, NetworkInput], torch.Tensor]
# (slot, name, compute) -> compute(), possibly kept from an earlier call with this slot and name
# (:meth:`deeprx.train.trainer.BatchCache.derived`).
Memo = Callable[[Slot, str, Callable[[], torch.Tensor]], torch.Tensor]


def load_teacher(cfg: RunConfig, simulator: UplinkSimulator) -> tuple[TeacherLogits, dict[str, Any]]:
    """The frozen teacher named by ``cfg.kd.teacher`` as ``(slot, x) -> logits`` and facts to record.

    ``x`` is the student's front-end output; a network teacher with other input features builds its own from
    the student's ``simulator`` (the run's one simulator, on the run's device).

    ``cfg.kd.teacher`` is a run folder (a DeepRx checkpoint, used in eval mode without gradients), the name
    of a shipped checkpoint (:mod:`deeprx.pretrained`) or a name in :data:`CLASSICAL_TEACHERS`. Logits are
    ``[batch, n_data_re, bits_per_symbol]`` float32, > 0 means bit 1.
    """
    if cfg.kd.teacher in CLASSICAL_TEACHERS:
        from deeprx.link.baselines import baseline_receivers  # local: Sionna blocks only when asked for

        receiver_name = CLASSICAL_TEACHERS[cfg.kd.teacher]
        receiver = baseline_receivers(simulator)[receiver_name]

        def classical_logits(slot: Slot, x: NetworkInput) -> torch.Tensor:
            return receiver(slot)

        facts = {"teacher_model": receiver_name, "teacher_step": 0, "teacher_sha256": cfg.kd.teacher}
        return classical_logits, facts
    shipped = pretrained.is_pretrained(cfg.kd.teacher)
    teacher_dir = pretrained.resolve(cfg.kd.teacher) if shipped else Path(cfg.kd.teacher)
    if not checkpoint.exists(teacher_dir):
        raise InputError(
            f"no teacher checkpoint in {teacher_dir}; train the teacher first (deeprx train), "
            f"name a shipped one (deeprx pretrained list) or a classical teacher: {', '.join(CLASSICAL_TEACHERS)}"
        )
    teacher, ckpt = load_receiver(teacher_dir, simulator.device, simulator=simulator)
    checkpoint.check_compatible(ckpt.config, cfg, TEACHER_MUST_MATCH)  # before the teacher ever runs
    teacher.model.eval().requires_grad_(False)
    same_input = ckpt.config.features == cfg.features  # then the student's input is the teacher's too
    facts = {
        "teacher_model": ckpt.config.model,
        "teacher_step": ckpt.step,
        "teacher_sha256": sha256_file(teacher_dir / checkpoint.TENSORS),
    }

    return NetworkTeacher(teacher, same_input), facts


@dataclass
class NetworkTeacher:
    """A frozen DeepRx teacher as :data:`TeacherLogits`; ``same_input``: it reads the student's front-end output
    (then its network is also what Sobolev KD differentiates)."""

    receiver: NeuralReceiver
    same_input: bool

    @torch.no_grad()
    def __call__(self, slot: Slot, x: NetworkInput) -> torch.Tensor:
        return self.receiver.logits(slot, x if self.same_input else None)


class DistillationLoss:
    """The step loss ``(student receiver, slot) -> L / c`` of paper eq. (2) with this project's options.

    ``L = alpha * BCE + w(progress) * L_KD [+ sobolev_weight * S]`` (see :func:`deeprx.train.losses.kd_loss`
    and :func:`~deeprx.train.losses.sobolev_term`); ``w`` is the teacher-annealing weight. ``c = alpha + u``
    (``u`` = bits per slot for ``paper`` scaling, ``T^2`` for ``mean``) is a constant: AdamW is invariant to
    it, but it keeps gradient clipping acting as it does for training from scratch.

    The trainer calls :meth:`set_step` before each step: the annealing weight and the Sobolev directions
    (seeded from the run's seed and the step, so a resumed run draws the same ones) depend on it.
    """

    def __init__(self, cfg: RunConfig, teacher: TeacherLogits, teacher_id: str = "", memo: Memo | None = None) -> None:
        self.kd, self.seed, self.total_steps = cfg.kd, cfg.seed, cfg.train.steps
        self.teacher = teacher
        # The teacher's outputs depend on the slot, the teacher (its tensors' hash, or a classical receiver's
        # name), the input features it is given and the precision; ``memo`` keeps them per slot under this name.
        self.memo_name = f"teacher {teacher_id} {cfg.features}"
        self.memo = memo if teacher_id else None
        self.step = 0
        if cfg.kd.sobolev_weight > 0 and not (isinstance(teacher, NetworkTeacher) and teacher.same_input):
            raise InputError(
                "kd.sobolev_weight > 0 needs a network teacher with the student's input features "
                f"({cfg.features}); set kd.sobolev_weight=0 or choose such a teacher"
            )

    def set_step(self, step: int) -> None:
        self.step = step

    def __call__(self, student: NeuralReceiver, slot: Slot) -> torch.Tensor:
        kd = self.kd
        x = student.front_end.prepare(slot)
        if self.memo is None:
            teacher_logits = self.teacher(slot, x)
        else:
            precision = "bf16" if torch.is_autocast_enabled(slot.device.type) else "fp32"
            name = f"{self.memo_name} {precision}"
            teacher_logits = self.memo(slot, name, lambda: self.teacher(slot, x))
        student_logits = student.logits(slot, x)
        weight = annealed_kd_weight(self.step / max(1, self.total_steps - 1), kd.anneal)
        loss, _ = kd_loss(student_logits, teacher_logits, slot.bits, kd.alpha, kd.temperature, kd.scaling,
                          kd.term, kd.mask, kd.confidence, weight)  # fmt: skip
        if kd.sobolev_weight > 0:
            assert isinstance(self.teacher, NetworkTeacher)
            generator = torch.Generator(slot.device).manual_seed(derive_seed(self.seed, "sobolev", self.step))
            loss = loss + kd.sobolev_weight * sobolev_term(
                student.model, self.teacher.receiver.model, x.z, kd.sobolev_directions, generator
            )
        n_bits = slot.bits[0].numel()
        return loss / (kd.alpha + (n_bits if kd.scaling == "paper" else kd.temperature**2))


def distillation_loss(
    cfg: RunConfig, simulator: UplinkSimulator, memo: Memo | None = None
) -> tuple[DistillationLoss, dict[str, Any]]:
    """The distillation step loss for ``cfg`` (teacher on the run's ``simulator``) and the teacher's facts;
    ``memo`` keeps the teacher's outputs per batch for the other students that draw the same batches."""
    teacher, facts = load_teacher(cfg, simulator)
    return DistillationLoss(cfg, teacher, facts["teacher_sha256"], memo), facts
