"""DeepRx architecture, presets and input features."""

from __future__ import annotations

import pytest
import torch

from deeprx.config import LinkConfig
from deeprx.link.simulator import UplinkSimulator
from deeprx.models.deeprx import PRESETS, count_parameters, create_model, data_re_logits, flops_per_slot, make_input


def test_full_size_has_about_1_23m_parameters() -> None:
    n = count_parameters(create_model("deeprx_full", n_rx=2, bits_per_symbol=8))
    assert n == pytest.approx(1.23e6, rel=0.01)


def test_presets_shrink_central_blocks_first() -> None:
    full = create_model("deeprx_full").config.channels
    c128 = create_model("deeprx_full_c128").config.channels
    assert c128[:4] == full[:4] and c128[7:] == full[7:]
    assert c128[4:7] == (128, 128, 128) and full[4:7] == (256, 256, 256)


def test_presets_cover_a_range_of_flops() -> None:
    flops = {name: flops_per_slot(create_model(name), 48) for name in PRESETS}
    assert max(flops.values()) / min(flops.values()) > 100
    assert flops["deeprx_full"] > flops["deeprx_full_c128"] > flops["deeprx_half"]


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="deeprx_full"):
        create_model("resnet50")


def test_input_has_4nrx_plus_2_channels_and_output_one_logit_per_bit() -> None:
    sim = UplinkSimulator(LinkConfig(n_prb=2, n_rx=2, modulation="64qam"))
    slot = sim.sample(3, seed=0)
    z = make_input(slot)
    assert z.shape == (3, 10, 14, 24) and z.dtype == torch.float32
    assert torch.equal(z[:, 0:2], slot.y.real) and torch.equal(z[:, 2:4], slot.y.imag)
    assert torch.equal(z[0, 4], slot.x_pilot.real)
    model = create_model("deeprx_eighth", n_rx=2, bits_per_symbol=6)
    assert model(z).shape == (3, 6, 14, 24)
    assert model.receive(slot).shape == slot.bits.shape


def test_data_re_logits_follow_row_major_order() -> None:
    logits = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)  # [batch, bits, sym, sc]
    mask = torch.zeros(3, 4, dtype=torch.bool)
    mask[0, 3] = mask[2, 1] = True
    out = data_re_logits(logits, mask)
    assert out.shape == (1, 2, 2)
    assert out[0].tolist() == [[3.0, 15.0], [9.0, 21.0]]  # RE (0,3) then RE (2,1), bits in order
