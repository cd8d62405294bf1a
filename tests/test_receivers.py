"""Front ends (paper and enhanced input) and neural receivers, against hand computations."""

from __future__ import annotations

import warnings

import pytest
import torch

from deeprx.config import LinkConfig, input_channels
from deeprx.energy.flops import classical_flops, front_end_flops
from deeprx.link.baselines import FusedLmmseReceiver, LmmseReceiver
from deeprx.link.fused import FusedLsLmmse, SionnaLsLmmse
from deeprx.link.pusch import sionna_device
from deeprx.link.simulator import UplinkSimulator
from deeprx.models.registry import create_model
from deeprx.receivers import (
    FrontEnd,
    NeuralReceiver,
    data_re_logits,
    paper_input,
    scatter_data_res,
    slot_scale,
)
from deeprx.runtime import RunContext

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import sionna.phy as sionna_phy
    from sionna.phy.mimo import StreamManagement
    from sionna.phy.nr import PUSCHLSChannelEstimator
    from sionna.phy.ofdm import LMMSEEqualizer


@pytest.fixture(scope="module")
def sim() -> UplinkSimulator:
    return UplinkSimulator(LinkConfig(n_prb=2, n_rx=2, modulation="16qam"))


def test_paper_input_is_y_pilots_and_raw_ls(sim: UplinkSimulator) -> None:
    slot = sim.sample(3, seed=0)
    z = paper_input(slot)
    assert z.shape == (3, input_channels("paper", 2), 14, 24) == (3, 10, 14, 24) and z.dtype == torch.float32
    assert torch.equal(z[:, 0:2], slot.y.real) and torch.equal(z[:, 2:4], slot.y.imag)
    assert torch.equal(z[0, 4], slot.x_pilot.real) and torch.equal(z[0, 5], slot.x_pilot.imag)
    assert torch.equal(z[:, 6:8], slot.h_ls.real) and torch.equal(z[:, 8:10], slot.h_ls.imag)
    assert torch.equal(FrontEnd(sim, "paper")(slot), z)


def test_slot_scale_and_scatter_by_hand() -> None:
    y = torch.zeros(2, 2, 14, 4, dtype=torch.complex64)
    y[0] = 3 + 4j  # |y|^2 = 25 everywhere -> s = 5
    y[1, 0, 0, 0] = 2.0  # one RE of 2*14*4 = 112 carries power 4 -> s = sqrt(4 / 112)
    assert slot_scale(y).tolist() == pytest.approx([5.0, (4 / 112) ** 0.5])
    mask = torch.zeros(3, 2, dtype=torch.bool)
    mask[0, 1] = mask[2, 0] = True
    grid = scatter_data_res(torch.tensor([[7.0, 8.0]]), mask)
    assert grid.tolist() == [[[0.0, 7.0], [0.0, 0.0], [8.0, 0.0]]]


def test_enhanced_input_by_hand(sim: UplinkSimulator) -> None:
    """Every channel of the enhanced input recomputed here from Sionna's blocks and the formulas."""
    slot = sim.sample(4, seed=3, sinr_db=20.0)
    z = FrontEnd(sim, "enhanced")(slot)
    assert z.shape == (4, input_channels("enhanced", 2), 14, 24) == (4, 18, 14, 24) and z.dtype == torch.float32
    s = (slot.y.abs() ** 2).mean(dim=(1, 2, 3)).sqrt()[:, None, None, None]
    assert torch.allclose(z[:, 0:2], (slot.y / s).real) and torch.allclose(z[:, 2:4], (slot.y / s).imag)
    assert torch.equal(z[0, 4], slot.x_pilot.real)
    assert torch.allclose(z[:, 6:8], (slot.h_ls / s).real)
    # Normalised, the received grid has unit power per RE and antenna (2 antennas: re^2 + im^2 sums to 2).
    assert (z[:, 0:4] ** 2).sum(dim=1).mean(dim=(1, 2)).tolist() == pytest.approx([2.0] * 4, rel=1e-5)
    dmrs, rg = sim.pusch_config.dmrs, sim.resource_grid
    est = PUSCHLSChannelEstimator(rg, dmrs.length, dmrs.additional_position, dmrs.num_cdm_groups_without_data,
                                  interpolation_type="lin", device="cpu")  # fmt: skip
    y = slot.y[:, None]
    h_hat, err_var = est(y, slot.noise_var)
    assert torch.allclose(z[:, 10:12], (h_hat[:, 0, :, 0, 0] / s).real, atol=1e-6)
    x_hat, no_eff = LMMSEEqualizer(rg, StreamManagement(torch.ones(1, 1).bool().numpy(), 1), device="cpu")(
        y, h_hat, err_var, slot.noise_var
    )
    mask = slot.data_mask
    assert torch.allclose(z[:, 14][:, mask], x_hat[:, 0, 0].real, atol=1e-6)
    assert torch.all(z[:, 14][:, ~mask] == 0)
    assert torch.allclose(z[:, 16][:, mask], torch.log10(no_eff[:, 0, 0]), atol=1e-5)
    # SINR 20 dB on a unit-power channel: N0 = 0.01, divided by the slot's power s^2.
    expected = torch.log10(0.01 / s[:, 0, 0, 0] ** 2)
    assert torch.allclose(z[:, 17, 0, 0], expected, atol=1e-5)
    # The equalised symbols are the LMMSE receiver's: at 20 dB their hard decisions are mostly right.
    ls_ber = float(((LmmseReceiver(sim, perfect_csi=False)(slot) > 0).float() != slot.bits).float().mean())
    assert ls_ber < 0.05


