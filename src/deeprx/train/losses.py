"""Training losses over the data REs."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_bce(logits: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over every bit of every data RE.

    Args:
        logits: ``[batch, n_data_re, bits_per_symbol]`` float (> 0 means bit 1), already restricted to
            the data REs (pilot REs carry no bits, so they never enter the loss).
        bits: labels, same shape, float in {0, 1}.

    Returns:
        Scalar float32, in nats per bit.
    """
    return F.binary_cross_entropy_with_logits(logits.float(), bits)
