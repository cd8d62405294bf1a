"""The classical receivers: perfect CSI is error-free at high SINR and agrees with an independent LMMSE."""

from __future__ import annotations

import warnings

import torch

from deeprx.config import LinkConfig
from deeprx.link.baselines import LmmseReceiver
from deeprx.link.simulator import UplinkSimulator

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from sionna.phy.mapping import Constellation


def test_perfect_csi_is_error_free_at_high_sinr() -> None:
    sim = UplinkSimulator(LinkConfig(n_prb=2, modulation="256qam", speed_mps=(30.0, 40.0)))
    slot = sim.sample(16, seed=4, sinr_db=45.0)
    llr = LmmseReceiver(sim, perfect_csi=True)(slot)
    assert llr.shape == slot.bits.shape
    assert int(((llr > 0).float() != slot.bits).sum()) == 0


def test_perfect_csi_hard_decisions_match_an_independent_simo_lmmse() -> None:
    """SIMO LMMSE + max-log demapping decides the nearest constellation point of h^H y / |h|^2."""
    sim = UplinkSimulator(LinkConfig(n_prb=2, modulation="16qam"))
    slot = sim.sample(8, seed=9, sinr_db=8.0)
    ours = (LmmseReceiver(sim, perfect_csi=True)(slot) > 0).float()
    h, y = slot.h[..., slot.data_mask], slot.y[..., slot.data_mask]  # [B, n_rx, n_data]
    x_hat = (h.conj() * y).sum(1) / (h.abs() ** 2).sum(1)
    points = Constellation("qam", 4, device="cpu").points.to(
        torch.complex64
    )  # index i carries the bits of i (MSB first)
    nearest = (x_hat[..., None] - points).abs().argmin(-1)
    bits = ((nearest[..., None] >> torch.arange(3, -1, -1)) & 1).float()
    mismatch = float((bits != ours).float().mean())
    assert mismatch < 1e-3
    assert 0.005 < float((ours != slot.bits).float().mean()) < 0.2  # a real, non-trivial BER at 8 dB


def test_ls_lmmse_is_worse_than_perfect_csi() -> None:
    sim = UplinkSimulator(LinkConfig(n_prb=2, modulation="16qam", speed_mps=(30.0, 40.0)))
    slot = sim.sample(32, seed=5, sinr_db=20.0)
    ls = float(((LmmseReceiver(sim, perfect_csi=False)(slot) > 0).float() != slot.bits).float().mean())
    perfect = float(((LmmseReceiver(sim, perfect_csi=True)(slot) > 0).float() != slot.bits).float().mean())
    assert ls > perfect