def test_neural_receiver_gives_logits_per_data_bit(sim: UplinkSimulator) -> None:
    slot = sim.sample(2, seed=1)
    model = create_model("deeprx_eighth", 2, 4, input_channels("enhanced", 2))
    receiver = NeuralReceiver(model, FrontEnd(sim, "enhanced"))
    assert receiver(slot).shape == slot.bits.shape
    with pytest.raises(ValueError, match="input channels"):
        NeuralReceiver(create_model("deeprx_eighth", 2, 4), FrontEnd(sim, "enhanced"))


def test_data_re_logits_follow_row_major_order() -> None:
    logits = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)  # [batch, bits, sym, sc]
    mask = torch.zeros(3, 4, dtype=torch.bool)
    mask[0, 3] = mask[2, 1] = True
    out = data_re_logits(logits, mask)
    assert out.shape == (1, 2, 2)
    assert out[0].tolist() == [[3.0, 15.0], [9.0, 21.0]]  # RE (0,3) then RE (2,1), bits in order


def test_front_end_flops_by_hand() -> None:
    # 1 RX, 1 subcarrier, 14 symbols, 13 data REs
    assert front_end_flops("paper", 1, 1, 13) == 6 * 14
    ls, interp, lmmse, norm, logs = 6 * 14, 14 * 14, 36 * 13, 4 * 14 + 6 * 14, 40 * 14
    assert front_end_flops("enhanced", 1, 1, 13) == ls + interp + lmmse + norm + logs


def test_classical_receivers_flops_by_hand() -> None:
    # 2 RX, 1 subcarrier, 14 symbols, 13 data REs, QPSK: max-log over 4 points = 6 x 4 + 2 x (4 + 1) per RE
    ls, interp, lmmse, demap = 6 * 2 * 14, 14 * 2 * 14, (16 * 2 + 20) * 13, (24 + 10) * 13
    assert classical_flops(False, 2, 1, 13, 2) == ls + interp + lmmse + demap
    assert classical_flops(True, 2, 1, 13, 2) == lmmse + demap  # the genie needs no estimate


# --- devices ---------------------------------------------------------------------------------------------


def test_slot_tensors_live_on_the_simulators_device() -> None:
    slot = UplinkSimulator(LinkConfig(n_prb=1)).sample(2, seed=0)
    assert {t.device.type for t in slot.tensors()} == {"cpu"}


def test_simulator_for_cpu_works_when_sionnas_default_is_another_device() -> None:
    """On a GPU machine Sionna's default device is cuda:0; "meta" stands in for it on a CPU machine: any
    Sionna tensor built on the default device would fail (meta tensors hold no data)."""
    previous = sionna_phy.config._device
    sionna_phy.config._device = "meta"
    try:
        sim = UplinkSimulator(LinkConfig(n_prb=1))
        slot = sim.sample(2, seed=0)
        z = FrontEnd(sim, "enhanced")(slot)
        llr = LmmseReceiver(sim, perfect_csi=False)(slot)
        assert sionna_phy.config._device == "meta"  # restored after every use
    finally:
        sionna_phy.config._device = previous
    assert z.device.type == llr.device.type == slot.y.device.type == "cpu"
    assert torch.isfinite(z).all() and torch.isfinite(llr).all()


def test_sionna_device_restores_the_default_on_error() -> None:
    previous = sionna_phy.config._device
    with pytest.raises(RuntimeError), sionna_device(torch.device("cpu")):
        raise RuntimeError
    assert sionna_phy.config._device == previous


@pytest.mark.gpu
def test_simulator_front_end_and_baseline_on_cuda() -> None:
    sim = UplinkSimulator(LinkConfig(n_prb=2), RunContext.resolve("cuda").device)
    slot = sim.sample(8, seed=0, sinr_db=25.0)
    assert {t.device.type for t in slot.tensors()} == {"cuda"}
    z = FrontEnd(sim, "enhanced")(slot)
    llr = LmmseReceiver(sim, perfect_csi=False)(slot)
    assert z.device.type == llr.device.type == "cuda"
    assert float(((llr > 0).float() != slot.bits).float().mean()) < 0.05


