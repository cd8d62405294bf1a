"""Knowledge distillation: the student's training loss given a frozen teacher checkpoint (paper Sec. III-B).

Beyond the paper's output KD: Sobolev KD (the teacher's input-gradients) and feature KD (the outputs of the
residual blocks in :data:`HINT_BLOCKS`, through 1x1 adapters trained with the student: :class:`FeatureHints`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deeprx.config import RunConfig, derive_seed
from deeprx.io import InputError, sha256_file
from deeprx.link.baselines import LS_LMMSE, PERFECT_CSI_LMMSE
from deeprx.link.simulator import Slot, UplinkSimulator
from deeprx.models.deeprx import DeepRx
from deeprx.models.registry import create_model
from deeprx.receivers import NetworkInput, NeuralReceiver, load_receiver
from deeprx.runs import checkpoint
from deeprx.runs.reference import GENIE_TEACHER, LS_LMMSE_TEACHER, RefKind, parse
from deeprx.train.losses import annealed_kd_weight, hint_term, kd_loss, sobolev_term

# The teacher runs on the student's link (its front end built for it): only what its weights fix must match.
TEACHER_MUST_MATCH = ("link.n_rx", "link.modulation")
# Teachers that are not networks (deeprx.runs.reference): classical receivers' max-log LLRs; with 2 DMRS symbols
# LS-LMMSE beats a briefly trained DeepRx by far.
CLASSICAL_TEACHERS: dict[str, str] = {  # name -> receiver, as keyed in baseline_receivers
    GENIE_TEACHER: PERFECT_CSI_LMMSE,
    LS_LMMSE_TEACHER: LS_LMMSE,
}

# Feature KD regresses the outputs of these residual blocks: the central one (6th of 11: the widest, with the
# largest dilation) and the last (what the output layer reads). Every preset has the reference's 11 blocks.
HINT_BLOCKS: tuple[int, ...] = (5, 10)

TeacherLogits = Callable[[Slot, NetworkInput], torch.Tensor]
# (slot, name, compute) -> compute(), possibly kept from an earlier call with this slot and name
# (:meth:`deeprx.link.batches.BatchCache.derived`).
Memo = Callable[[Slot, str, Callable[[], torch.Tensor]], torch.Tensor]


def load_teacher(cfg: RunConfig, simulator: UplinkSimulator) -> tuple[TeacherLogits, dict[str, Any]]:
    """The frozen teacher named by ``cfg.kd.teacher`` as ``(slot, x) -> logits`` and facts to record.

    ``x`` is the student's front-end output; a network teacher with other input features builds its own from
    the student's ``simulator`` (the run's one simulator, on the run's device).

    ``cfg.kd.teacher`` is a run folder (a DeepRx checkpoint, used in eval mode without gradients), the name
    of a shipped checkpoint (:mod:`deeprx.runs.registry`) or a name in :data:`CLASSICAL_TEACHERS`. Logits are
    ``[batch, n_data_re, bits_per_symbol]`` float32, > 0 means bit 1.
    """
    teacher_ref = parse(cfg.kd.teacher)
    if teacher_ref.kind is RefKind.CLASSICAL:
        from deeprx.link.baselines import baseline_receivers  # local: Sionna blocks only when asked for

        receiver_name = CLASSICAL_TEACHERS[cfg.kd.teacher]
        receiver = baseline_receivers(simulator)[receiver_name]

        def classical_logits(slot: Slot, x: NetworkInput) -> torch.Tensor:
            return receiver(slot)

        facts = {"teacher_model": receiver_name, "teacher_step": 0, "teacher_sha256": cfg.kd.teacher}
        return classical_logits, facts
    teacher_dir = teacher_ref.folder() if teacher_ref.trained else Path(cfg.kd.teacher)
    if not checkpoint.exists(teacher_dir):
        raise InputError(
            f"no teacher checkpoint in {teacher_dir}; train the teacher first (deeprx train), "
            f"name a shipped one (deeprx pretrained list) or a classical teacher: {', '.join(CLASSICAL_TEACHERS)}"
        )
    teacher, ckpt = load_receiver(teacher_dir, simulator.device, simulator=simulator)
    checkpoint.check_compatible(ckpt.config, cfg, TEACHER_MUST_MATCH)  # before the teacher ever runs
    teacher.model.eval().requires_grad_(False)
    if cfg.train.channels_last:  # the student's layout: a separable teacher's forward 2.3x faster on 2 CPU cores
        teacher.model.to(memory_format=torch.channels_last)
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


class FeatureHints(torch.nn.Module):
    """Feature KD's 1x1 adapters, one per block of :data:`HINT_BLOCKS` (student width -> teacher width), and
    :meth:`capture`, which collects those blocks' outputs during a forward pass.

    The adapters train with the student (the trainer optimises and checkpoints a loss's ``auxiliary``) and are
    dropped afterwards: the shipped student is the network alone.
    """

    def __init__(self, student_widths: tuple[int, ...], teacher_widths: tuple[int, ...], device: torch.device):
        super().__init__()
        if len(student_widths) != len(teacher_widths):
            raise InputError(f"feature KD needs as many residual blocks in the student ({len(student_widths)}) "
                             f"as in the teacher ({len(teacher_widths)}); set kd.feature_weight=0")  # fmt: skip
        self.adapters = torch.nn.ModuleList(
            torch.nn.Conv2d(student_widths[i], teacher_widths[i], 1) for i in HINT_BLOCKS
        ).to(device)

    @staticmethod
    @contextlib.contextmanager
    def capture(model: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
        """The outputs of ``model``'s blocks in :data:`HINT_BLOCKS`, in order, appended as it runs (a DDP wrapper
        is looked through); the hooks are removed on exit."""
        net: DeepRx = getattr(model, "module", model)
        outputs: list[torch.Tensor] = []
        handles = [net.blocks[i].register_forward_hook(lambda _m, _i, out: outputs.append(out)) for i in HINT_BLOCKS]
        try:
            yield outputs
        finally:
            for handle in handles:
                handle.remove()


class DistillationLoss:
    """The step loss ``(student receiver, slot) -> L / c`` of paper eq. (2) with this project's options.

    ``L = alpha * BCE + w(progress) * L_KD [+ sobolev_weight * S] [+ feature_weight * H]`` (see
    :func:`deeprx.train.losses.kd_loss`, :func:`~deeprx.train.losses.sobolev_term` and
    :func:`~deeprx.train.losses.hint_term`); ``w`` is the teacher-annealing weight. ``c = alpha + u``
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
        self.auxiliary: FeatureHints | None = None  # trained beside the student (see FeatureHints)
        if cfg.kd.feature_weight > 0:
            if not isinstance(teacher, NetworkTeacher):
                raise InputError(f"kd.feature_weight > 0 needs a network teacher, not {cfg.kd.teacher!r}; "
                                 "set kd.feature_weight=0 or name a teacher checkpoint")  # fmt: skip
            student = create_model(cfg.model, cfg.link.n_rx, cfg.link.bits_per_symbol)  # its widths
            widths = (student.config.channels, teacher.receiver.model.config.channels)
            self.auxiliary = FeatureHints(*widths, next(teacher.receiver.model.parameters()).device)

    def set_step(self, step: int) -> None:
        self.step = step

    def __call__(self, student: NeuralReceiver, slot: Slot) -> torch.Tensor:
        kd = self.kd
        x = student.front_end.prepare(slot)
        hints = self.auxiliary
        if hints is not None:  # the teacher's activations are needed too: it runs (no memo)
            assert isinstance(self.teacher, NetworkTeacher)
            with FeatureHints.capture(self.teacher.receiver.model) as teacher_features:
                teacher_logits = self.teacher(slot, x)
        elif self.memo is None:
            teacher_logits = self.teacher(slot, x)
        else:
            precision = "bf16" if torch.is_autocast_enabled(slot.device.type) else "fp32"
            name = f"{self.memo_name} {precision}"
            teacher_logits = self.memo(slot, name, lambda: self.teacher(slot, x))
        with FeatureHints.capture(student.model) if hints is not None else contextlib.nullcontext([]) as features:
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
        if hints is not None:
            loss = loss + kd.feature_weight * hint_term(features, teacher_features, hints.adapters)
        n_bits = slot.bits[0].numel()
        return loss / (kd.alpha + (n_bits if kd.scaling == "paper" else kd.temperature**2))


def distillation_loss(
    cfg: RunConfig, simulator: UplinkSimulator, memo: Memo | None = None
) -> tuple[DistillationLoss, dict[str, Any]]:
    """The distillation step loss for ``cfg`` (teacher on the run's ``simulator``) and the teacher's facts;
    ``memo`` keeps the teacher's outputs per batch for the other students that draw the same batches."""
    teacher, facts = load_teacher(cfg, simulator)
    return DistillationLoss(cfg, teacher, facts["teacher_sha256"], memo), facts
