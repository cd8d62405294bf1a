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

import torch
import torch.distributed as dist

from deeprx.runtime import RunContext


def start(ctx: RunContext) -> bool:
    """Join the process group (NCCL on GPUs, gloo on CPUs) unless already joined; on a GPU, make the context's
    GPU (its local rank's) the current one. True when this call joined (and so should leave, :func:`stop`)."""
    if not ctx.ranks.distributed or dist.is_initialized():
        return False
    on_gpu = ctx.device.type == "cuda"
    if on_gpu:
        torch.cuda.set_device(ctx.device)
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
