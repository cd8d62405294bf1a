"""The run context (device and torchrun ranks, resolved once), threads and reduced-precision choices for the machine
at hand."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from deeprx.config import derive_seed

CPU = torch.device("cpu")  # the one CPU device of the project


@dataclass(frozen=True)
class Ranks:
    """This process's place in a ``torchrun`` job: ``world`` processes, this one ``rank`` (``local`` on its node)."""

    world: int = 1
    rank: int = 0
    local: int = 0

    @classmethod
    def from_env(cls) -> Ranks:
        """The ranks torchrun set, or one process alone: the one place that reads them."""
        return cls(int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0)),
                   int(os.environ.get("LOCAL_RANK", 0)))  # fmt: skip

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that draws progress, validates, writes checkpoints and claims the output folder."""
        return self.rank == 0

    def share(self, batch_size: int) -> int:
        """Slots this rank draws per step."""
        from deeprx.io import InputError

        if batch_size % self.world:
            raise InputError(f"train.batch_size={batch_size} does not split over {self.world} processes; "
                             f"choose a multiple of {self.world}")  # fmt: skip
        return batch_size // self.world

    def batch_seed(self, seed: int, step: int) -> int:
        """The seed of this rank's share of step ``step``'s batch."""
        if not self.distributed:
            return derive_seed(seed, "train", step)
        return derive_seed(seed, "train", step, "rank", self.rank)


@dataclass(frozen=True)
class RunContext:
    """Where a run computes and which process of a job it is, resolved once at the entry point (a command, a Ray
    task, a torchrun rank) and handed to everything below it.

    ``device`` is always resolved (``cuda:N``, never a bare ``cuda`` or ``auto``): the one device rule is
    :meth:`resolve`'s.
    """

    device: torch.device
    ranks: Ranks = Ranks()

    @classmethod
    def resolve(cls, device: str = "auto", ranks: Ranks | None = None) -> RunContext:
        """``auto`` -> the current CUDA GPU when there is one, else the CPU; ``cuda`` -> ``cuda:N`` (the current
        one); under torchrun a GPU run takes its local rank's GPU. ``ranks`` default: the environment's."""
        from deeprx.io import InputError

        ranks = ranks or Ranks.from_env()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if not device.startswith("cuda"):
            return cls(torch.device(device), ranks)
        if not torch.cuda.is_available():
            raise InputError(f"device={device} requested but no CUDA GPU is visible; use --device cpu or auto")
        if ranks.distributed:
            index = ranks.local  # one process per GPU
        else:
            index = torch.cuda.current_device() if device == "cuda" else int(device.split(":")[1])
        if index >= torch.cuda.device_count():
            raise InputError(f"device={device}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")
        return cls(torch.device("cuda", index), ranks)


THREADS_ENV = "DEEPRX_THREADS"  # caps the threads of a process that shares the cores (a Ray task's CPUs)


def use_all_cores() -> int:
    """Give torch every core this process may run on (intra-op threads), at most ``$DEEPRX_THREADS``."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cap = os.environ.get(THREADS_ENV, "")
    if cap.isdigit() and int(cap) > 0:
        n = min(n, int(cap))
    torch.set_num_threads(n)
    return n


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast pays off on CUDA with bf16 support and on CPUs with AVX-512 bf16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on the device if ``enabled`` and supported, else a no-op context."""
    if enabled and bf16_supported(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
