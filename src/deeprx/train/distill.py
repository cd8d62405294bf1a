"""Knowledge distillation: the student's training loss given a frozen teacher checkpoint (paper Sec. III-B)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from deeprx import pretrained
from deeprx.config import RunConfig
from deeprx.io import InputError, sha256_file
from deeprx.link.baselines import LS_LMMSE, PERFECT_CSI_LMMSE
from deeprx.link.simulator import Slot, UplinkSimulator
from deeprx.receivers import NetworkInput, NeuralReceiver, load_receiver
from deeprx.train import checkpoint
from deeprx.train.losses import kd_loss

TEACHER_MUST_MATCH = ("link.n_rx", "link.modulation", "link.n_prb", "link.dmrs_symbols")
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

    @torch.no_grad()
    def network_logits(slot: Slot, x: NetworkInput) -> torch.Tensor:
        return teacher.logits(slot, x if same_input else None)

    return network_logits, facts


def distillation_loss(cfg: RunConfig, simulator: UplinkSimulator) -> tuple[Any, dict[str, Any]]:
    """The step loss ``(student receiver, slot) -> L / c`` of paper eq. (2) and the teacher's facts.

    ``c = alpha + w`` (``w`` = bits per slot for ``paper`` scaling, ``T^2`` for ``mean``) is a constant:
    AdamW is invariant to it, but it keeps gradient clipping acting as it does for training from scratch.
    """
    teacher, facts = load_teacher(cfg, simulator)
    kd = cfg.kd
    n_bits = None

    def loss_fn(student: NeuralReceiver, slot: Slot) -> torch.Tensor:
        nonlocal n_bits
        x = student.front_end.prepare(slot)
        teacher_logits = teacher(slot, x)
        student_logits = student.logits(slot, x)
        loss, _ = kd_loss(student_logits, teacher_logits, slot.bits, kd.alpha, kd.temperature, kd.scaling)
        n_bits = n_bits or slot.bits[0].numel()
        weight = n_bits if kd.scaling == "paper" else kd.temperature**2
        return loss / (kd.alpha + weight)

    return loss_fn, facts
