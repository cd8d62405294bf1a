"""Classical receivers on the same slots as DeepRx, built from Sionna blocks.

* ``ls_lmmse``: Sionna's CDM-aware PUSCH LS estimator with linear interpolation, then LMMSE equalisation
  and max-log demapping (``LinearDetector``), using the estimator's error variance.
* ``perfect_lmmse``: the same detector fed the true channel with zero error variance (a genie bound).

Interference is treated as noise: both are given the slot's noise-plus-interference power.
Each receiver maps a :class:`~deeprx.link.simulator.Slot` to LLRs ``[batch, n_data_re, bits_per_symbol]``
(float32, > 0 means bit 1, Sionna's convention).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from deeprx.link.fused import FusedLsLmmse, lmmse_one_stream
from deeprx.link.pusch import sionna_device
from deeprx.link.simulator import Slot, UplinkSimulator

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from sionna.phy.mapping import Demapper
    from sionna.phy.mimo import StreamManagement
    from sionna.phy.ofdm import LinearDetector


LS_LMMSE = "LS-LMMSE"
PERFECT_CSI_LMMSE = "Perfect-CSI LMMSE"
BASELINES: tuple[str, ...] = (LS_LMMSE, PERFECT_CSI_LMMSE)  # the names of the classical receivers' curves


class LmmseReceiver:
    """LMMSE detection with either Sionna's PUSCH LS estimator or perfect CSI.

    Args:
        simulator: the simulator whose resource grid and DMRS configuration the slots use; the receiver
            runs on its device.
        perfect_csi: use the true channel instead of the LS estimate.
    """

    def __init__(self, simulator: UplinkSimulator, perfect_csi: bool) -> None:
        rg = simulator.resource_grid
        self.perfect_csi = perfect_csi
        self.bits_per_symbol = simulator.bits_per_symbol
        self.device = simulator.device
        self._estimator = simulator.ls_estimator()
        with sionna_device(self.device):
            stream_management = StreamManagement(np.ones([1, 1], bool), 1)
            self._detector = LinearDetector(
                "lmmse", "bit", "maxlog", rg, stream_management, "qam", simulator.bits_per_symbol
            )

    @torch.no_grad()
    def __call__(self, slot: Slot) -> torch.Tensor:
        """LLRs ``[batch, n_data_re, bits_per_symbol]`` float32 on the receiver's device."""
        slot = slot.to(self.device)
        y = slot.y[:, None]  # Sionna layout [batch, n_rx_nodes=1, n_rx, 14, n_sc]
        no = slot.noise_var
        # complex Sionna ops stay in full precision inside a bf16 training step
        with sionna_device(self.device), torch.autocast(self.device.type, enabled=False):
            if self.perfect_csi:
                h = slot.h[:, None, :, None, None]  # [batch, 1, n_rx, 1 tx, 1 stream, 14, n_sc]
                err_var = torch.zeros((), dtype=torch.float32, device=self.device)
            else:
                h, err_var = self._estimator(y, no)
            llr = self._detector(y, h, err_var, no)  # [batch, 1 tx, 1 stream, n_coded_bits]
        return llr.reshape(slot.batch_size, -1, self.bits_per_symbol).float()


class FusedLmmseReceiver:
    """:class:`LmmseReceiver` through :mod:`deeprx.link.fused`: the fused LS estimate (or the true channel) and the
    closed-form one-stream LMMSE, then Sionna's max-log demapper, which is what ``LinearDetector`` runs after its
    equaliser. The classical receivers' serving path (``recommend`` on the host); same LLRs to float rounding
    (tested).

    Args:
        simulator: as for :class:`LmmseReceiver`.
        perfect_csi: use the true channel (with no estimation error) instead of the LS estimate.
    """

    def __init__(self, simulator: UplinkSimulator, perfect_csi: bool) -> None:
        self.bits_per_symbol = simulator.bits_per_symbol
        self.device = simulator.device
        self._data_mask = simulator.data_mask
        self._ls_lmmse = None if perfect_csi else FusedLsLmmse(simulator)
        with sionna_device(self.device):
            self._demapper = Demapper("maxlog", "qam", simulator.bits_per_symbol)

    @torch.no_grad()
    def __call__(self, slot: Slot) -> torch.Tensor:
        """LLRs ``[batch, n_data_re, bits_per_symbol]`` float32 on the receiver's device."""
        slot = slot.to(self.device)
        with sionna_device(self.device), torch.autocast(self.device.type, enabled=False):
            if self._ls_lmmse is None:
                h, y = slot.h[..., self._data_mask], slot.y[..., self._data_mask]  # [batch, n_rx, n_data_re]
                x_hat, no_eff = lmmse_one_stream(h, y, slot.noise_var[:, None, None])
            else:
                _, x_hat, no_eff = self._ls_lmmse(slot.y, slot.noise_var)  # [batch, n_data_re] each
            llr = self._demapper(x_hat, no_eff)  # [batch, n_data_re * bits_per_symbol]
        return llr.reshape(slot.batch_size, -1, self.bits_per_symbol).float()


def baseline_receivers(simulator: UplinkSimulator) -> dict[str, LmmseReceiver]:
    """The two classical receivers, keyed by the names used in curves and reports."""
    return {
        LS_LMMSE: LmmseReceiver(simulator, perfect_csi=False),
        PERFECT_CSI_LMMSE: LmmseReceiver(simulator, perfect_csi=True),
    }
