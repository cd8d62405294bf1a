"""Energy estimates per inference (one slot) from operation counts: Table I of the paper, plus memory.

* metric 0 (Desislavov et al. 2023): ``E = FLOPs / (peak FLOP/s per W)``.
* metric 1 (the paper's ref. [15]): ``E = kappa * N * f^3 * D`` with ``D = W / (S * N * f)`` the run time
  at peak (``W`` FLOPs, ``S`` FLOP per cycle per core, ``N`` cores, ``f`` clock).
* metric 2 (Lahmer et al. 2022): ``E = sum_conv M_c (a_c / d_0 + b_c) + sum_fc M_f a_f`` with ``M`` the
  MACs and ``d_0`` the layer's input features; DeepRx has no fully connected layer (its 1x1 convs are
  convolutions).
* memory-aware, after the paper's eq. (1): ``E_total = E_memory + E_computation``, computation from
  metric 0 and memory from per-byte access energies (Horowitz, ISSCC 2014): weights come from DRAM once
  per inference; a layer's activations stay in the last-level cache when the layer's working set
  (input + output + weights) fits in it, else they go to DRAM.

Every figure is an estimate, labelled with its ``method``; none of them is a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

from deeprx.energy.flops import LayerCount
from deeprx.energy.processors import MemoryEnergy, Processor

METHODS: tuple[str, ...] = ("metric0", "metric1", "metric2", "memory-aware")


def metric0_joules(flops: float, processor: Processor) -> float:
    """``flops / (peak FLOP/s per W)``, J."""
    return flops / processor.flops_per_watt


def metric1_joules(flops: float, processor: Processor) -> float:
    """``kappa * N * f^3 * D`` with ``D = W / (S * N * f)``; ``kappa`` in W/GHz^3, ``f`` in GHz, J."""
    f_ghz = processor.clock_ghz
    seconds_at_peak = flops / (processor.flops_per_cycle_per_core * processor.cores * f_ghz * 1e9)
    return processor.kappa * processor.cores * f_ghz**3 * seconds_at_peak


def metric2_joules(layer: LayerCount, processor: Processor) -> float:
    """Lahmer's model for one layer: convolutions ``M_c (a_c/d_0 + b_c)``; other layers cost 0 here, J."""
    if layer.macs == 0:
        return 0.0
    return layer.macs * (processor.a_c / layer.in_features + processor.b_c)


def memory_joules(layer: LayerCount, processor: Processor, memory: MemoryEnergy) -> float:
    """Memory-access energy of one layer (weights from DRAM; activations in cache when they fit), J."""
    activations = layer.act_read_bytes + layer.act_write_bytes
    fits = activations + layer.weight_bytes <= processor.cache_mib * 2**20
    per_byte = memory.cache_joules_per_byte if fits else memory.dram_joules_per_byte
    return layer.weight_bytes * memory.dram_joules_per_byte + activations * per_byte


@dataclass(frozen=True)
class LayerEnergy:
    """Estimated energy of one layer per inference on one processor, J per slot, by method."""

    name: str
    block: str
    kind: str
    flops: int
    metric0_joules: float
    metric1_joules: float
    metric2_joules: float
    memory_joules: float

    @property
    def memory_aware_joules(self) -> float:
        """Eq. (1): memory plus computation (metric 0)."""
        return self.memory_joules + self.metric0_joules

    def joules(self, method: str) -> float:
        return {
            "metric0": self.metric0_joules,
            "metric1": self.metric1_joules,
            "metric2": self.metric2_joules,
            "memory-aware": self.memory_aware_joules,
        }[method]


def estimate_layers(layers: list[LayerCount], processor: Processor, memory: MemoryEnergy) -> list[LayerEnergy]:
    """Every method for every layer; metric 0 and 1 use all of a layer's FLOPs (convolution and other)."""
    return [
        LayerEnergy(
            name=layer.name,
            block=layer.block,
            kind=layer.kind,
            flops=layer.flops,
            metric0_joules=metric0_joules(layer.flops, processor),
            metric1_joules=metric1_joules(layer.flops, processor),
            metric2_joules=metric2_joules(layer, processor),
            memory_joules=memory_joules(layer, processor, memory),
        )
        for layer in layers
    ]


def totals(estimates: list[LayerEnergy]) -> dict[str, float]:
    """Per-inference total of each method, J."""
    return {method: sum(e.joules(method) for e in estimates) for method in METHODS}


def by_block(estimates: list[LayerEnergy], method: str = "metric0") -> dict[str, float]:
    """Per-block energy of one method, J, in execution order."""
    blocks: dict[str, float] = {}
    for e in estimates:
        blocks[e.block] = blocks.get(e.block, 0.0) + e.joules(method)
    return blocks
