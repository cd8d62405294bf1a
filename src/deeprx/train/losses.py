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


def bernoulli_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(Bern(p) || Bern(q))`` per bit, ``p = sigmoid(z_t/T)``, ``q = sigmoid(z_s/T)``, in nats.

    Both terms, ``p log(p/q) + (1-p) log((1-p)/(1-q))``, from log-sigmoids so large logits stay finite.
    (``F.kl_div`` on sigmoid outputs keeps only the first term: it is not a Bernoulli KL.)

    Args:
        teacher_logits, student_logits: same shape, float.
    Returns:
        Elementwise KL, same shape, float32, >= 0 and 0 where the logits are equal.
    """
    zt, zs = teacher_logits.float() / temperature, student_logits.float() / temperature
    p = torch.sigmoid(zt)
    log_p, log_1mp = F.logsigmoid(zt), F.logsigmoid(-zt)
    log_q, log_1mq = F.logsigmoid(zs), F.logsigmoid(-zs)
    return p * (log_p - log_q) + (1 - p) * (log_1mp - log_1mq)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    bits: torch.Tensor,
    alpha: float,
    temperature: float,
    scaling: str,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Paper eq. (2): ``L = alpha * L_student + L_KD`` over the data REs.

    ``L_student`` is the per-bit mean BCE against the labels. ``L_KD`` is the Bernoulli KL between the
    teacher's and the student's softened outputs, reduced by ``scaling``:

    * ``paper``: summed over all bits of a slot, averaged over slots (no ``T^2``). With a per-bit-mean
      ``L_student`` this is the only reduction under which the paper's alpha (0.1 to 1e6) spans the range
      from "KD dominates" to "labels dominate".
    * ``mean``: per-bit mean times Hinton's ``T^2``, which keeps gradient sizes comparable across ``T``.

    Args:
        student_logits, teacher_logits: ``[batch, n_data_re, bits_per_symbol]`` float.
        bits: labels, same shape, float in {0, 1}.

    Returns:
        The loss (scalar) and its parts as floats: ``student`` (BCE, nats/bit), ``kd`` (the reduced KL term)
        and ``kl_per_bit`` (mean KL in nats/bit, without ``T^2``).
    """
    student = masked_bce(student_logits, bits)
    kl = bernoulli_kl(teacher_logits, student_logits, temperature)
    kd = kl.sum(dim=(1, 2)).mean() if scaling == "paper" else temperature**2 * kl.mean()
    parts = {"student": float(student.detach()), "kd": float(kd.detach()), "kl_per_bit": float(kl.mean().detach())}
    return alpha * student + kd, parts
