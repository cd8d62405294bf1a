"""DeepRx: a fully convolutional pre-activation ResNet receiver (Honkala, Korpi, Huttunen, IEEE TWC 2021).

Input: ``in_channels`` real channels over the ``14 x n_sc`` grid (the paper's ``Z = [Y, Xp, H_raw]`` gives
``4 * n_rx + 2``; the front ends that build it live in :mod:`deeprx.receivers`); output one logit per RE
and bit (> 0 means bit 1). This file imports only torch and knows nothing about the simulator.

Layout (DeepRx paper, Table I): a 3x3 input convolution, 11 pre-activation residual blocks of two
depthwise-separable dilated 3x3 convolutions each (depth multiplier 2), then BatchNorm, ReLU and a 1x1
output convolution. Dilations are ``(symbol, subcarrier)``: the time axis has only 14 symbols, so the
larger dilation is along frequency. The reference widths give about 1.23 M parameters.

Sizes are presets over one builder, registered in :mod:`deeprx.models.registry` (like timm's model entry
points). Smaller presets shrink the central blocks 5-7 first, which the energy breakdown shows to cost the most,
then halve all widths.

``block="dense"`` replaces every separable convolution by a dense dilated 3x3 one: more FLOPs per channel,
but dense 3x3 convolutions run near the peak of CPUs (oneDNN) and tensor cores, where depthwise ones are
memory-bound. The ``dense_*`` presets are students built for the hardware, judged by measured slots/s and
J/slot (``benchmarks/inference.py``), not by FLOPs alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deeprx.models.registry import register_model

BLOCKS: tuple[str, ...] = ("separable", "dense")
REFERENCE_CHANNELS: tuple[int, ...] = (64, 64, 128, 128, 256, 256, 256, 128, 128, 64, 64)
REFERENCE_DILATIONS: tuple[tuple[int, int], ...] = (
    (1, 1),
    (1, 1),
    (2, 3),
    (2, 3),
    (2, 3),
    (3, 6),
    (2, 3),
    (2, 3),
    (2, 3),
    (1, 1),
    (1, 1),
)


@dataclass(frozen=True)
class DeepRxConfig:
    """Architecture of one DeepRx network.

    Attributes:
        n_rx: receive antennas.
        bits_per_symbol: output logits per RE.
        in_channels: input channels; 0 means the paper's input, ``4 * n_rx + 2``.
        stem_channels: width of the 3x3 input convolution.
        channels: output width of each residual block.
        dilations: ``(symbol, subcarrier)`` dilation of each residual block.
        depth_multiplier: depthwise expansion inside every separable convolution.
        block: ``separable`` (DeepRx's depthwise-separable convolutions) or ``dense`` (dense 3x3 ones).
    """

    n_rx: int = 2
    bits_per_symbol: int = 8
    stem_channels: int = 64
    channels: tuple[int, ...] = REFERENCE_CHANNELS
    dilations: tuple[tuple[int, int], ...] = REFERENCE_DILATIONS
    depth_multiplier: int = 2
    in_channels: int = 0
    block: str = "separable"

    def __post_init__(self) -> None:
        if len(self.channels) != len(self.dilations):
            raise ValueError("channels and dilations must have one entry per residual block")
        if self.block not in BLOCKS:
            raise ValueError(f"unknown block {self.block!r}: one of {BLOCKS}")
        if self.in_channels == 0:  # frozen dataclass: set the derived default once
            object.__setattr__(self, "in_channels", 4 * self.n_rx + 2)


class SeparableConv2d(nn.Sequential):
    """Depthwise dilated 3x3 convolution (``depth_multiplier`` outputs per input) then a 1x1 pointwise one.

    Padding equals the dilation (explicit, not ``'same'``, so ONNX Runtime accepts it). No bias: a
    BatchNorm or the residual sum follows.
    """

    def __init__(self, c_in: int, c_out: int, dilation: tuple[int, int], depth_multiplier: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_in * depth_multiplier, 3, padding=dilation, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in * depth_multiplier, c_out, 1, bias=False),
        )


def dense_conv(c_in: int, c_out: int, dilation: tuple[int, int]) -> nn.Conv2d:
    """A dense dilated 3x3 convolution, padding = dilation, no bias (a BatchNorm or the residual sum follows)."""
    return nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=False)


class PreActBlock(nn.Module):
    """Pre-activation residual block: (BN, ReLU, conv) x 2 plus a skip (1x1 conv when widths differ); the convs
    are separable (``block="separable"``) or dense 3x3 (``"dense"``)."""

    def __init__(
        self, c_in: int, c_out: int, dilation: tuple[int, int], depth_multiplier: int, block: str = "separable"
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.bn2 = nn.BatchNorm2d(c_out)
        if block == "dense":
            self.conv1, self.conv2 = dense_conv(c_in, c_out, dilation), dense_conv(c_out, c_out, dilation)
            last = self.conv2
        else:
            self.conv1 = SeparableConv2d(c_in, c_out, dilation, depth_multiplier)
            self.conv2 = SeparableConv2d(c_out, c_out, dilation, depth_multiplier)
            last = self.conv2[1]
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1, bias=False)
        # Each residual branch starts at zero, so every block starts as (a projection of) the identity
        # (Goyal et al. 2017, Zhang et al. 2019 "Fixup"). On this receiver it makes early training several
        # times faster: 240 steps reach a 2.8 % instead of a 10.5 % high-SINR BER (quarter preset, 16-QAM).
        nn.init.zeros_(last.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + self.skip(x)


class DeepRx(nn.Module):
    """The DeepRx network. ``forward``: ``[batch, in_channels, 14, n_sc]`` float -> ``[batch, bits, 14, n_sc]``."""

    def __init__(self, config: DeepRxConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = nn.Conv2d(config.in_channels, config.stem_channels, 3, padding=1)
        widths = (config.stem_channels, *config.channels)
        self.blocks = nn.Sequential(
            *(
                PreActBlock(widths[i], widths[i + 1], config.dilations[i], config.depth_multiplier, config.block)
                for i in range(len(config.channels))
            )
        )
        self.head_bn = nn.BatchNorm2d(widths[-1])
        self.head = nn.Conv2d(widths[-1], config.bits_per_symbol, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(z))
        return self.head(torch.relu(self.head_bn(x)))


# --- presets ------------------------------------------------------------------------------------------


def _scaled(factor: float, center: int | None = None) -> tuple[int, ...]:
    """Reference widths times ``factor``; ``center`` caps blocks 5-7 (the widest) first."""
    widths = [max(4, round(c * factor)) for c in REFERENCE_CHANNELS]
    if center is not None:
        widths[4:7] = [center] * 3
    return tuple(widths)


def _build(
    channels: tuple[int, ...], stem: int, n_rx: int, bits_per_symbol: int, in_channels: int, block: str = "separable"
) -> DeepRx:
    config = DeepRxConfig(
        n_rx=n_rx, bits_per_symbol=bits_per_symbol, stem_channels=stem, channels=channels, in_channels=in_channels,
        block=block,
    )  # fmt: skip
    return DeepRx(config)


@register_model
def deeprx_xl(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """Twice the reference widths (about 4x the FLOPs): a large teacher."""
    return _build(_scaled(2.0), 128, n_rx, bits_per_symbol, in_channels)


@register_model
def deeprx_large(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """1.5x the reference widths (about 2.2x the FLOPs)."""
    return _build(_scaled(1.5), 96, n_rx, bits_per_symbol, in_channels)


@register_model
def deeprx_full(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """The reference DeepRx (about 1.23 M parameters)."""
    return _build(_scaled(1.0), 64, n_rx, bits_per_symbol, in_channels)


@register_model
def deeprx_full_c128(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """Reference widths with the central blocks 5-7 cut from 256 to 128 channels."""
    return _build(_scaled(1.0, center=128), 64, n_rx, bits_per_symbol, in_channels)


@register_model
def deeprx_half(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """Half the reference widths."""
    return _build(_scaled(0.5), 32, n_rx, bits_per_symbol, in_channels)


@register_model
def deeprx_half_c64(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """Half widths with the central blocks cut from 128 to 64 channels."""
    return _build(_scaled(0.5, center=64), 32, n_rx, bits_per_symbol, in_channels)


@register_model
def deeprx_quarter(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """A quarter of the reference widths."""
    return _build(_scaled(0.25), 16, n_rx, bits_per_symbol, in_channels)


@register_model
def deeprx_quarter_c32(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """Quarter widths with the central blocks cut from 64 to 32 channels."""
    return _build(_scaled(0.25, center=32), 16, n_rx, bits_per_symbol, in_channels)


@register_model
def deeprx_eighth(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """An eighth of the reference widths: the smallest student."""
    return _build(_scaled(0.125), 8, n_rx, bits_per_symbol, in_channels)


@register_model
def dense_eighth(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """DeepRx's layout at an eighth of the widths with dense 3x3 convolutions: a student for the hardware."""
    return _build(_scaled(0.125), 8, n_rx, bits_per_symbol, in_channels, block="dense")


@register_model
def dense_tenth(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """Dense 3x3 convolutions at 0.08 of the widths (5 to 20 channels): just under a tenth of deeprx_half's FLOPs."""
    return _build(_scaled(0.08), 6, n_rx, bits_per_symbol, in_channels, block="dense")


@register_model
def dense_sixteenth(n_rx: int = 2, bits_per_symbol: int = 8, in_channels: int = 0) -> DeepRx:
    """Dense 3x3 convolutions at a sixteenth of the widths (4 to 16 channels): about deeprx_eighth's FLOPs."""
    return _build(_scaled(0.0625), 4, n_rx, bits_per_symbol, in_channels, block="dense")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
