"""What the energy and inference commands work on: a network from a checkpoint, or an untrained preset on the
paper's grid, with its link, front end and slots.

A trained model comes with its own link and input features (from its checkpoint); an untrained preset is
assessed on the DeepRx paper's grid (:data:`deeprx.config.PAPER_LINK`) with the paper's input.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from deeprx.config import PAPER_LINK, LinkConfig, RunConfig, derive_seed, input_channels
from deeprx.energy.assess import Subject
from deeprx.models.deeprx import DeepRx
from deeprx.models.registry import create_model
from deeprx.runs import checkpoint
from deeprx.runtime import CPU

if TYPE_CHECKING:  # the simulator (Sionna) is imported only by the functions that simulate
    from deeprx.infer.engine import Engine
    from deeprx.link.simulator import Slot
    from deeprx.receivers import FrontEnd

# Slots an inference command simulates to feed and check the network: their seed, and their SINR.
INFERENCE_SEED = 12345
INFERENCE_SINR_DB = 30.0
SERVE_POOL_SLOTS = 64  # simulated slots a served stream is drawn from (cyclically)


def model_config(checkpoint_dir: Path | None, model: str, link: LinkConfig = PAPER_LINK) -> tuple[DeepRx, RunConfig]:
    """The network and its run config: a checkpoint's (trained, eval mode), else an untrained ``model`` preset
    on ``link`` with the paper's input and the default training settings."""
    if checkpoint_dir is not None:
        net, ckpt = checkpoint.load_model(checkpoint_dir)
        return net, ckpt.config
    cfg = RunConfig(model=model, features="paper", link=link)
    net = create_model(model, link.n_rx, link.bits_per_symbol, input_channels(cfg.features, link.n_rx)).eval()
    return net, cfg


def energy_subject(checkpoint_dir: Path | None, model: str, link: LinkConfig, device: torch.device = CPU) -> Subject:
    """The energy :class:`Subject` of a checkpoint or of an untrained preset, on ``link`` (a checkpoint's grid
    may differ from its training grid: the network is fully convolutional); its training workload is the
    trainer's step for the run's config on that link."""
    net, cfg = model_config(checkpoint_dir, model, link)
    cfg = cfg.with_overrides({"link.n_prb": link.n_prb})
    return Subject(
        net,
        cfg.model,
        cfg.link.n_subcarriers,
        dmrs_symbols=cfg.link.dmrs_symbols,
        device=device,
        features=cfg.features,
        training_workload=functools.partial(step_workload, cfg, net),
    )


def step_workload(cfg: RunConfig, model: DeepRx, batch: int) -> Callable[[], int]:
    """The trainer's step (:func:`deeprx.train.trainer.build_step`) on one fixed simulated batch of ``batch`` slots,
    on the model's device: the training workload of the energy meter. Each call is one step; it returns 1.

    Data simulation is not included: it is a property of the simulator, not of the model.
    """
    from deeprx.link.simulator import UplinkSimulator  # Sionna only once training is metered
    from deeprx.train.trainer import build_step

    device = next(model.parameters()).device
    simulator = UplinkSimulator(cfg.link, device)
    if cfg.train.channels_last:
        model.to(memory_format=torch.channels_last)
    step, _ = build_step(cfg, model.train(), simulator)
    slot = simulator.sample(batch, derive_seed(cfg.seed, "train", 0))

    def work() -> int:
        step(slot)
        return 1

    return work


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


def serving_engines(
    subject: InferenceSubject, path: str, workers: int, cores: int, device: torch.device
) -> list[Engine]:
    """``workers`` copies of the subject's receiver on ``path`` (``auto``: the fastest that keeps the eager
    model's decisions), each taking slot indices into ``subject.slots``: front end, then network."""
    from deeprx.infer.engine import Engine, auto_select, build_copies, calibration_and_probe

    front_end, slots = subject.front_end, subject.slots
    calibration, probe = calibration_and_probe(front_end(slots))
    if path == "auto":
        path = auto_select(subject.net, calibration, probe, device=device)[0].path
    return [
        Engine(e.path, lambda ids, e=e: e.run(front_end(slots.select(ids))),
               f"{e.description} + {front_end.features} front end")
        for e in build_copies(subject.net, path, calibration, workers, cores, device)
    ]  # fmt: skip


def classical_engine(link: LinkConfig, perfect_csi: bool, n_slots: int, device: torch.device) -> Engine:
    """A classical receiver on its fastest path that keeps its decisions (the fused estimate and equaliser, then
    Sionna's demapper: :class:`deeprx.link.baselines.FusedLmmseReceiver`) on ``n_slots`` simulated slots of
    ``link``, taking slot indices like :func:`serving_engines`' engines."""
    from deeprx.infer.engine import Engine
    from deeprx.link.baselines import FusedLmmseReceiver
    from deeprx.link.simulator import UplinkSimulator

    simulator = UplinkSimulator(link, device)
    slots = simulator.sample(n_slots, seed=INFERENCE_SEED, sinr_db=INFERENCE_SINR_DB)
    receiver = FusedLmmseReceiver(simulator, perfect_csi)
    # .cpu(): the call returns once the device is done, so a GPU's time is its latency
    return Engine("fused", lambda ids: receiver(slots.select(ids)).cpu(), "fused LS-LMMSE + Sionna's demapper")
