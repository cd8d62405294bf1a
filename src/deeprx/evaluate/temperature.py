"""Temperature scaling of a receiver's LLRs: how far from calibrated they are, as one number.

A receiver's LLRs ``L`` are replaced by ``s * L`` with the one scale ``s`` that minimises their cross-entropy
against the true bits on a held-out test set (Guo et al. 2017, "On calibration of modern neural networks"):

    s* = argmin_s  sum_bits log2(1 + exp(-sign * s * L)),   sign = +1 for bit 1, -1 for bit 0.

``s* < 1``: over-confident (its LLRs claim more than they hold), ``s* > 1``: under-confident, ``s* = 1``:
calibrated in this sense. The loss is convex in ``s``; it is summed on a geometric grid of scales in one pass
over the held-out slots (:data:`SCALE_GRID`) and its minimum refined by a parabola through the three grid points
around it (in log s). The fitted scale is then applied on the test slots (:func:`scaled`), which says whether
calibration changes a receiver's BLER (a BP decoder with sum-product check nodes is not scale-invariant; min-sum
would be).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from deeprx.link.simulator import Slot
from deeprx.link.testset import TestSet
from deeprx.receivers import Receiver

# 1/8 .. 8 in steps of 2^(1/12) (6 %): LS-LMMSE's LLRs at 20-40 m/s with one pilot symbol are over-confident by
# orders of magnitude in their top bins, yet their best single scale stays inside this range.
SCALE_GRID = tuple(2.0 ** (k / 12) for k in range(-36, 37))


def scaled_loss_bits(llr: torch.Tensor, bits: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """``sum log2(1 + exp(-sign * s * L))`` over every bit, for every scale ``s`` of ``scales`` (``[n_scales]``).

    ``llr``, ``bits``: any equal shapes; returns ``[n_scales]`` float64 on the CPU."""
    margin = ((2.0 * bits.to(llr.device, torch.float64) - 1.0) * llr.double()).flatten()  # [n_bits]
    scales = scales.to(llr.device, torch.float64)
    # one scale at a time: a [n_scales, n_bits] tensor of a test set's batch would be needlessly large
    return torch.stack([F.softplus(-s * margin).sum() for s in scales]).cpu() / math.log(2.0)


@dataclass(frozen=True)
class TemperatureFit:
    """One receiver's fitted LLR scale on a held-out set of ``bits`` coded bits, with the cross-entropy (bits per
    coded bit) of its LLRs as they are and scaled; ``held_out_seed``: the test-set seed it was fitted on."""

    scale: float
    loss_bits: float
    scaled_loss_bits: float
    bits: int
    held_out_seed: int

    @classmethod
    def of(cls, losses: torch.Tensor, bits: int, held_out_seed: int) -> TemperatureFit:
        """The fit from the summed losses on :data:`SCALE_GRID` (``[len(SCALE_GRID)]``)."""
        grid = torch.tensor(SCALE_GRID, dtype=torch.float64)
        i = int(torch.argmin(losses))
        log_scale = math.log(SCALE_GRID[i])
        if 0 < i < len(SCALE_GRID) - 1:  # a parabola through the minimum and its neighbours, in log s
            left, mid, right = (float(v) for v in losses[i - 1 : i + 2])
            curvature = left - 2 * mid + right
            if curvature > 0:
                step = math.log(SCALE_GRID[1] / SCALE_GRID[0])
                log_scale += 0.5 * step * (left - right) / curvature
        scale = math.exp(log_scale)
        unit = int(torch.argmin((grid - 1.0).abs()))  # the grid holds s = 1 exactly
        return cls(scale, float(losses[unit]) / bits, float(losses.min()) / bits, bits, held_out_seed)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def fit_temperatures(
    receivers: dict[str, Receiver],
    held_out: TestSet,
    batch_size: int,
    device: torch.device,
    held_out_seed: int,
) -> dict[str, TemperatureFit]:
    """Every receiver's :class:`TemperatureFit` over all slots and SINR points of ``held_out`` (one scale per
    receiver, not per SINR: a deployed receiver does not know the SINR its scale was fitted at)."""
    grid = torch.tensor(SCALE_GRID, dtype=torch.float64)
    losses = {n: torch.zeros(len(SCALE_GRID), dtype=torch.float64) for n in receivers}
    bits = dict.fromkeys(receivers, 0)
    with torch.no_grad():
        for p in range(len(held_out.sinr_points_db)):
            for slot in held_out.batches(p, batch_size, device):
                for name, receiver in receivers.items():
                    losses[name] += scaled_loss_bits(receiver(slot), slot.bits, grid)
                    bits[name] += slot.bits.numel()
    return {n: TemperatureFit.of(losses[n], bits[n], held_out_seed) for n in receivers}


def scaled_name(receiver: str, scale: float) -> str:
    """The name of ``receiver``'s temperature-scaled curve: ``LS-LMMSE, LLRs x 0.52``."""
    return f"{receiver}, LLRs x {scale:.2f}"


def scaled(receiver: Receiver, scale: float) -> Receiver:
    """``receiver`` with its LLRs multiplied by ``scale``."""

    def run(slot: Slot) -> torch.Tensor:
        return scale * receiver(slot)

    return run


def reusing_last(receiver: Receiver) -> Receiver:
    """``receiver``, run once per batch: a second call with the same slot object (its scaled twin's, in the same
    :func:`deeprx.evaluate.ber.evaluate` pass) gets the LLRs already computed."""
    last: list[tuple[Slot, torch.Tensor]] = []

    def run(slot: Slot) -> torch.Tensor:
        if not last or last[0][0] is not slot:
            last[:] = [(slot, receiver(slot))]
        return last[0][1]

    return run
