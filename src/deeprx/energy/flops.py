"""Operation and memory-traffic counts per layer and per residual block of a DeepRx network.

Conventions (state them, counters disagree — see ``shared/notes/energy-facts.md``):

* MAC of a convolution = ``(C_in / groups) * k_h * k_w * C_out * H_out * W_out``; FLOP = 2 x MAC. This is
  what ``torch.utils.flop_counter.FlopCounterMode`` counts, and the convolution totals here equal it.
* Work that is not a convolution product is counted apart as ``other_flops``: a convolution's bias
  (1 per output element), inference BatchNorm (a scale and a shift: 2 per element), ReLU (1 per
  element) and the residual add (1 per element).
* Bytes assume ``bytes_per_value`` per number (4 for fp32): weights read once per slot (BatchNorm as a
  folded scale and shift), each layer's input read and output written once.

All counts are for one slot (batch 1) on a ``n_symbols x n_subcarriers`` grid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from deeprx.config import SYMBOLS_PER_SLOT
from deeprx.models.deeprx import DeepRx


@dataclass(frozen=True)
class LayerCount:
    """Counts for one layer of one forward pass on one slot.

    Attributes:
        name: module path, e.g. ``blocks.4.conv1.0``; ReLU and the residual add get ``.relu`` / ``.add``.
        block: ``stem``, ``block1`` ... ``blockN`` or ``head``.
        kind: ``conv``, ``depthwise``, ``pointwise``, ``batchnorm``, ``relu`` or ``add``.
        params: learnable parameters.
        macs: convolution multiply-accumulates (0 for non-convolution layers).
        conv_flops: 2 x ``macs``.
        other_flops: bias, BatchNorm, activation and residual-add operations.
        weight_bytes: bytes of weights read.
        act_read_bytes: bytes of activations read.
        act_write_bytes: bytes of activations written.
        in_features: input channels ``C_in`` (``d_0`` of metric 2).
    """

    name: str
    block: str
    kind: str
    params: int
    macs: int
    conv_flops: int
    other_flops: int
    weight_bytes: int
    act_read_bytes: int
    act_write_bytes: int
    in_features: int

    @property
    def flops(self) -> int:
        """All floating-point operations of the layer: convolution plus other work."""
        return self.conv_flops + self.other_flops

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flops": self.flops}


def conv_macs(conv: nn.Conv2d, out_hw: tuple[int, int]) -> int:
    """Analytic MACs of a 2-D convolution: ``(C_in/groups) * k_h * k_w * C_out * H_out * W_out``."""
    k_h, k_w = conv.kernel_size
    return (conv.in_channels // conv.groups) * k_h * k_w * conv.out_channels * out_hw[0] * out_hw[1]


def _block_of(name: str) -> str:
    if name.startswith("blocks."):
        return f"block{int(name.split('.')[1]) + 1}"
    return "stem" if name.startswith("stem") else "head"


def _conv_kind(conv: nn.Conv2d) -> str:
    if conv.groups > 1 and conv.groups == conv.in_channels:
        return "depthwise"
    return "pointwise" if conv.kernel_size == (1, 1) else "conv"


def count_layers(
    model: DeepRx, n_subcarriers: int, n_symbols: int = SYMBOLS_PER_SLOT, bytes_per_value: int = 4
) -> list[LayerCount]:
    """Per-layer counts of one inference on one ``n_symbols x n_subcarriers`` slot, in execution order.

    Shapes are read off a real forward pass (hooks), so the counts follow the model as built.
    """
    rows: list[LayerCount] = []

    def record(name: str, module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> None:
        n_in, n_out = inp.numel(), out.numel()
        params = sum(p.numel() for p in module.parameters(recurse=False))
        block = _block_of(name)
        if isinstance(module, nn.Conv2d):
            macs = conv_macs(module, (out.shape[-2], out.shape[-1]))
            bias_flops = n_out if module.bias is not None else 0
            rows.append(
                LayerCount(name, block, _conv_kind(module), params, macs, 2 * macs, bias_flops,
                           params * bytes_per_value, n_in * bytes_per_value, n_out * bytes_per_value,
                           module.in_channels)
            )  # fmt: skip
        elif isinstance(module, nn.BatchNorm2d):
            channels = module.num_features
            rows.append(
                LayerCount(name, block, "batchnorm", params, 0, 0, 2 * n_out, 2 * channels * bytes_per_value,
                           n_in * bytes_per_value, n_out * bytes_per_value, channels)
            )  # fmt: skip
            # In DeepRx every BatchNorm is followed by a ReLU (pre-activation blocks and the head).
            rows.append(
                LayerCount(f"{name}.relu", block, "relu", 0, 0, 0, n_out, 0, n_out * bytes_per_value,
                           n_out * bytes_per_value, channels)
            )  # fmt: skip
        elif name.startswith("blocks.") and name.count(".") == 1:
            # The block's own output is the residual sum: read two operands, write one.
            rows.append(
                LayerCount(f"{name}.add", block, "add", 0, 0, 0, n_out, 0, 2 * n_out * bytes_per_value,
                           n_out * bytes_per_value, out.shape[1])
            )  # fmt: skip

    handles = []
    for name, module in model.named_modules():
        is_block = name.startswith("blocks.") and name.count(".") == 1
        if isinstance(module, nn.Conv2d | nn.BatchNorm2d) or is_block:
            handles.append(
                module.register_forward_hook(lambda m, i, o, name=name: record(name, m, i[0], o))  # type: ignore[misc]
            )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device  # count wherever the model lives (a GPU too)
            model(torch.zeros(1, model.config.in_channels, n_symbols, n_subcarriers, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return rows


@dataclass(frozen=True)
class SlotFlops:
    """The FLOPs of one neural receiver on one slot, by what they count.

    Attributes:
        network_conv: the network's convolution products, 2 x MAC (what ``FlopCounterMode`` and the paper count).
        network: every operation of the network: ``network_conv`` plus biases, BatchNorm, ReLU and residual adds.
        front_end: the front end's (slot -> network input), counted by hand (:func:`front_end_flops`).
    """

    network_conv: int
    network: int
    front_end: int

    @property
    def total(self) -> int:
        """What the receiver computes per slot: network and front end."""
        return self.network + self.front_end


def slot_flops(
    model: DeepRx, features: str, n_subcarriers: int, n_data_re: int, n_symbols: int = SYMBOLS_PER_SLOT
) -> SlotFlops:
    """The one FLOP count of a receiver (its network and its ``features`` front end) on one slot of
    ``n_symbols x n_subcarriers`` REs, ``n_data_re`` of them data."""
    totals = model_totals(count_layers(model, n_subcarriers, n_symbols))
    front = front_end_flops(features, model.config.n_rx, n_subcarriers, n_data_re, n_symbols)
    return SlotFlops(network_conv=totals["conv_flops"], network=totals["flops"], front_end=front)


def block_totals(layers: list[LayerCount]) -> dict[str, dict[str, int]]:
    """Sums per block (``stem``, ``block1`` ..., ``head``) of every numeric count, in execution order."""
    totals: dict[str, dict[str, int]] = {}
    for layer in layers:
        t = totals.setdefault(layer.block, dict.fromkeys(_NUMERIC, 0))
        for key in _NUMERIC:
            t[key] += getattr(layer, key)
    return totals


_NUMERIC = ("params", "macs", "conv_flops", "other_flops", "flops", "weight_bytes", "act_read_bytes", "act_write_bytes")


def model_totals(layers: list[LayerCount]) -> dict[str, int]:
    """Sums over all layers of every numeric count."""
    return {key: sum(getattr(layer, key) for layer in layers) for key in _NUMERIC}


def front_end_flops(
    features: str, n_rx: int, n_subcarriers: int, n_data_re: int, n_symbols: int = SYMBOLS_PER_SLOT
) -> int:
    """Real FLOPs per slot of a front end, counted by hand from its operations (complex mul = 6, add = 2).

    ``paper``: the raw LS estimate (one complex multiply per antenna and RE). ``enhanced`` adds the linear
    interpolation (2 complex multiplies and 1 add per antenna and RE), the per-RE LMMSE of a 1-stream,
    ``n_rx``-antenna link (``h^H y`` and ``|h|^2``: ``8 n_rx`` each, a division and the unbiasing: about
    ``16 n_rx + 20`` per data RE), the normalisation (a squared magnitude and a multiply per value) and two
    ``log10`` per RE (counted as 20 FLOPs each, a polynomial). An estimate of the arithmetic, for the energy
    tables; the Sionna implementation may do more (it is general MIMO).
    """
    res = n_symbols * n_subcarriers
    ls = _ls_flops(n_rx, res)
    if features == "paper":
        return ls
    interpolation = _interpolation_flops(n_rx, res)
    lmmse = _lmmse_flops(n_rx, n_data_re)
    normalisation = 4 * n_rx * res + 3 * 2 * n_rx * res
    logs = 2 * 20 * res
    return ls + interpolation + lmmse + normalisation + logs


def classical_flops(
    perfect_csi: bool, n_rx: int, n_subcarriers: int, n_data_re: int, bits_per_symbol: int,
    n_symbols: int = SYMBOLS_PER_SLOT,
) -> int:  # fmt: skip
    """Real FLOPs per slot of the classical receivers, counted by hand like :func:`front_end_flops`: LS-LMMSE is
    the LS estimate, the linear interpolation, the per-RE LMMSE and max-log demapping; perfect-CSI LMMSE skips
    the estimate. Max-log over ``M = 2^bits`` points per data RE: a distance to each point (complex subtract,
    squared magnitude, scale: 6 FLOPs), then per bit two maxima over ``M / 2`` points and their difference
    (``M + 1``)."""
    points = 2**bits_per_symbol
    demap = (6 * points + bits_per_symbol * (points + 1)) * n_data_re
    detect = _lmmse_flops(n_rx, n_data_re) + demap
    if perfect_csi:
        return detect
    res = n_symbols * n_subcarriers
    return _ls_flops(n_rx, res) + _interpolation_flops(n_rx, res) + detect


def _ls_flops(n_rx: int, res: int) -> int:
    return 6 * n_rx * res  # one complex multiply per antenna and RE


def _interpolation_flops(n_rx: int, res: int) -> int:
    return (2 * 6 + 2) * n_rx * res  # two complex multiplies and an add per antenna and RE


def _lmmse_flops(n_rx: int, n_data_re: int) -> int:
    return (16 * n_rx + 20) * n_data_re  # h^H y and |h|^2 (8 n_rx each), a division and the unbiasing
