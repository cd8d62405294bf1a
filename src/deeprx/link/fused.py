"""LS-LMMSE in a few tensor operations: Sionna's PUSCH LS estimator and its LMMSE equaliser, fused for one stream.

The enhanced front end (:mod:`deeprx.receivers`) runs Sionna's CDM-aware PUSCH LS estimator with linear
interpolation and Sionna's OFDM LMMSE equaliser on every slot. Both are general blocks (any number of streams,
transmitters, interpolators) made of dozens of small operations; on a 2-core CPU at 4 PRB they took about a
third of a small student's serving time for 0.02 % of its FLOPs. For the one stream here both are simple:

* **Estimate.** LS at the pilots, CDM despreading and linear interpolation are linear in ``y`` for fixed
  pilots, and the error variance is linear in ``no``. So the estimate is one complex matrix product,
  ``h_hat[b, m, :] = A @ y[b, m, pilot REs]`` (``A``: ``[14 n_sc, n_pilot_res]``), and the error variance is
  ``no[b] * e`` (``e``: ``[14, n_sc]``). ``A`` and ``e`` are read off Sionna's own estimator by probing it
  with the columns of a DFT matrix on the pilot REs (and ``no = 1``), so they are its operator, not a
  re-derivation.
* **Equalise.** Sionna's equaliser forms ``G = h^H (h h^H + S)^-1`` with ``S = diag(no + err_var_m)`` and
  returns ``x_hat = G y / (G h)`` and ``no_eff = 1 / (G h) - 1``. For one stream, with
  ``a = sum_m |h_m|^2 / s_m`` (``s_m = no + err_var_m``), the matrix inversion lemma gives
  ``x_hat = sum_m conj(h_m) y_m / s_m / a`` and ``no_eff = 1 / a``: no matrix inverse.

``tests/test_receivers.py`` checks both against Sionna's blocks on the same slots, and the receiver's decisions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch

from deeprx.link.pusch import sionna_device
from deeprx.link.simulator import UplinkSimulator

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from sionna.phy.mimo import StreamManagement
    from sionna.phy.ofdm import LMMSEEqualizer

# A channel estimate and equaliser: (y [batch, n_rx, 14, n_sc], no [batch]) -> (h_hat, x_hat, no_eff).
LsLmmse = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class FusedLsLmmse:
    """Sionna's PUSCH LS estimate (linear interpolation) and LMMSE equalisation of one stream, fused.

    Built once per link from the simulator's estimator (probing it on the simulator's device). Called with
    ``y [batch, n_rx, 14, n_sc]`` complex64 and ``no [batch]`` float32, it returns

    * ``h_hat`` ``[batch, n_rx, 14, n_sc]`` complex64: the interpolated estimate (Sionna's ``h_hat``),
    * ``x_hat`` ``[batch, n_data_re]`` complex64: the equalised data symbols, row-major RE order (Sionna's),
    * ``no_eff`` ``[batch, n_data_re]`` float32: their post-equalisation noise variance.
    """

    def __init__(self, simulator: UplinkSimulator) -> None:
        self.data_mask = simulator.data_mask  # [14, n_sc] bool
        self.pilot_mask = ~self.data_mask  # every RE that is not data: DMRS and the empty REs of its symbols
        self.shape = tuple(self.data_mask.shape)
        operator, error_pattern = _probe(simulator, self.pilot_mask)
        self.operator_t = operator.T.contiguous()  # [n_pilot_res, 14 n_sc] complex64
        self.error_pattern = error_pattern  # [14, n_sc] float32: err_var / no

    @torch.no_grad()
    def __call__(self, y: torch.Tensor, no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, n_rx = y.shape[:2]
        y_pilots = y[:, :, self.pilot_mask]  # [batch, n_rx, n_pilot_res]
        h_hat = (y_pilots @ self.operator_t).reshape(batch, n_rx, *self.shape)  # [batch, n_rx, 14, n_sc]
        h_data, y_data = h_hat[..., self.data_mask], y[..., self.data_mask]  # [batch, n_rx, n_data_re]
        s = no[:, None, None] * (1.0 + self.error_pattern[self.data_mask])  # [batch, 1, n_data_re]: no + err_var
        x_hat, no_eff = lmmse_one_stream(h_data, y_data, s)
        return h_hat, x_hat, no_eff


def lmmse_one_stream(h: torch.Tensor, y: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sionna's OFDM LMMSE equaliser for one stream in closed form (module docstring): channel ``h`` and received
    ``y`` ``[batch, n_rx, n_re]`` complex64, noise plus estimation-error variance ``s`` broadcastable to them
    (float32); returns ``x_hat`` ``[batch, n_re]`` complex64 and ``no_eff`` ``[batch, n_re]`` float32."""
    a = (h.abs() ** 2 / s).sum(dim=1)  # [batch, n_re]
    return (h.conj() * y / s).sum(dim=1) / a, 1.0 / a


def _probe(simulator: UplinkSimulator, pilot_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sionna's estimator as a matrix over the pilot REs, ``[14 n_sc, n_pilot_res]``, and its error variance at
    ``no = 1``, ``[14, n_sc]``.

    The probes are the columns of the unitary DFT matrix ``F`` placed on the pilot REs (a batch of them, on one
    antenna): every pilot RE is non-zero in every probe, as in a received slot. Unit impulses would not do:
    Sionna's CDM despreading keeps an estimate at zero where the LS value is exactly zero (its test for the
    empty REs), which an impulse's neighbours are. The estimates ``H = A F`` then give ``A = H F^H``.
    """
    estimator = simulator.ls_estimator()
    n = int(pilot_mask.sum())
    device = simulator.device
    dft = torch.fft.fft(torch.eye(n, dtype=torch.complex128), norm="ortho").to(torch.complex64)  # [n, n] unitary
    probes = torch.zeros(n, 1, 1, *pilot_mask.shape, dtype=torch.complex64, device=device)
    probes[:, 0, 0][:, pilot_mask] = dft.T.to(device)  # probe k: column k of F on the pilot REs
    with sionna_device(device), torch.autocast(device.type, enabled=False):
        h_hat, err_var = estimator(probes, torch.ones(n, device=device))
    estimates = h_hat[:, 0, 0, 0, 0].reshape(n, -1).T.to(torch.complex128)  # [14 n_sc, n]: H = A F
    operator = (estimates @ dft.to(device, torch.complex128).conj().T).to(torch.complex64)  # A = H F^H
    error = err_var.broadcast_to(h_hat.shape)[0, 0, 0, 0, 0].real.float()  # [14, n_sc]
    return operator, error


class SionnaLsLmmse:
    """The reference :class:`FusedLsLmmse` stands for: Sionna's PUSCH LS estimator and OFDM LMMSE equaliser as
    blocks, with the same call and outputs (tests and ``benchmarks/front_end.py`` compare the two)."""

    def __init__(self, simulator: UplinkSimulator) -> None:
        self._estimator = simulator.ls_estimator()
        with sionna_device(simulator.device):
            self._equalizer = LMMSEEqualizer(simulator.resource_grid, StreamManagement(np.ones([1, 1], bool), 1))

    @torch.no_grad()
    def __call__(self, y: torch.Tensor, no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = y[:, None]  # Sionna layout [batch, 1 rx node, n_rx, 14, n_sc]
        h_hat, err_var = self._estimator(y, no)  # h_hat [batch, 1, n_rx, 1 tx, 1 stream, 14, n_sc]
        x_hat, no_eff = self._equalizer(y, h_hat, err_var, no)  # [batch, 1 tx, 1 stream, n_data_re]
        return h_hat[:, 0, :, 0, 0], x_hat[:, 0, 0], no_eff[:, 0, 0]
