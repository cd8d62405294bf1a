"""Training losses over the data REs."""

from __future__ import annotations

import math
from collections.abc import Callable

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


def logit_mse(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logit matching per bit: ``(z_s - z_t)^2 / T^2`` (Kim et al. 2021 found it better than KL at large T;
    dividing by ``T^2`` puts it on the scale of the KL times ``T^2``). Elementwise, float32."""
    return (student_logits.float() - teacher_logits.float()).square() / temperature**2


KD_TERMS = {"kl": bernoulli_kl, "mse": logit_mse}


def kd_mask(teacher_logits: torch.Tensor, bits: torch.Tensor, mode: str, confidence: float) -> torch.Tensor | None:
    """Which bits the KD term sees: ``all`` (``None``: every bit), ``confident`` (the teacher's probability of
    its own decision is at least ``confidence``: ``|z_t| >= logit(confidence)``), ``correct`` (the teacher's
    hard decision equals the label). Float mask of 0/1, same shape as the logits."""
    if mode == "all":
        return None
    if mode == "confident":
        threshold = math.log(confidence / (1 - confidence))
        return (teacher_logits.float().abs() >= threshold).float()
    if mode == "correct":
        return ((teacher_logits > 0).float() == bits).float()
    raise ValueError(f"unknown KD mask {mode!r}")


def annealed_kd_weight(progress: float, schedule: str) -> float:
    """Teacher annealing: the weight of the KD term at ``progress`` (0 = first step, 1 = last). ``none``: 1;
    ``linear``: ``1 - progress``, so the target moves from the teacher to the labels (Clark et al. 2019: mixing
    the targets ``lambda y + (1 - lambda) p`` in a cross-entropy is this weighting, up to a constant)."""
    if schedule == "none":
        return 1.0
    if schedule == "linear":
        return 1.0 - min(max(progress, 0.0), 1.0)
    raise ValueError(f"unknown KD schedule {schedule!r}")


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    bits: torch.Tensor,
    alpha: float,
    temperature: float,
    scaling: str,
    term: str = "kl",
    mask: str = "all",
    confidence: float = 0.9,
    kd_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Paper eq. (2): ``L = alpha * L_student + w * L_KD`` over the data REs.

    ``L_student`` is the per-bit mean BCE against the labels. ``L_KD`` is, per bit, the Bernoulli KL between the
    teacher's and the student's softened outputs (``term="kl"``, the paper's) or the logit MSE (``"mse"``),
    over the bits :func:`kd_mask` keeps, reduced by ``scaling``:

    * ``paper``: summed over the kept bits of a slot, averaged over slots (no ``T^2``). With a per-bit-mean
      ``L_student`` this is the only reduction under which the paper's alpha (0.1 to 1e6) spans the range
      from "KD dominates" to "labels dominate".
    * ``mean``: mean over the kept bits times Hinton's ``T^2``, which keeps gradient sizes comparable across ``T``.

    ``w`` (``kd_weight``) is the teacher-annealing weight (:func:`annealed_kd_weight`), 1 without annealing.

    Args:
        student_logits, teacher_logits: ``[batch, n_data_re, bits_per_symbol]`` float.
        bits: labels, same shape, float in {0, 1}.

    Returns:
        The loss (scalar) and its parts as floats: ``student`` (BCE, nats/bit), ``kd`` (the reduced KD term,
        before ``w``), ``kl_per_bit`` (mean of the per-bit term over every bit, without ``T^2``) and
        ``kept`` (the share of bits the mask keeps).
    """
    student = masked_bce(student_logits, bits)
    per_bit = KD_TERMS[term](teacher_logits, student_logits, temperature)
    keep = kd_mask(teacher_logits, bits, mask, confidence)
    kept = per_bit if keep is None else per_bit * keep
    if scaling == "paper":
        kd = kept.sum(dim=(1, 2)).mean()
    else:
        n_kept = per_bit.numel() if keep is None else keep.sum().clamp(min=1.0)
        kd = temperature**2 * kept.sum() / n_kept
    parts = {
        "student": float(student.detach()),
        "kd": float(kd.detach()),
        "kl_per_bit": float(per_bit.mean().detach()),
        "kept": 1.0 if keep is None else float(keep.mean()),
    }
    return alpha * student + kd_weight * kd, parts


def sobolev_term(
    student_fn: Callable[[torch.Tensor], torch.Tensor],
    teacher_fn: Callable[[torch.Tensor], torch.Tensor],
    z: torch.Tensor,
    directions: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sobolev KD (Czarnecki et al. 2017): match the teacher's input-gradients as well as its outputs.

    For ``directions`` random output directions ``u`` (standard normal, the outputs' shape), one vector-Jacobian
    product each gives ``u^T J`` of student and teacher w.r.t. the input ``z``; the term is the mean over
    directions of ``mean((u^T J_s - u^T J_t)^2)``. The student's product keeps its graph (``create_graph``), so
    the term trains the student; the teacher's does not.

    Args:
        student_fn, teacher_fn: input ``[batch, c, 14, n_sc]`` -> outputs (any shape, the same for both).
        z: the input; its gradient is not kept.
    Returns:
        Scalar float32, 0 when the two functions are the same.
    """
    x = z.detach().float().requires_grad_(True)
    out_s = student_fn(x).float()
    with torch.enable_grad():
        xt = z.detach().float().requires_grad_(True)
        out_t = teacher_fn(xt).float()
    total = out_s.new_zeros(())
    for _ in range(directions):
        u = torch.randn(out_s.shape, generator=generator, device=out_s.device) if generator else torch.randn_like(out_s)
        (g_s,) = torch.autograd.grad(out_s, x, u, create_graph=True)
        (g_t,) = torch.autograd.grad(out_t, xt, u, retain_graph=True)
        total = total + (g_s - g_t.detach()).square().mean()
    return total / directions


def hint_term(student: list[torch.Tensor], teacher: list[torch.Tensor], adapters: torch.nn.ModuleList) -> torch.Tensor:
    """Feature (hint) distillation (FitNets, Romero et al. 2015): the student's intermediate activations, mapped
    to the teacher's widths by 1x1 ``adapters``, regress the teacher's.

    Each pair counts as ``mean((A_i s_i - t_i)^2) / mean(t_i^2)``, the squared error relative to the teacher
    activation's power (so layers of any scale weigh the same); the term is the mean over pairs.

    Args:
        student: activations ``[batch, c_s_i, 14, n_sc]``, with gradients.
        teacher: activations ``[batch, c_t_i, 14, n_sc]``, same grids; not differentiated.
        adapters: ``Conv2d(c_s_i, c_t_i, 1)`` per pair, trained with the student.
    Returns:
        Scalar float32; 0 when every adapted activation equals the teacher's.
    """
    total = student[0].new_zeros((), dtype=torch.float32)
    for s, t, adapter in zip(student, teacher, adapters, strict=True):
        t = t.detach().float()
        total = total + (adapter(s.float()) - t).square().mean() / t.square().mean().clamp_min(1e-12)
    return total / len(student)
