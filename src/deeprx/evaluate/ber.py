"""Uncoded BER vs SINR, the paper's geometric-mean BER (eq. 3), SINR at a target BER, gains in dB, and the
95 % interval of every BER point.

Zero-error rule: a SINR point where a receiver made no error over ``bits`` bits counts as half an error,
``BER = 0.5 / bits``. That keeps ``log10`` finite, stays below the resolution of the test, and is
reported beside every curve (``bit_errors`` is 0 there), so nobody mistakes it for a measured BER.

Intervals: Clopper-Pearson on bits treats every bit as an independent trial, which it is not at high SINR,
where a receiver's errors cluster in a few slots (a bad channel draw); the bootstrap over slots resamples
whole slots and is the honest interval then. Both are reported, with the number of slots that hold errors.

Coded link (a test set with transport blocks): every receiver's LLRs of every slot also go through the same TB
decoder (:class:`deeprx.link.coding.TransportBlockCodec`), and the curve keeps each slot's block error (the
decoded information bits differ from the TB's, which a CRC pass with wrong bits counts too). Slots are drawn
independently, so the BLER's Clopper-Pearson interval over blocks is exact; the same zero-error rule holds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy.stats import beta

from deeprx.evaluate.llr_quality import CALIBRATION_EDGES, bmd_loss_bits, bmd_rate, calibration_counts
from deeprx.link.coding import TransportBlockCodec
from deeprx.link.simulator import Slot
from deeprx.link.testset import TestSet
from deeprx.receivers import Receiver, slot_bit_errors
from deeprx.runtime import CPU

CI_LEVEL = 0.95  # the level of every interval this project reports
N_BOOT_POINT = 2000  # bootstrap resamples of one SINR point's slots
# ``target_bit_errors`` that no SINR point reaches: every slot of the test set is counted (no early stop), so
# curves can be bootstrapped in pairs over the same slots.
ALL_SLOTS = 10**15


@dataclass
class BerCurve:
    """BER of one receiver on a test set. ``ber[i] = bit_errors[i] / bits[i]`` at ``sinr_db[i]`` (dB).

    ``slot_errors[i]`` lists the bit errors of every slot counted at point ``i`` (in test-set order), so
    curves of different receivers on the same slots can be compared by a paired bootstrap.
    ``slot_block_errors[i]`` (coded link only, else empty): 1 where that slot's transport block of ``tb_size``
    information bits was not decoded, 0 where it was; ``bmd_rate[i]``: the bit-metric decoding rate of the
    receiver's LLRs at point ``i`` in bits per channel use (:mod:`deeprx.evaluate.llr_quality`);
    ``calibration``: over all points, per bin of |LLR| the bits, the errors and the predicted errors
    (:func:`deeprx.evaluate.llr_quality.calibration_counts`, ``[3][n_bins]``).
    """

    receiver: str
    sinr_db: list[float]
    ber: list[float]
    bit_errors: list[int]
    bits: list[int]
    slot_errors: list[list[int]] = field(default_factory=list)
    slot_block_errors: list[list[int]] = field(default_factory=list)
    tb_size: int = 0
    bmd_rate: list[float] = field(default_factory=list)
    calibration: list[list[float]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict) -> BerCurve:
        return cls(**d)

    def to_dict(self) -> dict:
        """The curve as stored; an uncoded curve's record has no block fields (as before the coded link)."""
        d = asdict(self)
        if not self.coded:
            del d["slot_block_errors"], d["tb_size"], d["bmd_rate"], d["calibration"]
        return d

    @property
    def coded(self) -> bool:
        return bool(self.slot_block_errors)

    @property
    def block_errors(self) -> list[int]:
        return [sum(e) for e in self.slot_block_errors]

    @property
    def blocks(self) -> list[int]:
        return [len(e) for e in self.slot_block_errors]

    @property
    def bler(self) -> list[float]:
        """Transport-block error rate per SINR point (coded curves only)."""
        return [e / n for e, n in zip(self.block_errors, self.blocks, strict=True)]

    def bler_intervals(self, level: float = CI_LEVEL) -> list[tuple[float, float]]:
        """The Clopper-Pearson ``level`` interval of the BLER at every point (blocks are independent slots)."""
        return [clopper_pearson(e, n, level) for e, n in zip(self.block_errors, self.blocks, strict=True)]

    def sinr_at_bler(self, target: float) -> float | None:
        """SINR (dB) where the BLER first reaches ``target`` (log-interpolated, zero errors as half a block)."""
        return sinr_at_ber(self.sinr_db, _ber_with_floor(self.block_errors, self.blocks), target)

    def goodput_bits_per_slot(self) -> list[float]:
        """Decoded information bits per slot at every point: ``(1 - BLER) * tb_size``."""
        return [(1.0 - b) * self.tb_size for b in self.bler]

    def geometric_mean_ber(self) -> float:
        return geometric_mean_ber(self.bit_errors, self.bits)

    def sinr_at_ber(self, target: float) -> float | None:
        return sinr_at_ber(self.sinr_db, _ber_with_floor(self.bit_errors, self.bits), target)

    def intervals(self, level: float = CI_LEVEL, n_boot: int = N_BOOT_POINT) -> dict[str, list]:
        """Per SINR point: the ``level`` interval of the BER by Clopper-Pearson on bits and by a bootstrap over
        slots (``None`` where the curve kept no per-slot errors), the slots counted and the slots with errors.

        Returns ``{"ci_bits": [[lo, hi], ...], "ci_slots": [[lo, hi] | None, ...], "slots": [...],
        "slots_with_errors": [...]}``, one entry per point.
        """
        per_slot = self.slot_errors or [[] for _ in self.sinr_db]
        ci_slots: list[list[float] | None] = []
        for p, errors in enumerate(per_slot):
            if any(errors):
                lo, hi = slot_bootstrap_interval(errors, self.bits[p] / len(errors), level, n_boot, seed=p)
                ci_slots.append([lo, hi])
            else:
                ci_slots.append(None)
        return {
            "ci_bits": [list(clopper_pearson(e, n, level)) for e, n in zip(self.bit_errors, self.bits, strict=True)],
            "ci_slots": ci_slots,
            "slots": [len(e) for e in per_slot],
            "slots_with_errors": [sum(1 for x in e if x > 0) for e in per_slot],
        }

    @classmethod
    def pooled(cls, curves: list[BerCurve], receiver: str | None = None) -> BerCurve:
        """One curve from curves of one receiver on several test sets with the same SINR points (several
        seeds): bits, errors and the per-slot errors added up point by point."""
        first = curves[0]
        for c in curves[1:]:
            if c.sinr_db != first.sinr_db:
                raise ValueError(f"cannot pool curves on different SINR points: {first.sinr_db} vs {c.sinr_db}")
        errors = [sum(c.bit_errors[p] for c in curves) for p in range(len(first.sinr_db))]
        bits = [sum(c.bits[p] for c in curves) for p in range(len(first.sinr_db))]
        slots = [[x for c in curves for x in c.slot_errors[p]] for p in range(len(first.sinr_db))]
        coded = all(c.coded for c in curves)
        points = range(len(first.sinr_db)) if coded else range(0)
        blocks = [[x for c in curves for x in c.slot_block_errors[p]] for p in points]
        return cls(receiver or first.receiver, list(first.sinr_db), [e / n for e, n in zip(errors, bits, strict=True)],
                   errors, bits, slots if all(c.slot_errors for c in curves) else [],
                   blocks, first.tb_size if coded else 0, _pooled_bmd(curves) if coded else [],
                   np.sum([c.calibration for c in curves], axis=0).tolist() if coded else [])  # fmt: skip


