"""Data-parallel training under torchrun (gloo, 2 CPU processes): the loss curve of one process with the
doubled batch made of the same shares, and a checkpoint that resumes in one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deeprx.config import load_profile
from deeprx.link.simulator import Slot, UplinkSimulator
from deeprx.runs import checkpoint
from deeprx.runtime import Ranks
from deeprx.train.trainer import train

SETS = {"link.n_prb": 2, "model": "deeprx_eighth", "train.batch_size": 8, "train.checkpoint_every": 6}
STEPS = 6
# Each rank normalises its 4 slots by their own BatchNorm statistics where one process uses all 8: the one
# difference between the runs, measured at 2.7e-4 relative at most in the logged loss over these steps.
LOSS_RTOL = 2e-3


def _torchrun(out: Path, steps: int, device: str = "cpu") -> None:
    sets = [f"--set={k}={v}" for k, v in SETS.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
           "-m", "deeprx.cli", "train", "--profile", "quick", "--steps", str(steps), "--device", device,
           "--out", str(out), "--json", *sets]  # fmt: skip
    env = {**os.environ, "DEEPRX_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


class Shares:
    """One process drawing each step's batch as torchrun's two ranks draw their shares, concatenated."""

    def __init__(self, seed: int, steps: int) -> None:
        self.seed, self.step_of = seed, {Ranks().batch_seed(seed, k): k for k in range(steps)}
        self.ranks = [Ranks(world=2, rank=r) for r in range(2)]

    def sample(self, simulator: UplinkSimulator, batch_size: int, seed: int) -> Slot:
        step = self.step_of[seed]
        shares = [simulator.sample(batch_size // 2, r.batch_seed(self.seed, step)) for r in self.ranks]
        fields = {k: torch.cat([s.__dict__[k] for s in shares]) for k in ("y", "h", "h_ls", "bits", "noise_var",
                                                                          "sinr_db")}  # fmt: skip
        return Slot(**fields, x_pilot=shares[0].x_pilot, data_mask=shares[0].data_mask)


def test_two_gloo_processes_follow_one_process_with_the_doubled_batch(tmp_path: Path) -> None:
    _torchrun(tmp_path / "ddp", STEPS)
    cfg = load_profile("quick").with_overrides({**SETS, "train.steps": STEPS, "device": "cpu"})
    one = train(cfg, tmp_path / "one", show_progress=False, batch_cache=Shares(cfg.seed, STEPS))
    ddp_log = [r["loss"] for r in checkpoint.load(tmp_path / "ddp").log if "loss" in r]
    one_log = [r["loss"] for r in one.log if "loss" in r]
    assert len(ddp_log) == len(one_log) == STEPS
    assert ddp_log == pytest.approx(one_log, rel=LOSS_RTOL)
    # and the ranks did not draw the same slots (a shared seed would make DDP a smaller batch seen twice)
    assert Ranks(2, 0).batch_seed(0, 3) != Ranks(2, 1).batch_seed(0, 3)


def test_a_ddp_checkpoint_resumes_in_one_process(tmp_path: Path) -> None:
    _torchrun(tmp_path / "run", 3)
    assert checkpoint.load(tmp_path / "run").step == 3
    cfg = load_profile("quick").with_overrides({**SETS, "train.steps": STEPS, "device": "cpu"})
    resumed = train(cfg, tmp_path / "run", resume=True, show_progress=False)
    assert resumed.step == STEPS and checkpoint.load(tmp_path / "run").step == STEPS


@pytest.mark.gpu
def test_two_gpus_train_with_nccl(tmp_path: Path) -> None:
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA GPUs")
    _torchrun(tmp_path / "nccl", STEPS, device="cuda")
    ckpt = checkpoint.load(tmp_path / "nccl")
    losses = [r["loss"] for r in ckpt.log if "loss" in r]
    assert ckpt.step == STEPS and ckpt.extra["device"].startswith("cuda") and losses[-1] < losses[0]
