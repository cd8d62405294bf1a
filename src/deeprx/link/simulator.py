"""PUSCH uplink simulator on Sionna PHY (frequency domain, 1 UE, 1 layer, SIMO).

Transmitter: random coded bits -> Sionna's QAM mapper -> layer mapper -> resource-grid mapper (with the
PUSCH DMRS). Channel: Sionna's 3GPP CDL/TDL/UMi models through ``GenerateOFDMChannel`` with a normalised
channel, so the average received signal power per RE per antenna is 1. Noise and an optional co-channel
interferer (a second UE with its own DMRS scrambling and its own channel realisation) set the SINR:
``SINR = 1 / (N0 + P_interferer)``.

The labels are the coded bits on the grid, so BER is the uncoded BER, as in the paper. On an uncoded link
(the default) they are random bits; on a coded one (``link.mcs_index``) they are one LDPC-coded transport block
per slot (:mod:`deeprx.link.coding`: scrambled coded bits, so the labels' statistics are the same), and the slot
also carries the TB's information bits, which a receiver's decoded LLRs are checked against.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from deeprx.config import LinkConfig
from deeprx.link.coding import TransportBlockCodec
from deeprx.link.pusch import make_pusch_config, sionna_device
from deeprx.runtime import CPU

with warnings.catch_warnings():  # Sionna warns about optional extras at import time
    warnings.simplefilter("ignore")
    import sionna.phy as sionna_phy
    from sionna.phy.channel import ApplyOFDMChannel, GenerateOFDMChannel, gen_single_sector_topology
    from sionna.phy.channel.tr38901 import CDL, TDL, AntennaArray, UMi
    from sionna.phy.nr import PUSCHLSChannelEstimator, PUSCHTransmitter

T = TypeVar("T")


@dataclass
class Slot:
    """A batch of received PUSCH slots and everything a receiver or a loss needs.

    Attributes:
        y: received grid, ``[batch, n_rx, 14, n_sc]`` complex64.
        h: true channel, ``[batch, n_rx, 14, n_sc]`` complex64.
        h_ls: raw LS estimate ``y * conj(xp) / |xp|^2`` at pilot REs, 0 elsewhere, same shape as ``y``.
        x_pilot: pilot grid, ``[14, n_sc]`` complex64, 0 off the pilot REs.
        data_mask: data REs, ``[14, n_sc]`` bool; data REs are ordered row-major (symbol, subcarrier),
            the order of Sionna's resource-grid mapper.
        bits: coded bit labels per data RE, ``[batch, n_data_re, bits_per_symbol]`` float32 in {0, 1}.
        noise_var: noise plus interference power per RE and antenna, ``[batch]`` float32.
        sinr_db: SINR of each slot, ``[batch]`` float32.
        info_bits: on a coded link, the transport block's information bits, ``[batch, tb_size]`` float32 in
            {0, 1} (``bits`` are their encoding); ``None`` on an uncoded link.
    """

    y: torch.Tensor
    h: torch.Tensor
    h_ls: torch.Tensor
    x_pilot: torch.Tensor
    data_mask: torch.Tensor
    bits: torch.Tensor
    noise_var: torch.Tensor
    sinr_db: torch.Tensor
    info_bits: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.y.shape[0]

    @property
    def device(self) -> torch.device:
        return self.y.device

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor the slot holds (``info_bits`` only on a coded link)."""
        return [v for v in self.__dict__.values() if v is not None]

    def to(self, device: torch.device | str) -> Slot:
        return Slot(**{k: None if v is None else v.to(device, non_blocking=True) for k, v in self.__dict__.items()})

    def select(self, index: torch.Tensor | list[int]) -> Slot:
        """The slots at ``index`` along the batch axis (the pilot grid and data mask are shared)."""
        shared = ("x_pilot", "data_mask")
        return Slot(**{k: v if k in shared or v is None else v[index] for k, v in self.__dict__.items()})


def raw_ls_estimate(y: torch.Tensor, x_pilot: torch.Tensor) -> torch.Tensor:
    """LS channel estimate at the pilot REs, zero elsewhere (no interpolation).

    Args:
        y: ``[batch, n_rx, 14, n_sc]`` complex64.
        x_pilot: ``[14, n_sc]`` complex64, zero off the pilots.

    Returns:
        ``[batch, n_rx, 14, n_sc]`` complex64.
    """
    power = x_pilot.abs() ** 2
    inv = torch.where(power > 0, 1.0 / power.clamp_min(1e-12), torch.zeros_like(power))
    return y * (x_pilot.conj() * inv)


