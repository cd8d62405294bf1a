"""The simulator against Sionna's own transmitter, and the SINR and pilot conventions."""

from __future__ import annotations

import warnings

import pytest
import torch

from deeprx.config import LinkConfig
from deeprx.link.simulator import UplinkSimulator, raw_ls_estimate

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sionna.phy as sionna_phy


@pytest.mark.parametrize(("modulation", "dmrs"), [("16qam", 1), ("256qam", 2)])
def test_labels_remap_to_sionna_transmitted_grid(modulation: str, dmrs: int) -> None:
    """Labels taken from Sionna's TB encoder output, re-mapped by the simulator, give the transmitter's grid."""
    sim = UplinkSimulator(LinkConfig(n_prb=2, modulation=modulation, dmrs_symbols=dmrs))
    tx = sim._mapper.transmitter
    sionna_phy.config.seed = 3
    x_tx, info_bits = tx(4)  # the full PUSCH chain, LDPC included
    coded = tx._tb_encoder(info_bits)  # [4, 1, n_coded_bits]
    labels = coded.reshape(4, sim.n_data_re, sim.bits_per_symbol)
    assert torch.equal(sim.map_bits(labels), x_tx[:, 0, 0])


def test_shapes_pilots_and_determinism() -> None:
    link = LinkConfig(n_prb=2, n_rx=2, modulation="16qam", dmrs_symbols=2)
    sim = UplinkSimulator(link)
    slot = sim.sample(5, seed=11)
    n_sc = 24
    assert slot.y.shape == slot.h.shape == slot.h_ls.shape == (5, 2, 14, n_sc)
    assert slot.y.dtype == torch.complex64
    # 2 DMRS symbols, whole symbols reserved (2 CDM groups without data): 12 data symbols
    assert slot.bits.shape == (5, 12 * n_sc, 4)
    assert int(slot.data_mask.sum()) == 12 * n_sc
    power = slot.x_pilot.abs() ** 2
    assert torch.all(power[slot.data_mask] == 0)
    assert torch.allclose(power[power > 0], torch.tensor(2.0))  # DMRS power boost of type 1, 2 CDM groups
    assert int((power > 0).sum()) == n_sc  # half of each DMRS symbol's subcarriers carry port 0's pilots
    again = sim.sample(5, seed=11)
    assert torch.equal(slot.y, again.y) and torch.equal(slot.bits, again.bits)
    assert not torch.equal(slot.y, sim.sample(5, seed=12).y)


def test_noise_free_grid_and_ls_at_pilots() -> None:
    sim = UplinkSimulator(LinkConfig(n_prb=2, channel_models=("TDL-A",)))
    slot = sim.sample(4, seed=1, sinr_db=60.0)
    x = sim.map_bits(slot.bits)
    assert torch.allclose(slot.y, slot.h * x[:, None], atol=1e-2)
    pilots = slot.x_pilot.abs() > 0
    assert torch.allclose(slot.h_ls[..., pilots], slot.h[..., pilots], atol=1e-2)
    assert torch.all(slot.h_ls[..., ~pilots] == 0)


@pytest.mark.parametrize("interferer_probability", [0.0, 1.0])
def test_measured_impairment_power_matches_sinr(interferer_probability: float) -> None:
    """Noise (+ interference) power per RE and antenna equals 10^(-SINR/10) with a normalised channel."""
    link = LinkConfig(n_prb=4, interferer_probability=interferer_probability, sir_db=(5.0, 5.0))
    sim = UplinkSimulator(link)
    slot = sim.sample(64, seed=2, sinr_db=3.0)
    residual = slot.y - slot.h * sim.map_bits(slot.bits)[:, None]
    measured = float((residual.abs() ** 2).mean())
    assert measured == pytest.approx(10 ** (-0.3), rel=0.1)
    assert float((slot.h.abs() ** 2).mean()) == pytest.approx(1.0, rel=0.05)
    assert torch.allclose(slot.noise_var, torch.tensor(10 ** (-0.3)))


def test_raw_ls_divides_by_pilot_power() -> None:
    y = torch.full((1, 1, 14, 2), 2 + 2j, dtype=torch.complex64)
    xp = torch.zeros(14, 2, dtype=torch.complex64)
    xp[2, 0] = 1 + 1j  # |p|^2 = 2
    h = raw_ls_estimate(y, xp)
    assert h[0, 0, 2, 0] == pytest.approx(2 + 0j)  # (2+2j)(1-1j)/2 = 2
    assert int((h != 0).sum()) == 1


def test_every_channel_model_runs() -> None:
    for model in ("CDL-A", "CDL-E", "TDL-C", "TDL-E", "UMi"):
        sim = UplinkSimulator(LinkConfig(n_prb=1, channel_models=(model,)))
        slot = sim.sample(2, seed=0)
        assert torch.isfinite(slot.y.abs()).all(), model


@pytest.mark.parametrize("modulation", ["qpsk", "16qam", "64qam", "256qam"])
@pytest.mark.parametrize("n_prb", [4, 26])
def test_every_modulation_builds_at_small_and_paper_grid(modulation: str, n_prb: int) -> None:
    # Sionna's LDPC encoder rejects some MCS code rates at some grid sizes; the labels never need them.
    sim = UplinkSimulator(LinkConfig(n_prb=n_prb, modulation=modulation))
    slot = sim.sample(1, seed=0, sinr_db=20.0)
    assert slot.bits.shape[-1] == LinkConfig(n_prb=n_prb, modulation=modulation).bits_per_symbol


def test_the_delay_spread_range_can_be_given_per_batch() -> None:
    sim = UplinkSimulator(LinkConfig(n_prb=1, channel_models=("TDL-A",)), torch.device("cpu"))
    default = sim.sample(2, seed=3)
    same = sim.sample(2, seed=3, delay_spread_ns=sim.link.delay_spread_ns)
    longer = sim.sample(2, seed=3, delay_spread_ns=(2000.0, 2000.0))
    assert torch.equal(default.h, same.h)  # the link's range is the default

    # a longer delay spread varies the channel faster across subcarriers
    def selectivity(h: torch.Tensor) -> float:
        return float((h[..., 1:] - h[..., :-1]).abs().mean() / h.abs().mean())

    assert selectivity(longer.h) > 2 * selectivity(default.h)


@pytest.mark.parametrize("dmrs", [1, 2])
def test_the_link_counts_the_data_res_of_sionnas_mask(dmrs: int) -> None:
    link = LinkConfig(n_prb=2, dmrs_symbols=dmrs)
    assert link.n_data_re == UplinkSimulator(link).n_data_re == (14 - dmrs) * 24
