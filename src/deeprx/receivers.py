"""Neural receivers: the glue between simulated slots and the DeepRx network.

A neural receiver is a *front end* (slot -> network input ``z``) followed by the network and the selection
of the data REs. Two front ends, named by ``RunConfig.features``:

* ``paper``: the DeepRx paper's input ``Z = [Y, Xp, H_raw]`` (received grid, pilot grid, raw LS estimate at
  the pilots), real and imaginary parts as channels, unnormalised: ``4 * n_rx + 2`` channels.
* ``enhanced``: the paper's input, normalised per slot, plus what a classical receiver knows, so the network
  starts where LS-LMMSE ends and learns what it can add (the direction of EqDeepRx and NVlabs' neural_rx):
  Sionna's CDM-aware LS estimate linearly interpolated over the grid, the LMMSE-equalised symbols on the
  data REs, ``log10`` of their post-equalisation noise variance, and ``log10`` of the slot's noise variance:
  ``6 * n_rx + 6`` channels. Each slot is divided by ``s = sqrt(mean |Y|^2)`` (over antennas and REs), so
  ``Y``, ``H_raw`` and the interpolated estimate have unit power and ``N0`` becomes ``N0 / s^2``; the
  equalised symbols are already in constellation units.
* ``residual``: the enhanced input, and the network's logits are *added* to LS-LMMSE's max-log LLRs
  (clipped to ``+-PRIOR_CLIP``), the network's output layer starting at zero: an untrained network is
  exactly LS-LMMSE, and training only has to learn the correction.

The front end is part of the receiver's cost: :func:`deeprx.energy.flops.front_end_flops` counts it beside the
network's layers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from deeprx.config import RunConfig, input_channels
from deeprx.link.fused import FusedLsLmmse, LsLmmse
from deeprx.link.pusch import sionna_device
from deeprx.link.simulator import Slot, UplinkSimulator
from deeprx.models.deeprx import DeepRx
from deeprx.runs import checkpoint
from deeprx.runs.checkpoint import Checkpoint
from deeprx.runtime import CPU

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from sionna.phy.mapping import Demapper

# log10 of a variance is clamped here: the equalised noise variance can reach 0 at the grid's edges.
_MIN_VARIANCE = 1e-6
# LS-LMMSE's max-log LLRs reach 1e4 at high SINR; clipped, a wrong but confident one stays correctable.
PRIOR_CLIP = 20.0


@dataclass
class NetworkInput:
    """What a front end gives the network.

    Attributes:
        z: the network's input, ``[batch, channels, 14, n_sc]`` float32.
        prior: LLRs the network's data-RE logits are added to, ``[batch, n_data_re, bits_per_symbol]``
            float32 (the ``residual`` front end), else ``None``.
    """

    z: torch.Tensor
    prior: torch.Tensor | None = None


def complex_channels(*parts: torch.Tensor) -> torch.Tensor:
    """Complex ``[batch, c_i, 14, n_sc]`` tensors -> real ``[batch, 2 * sum(c_i), 14, n_sc]`` (re, im per part)."""
    return torch.cat([t for p in parts for t in (p.real, p.imag)], dim=1).float()


def paper_input(slot: Slot) -> torch.Tensor:
    """DeepRx input ``Z = [Y, Xp, H_raw]`` as real channels, ``[batch, 4*n_rx+2, 14, n_sc]`` float32."""
    xp = slot.x_pilot.expand(slot.batch_size, 1, *slot.x_pilot.shape)
    return complex_channels(slot.y, xp, slot.h_ls)


def slot_scale(y: torch.Tensor) -> torch.Tensor:
    """Per-slot amplitude ``s = sqrt(mean |y|^2)`` over antennas and REs: ``[batch, n_rx, 14, n_sc]`` -> ``[batch]``."""
    return (y.abs() ** 2).mean(dim=(1, 2, 3)).sqrt()


def scatter_data_res(values: torch.Tensor, data_mask: torch.Tensor) -> torch.Tensor:
    """Values on the data REs ``[batch, n_data_re]`` -> a grid ``[batch, 14, n_sc]``, zero off the data REs."""
    grid = torch.zeros(values.shape[0], *data_mask.shape, dtype=values.dtype, device=values.device)
    grid[:, data_mask] = values  # row-major RE order, Sionna's
    return grid


def data_re_logits(logits: torch.Tensor, data_mask: torch.Tensor) -> torch.Tensor:
    """``[batch, bits, 14, n_sc]`` -> ``[batch, n_data_re, bits]`` in row-major RE order (Sionna's)."""
    flat = logits.flatten(2)[:, :, data_mask.flatten()]
    return flat.transpose(1, 2)


class FrontEnd:
    """Slot -> network input (and, for ``residual``, prior LLRs), for ``RunConfig.features`` (module docstring).

    Args:
        simulator: the simulator of the link (its resource grid and DMRS configuration, and its device,
            where the blocks of the enhanced front end are built).
        features: ``paper``, ``enhanced`` or ``residual``.
        ls_lmmse: the enhanced front end's channel estimate and equaliser; default Sionna's PUSCH LS estimator
            and LMMSE equaliser fused into a few tensor operations (:class:`deeprx.link.fused.FusedLsLmmse`),
            :class:`deeprx.link.fused.SionnaLsLmmse` runs Sionna's blocks themselves.
    """

    def __init__(self, simulator: UplinkSimulator, features: str, ls_lmmse: LsLmmse | None = None) -> None:
        self.features = features
        self.channels = input_channels(features, simulator.link.n_rx)
        self.device = simulator.device
        if features != "paper":
            self._ls_lmmse = ls_lmmse or FusedLsLmmse(simulator)
            with sionna_device(self.device):
                self._demapper = Demapper("maxlog", "qam", simulator.bits_per_symbol)
        self.bits_per_symbol = simulator.bits_per_symbol

    def __call__(self, slot: Slot) -> torch.Tensor:
        """The network's input ``[batch, channels, 14, n_sc]`` float32 on the slot's device."""
        return self.prepare(slot).z

    @torch.no_grad()
    def prepare(self, slot: Slot) -> NetworkInput:
        """The network's input and, for ``residual``, the LLRs its logits are added to."""
        if self.features == "paper":
            return NetworkInput(paper_input(slot))
        with sionna_device(slot.device), torch.autocast(slot.device.type, enabled=False):
            return self._enhanced(slot)

    def _enhanced(self, slot: Slot) -> NetworkInput:
        # h_hat [batch, n_rx, 14, n_sc]; x_hat, no_eff [batch, n_data_re]
        h_hat, x_hat, no_eff = self._ls_lmmse(slot.y, slot.noise_var)
        x_eq = scatter_data_res(x_hat, slot.data_mask)[:, None]  # [batch, 1, 14, n_sc]
        log_no_eff = scatter_data_res(torch.log10(no_eff.clamp_min(_MIN_VARIANCE)), slot.data_mask)
        s = slot_scale(slot.y)  # [batch]
        inv = (1.0 / s)[:, None, None, None]
        xp = slot.x_pilot.expand(slot.batch_size, 1, *slot.x_pilot.shape)
        log_no = torch.log10((slot.noise_var / s**2).clamp_min(_MIN_VARIANCE))
        log_no = log_no[:, None, None, None].expand(-1, 1, *slot.x_pilot.shape)  # [batch, 1, 14, n_sc]
        z = complex_channels(slot.y * inv, xp, slot.h_ls * inv, h_hat * inv, x_eq)
        z = torch.cat([z, log_no_eff[:, None].float(), log_no.float()], dim=1)
        if self.features != "residual":
            return NetworkInput(z)
        llr = self._demapper(x_hat, no_eff)  # [batch, n_data_re * bits], LS-LMMSE's
        prior = llr.reshape(slot.batch_size, -1, self.bits_per_symbol).float().clamp(-PRIOR_CLIP, PRIOR_CLIP)
        return NetworkInput(z, prior)


# Any receiver, neural or classical: slot -> LLRs (logits) [batch, n_data_re, bits_per_symbol]; > 0 means bit 1.
Receiver = Callable[[Slot], torch.Tensor]


def slot_bit_errors(llr: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Hard-decision bit errors per slot: ``llr > 0`` decides 1. ``llr``, ``bits``: ``[batch, n_data_re, q]``;
    returns ``[batch]`` int64 on ``llr``'s device."""
    return ((llr > 0) != bits.to(llr.device).bool()).sum(dim=(1, 2))


def bit_error_rate(llr: torch.Tensor, bits: torch.Tensor) -> float:
    """Hard-decision BER of a batch: errors / bits."""
    return float(slot_bit_errors(llr, bits).sum()) / bits.numel()


class NeuralReceiver:
    """A front end and a DeepRx network: ``slot -> logits [batch, n_data_re, bits_per_symbol]`` float32.

    Called, it runs the network in eval mode without gradients (a receiver, like the classical ones);
    :meth:`logits` keeps gradients for training.
    """

    def __init__(self, model: DeepRx, front_end: FrontEnd) -> None:
        if model.config.in_channels != front_end.channels:
            raise ValueError(
                f"the network takes {model.config.in_channels} input channels, the "
                f"{front_end.features!r} front end gives {front_end.channels}"
            )
        self.model = model
        self.front_end = front_end

    def logits(self, slot: Slot, x: NetworkInput | None = None) -> torch.Tensor:
        """Logits at the data REs; ``x`` is the front end's output when the caller already has it."""
        x = self.front_end.prepare(slot) if x is None else x
        out = data_re_logits(self.model(x.z), slot.data_mask)
        return out if x.prior is None else out + x.prior

    @torch.no_grad()
    def __call__(self, slot: Slot) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        out = self.logits(slot.to(device)).float()
        self.model.train(was_training)
        return out


class RunnerReceiver:
    """A network run by something other than torch (e.g. ONNX Runtime) as a :data:`Receiver`.

    ``run`` maps the front end's ``z: [batch, C, 14, n_sc]`` float32 to the network's logits
    ``[batch, bits, 14, n_sc]``; calls return ``[batch, n_data_re, bits_per_symbol]`` float32 on the slot's device.
    """

    def __init__(self, run: Callable[[torch.Tensor], torch.Tensor], front_end: FrontEnd) -> None:
        self.run, self.front_end = run, front_end

    @torch.no_grad()
    def __call__(self, slot: Slot) -> torch.Tensor:
        x = self.front_end.prepare(slot)
        out = data_re_logits(self.run(x.z).to(slot.device).float(), slot.data_mask)
        return out if x.prior is None else out + x.prior


def initialise(model: DeepRx, features: str) -> DeepRx:
    """A fresh network for ``features``: for ``residual`` its output layer starts at zero (= LS-LMMSE)."""
    if features == "residual":
        torch.nn.init.zeros_(model.head.weight)
        torch.nn.init.zeros_(model.head.bias)
    return model


def load_receiver(
    run_dir: Path,
    device: torch.device = CPU,
    expected: RunConfig | None = None,
    simulator: UplinkSimulator | None = None,
) -> tuple[NeuralReceiver, Checkpoint]:
    """The trained receiver of a run folder (network in eval mode and its front end) on ``device``.

    ``expected``: the configuration whose data it will see (checked as by :func:`checkpoint.load_model`); its link
    may have another grid, DMRS count or channel than the checkpoint's (the network is fully convolutional),
    and the front end is built for it. ``simulator``: the caller's, for the front end; else one is built for
    ``expected``'s link (or the checkpoint's).
    """
    model, ckpt = checkpoint.load_model(run_dir, expected)
    simulator = simulator or UplinkSimulator((expected or ckpt.config).link, device)
    return NeuralReceiver(model.to(device), FrontEnd(simulator, ckpt.config.features)), ckpt