def test_untrained_residual_receiver_is_ls_lmmse(sim: UplinkSimulator) -> None:
    """With its output layer at zero the residual receiver's logits are LS-LMMSE's clipped max-log LLRs."""
    from deeprx.receivers import PRIOR_CLIP, initialise

    slot = sim.sample(6, seed=4, sinr_db=15.0)
    model = initialise(create_model("deeprx_eighth", 2, 4, input_channels("residual", 2)), "residual")
    receiver = NeuralReceiver(model, FrontEnd(sim, "residual"))
    ours = receiver(slot)
    ls = LmmseReceiver(sim, perfect_csi=False)(slot)
    assert torch.allclose(ours, ls.clamp(-PRIOR_CLIP, PRIOR_CLIP), atol=1e-3)
    assert torch.equal(ours > 0, ls > 0)


@pytest.mark.parametrize("dmrs", [1, 2])
def test_fused_ls_lmmse_equals_sionnas_blocks(dmrs: int) -> None:
    """The fused estimate and equaliser against Sionna's blocks on the same slots, at low and high SINR."""
    link = LinkConfig(n_prb=4, dmrs_symbols=dmrs, channel_models=("CDL-C", "TDL-A", "UMi"), speed_mps=(20.0, 80.0))
    sim = UplinkSimulator(link)
    fused, reference = FusedLsLmmse(sim), SionnaLsLmmse(sim)
    for seed, sinr in ((1, 0.0), (2, 40.0)):
        slot = sim.sample(16, seed=seed, sinr_db=sinr)
        (h, x, no), (h_ref, x_ref, no_ref) = fused(slot.y, slot.noise_var), reference(slot.y, slot.noise_var)
        assert h.shape == h_ref.shape == slot.y.shape and x.shape == x_ref.shape == (16, sim.n_data_re)
        assert torch.allclose(h, h_ref, atol=1e-5 * float(h_ref.abs().max()))
        assert torch.allclose(x, x_ref, atol=1e-4)
        # Sionna forms no_eff as 1 / (G h) - 1 in float32: near G h = 1 (high SINR) that is good to a few float32
        # epsilons (1.2e-7) absolute, the fused 1 / a to a few relative
        assert torch.allclose(no, no_ref, rtol=1e-4, atol=8 * torch.finfo(torch.float32).eps)


@pytest.mark.parametrize("perfect_csi", [False, True])
def test_the_fused_classical_receivers_equal_sionnas_detector(perfect_csi: bool) -> None:
    """LS-LMMSE and perfect-CSI LMMSE through the fused path against Sionna's LinearDetector on the same slots."""

    link = LinkConfig(n_prb=4, dmrs_symbols=1, channel_models=("CDL-C", "TDL-A", "UMi"), speed_mps=(20.0, 80.0))
    sim = UplinkSimulator(link)
    fused, reference = FusedLmmseReceiver(sim, perfect_csi), LmmseReceiver(sim, perfect_csi)
    for seed, sinr in ((1, 0.0), (2, 20.0), (3, 40.0)):
        slot = sim.sample(16, seed=seed, sinr_db=sinr)
        ours, theirs = fused(slot), reference(slot)
        assert ours.shape == theirs.shape == slot.bits.shape
        assert float(((ours > 0) != (theirs > 0)).float().mean()) <= 1e-4  # a bit on a decision boundary at most
        # LLRs scale with 1 / no_eff, which Sionna forms as 1 / (G h) - 1 in float32: at 40 dB (G h near 1) that
        # keeps about two digits (measured: 1.5 % apart at most), at 0 dB five
        assert torch.allclose(ours, theirs, rtol=3e-2, atol=1e-4)


def test_a_shipped_receiver_decides_the_same_through_both_front_ends() -> None:
    from deeprx.receivers import load_receiver
    from deeprx.runs import registry

    run_dir = registry.resolve("cpu-teacher-dmrs1")
    receiver, ckpt = load_receiver(run_dir)
    sim = UplinkSimulator(ckpt.config.link)
    reference = NeuralReceiver(receiver.model, FrontEnd(sim, ckpt.config.features, SionnaLsLmmse(sim)))
    for sinr in (10.0, 40.0):
        slot = sim.sample(16, seed=7, sinr_db=sinr, channel_models=("CDL-A", "CDL-E"))
        ours, theirs = receiver(slot), reference(slot)
        assert float(((ours > 0) != (theirs > 0)).float().mean()) <= 1e-4  # a few bits at most
        assert torch.allclose(ours, theirs, atol=1e-2 * float(theirs.abs().max()))
