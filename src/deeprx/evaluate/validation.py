"""The validation set a training run is scored on at every checkpoint, beside LS-LMMSE on the same slots.

A few SINR points (the lowest, middle and highest of the test set's range) with the test set's channels, speeds
and delay spreads, drawn with ``derive_seed(seed, "val", point)``: the same slots for every run of a seed, so the
learning curves of two runs (:mod:`deeprx.train.curves`) compare on the same slots.
"""

from __future__ import annotations

from dataclasses import dataclass

from deeprx.config import RunConfig, derive_seed
from deeprx.link.baselines import LmmseReceiver
from deeprx.link.simulator import Slot, UplinkSimulator
from deeprx.receivers import NeuralReceiver, bit_error_rate


@dataclass
class ValidationSet:
    """A small fixed set at a few SINR points (the test set's channels, speeds and delay spreads) to track
    training."""

    slots: list[Slot]
    ls_ber: list[float]

    @classmethod
    def build(cls, cfg: RunConfig, simulator: UplinkSimulator) -> ValidationSet:
        points = (
            cfg.eval.sinr_start_db,
            0.5 * (cfg.eval.sinr_start_db + cfg.eval.sinr_stop_db),
            cfg.eval.sinr_stop_db,
        )
        slots = [
            simulator.sample(
                cfg.train.validation_slots,
                derive_seed(cfg.seed, "val", i),
                sinr_db=s,
                channel_models=cfg.eval.channel_models,
                speed_mps=cfg.eval.speed_mps,
                delay_spread_ns=cfg.eval.delay_spread_ns,
            )
            for i, s in enumerate(points)
        ]
        ls = LmmseReceiver(simulator, perfect_csi=False)
        return cls(slots, [bit_error_rate(ls(s), s.bits) for s in slots])

    @property
    def sinr_db(self) -> list[float]:
        return [float(s.sinr_db[0]) for s in self.slots]

    @property
    def bits_per_point(self) -> int:
        return self.slots[0].bits.numel()

    def score(self, receiver: NeuralReceiver) -> list[float]:
        return [bit_error_rate(receiver(s), s.bits) for s in self.slots]

    def verdict(self, neural_ber: list[float]) -> str:
        """One line: does the network pass LS-LMMSE at the highest validation SINR, and by how much."""
        return high_sinr_verdict(neural_ber[-1], self.ls_ber[-1], self.sinr_db[-1], self.bits_per_point)


def high_sinr_verdict(neural_ber: float, ls_ber: float, sinr_db: float, bits: int) -> str:
    """``passes``, ``ties`` or ``does NOT pass`` LS-LMMSE at ``sinr_db``, with both BERs and their ratio.

    Zero errors count as half an error (``0.5 / bits``), as in the BER curves, so the ratio stays finite;
    two error-free curves tie (the validation set cannot tell them apart).
    """
    floor = 0.5 / bits
    ratio = max(neural_ber, floor) / max(ls_ber, floor)
    verdict = "passes" if ratio < 1 else "ties with" if ratio == 1 else "does NOT pass"
    if neural_ber == ls_ber == 0:
        detail = f"no errors in {bits:,} bits each"
    elif ls_ber == 0:  # the ratio then says how far from error-free, not how far behind a receiver that errs
        detail = f"LS-LMMSE error-free in {bits:,} bits; {ratio:.3g}x its half-error floor"
    else:
        detail = f"{ratio:.3g}x LS-LMMSE's"
    return (
        f"validation at {sinr_db:g} dB: the network {verdict} LS-LMMSE (BER {neural_ber:.2e} vs {ls_ber:.2e}, {detail})"
    )
