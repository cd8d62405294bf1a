"""Simulated training batches kept in memory for the later runs of one process that draw them again."""

from __future__ import annotations

from collections.abc import Callable

import torch

from deeprx.config import LinkConfig
from deeprx.link.simulator import Slot, UplinkSimulator


class BatchCache:
    """Training batches kept in memory for the later runs of this process that draw them again.

    Runs with the same link, batch size and seed draw the same batch at a given step
    (``derive_seed(seed, "train", step)``), so the trials of a study need each batch simulated once; on a
    CPU the simulation is a large share of a small student's step. Holds at most ``max_bytes``; past that,
    batches are simulated as usual. Cached slots are shared, so a loss must not modify them in place.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.bytes = max_bytes, 0
        self.hits = self.misses = 0
        self.derived_hits = self.derived_misses = 0
        self._slots: dict[tuple[LinkConfig, int, int], Slot] = {}
        self._held: set[int] = set()  # ids of the held slots: alive for the cache's life, so never reused
        self._derived: dict[tuple[int, str], torch.Tensor] = {}

    def sample(self, simulator: UplinkSimulator, batch_size: int, seed: int) -> Slot:
        key = (simulator.link, batch_size, seed)
        slot = self._slots.get(key)
        if slot is not None:
            self.hits += 1
            return slot
        self.misses += 1
        slot = simulator.sample(batch_size, seed)
        size = sum(t.numel() * t.element_size() for t in slot.tensors())
        if self.bytes + size <= self.max_bytes:
            self._slots[key] = slot
            self._held.add(id(slot))
            self.bytes += size
        return slot

    def derived(self, slot: Slot, name: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``compute()``, a pure function of ``slot`` named ``name``, kept beside a slot this cache holds.

        A frozen teacher's outputs are the same for every student that draws the batch, so the KD trials of a
        study run the teacher once per batch instead of once per trial. Within the same byte budget; the
        returned tensor is shared and must not be modified in place.
        """
        if id(slot) not in self._held:
            return compute()
        key = (id(slot), name)
        value = self._derived.get(key)
        if value is not None:
            self.derived_hits += 1
            return value
        self.derived_misses += 1
        value = compute()
        size = value.numel() * value.element_size()
        if self.bytes + size <= self.max_bytes:
            self._derived[key] = value
            self.bytes += size
        return value