def _pooled_bmd(curves: list[BerCurve]) -> list[float]:
    """The BMD rate of pooled curves: each curve's rate weighted by the bits it counted at the point."""
    points = range(len(curves[0].sinr_db))
    return [sum(c.bmd_rate[p] * c.bits[p] for c in curves) / sum(c.bits[p] for c in curves) for p in points]


def clopper_pearson(errors: int, bits: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """The exact (Clopper-Pearson) ``level`` interval of a binomial proportion ``errors / bits``:
    ``[Beta(a/2; k, n-k+1), Beta(1-a/2; k+1, n-k)]`` quantiles, 0 below ``k = 0`` and 1 above ``k = n``."""
    a = 1.0 - level
    lo = 0.0 if errors == 0 else float(beta.ppf(a / 2, errors, bits - errors + 1))
    hi = 1.0 if errors == bits else float(beta.ppf(1 - a / 2, errors + 1, bits - errors))
    return lo, hi


def slot_bootstrap_interval(
    slot_errors: list[int], bits_per_slot: float, level: float = CI_LEVEL, n_boot: int = N_BOOT_POINT, seed: int = 0
) -> tuple[float, float]:
    """The ``level`` percentile interval of the BER when whole slots are resampled with replacement: the
    honest interval when a receiver's errors cluster in a few slots. ``slot_errors``: bit errors per slot."""
    errors = np.asarray(slot_errors, dtype=np.int64)
    draws = np.random.default_rng(seed).integers(0, errors.size, size=(n_boot, errors.size))
    return interval(errors[draws].sum(axis=1) / (bits_per_slot * errors.size), level)


def _ber_with_floor(bit_errors: list[int], bits: list[int]) -> list[float]:
    return [(e if e > 0 else 0.5) / n for e, n in zip(bit_errors, bits, strict=True)]


def geometric_mean_ber(bit_errors: list[int], bits: list[int]) -> float:
    """Paper eq. (3): ``(1/N) * sum_i log10(BER_i)``, with the zero-error rule of this module."""
    return float(np.mean(np.log10(_ber_with_floor(bit_errors, bits))))


def sinr_at_ber(sinr_db: list[float], ber: list[float], target: float) -> float | None:
    """SINR (dB) where the curve first reaches ``target``, interpolating ``log10(BER)`` linearly in dB.

    Returns ``sinr_db[0]`` if the first point is already at or below the target, and ``None`` if the
    curve never reaches it (an error floor above the target).
    """
    for i, b in enumerate(ber):
        if b <= target:
            if i == 0:
                return float(sinr_db[0])
            l0, l1, lt = math.log10(ber[i - 1]), math.log10(b), math.log10(target)
            frac = (l0 - lt) / (l0 - l1) if l0 != l1 else 1.0
            return float(sinr_db[i - 1] + frac * (sinr_db[i] - sinr_db[i - 1]))
    return None


def ratio_at_max_sinr(curve: BerCurve, reference: BerCurve) -> float:
    """``curve``'s BER at the highest SINR over ``reference``'s there, zero errors counted as half an error."""
    return _ber_with_floor(curve.bit_errors, curve.bits)[-1] / _ber_with_floor(reference.bit_errors, reference.bits)[-1]


def never_better(curve: BerCurve, reference: BerCurve) -> bool:
    """True when ``curve`` beats ``reference`` at no SINR point (its BER is >= the reference's at every point,
    zero-error points counted as half an error): a neural receiver like that is broken or under-trained."""
    ours = _ber_with_floor(curve.bit_errors, curve.bits)
    ref = _ber_with_floor(reference.bit_errors, reference.bits)
    return all(a >= b for a, b in zip(ours, ref, strict=True))


def sinr_gain_db(better: BerCurve, reference: BerCurve, target: float) -> float | None:
    """How many dB less SINR ``better`` needs than ``reference`` at ``target``; ``None`` if either floors."""
    a, b = better.sinr_at_ber(target), reference.sinr_at_ber(target)
    return None if a is None or b is None else b - a


def evaluate(
    receivers: dict[str, Receiver],
    testset: TestSet,
    batch_size: int,
    target_bit_errors: int | None = None,
    show_progress: bool = True,
    device: torch.device = CPU,
) -> list[BerCurve]:
    """BER vs SINR of every receiver on the same stored slots.

    At each SINR point the stored slots are read once, in order, loaded to ``device`` (where the receivers
    run) and given to every receiver that is still counting; a receiver stops at a point once it has
    ``target_bit_errors`` errors (``None``: never, every slot counts). The bit budget is the test set's size.
    On a coded test set every receiver's LLRs are also decoded, batched on ``device``, by one TB decoder.
    """
    from rich.progress import Progress

    names = list(receivers)
    codec = TransportBlockCodec(testset.link, device) if testset.coded else None
    per_slot: dict[str, list[list[int]]] = {n: [[] for _ in testset.sinr_points_db] for n in names}
    per_block: dict[str, list[list[int]]] = {n: [[] for _ in testset.sinr_points_db] for n in names}
    bmd_loss = {n: [0.0] * len(testset.sinr_points_db) for n in names}
    calibration = {n: torch.zeros(3, len(CALIBRATION_EDGES), dtype=torch.float64) for n in names}
    errors = {n: [0] * len(testset.sinr_points_db) for n in names}
    counted = {n: [0] * len(testset.sinr_points_db) for n in names}
    with Progress(disable=not show_progress) as progress, torch.no_grad():
        task = progress.add_task("BER", total=len(testset.sinr_points_db))
        for p in range(len(testset.sinr_points_db)):
            for slot in testset.batches(p, batch_size, device):
                active = [n for n in names if target_bit_errors is None or errors[n][p] < target_bit_errors]
                if not active:
                    break
                for n in active:
                    llr = receivers[n](slot)
                    slot_errors = slot_bit_errors(llr, slot.bits).tolist()
                    per_slot[n][p] += slot_errors
                    errors[n][p] += sum(slot_errors)
                    counted[n][p] += slot.bits.numel()
                    if codec is not None:
                        per_block[n][p] += block_errors(codec, llr, slot, slot_errors)
                        bmd_loss[n][p] += float(bmd_loss_bits(llr, slot.bits).sum())
                        calibration[n] += calibration_counts(llr, slot.bits)
            progress.advance(task)
    q = testset.link.bits_per_symbol

    def bmd(n: str) -> list[float]:
        return [bmd_rate(loss, bits, q) for loss, bits in zip(bmd_loss[n], counted[n], strict=True)]

    return [
        BerCurve(
            n,
            list(testset.sinr_points_db),
            [e / b for e, b in zip(errors[n], counted[n], strict=True)],
            errors[n],
            counted[n],
            per_slot[n],
            per_block[n] if codec is not None else [],
            codec.tb_size if codec is not None else 0,
            bmd(n) if codec is not None else [],
            calibration[n].tolist() if codec is not None else [],
        )
        for n in names
    ]


def block_errors(codec: TransportBlockCodec, llr: torch.Tensor, slot: Slot, slot_errors: list[int]) -> list[int]:
    """Per slot, 1 where its transport block is not decoded to the TB's information bits (a CRC pass with wrong
    bits included), else 0. Only the slots with hard-decision errors go through BP: where every LLR has the right
    sign the hard decisions are the sent codeword, every parity check holds from the start and BP keeps them (a
    decoder that stops on a zero syndrome returns them at once), so those blocks are decoded; tested equal to
    decoding every block."""
    wrong = torch.tensor(slot_errors, dtype=torch.bool, device=llr.device).gt(0)
    errors = torch.zeros(len(slot_errors), dtype=torch.int64)
    if wrong.any():
        decoded, crc_ok = codec.decode(llr[wrong])
        right = crc_ok & (decoded == slot.info_bits.to(decoded.device)[wrong]).all(dim=1)
        errors[wrong.cpu()] = (~right).long().cpu()
    return errors.tolist()


def bootstrap(
    curves: list[BerCurve], target_ber: float, n_boot: int = 1000, seed: int = 0, target_bler: float | None = None
) -> dict[str, np.ndarray]:
    """Paired bootstrap over test slots: geometric-mean BER and SINR at ``target_ber`` of each curve, and with
    ``target_bler`` (coded curves) the SINR at that BLER from the same resampled slots.

    Every resample draws the same slot indices (with replacement, within each SINR point) for all
    curves, so differences between receivers keep their pairing. Curves must come from one test set,
    evaluated on every slot (no early stop).

    Returns:
        ``{receiver: array [n_boot, 2]}`` with columns geometric-mean BER and SINR at the target (NaN
        where a resample does not reach it); ``[n_boot, 3]`` with the SINR at ``target_bler`` third.
    """
    rng = np.random.default_rng(seed)
    n_points = len(curves[0].sinr_db)
    counts = [len(curves[0].slot_errors[p]) for p in range(n_points)]
    for c in curves:
        if [len(e) for e in c.slot_errors] != counts:
            raise ValueError(f"curve {c.receiver!r} was not evaluated on every slot of the same test set")
    bits_per_slot = [curves[0].bits[p] / counts[p] for p in range(n_points)]
    draws = [rng.integers(0, counts[p], size=(n_boot, counts[p])) for p in range(n_points)]
    out = {}
    for c in curves:
        errors = np.stack([np.asarray(c.slot_errors[p])[draws[p]].sum(axis=1) for p in range(n_points)], axis=1)
        bits = np.asarray([bits_per_slot[p] * counts[p] for p in range(n_points)])
        ber = np.where(errors > 0, errors, 0.5) / bits
        geo = np.log10(ber).mean(axis=1)
        sinr = [sinr_at_ber(c.sinr_db, row.tolist(), target_ber) for row in ber]
        columns = [geo, np.array([np.nan if s is None else s for s in sinr])]
        if target_bler is not None:
            if not c.coded:
                raise ValueError(f"curve {c.receiver!r} has no block errors: a BLER needs a coded test set")
            blocks = np.stack([np.asarray(c.slot_block_errors[p])[draws[p]].sum(axis=1) for p in range(n_points)],
                              axis=1)  # fmt: skip
            bler = np.where(blocks > 0, blocks, 0.5) / np.asarray(counts)
            at = [sinr_at_ber(c.sinr_db, row.tolist(), target_bler) for row in bler]
            columns.append(np.array([np.nan if s is None else s for s in at]))
        out[c.receiver] = np.stack(columns, axis=1)
    return out


def interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Central percentile interval of bootstrap samples, ignoring NaN; (nan, nan) if none is finite."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.percentile(finite, [50 * (1 - level), 50 * (1 + level)])
    return (float(lo), float(hi))
