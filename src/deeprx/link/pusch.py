"""Sionna's PUSCH set-up for a link: its PUSCH configuration, and the device Sionna builds and runs blocks on.

The simulator (transmitter, channel) and the channel code (:mod:`deeprx.link.coding`) are both built from
these, so they agree on the grid, the DMRS, the MCS and the device.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch

from deeprx.config import LinkConfig

with warnings.catch_warnings():  # Sionna warns about optional extras at import time
    warnings.simplefilter("ignore")
    import sionna.phy as sionna_phy
    from sionna.phy.nr import PUSCHConfig


@contextlib.contextmanager
def sionna_device(device: torch.device) -> Iterator[None]:
    """Build and run Sionna blocks on ``device``: the one place that sets ``sionna.phy.config.device``.

    Sionna puts every block's tensors on its global default device (``cuda:0`` whenever a GPU is visible),
    so a simulator for another device must set it while it builds blocks and draws slots. The previous
    default is restored on exit, so simulators for several devices can live in one process.
    """
    name = str(torch.device(device))
    if name == "cuda":  # which GPU is the run context's to say (deeprx.runtime.RunContext.resolve), not Sionna's
        raise ValueError("sionna_device needs a resolved device (cuda:N), e.g. RunContext.resolve('cuda').device")
    previous = sionna_phy.config._device  # the setter refuses a no-op; read the raw value
    sionna_phy.config._device = name
    try:
        yield
    finally:
        sionna_phy.config._device = previous


def make_pusch_config(link: LinkConfig, n_cell_id: int = 1) -> PUSCHConfig:
    """Sionna PUSCH config for the link: 1 port, 1 layer, DMRS type 1 with 1 or 2 symbols, the link's MCS."""
    pc = PUSCHConfig()
    pc.carrier.subcarrier_spacing = link.subcarrier_spacing_khz
    pc.carrier.n_size_grid = link.n_prb
    pc.carrier.n_cell_id = n_cell_id
    pc.num_antenna_ports = 1
    pc.num_layers = 1
    pc.precoding = "non-codebook"
    pc.dmrs.additional_position = link.dmrs_symbols - 1
    if link.coded:
        pc.tb.mcs_table, pc.tb.mcs_index = link.mcs_table, link.mcs_index
        return pc
    # Uncoded link: the MCS only fixes the modulation order, the labels are random coded bits. The code rates
    # (0.37-0.67) are ones Sionna's LDPC encoder accepts at every grid size (it rejects r < 1/5, and r < 1/3
    # once K needs BG1).
    mcs_table, mcs_index = {2: (1, 5), 4: (1, 13), 6: (1, 17), 8: (2, 20)}[link.bits_per_symbol]
    pc.tb.mcs_table = mcs_table
    pc.tb.mcs_index = mcs_index
    return pc
