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
