"""The energy assessment of one DeepRx model on one grid: counts, estimates per processor, measurements
under the base-power protocol, and the training-vs-inference life cycle (paper Sec. III-A, IV-A).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from deeprx.config import PAPER_LINK, SYMBOLS_PER_SLOT, data_res
from deeprx.energy.estimate import METHODS, by_block, estimate_layers, metric0_joules, totals
from deeprx.energy.flops import block_totals, count_layers, front_end_flops, model_totals
from deeprx.energy.meters import EnergyMeter
from deeprx.energy.processors import MemoryEnergy, Processor
from deeprx.energy.protocol import ProtocolResult, life_cycle, measure
from deeprx.models.deeprx import DeepRx
from deeprx.runtime import CPU

PAPER_RATE_PER_S = 400.0  # slots per second of the paper's uplink


# batch size -> a callable that takes one training step per call and returns 1 (the trainer's step: the
# caller builds it with deeprx.subjects.step_workload, so energy needs nothing from train)
TrainingWorkload = Callable[[int], Callable[[], int]]


@dataclass(frozen=True)
class Subject:
    """What is assessed: a model, its name, the grid of one slot (``14 x n_subcarriers``), its input
    features, the device its measured workloads run on (the meter must meter that device) and, to meter
    training, the trainer's step as a :data:`TrainingWorkload`."""

    model: DeepRx
    name: str
    n_subcarriers: int
    n_symbols: int = SYMBOLS_PER_SLOT
    dmrs_symbols: int = PAPER_LINK.dmrs_symbols  # sets the data REs the front end equalises
    device: torch.device = CPU
    features: str = "paper"
    training_workload: TrainingWorkload | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.model.config.in_channels, self.n_symbols, self.n_subcarriers)

    def sync(self) -> None:
        """Wait for the device's queued work, so a meter read after it counts all of it (as Zeus does)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def estimates(subject: Subject, catalogue: dict[str, Processor], memory: MemoryEnergy) -> dict[str, Any]:
    """Counts per layer and block, and every estimate method per processor (J per slot)."""
    layers = count_layers(subject.model, subject.n_subcarriers, subject.n_symbols)
    per_processor = {}
    for key, proc in catalogue.items():
        layer_energy = estimate_layers(layers, proc, memory)
        per_processor[key] = {
            "name": proc.name,
            "peak_flops": proc.peak_flops,
            "flops_per_watt": proc.flops_per_watt,
            "joules_per_slot": totals(layer_energy),
            "blocks_joules": {m: by_block(layer_energy, m) for m in METHODS},
            "layers_joules": {e.name: {m: e.joules(m) for m in METHODS} for e in layer_energy},
            "source": proc.source,
            "assumptions": list(proc.assumptions),
        }
    # The front end (LS, interpolation, LMMSE for the enhanced inputs) is part of the receiver: its own line.
    n_data_re = data_res(subject.n_subcarriers, subject.dmrs_symbols, subject.n_symbols)
    front = front_end_flops(subject.features, subject.model.config.n_rx, subject.n_subcarriers, n_data_re)
    return {
        "model": subject.name,
        "grid": [subject.n_symbols, subject.n_subcarriers],
        "front_end": {
            "features": subject.features,
            "flops": front,
            "method": "counted by hand from the front end's operations (deeprx.energy.flops.front_end_flops)",
            "metric0_joules": {key: metric0_joules(front, proc) for key, proc in catalogue.items()},
        },
        "totals": model_totals(layers),
        "blocks": block_totals(layers),
        "layers": [layer.to_dict() for layer in layers],
        "processors": per_processor,
        "memory_energy_source": memory.source,
    }


def inference_work(subject: Subject, batch: int) -> Callable[[], int]:
    """One forward pass on ``batch`` slots of random input of the real shape (run time does not depend on values),
    on the subject's device."""
    model = subject.model.to(subject.device).eval()
    z = torch.randn(batch, *subject.input_shape, device=subject.device)

    def work() -> int:
        with torch.inference_mode():
            model(z)
        return batch

    return work


def measurements(
    subject: Subject,
    meter: EnergyMeter,
    *,
    batch: int,
    train_batch: int,
    repeats: int,
    window_s: float,
    idle_s: float,
) -> dict[str, ProtocolResult]:
    """Energy per inference (one slot) and per training step under the base-power protocol."""
    if subject.training_workload is None:
        raise ValueError("metering training needs the subject's training_workload (the trainer's step)")
    state = {k: v.clone() for k, v in subject.model.state_dict().items()}
    inference = measure(meter, inference_work(subject, batch), "inference (slot)", sync=subject.sync,
                        idle_s=idle_s, min_window_s=window_s, repeats=repeats)  # fmt: skip
    training = measure(meter, subject.training_workload(train_batch), f"training step ({train_batch} slots)",
                       sync=subject.sync, idle_s=idle_s, min_window_s=window_s, repeats=repeats)  # fmt: skip
    subject.model.load_state_dict(state)  # the training windows must not change the assessed model
    subject.model.eval()
    return {"inference": inference, "training_step": training}


def metered(
    subject: Subject, meter_name: str, host: Processor | None = None, **protocol: Any
) -> tuple[dict[str, ProtocolResult], str, str]:
    """Open the meter ``meter_name`` for the subject's device, run :func:`measurements` with ``protocol`` (batch,
    train_batch, repeats, window_s, idle_s) and close it: ``(results, meter description, why this meter)``."""
    from deeprx.energy import meters  # looked up at call time: tests stand in a fake meter

    meter, why = meters.open_meter(meter_name, host, device=subject.device)
    try:
        return measurements(subject, meter, **protocol), meter.description, why
    finally:
        meter.close()


def check_protocol_args(
    batch: int, repeats: int, training_steps: int, window_s: float, idle_s: float, rate: float
) -> None:
    """Reject protocol settings that cannot give a measurement, naming the options to fix."""
    from deeprx.io import InputError

    if min(batch, repeats, training_steps) < 1 or min(window_s, idle_s, rate) <= 0:
        raise InputError(
            "--batch, --train-batch, --repeats, --training-steps must be >= 1; --window, --idle, --rate > 0"
        )


def check_processor(catalogue: dict[str, Processor], key: str) -> None:
    from deeprx.io import InputError

    if key not in catalogue:
        raise InputError(f"unknown processor {key!r}: choose one of {list(catalogue)} or add it with --catalogue")


def lifecycle_table(
    joules_per_step: float | None,
    steps: int,
    joules_per_inference: float | None,
    method: str,
    rate_per_s: float = PAPER_RATE_PER_S,
) -> dict[str, Any]:
    """Training energy and break-even for a deployment at ``rate_per_s`` slots per second.

    ``resolved`` is false, with no energies, when either input is ``None`` (an unresolved measurement).
    """
    if joules_per_step is None or joules_per_inference is None:
        missing = "training step" if joules_per_step is None else "inference"
        why = f"the {missing} energy is unresolved, so there is no life cycle"
        return {"resolved": False, "why": why, "method": method, "training_steps": steps, "rate_per_s": rate_per_s}
    cycle = life_cycle(joules_per_step, steps, joules_per_inference, rate_per_s, method)
    return {"resolved": True, **cycle.to_dict(), "training_steps": steps, "joules_per_training_step": joules_per_step}
