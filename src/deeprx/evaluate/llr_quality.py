"""How good a receiver's LLRs are as LLRs, not only as hard decisions.

The bit-metric decoding (BMD) rate is the rate a BICM decoder that treats the bits of a symbol independently
can achieve with these LLRs, estimated from the true bits (the mismatched-decoding lower bound):

    R_BMD = q * (1 - E[log2(1 + exp(-s * L))])  bits per channel use,  s = +1 for bit 1, -1 for bit 0,

with ``q`` bits per QAM symbol and ``L`` the logit (> 0: bit 1). Perfectly confident right LLRs give ``q``;
LLRs of 0 give 0; over-confident wrong ones make it negative (they cost more than they carry), which uncoded BER
cannot show.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def bmd_loss_bits(llr: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Per slot, ``sum log2(1 + exp(-s * L))`` over its coded bits. ``llr``, ``bits``: ``[batch, n_data_re, q]``;
    returns ``[batch]`` float64 on ``llr``'s device."""
    sign = 2.0 * bits.to(llr.device, torch.float64) - 1.0
    return F.softplus(-sign * llr.double()).sum(dim=(1, 2)) / math.log(2.0)


def bmd_rate(loss_bits: float, n_bits: int, bits_per_symbol: int) -> float:
    """The BMD rate in bits per channel use from the summed :func:`bmd_loss_bits` over ``n_bits`` coded bits."""
    return bits_per_symbol * (1.0 - loss_bits / n_bits)


# Bin edges of |LLR| for the calibration check: a calibrated LLR L is wrong with probability 1 / (1 + e^|L|),
# 0.5 at 0, 0.12 at 2, 0.018 at 4, 3.4e-4 at 8; the last bin holds everything above 16 (errors below 1e-7).
CALIBRATION_EDGES = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)


def calibration_counts(llr: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Per bin of |LLR| (:data:`CALIBRATION_EDGES`, the last open above): the bits, the hard-decision errors, and
    the sum of the predicted error probabilities ``1 / (1 + e^|L|)``, as ``[3, n_bins]`` float64 on the CPU."""
    # binned where the LLRs are (the run's device): only the [3, n_bins] counts come back
    magnitude = llr.detach().abs().double().flatten()
    wrong = ((llr > 0) != bits.to(llr.device).bool()).flatten().double()
    edges = torch.tensor(CALIBRATION_EDGES, dtype=torch.float64, device=llr.device)
    index = torch.bucketize(magnitude, edges[1:], right=True)  # 0 .. n_bins - 1
    out = torch.zeros(3, len(CALIBRATION_EDGES), dtype=torch.float64, device=llr.device)
    out[0].index_add_(0, index, torch.ones_like(magnitude))
    out[1].index_add_(0, index, wrong)
    out[2].index_add_(0, index, torch.sigmoid(-magnitude))
    return out.cpu()