def _on_own_device(method: Callable[..., T]) -> Callable[..., T]:
    """Run a method of an object with a ``device`` attribute inside :func:`sionna_device` for that device."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        with sionna_device(self.device):
            return method(self, *args, **kwargs)

    return wrapper


class _GridMapper:
    """Coded bits -> transmitted grid with Sionna's own transmitter blocks.

    ``PUSCHTransmitter`` has no public entry point below the LDPC encoder, so this is the one place that
    reaches into its (private) mapper blocks; the Sionna version is pinned in ``pyproject.toml``.
    """

    def __init__(self, link: LinkConfig, n_cell_id: int) -> None:
        self.transmitter = PUSCHTransmitter(make_pusch_config(link, n_cell_id), output_domain="freq")
        self.n_coded_bits = int(self.transmitter._num_coded_bits)

    def __call__(self, bits: torch.Tensor) -> torch.Tensor:
        """bits ``[batch, n_coded_bits]`` float32 -> grid ``[batch, 1, 1, 14, n_sc]`` complex64."""
        tx = self.transmitter
        return tx._resource_grid_mapper(tx._layer_mapper(tx._mapper(bits[:, None, :])))


class UplinkSimulator:
    """Draws batches of PUSCH slots through Sionna's 3GPP channel models.

    Args:
        link: the link configuration.
        device: where Sionna simulates and where the slots it returns live (default CPU).

    Example:
        >>> sim = UplinkSimulator(LinkConfig())
        >>> slot = sim.sample(batch_size=8, seed=1)
        >>> slot.y.shape  # [8, 2, 14, 48]
    """

    def __init__(self, link: LinkConfig, device: torch.device = CPU) -> None:
        self.link = link
        self.device = device
        self._build()

    @_on_own_device
    def ls_estimator(self) -> PUSCHLSChannelEstimator:
        """Sionna's CDM-aware PUSCH LS estimator with linear interpolation, for this link, on this device.

        Called ``(y [batch, 1, n_rx, 14, n_sc], no [batch])``, it returns the estimate
        ``[batch, 1, n_rx, 1, 1, 14, n_sc]`` complex64 and its error variance (broadcastable to it).
        """
        dmrs = self.pusch_config.dmrs
        return PUSCHLSChannelEstimator(
            self.resource_grid,
            dmrs.length,
            dmrs.additional_position,
            dmrs.num_cdm_groups_without_data,
            interpolation_type="lin",
        )

    @_on_own_device
    def _build(self) -> None:
        link = self.link
        self._mapper = _GridMapper(link, n_cell_id=1)
        # The interferer is a UE of a neighbouring cell: other DMRS scrambling, own channel.
        self._interferer_mapper = _GridMapper(link, n_cell_id=2) if link.interferer_probability > 0 else None
        self.resource_grid = self._mapper.transmitter.resource_grid
        self.pusch_config = self._mapper.transmitter._pusch_config
        mask = self.resource_grid.pilot_pattern.mask[0, 0].to(self.device)
        self.data_mask = mask == 0
        self.n_data_re = int(self.data_mask.sum())
        self.bits_per_symbol = link.bits_per_symbol
        assert self.n_data_re * self.bits_per_symbol == self._mapper.n_coded_bits
        # Mapping all-zero data leaves only the DMRS on the grid: that is the pilot grid.
        zeros = torch.zeros(1, self._mapper.n_coded_bits, device=self.device)
        grid = self._mapper(zeros)[0, 0, 0]
        self.x_pilot = torch.where(mask == 1, grid, torch.zeros_like(grid)).to(torch.complex64)
        fc = link.carrier_frequency_hz
        self._ut_array = AntennaArray(
            num_rows=1,
            num_cols=1,
            polarization="single",
            polarization_type="V",
            antenna_pattern="omni",
            carrier_frequency=fc,
        )
        self._bs_array = AntennaArray(
            num_rows=1,
            num_cols=link.n_rx,
            polarization="single",
            polarization_type="V",
            antenna_pattern="38.901",
            carrier_frequency=fc,
        )
        self._apply = ApplyOFDMChannel()
        transmitter = self._mapper.transmitter
        self.codec = TransportBlockCodec(link, self.device, transmitter=transmitter) if link.coded else None

    def map_bits(self, bits: torch.Tensor) -> torch.Tensor:
        """Labels ``[batch, n_data_re, bits_per_symbol]`` -> transmitted grid ``[batch, 14, n_sc]``."""
        return self._mapper(bits.reshape(bits.shape[0], -1))[:, 0, 0]

    def _channel(
        self, name: str, delay_spread_s: float, speed_mps: tuple[float, float], batch_size: int
    ) -> GenerateOFDMChannel:
        fc = self.link.carrier_frequency_hz
        lo, hi = speed_mps
        family, _, variant = name.partition("-")
        if family == "CDL":
            model = CDL(
                variant,
                delay_spread_s,
                fc,
                self._ut_array,
                self._bs_array,
                "uplink",
                min_speed=lo,
                max_speed=hi,
            )
        elif family == "TDL":
            model = TDL(variant, delay_spread_s, fc, min_speed=lo, max_speed=hi, num_rx_ant=self.link.n_rx)
        else:  # UMi: delay spread comes from the scenario's large-scale parameters
            model = UMi(
                fc,
                "low",
                self._ut_array,
                self._bs_array,
                "uplink",
                enable_pathloss=False,
                enable_shadow_fading=False,
            )
            model.set_topology(
                *gen_single_sector_topology(batch_size, 1, "umi", min_ut_velocity=lo, max_ut_velocity=hi)
            )
        return GenerateOFDMChannel(model, self.resource_grid, normalize_channel=True)

    @torch.no_grad()
    @_on_own_device
    def sample(
        self,
        batch_size: int,
        seed: int,
        sinr_db: float | None = None,
        channel_models: tuple[str, ...] | None = None,
        speed_mps: tuple[float, float] | None = None,
        delay_spread_ns: tuple[float, float] | None = None,
    ) -> Slot:
        """Draw one batch of slots on the simulator's device. The same ``seed`` gives the same batch.

        Args:
            batch_size: number of slots.
            seed: seeds numpy (draws of model, delay spread, SINR, SIR), torch (bits) and Sionna (channel).
                Sionna's and torch's generators differ between CPU and CUDA, so the same seed gives the
                same batch on the same kind of device only (test sets are therefore always drawn on the CPU).
            sinr_db: a fixed SINR for every slot; ``None`` draws it per slot from ``link.sinr_db``.
            channel_models: the list to draw this batch's model from; default ``link.channel_models``.
            speed_mps: UE speed range; default ``link.speed_mps``.
            delay_spread_ns: the range the batch's delay spread is drawn from; default ``link.delay_spread_ns``.
        """
        link = self.link
        rng = np.random.default_rng(seed)
        sionna_phy.config.seed = int(rng.integers(2**31))
        models = channel_models or link.channel_models
        name = models[int(rng.integers(len(models)))]
        delay_spread_s = float(rng.uniform(*(delay_spread_ns or link.delay_spread_ns))) * 1e-9
        sinr = rng.uniform(*link.sinr_db, size=batch_size) if sinr_db is None else np.full(batch_size, float(sinr_db))
        total = 10.0 ** (-sinr / 10.0)  # noise + interference power
        p_interf = np.zeros(batch_size)
        if self._interferer_mapper is not None:
            active = rng.random(batch_size) < link.interferer_probability
            sir = rng.uniform(*link.sir_db, size=batch_size)
            # Keep at least 10% of the impairment as noise so N0 stays positive at any SIR.
            p_interf = np.where(active, np.minimum(10.0 ** (-sir / 10.0), 0.9 * total), 0.0)
        noise = total - p_interf

        device = self.device
        gen = torch.Generator(device).manual_seed(int(rng.integers(2**31)))
        info_bits = None
        if self.codec is None:
            shape = (batch_size, self.n_data_re, self.bits_per_symbol)
            bits = torch.randint(0, 2, shape, generator=gen, device=device).to(torch.float32)
        else:
            shape = (batch_size, self.codec.tb_size)
            info_bits = torch.randint(0, 2, shape, generator=gen, device=device).to(torch.float32)
            bits = self.codec.encode(info_bits)
        x = self._mapper(bits.reshape(batch_size, -1))
        channel = self._channel(name, delay_spread_s, speed_mps or link.speed_mps, batch_size)
        h = channel(batch_size)
        no = torch.as_tensor(noise, dtype=torch.float32, device=device)
        y = self._apply(x, h, no)
        if self._interferer_mapper is not None and p_interf.any():
            bits_i = torch.randint(
                0, 2, (batch_size, self._interferer_mapper.n_coded_bits), generator=gen, device=device
            )
            x_i = self._interferer_mapper(bits_i.to(torch.float32))
            h_i = channel(batch_size)  # an independent realisation of the same model
            gain = torch.as_tensor(np.sqrt(p_interf), dtype=torch.float32, device=device)
            y = y + gain[:, None, None, None, None] * self._apply(x_i, h_i)

        y = y[:, 0].to(torch.complex64)
        h = h[:, 0, :, 0, 0].to(torch.complex64)
        return Slot(
            y=y,
            h=h,
            h_ls=raw_ls_estimate(y, self.x_pilot),
            x_pilot=self.x_pilot,
            data_mask=self.data_mask,
            bits=bits,
            noise_var=torch.as_tensor(total, dtype=torch.float32, device=device),
            sinr_db=torch.as_tensor(sinr, dtype=torch.float32, device=device),
            info_bits=info_bits,
        )
