"""The HDF5 test set: fixed by the seed, verified by checksum and config, paired across receivers."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest
import torch

from deeprx.config import RunConfig
from deeprx.evaluate.ber import evaluate
from deeprx.io import InputError
from deeprx.link.baselines import baseline_receivers
from deeprx.link.simulator import UplinkSimulator
from deeprx.link.testset import TestSet, testset_path


def test_same_seed_same_signals(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    a = TestSet.ensure(tiny_cfg, tmp_path / "a", show_progress=False)
    b = TestSet.ensure(tiny_cfg, tmp_path / "b", show_progress=False)
    assert a.sinr_points_db == [0.0, 15.0, 30.0] and a.slots_per_point == 16
    sa, sb = next(a.batches(1, 8)), next(b.batches(1, 8))
    assert torch.equal(sa.y, sb.y) and torch.equal(sa.bits, sb.bits)
    assert torch.allclose(sa.sinr_db, torch.tensor(15.0))
    other = TestSet.ensure(tiny_cfg.with_overrides({"seed": 1}), tmp_path / "c", show_progress=False)
    assert not torch.equal(next(other.batches(1, 8)).y, sa.y)


def test_tampered_or_mismatched_test_set_is_refused(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    ts = TestSet.ensure(tiny_cfg, tmp_path, show_progress=False)
    with pytest.raises(InputError, match="another configuration"):
        TestSet(ts.path, tiny_cfg.with_overrides({"eval.target_ber": 0.02}))
    with h5py.File(ts.path, "r+") as f:
        f["y"][0, 0, 0, 0, 0] = 123.0
    with pytest.raises(InputError, match="checksum"):
        TestSet(ts.path, tiny_cfg)
    with pytest.raises(InputError, match="not found"):
        TestSet(testset_path(tiny_cfg, tmp_path / "none"), tiny_cfg)


def test_evaluation_counts_bits_and_stops_at_target_errors(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    ts = TestSet.ensure(tiny_cfg, tmp_path, show_progress=False)
    receivers = baseline_receivers(UplinkSimulator(tiny_cfg.link))
    curves = evaluate(receivers, ts, batch_size=8, target_bit_errors=10**9, show_progress=False)
    bits_per_slot = 13 * 24 * 4
    for c in curves:
        assert c.bits == [16 * bits_per_slot] * 3
    ls, perfect = curves
    assert ls.ber[0] > ls.ber[-1] and perfect.ber[-1] <= ls.ber[-1]
    # with a low target, a point stops after the first batch that reaches it
    early = evaluate(receivers, ts, batch_size=8, target_bit_errors=1, show_progress=False)
    assert early[0].bits[0] == 8 * bits_per_slot
