"""DeepRx architecture, presets and input features."""

from __future__ import annotations

import pytest
import torch

from deeprx.energy.flops import slot_flops
from deeprx.models.deeprx import count_parameters
from deeprx.models.registry import create_model, list_models


def test_full_size_has_about_1_23m_parameters() -> None:
    n = count_parameters(create_model("deeprx_full", n_rx=2, bits_per_symbol=8))
    assert n == pytest.approx(1.23e6, rel=0.01)


def test_presets_shrink_central_blocks_first() -> None:
    full = create_model("deeprx_full").config.channels
    c128 = create_model("deeprx_full_c128").config.channels
    assert c128[:4] == full[:4] and c128[7:] == full[7:]
    assert c128[4:7] == (128, 128, 128) and full[4:7] == (256, 256, 256)


def test_presets_cover_a_range_of_flops() -> None:
    flops = {name: slot_flops(create_model(name), "paper", 48, 13 * 48).network_conv for name in list_models()}
    assert max(flops.values()) / min(flops.values()) > 100
    assert flops["deeprx_full"] > flops["deeprx_full_c128"] > flops["deeprx_half"]


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="deeprx_full"):
        create_model("resnet50")


def test_in_channels_default_to_the_papers_input() -> None:
    assert create_model("deeprx_eighth", n_rx=2).config.in_channels == 10
    model = create_model("deeprx_eighth", n_rx=2, bits_per_symbol=4, in_channels=18)
    assert model(torch.zeros(1, 18, 14, 24)).shape == (1, 4, 14, 24)


def test_dense_blocks_by_hand() -> None:
    """A dense block's convolutions are full 3x3 ones: MACs = c_in c_out 9 H W each, by hand."""
    from deeprx.energy.flops import count_layers
    from deeprx.models.deeprx import PreActBlock

    model = create_model("dense_sixteenth", n_rx=2, bits_per_symbol=4, in_channels=18)
    assert model.config.block == "dense" and model.config.channels == (4, 4, 8, 8, 16, 16, 16, 8, 8, 4, 4)
    block = model.blocks[4]  # 8 -> 16 channels, dilation (2, 3)
    assert isinstance(block, PreActBlock) and block.conv1.groups == 1 and block.conv1.kernel_size == (3, 3)
    layers = {layer.name: layer for layer in count_layers(model, n_subcarriers=24)}
    grid = 14 * 24
    assert layers["blocks.4.conv1"].macs == 8 * 16 * 9 * grid
    assert layers["blocks.4.conv2"].macs == 16 * 16 * 9 * grid
    # the residual branch starts at zero: an untrained dense block is its skip connection
    x = torch.randn(2, 16, 14, 24)
    assert torch.equal(model.blocks[5].eval()(x), x)
