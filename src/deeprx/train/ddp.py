"""Data-parallel training under ``torchrun``: one process per GPU (NCCL) or per share of the CPU (gloo).

``torchrun --nproc-per-node N -m deeprx.cli train ...`` starts N copies of the command; each reads its rank
from the environment torchrun sets (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``). The trainer then:

* draws ``batch_size / N`` slots per rank per step, with the seed ``derive_seed(seed, "train", step, "rank",
  r)``, so the ranks simulate disjoint shares of the global batch and a resumed run redraws exactly the
  batches of an uninterrupted one (a one-process run keeps its seeds, ``derive_seed(seed, "train", step)``);
* wraps the network in ``DistributedDataParallel``, which averages the ranks' gradients: with equal shares,
  the gradient of the global batch's mean loss. BatchNorm normalises each share by its own statistics (the
  running statistics are kept per rank; rank 0's are saved), which is the one difference from one process
  with the whole batch;
* logs the loss averaged over the ranks (the global batch's loss), scores validation and writes checkpoints
  on rank 0 only; every rank resumes from that checkpoint.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from deeprx.config import derive_seed
from deeprx.io import InputError


@dataclass(frozen=True)
class Ranks:
    """This process's place in a ``torchrun`` job: ``world`` processes, this one ``rank`` (``local`` on its node)."""

    world: int = 1
    rank: int = 0
    local: int = 0

    @classmethod
    def from_env(cls) -> Ranks:
        """The ranks torchrun set, or one process alone."""
        return cls(int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0)),
                   int(os.environ.get("LOCAL_RANK", 0)))  # fmt: skip

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that draws progress, validates and writes checkpoints."""
        return self.rank == 0

    def share(self, batch_size: int) -> int:
        """Slots this rank draws per step."""
        if batch_size % self.world:
            raise InputError(f"train.batch_size={batch_size} does not split over {self.world} processes; "
                             f"choose a multiple of {self.world}")  # fmt: skip
        return batch_size // self.world

    def batch_seed(self, seed: int, step: int) -> int:
        """The seed of this rank's share of step ``step``'s batch."""
        if not self.distributed:
            return derive_seed(seed, "train", step)
        return derive_seed(seed, "train", step, "rank", self.rank)


def start(ranks: Ranks, device_name: str) -> bool:
    """Join the process group (NCCL on GPUs, gloo on CPUs) unless already joined; on a GPU, this rank's GPU is
    its local rank's. True when this call joined (and so should leave, :func:`stop`)."""
    if not ranks.distributed or dist.is_initialized():
        return False
    on_gpu = device_name != "cpu" and torch.cuda.is_available()
    if on_gpu:
        torch.cuda.set_device(ranks.local)
    dist.init_process_group(backend="nccl" if on_gpu else "gloo")
    return True


def stop() -> None:
    """Leave the process group, after collecting what still refers to it: a DistributedDataParallel freed
    after its group is gone blocks forever in its destructor (measured with gloo)."""
    gc.collect()
    dist.destroy_process_group()


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """``values`` averaged element-wise over the ranks (itself for one process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / dist.get_world_size()
