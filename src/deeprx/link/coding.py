"""5G NR transport blocks: the channel code of a coded link (``link.mcs_index`` set), by Sionna's own blocks.

Each slot carries one transport block (TB) of ``tb_size`` information bits: TB CRC, code-block segmentation with
their CRCs, 5G LDPC encoding, rate matching and scrambling by Sionna's ``TBEncoder`` (the one its
``PUSCHTransmitter`` builds for the link's MCS and grid), and back by its ``TBDecoder`` (belief propagation, CRC
check). The coded bits fill the slot's data REs in the order of the receivers' labels: ``[n_data_re,
bits_per_symbol]`` row-major is the order Sionna's mapper and resource-grid mapper consume them in.

LLR convention: a receiver's logit > 0 means bit 1, which is the convention of Sionna's LDPC decoder (its own
example feeds ``10 * (2 c - 1)``): logits go in unchanged (tested against ``PUSCHReceiver`` on the same slots).
"""

from __future__ import annotations

import warnings

import torch

from deeprx.config import LinkConfig
from deeprx.link.pusch import make_pusch_config, sionna_device
from deeprx.runtime import CPU

with warnings.catch_warnings():  # Sionna warns about optional extras at import time
    warnings.simplefilter("ignore")
    from sionna.phy.nr import PUSCHTransmitter, TBDecoder

BP_ITERATIONS = 20  # belief-propagation iterations of every decoded receiver (Sionna's default), the same for all


class TransportBlockCodec:
    """The link's TB encoder and decoder on one device.

    Args:
        link: a coded link (``link.coded``).
        device: where encoding and decoding run (the run's device; decoding is batched).
        bp_iterations: BP iterations of the LDPC decoder.
        transmitter: Sionna's transmitter already built for ``link`` on ``device`` (else one is built).

    Attributes:
        tb_size: information bits per slot (the TB size of TS 38.214 for this MCS and grid).
        n_coded_bits: coded bits per slot, ``n_data_re * bits_per_symbol``.
        code_rate: ``tb_size / n_coded_bits`` (the TB's own rate, CRC bits not counted as information).
    """

    def __init__(
        self,
        link: LinkConfig,
        device: torch.device = CPU,
        bp_iterations: int = BP_ITERATIONS,
        transmitter: PUSCHTransmitter | None = None,
    ) -> None:
        if not link.coded:
            raise ValueError("an uncoded link has no transport blocks: set link.mcs_index")
        self.link = link
        self.device = device
        with sionna_device(device):
            # the simulator passes the transmitter it already built for this link (cell 1): no second build
            transmitter = transmitter or PUSCHTransmitter(make_pusch_config(link), output_domain="freq")
            # PUSCHTransmitter has no public accessor for the TB encoder it built for this MCS and grid
            self._encoder = transmitter._tb_encoder
            self._decoder = TBDecoder(self._encoder, num_bp_iter=bp_iterations)
        self.tb_size = int(self._encoder.tb_size)
        self.n_coded_bits = int(self._encoder.n)
        self.code_rate = self.tb_size / self.n_coded_bits

    @torch.no_grad()
    def encode(self, info_bits: torch.Tensor) -> torch.Tensor:
        """Information bits ``[batch, tb_size]`` float32 in {0, 1} -> the slots' coded bits (the labels)
        ``[batch, n_data_re, bits_per_symbol]`` float32 in {0, 1}."""
        with sionna_device(self.device):
            coded = self._encoder(info_bits[:, None, :])  # [batch, 1 (tx), n_coded_bits]
        return coded.reshape(info_bits.shape[0], -1, self.link.bits_per_symbol).to(torch.float32)

    @torch.no_grad()
    def decode(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LLRs of the coded bits ``[batch, n_data_re, bits_per_symbol]`` (logit > 0: bit 1) -> decoded
        information bits ``[batch, tb_size]`` float32 and the TB CRC status ``[batch]`` bool (True: passed)."""
        with sionna_device(self.device):
            bits, crc_ok = self._decoder(llr.reshape(llr.shape[0], 1, -1).to(torch.float32))
        return bits.reshape(llr.shape[0], self.tb_size), crc_ok.reshape(llr.shape[0])
