"""What the energy and inference commands work on: a network from a checkpoint, or an untrained preset on the
paper's grid, with its link, front end and slots.

A trained model comes with its own link and input features (from its checkpoint); an untrained preset is
assessed on the DeepRx paper's grid (:data:`deeprx.config.PAPER_LINK`) with the paper's input.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from deeprx.config import PAPER_LINK, LinkConfig, RunConfig, input_channels
from deeprx.energy.assess import Subject
from deeprx.models.deeprx import DeepRx, create_model
from deeprx.runtime import CPU, resolve_device
from deeprx.train import checkpoint

if TYPE_CHECKING:  # the simulator (Sionna) is imported only by the functions that simulate
    from deeprx.link.simulator import Slot
    from deeprx.receivers import FrontEnd

# Slots an inference command simulates to feed and check the network: their seed, and their SINR.
INFERENCE_SEED = 12345
INFERENCE_SINR_DB = 30.0


def model_config(checkpoint_dir: Path | None, model: str, link: LinkConfig = PAPER_LINK) -> tuple[DeepRx, RunConfig]:
    """The network and its run config: a checkpoint's (trained, eval mode), else an untrained ``model`` preset
    on ``link`` with the paper's input and the default training settings."""
    if checkpoint_dir is not None:
        net, ckpt = checkpoint.load_model(checkpoint_dir)
        return net, ckpt.config
    cfg = RunConfig(model=model, features="paper", link=link)
    net = create_model(model, link.n_rx, link.bits_per_symbol, input_channels(cfg.features, link.n_rx)).eval()
    return net, cfg


def energy_subject(checkpoint_dir: Path | None, model: str, link: LinkConfig, device: str = "cpu") -> Subject:
    """The energy :class:`Subject` of a checkpoint or of an untrained preset, on ``link`` (a checkpoint's grid
    may differ from its training grid: the network is fully convolutional); its training workload is the
    trainer's step for the run's config on that link."""
    net, cfg = model_config(checkpoint_dir, model, link)
    cfg = cfg.with_overrides({"link.n_prb": link.n_prb})
    return Subject(
        net,
        cfg.model,
        cfg.link.n_subcarriers,
        device=resolve_device(device),
        features=cfg.features,
        training_workload=functools.partial(_trainer_step, cfg, net),
    )


def _trainer_step(cfg: RunConfig, net: DeepRx, batch: int):  # -> Callable[[], int]
    from deeprx.train.trainer import step_workload  # Sionna only once training is metered

    return step_workload(cfg, net, batch)


@dataclass
class InferenceSubject:
    """A network, its link and front end, and ``slots`` simulated at :data:`INFERENCE_SINR_DB`."""

    net: DeepRx
    link: LinkConfig
    front_end: FrontEnd
    slots: Slot


def inference_subject(checkpoint_dir: Path | None, model: str, n_prb: int | None, n_slots: int) -> InferenceSubject:
    """A checkpoint's network (or an untrained preset on the paper's grid), optionally on another number of PRBs
    (the network is fully convolutional), with ``n_slots`` simulated slots on the CPU."""
    from deeprx.link.simulator import UplinkSimulator
    from deeprx.receivers import FrontEnd

    net, cfg = model_config(checkpoint_dir, model)
    link = cfg.link if n_prb is None else LinkConfig(**{**cfg.link.__dict__, "n_prb": n_prb})
    simulator = UplinkSimulator(link)
    slots = simulator.sample(n_slots, seed=INFERENCE_SEED, sinr_db=INFERENCE_SINR_DB)
    return InferenceSubject(net, link, FrontEnd(simulator, cfg.features), slots)


def on_device(subject: InferenceSubject, device: torch.device) -> InferenceSubject:
    """The subject with its slots and front end on ``device``."""
    from deeprx.link.simulator import UplinkSimulator
    from deeprx.receivers import FrontEnd

    simulator = UplinkSimulator(subject.link, device)
    return InferenceSubject(subject.net, subject.link, FrontEnd(simulator, subject.front_end.features),
                            subject.slots.to(device))  # fmt: skip


def measured_slots_per_s(checkpoint_dir: Path, device: torch.device = CPU) -> tuple[float, str]:
    """This host's throughput of a checkpoint's receiver on ``device``: its front end, then its network on the
    fastest path that keeps the eager model's decisions, at the path-choice probe batch: ``(slots/s, path)``."""
    from deeprx.infer.engine import (
        CALIBRATION_SLOTS,
        PROBE_SLOTS,
        Engine,
        auto_select,
        calibration_and_probe,
        throughput,
    )

    subject = on_device(inference_subject(checkpoint_dir, "", None, CALIBRATION_SLOTS + PROBE_SLOTS), device)
    calibration, probe = calibration_and_probe(subject.front_end(subject.slots))
    engine, _ = auto_select(subject.net.to(device), calibration, probe, device=device)
    slots, front_end = subject.slots, subject.front_end
    receiver = Engine(engine.path, lambda ids: engine.run(front_end(slots.select(ids))), engine.description)
    probe_ids = torch.arange(CALIBRATION_SLOTS, CALIBRATION_SLOTS + PROBE_SLOTS)
    return throughput(receiver, probe_ids)["slots_per_s"], engine.path


def measured_classical_slots_per_s(link: LinkConfig, perfect_csi: bool, device: torch.device = CPU) -> float:
    """This host's throughput of a classical receiver (Sionna's blocks, :mod:`deeprx.link.baselines`) on
    ``link``, on ``device``, at the path-choice probe batch: slots/s."""
    from deeprx.infer.engine import PROBE_SLOTS, Engine, throughput
    from deeprx.link.baselines import LmmseReceiver
    from deeprx.link.simulator import UplinkSimulator

    simulator = UplinkSimulator(link, device)
    slots = simulator.sample(PROBE_SLOTS, seed=INFERENCE_SEED, sinr_db=INFERENCE_SINR_DB)
    receiver = LmmseReceiver(simulator, perfect_csi)
    # .cpu(): the call returns once the device is done, so a GPU's time is its latency
    engine = Engine("sionna", lambda ids: receiver(slots.select(ids)).cpu(), "Sionna blocks")
    return throughput(engine, torch.arange(PROBE_SLOTS))["slots_per_s"]
