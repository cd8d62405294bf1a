"""Shared fixtures: tiny configurations that keep the whole suite within minutes on 2 cores."""

from __future__ import annotations

import os

import pytest
import torch

from deeprx.config import EvalConfig, LinkConfig, RunConfig, TrainConfig
from deeprx.runtime import THREADS_ENV

# Under pytest-xdist (`make test` runs a worker per core) each worker keeps to one thread, and so do the CLI
# commands and subprocesses it starts, or the workers would fight over the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ[THREADS_ENV] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(2)


# The metered windows (idle and work, s) of the studies' energy section in the tests' plans: long enough to run
# the meter, short enough for a test (the plans' default is 3 s).
ENERGY_WINDOW_S = 0.05


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run first (parallel workers then finish together, not behind one long test);
    tests marked ``gpu`` are skipped where no CUDA GPU is visible."""
    items.sort(key=lambda item: "slow" not in item.keywords)  # stable: the file order otherwise
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tiny_cfg() -> RunConfig:
    """2 PRB, 16-QAM, the smallest preset, a handful of steps and a 3-point test set."""
    return RunConfig(
        profile="quick",
        model="deeprx_eighth",
        link=LinkConfig(n_prb=2, modulation="16qam"),
        train=TrainConfig(steps=12, batch_size=8, lr=3e-3, checkpoint_every=6),
        eval=EvalConfig(
            sinr_start_db=0.0,
            sinr_stop_db=30.0,
            sinr_step_db=15.0,
            slots_per_point=16,
            batch_size=8,
            target_bit_errors=100_000,
        ),
    )
