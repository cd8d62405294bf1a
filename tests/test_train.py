"""Training end to end: the loss falls, checkpoints resume exactly, bad checkpoints fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deeprx.config import RunConfig
from deeprx.io import InputError, sha256_file
from deeprx.link.batches import BatchCache
from deeprx.link.simulator import Slot, UplinkSimulator
from deeprx.models.deeprx import DeepRx
from deeprx.runs import checkpoint
from deeprx.train.trainer import bce_loss, learning_rate, train


def test_loss_falls_over_a_few_steps(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    cfg = tiny_cfg.with_overrides({"train.steps": 40, "train.checkpoint_every": 40, "train.batch_size": 16})
    log = [row for row in train(cfg, tmp_path, show_progress=False).log if "loss" in row]
    first, last = log[0]["loss"], log[-1]["loss"]
    assert last < first - 0.02, (first, last)


def test_resume_continues_from_the_saved_step_and_matches_an_uninterrupted_run(
    tiny_cfg: RunConfig, tmp_path: Path
) -> None:
    full = train(tiny_cfg, tmp_path / "full", show_progress=False)
    assert full.step == 12
    calls = 0

    def interrupted_loss(model: DeepRx, slot: Slot) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls > 8:  # killed during step 9, after the checkpoint of step 6
            raise KeyboardInterrupt
        return bce_loss(model, slot)

    with pytest.raises(KeyboardInterrupt):
        train(tiny_cfg, tmp_path / "split", show_progress=False, loss_fn=interrupted_loss)
    assert checkpoint.load(tmp_path / "split").step == 6
    resumed = train(tiny_cfg, tmp_path / "split", resume=True, show_progress=False)
    assert resumed.step == 12
    a = checkpoint.load(tmp_path / "full").model_state
    b = checkpoint.load(tmp_path / "split").model_state
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5), key
    # the logged loss is a running average that goes on where the checkpoint left it, not restarted
    losses = [[r["loss"] for r in run.log if "loss" in r] for run in (full, resumed)]
    assert len(losses[0]) == len(losses[1]) == 12
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_existing_checkpoint_is_never_overwritten_without_resume(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    cfg = tiny_cfg.with_overrides({"train.steps": 2})
    train(cfg, tmp_path, show_progress=False)
    before = sha256_file(tmp_path / checkpoint.TENSORS)
    with pytest.raises(InputError, match="--resume"):
        train(cfg, tmp_path, show_progress=False)
    assert sha256_file(tmp_path / checkpoint.TENSORS) == before


def test_resuming_a_finished_run_writes_no_new_events_file(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    cfg = tiny_cfg.with_overrides({"train.steps": 2})
    train(cfg, tmp_path, show_progress=False)
    events = sorted(tmp_path.glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    assert train(cfg, tmp_path, resume=True, show_progress=False).step == 2
    assert sorted(tmp_path.glob("events.out.tfevents.*")) == events


def test_resume_with_a_different_config_is_refused(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    train(tiny_cfg.with_overrides({"train.steps": 2}), tmp_path, show_progress=False)
    other = tiny_cfg.with_overrides({"train.steps": 4, "model": "deeprx_quarter_c32"})
    with pytest.raises(InputError, match="model: checkpoint has 'deeprx_eighth'"):
        train(other, tmp_path, resume=True, show_progress=False)


def test_corrupt_or_missing_checkpoint_is_reported(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        checkpoint.load(tmp_path / "nothing")
    train(tiny_cfg.with_overrides({"train.steps": 2}), tmp_path, show_progress=False)
    tensors = tmp_path / checkpoint.TENSORS
    tensors.write_bytes(tensors.read_bytes()[:-10])
    with pytest.raises(InputError, match="corrupt"):
        checkpoint.load(tmp_path)
    (tmp_path / checkpoint.META).write_text("{not json")
    with pytest.raises(InputError, match="corrupt"):
        checkpoint.load(tmp_path)


def test_checkpoint_json_holds_the_resolved_config(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    train(tiny_cfg.with_overrides({"train.steps": 2}), tmp_path, show_progress=False)
    meta = json.loads((tmp_path / checkpoint.META).read_text())
    assert meta["config"]["model"] == "deeprx_eighth" and meta["step"] == 2
    assert RunConfig.from_dict(meta["config"]) == tiny_cfg.with_overrides({"train.steps": 2})


def test_learning_rate_schedule_by_hand(tiny_cfg: RunConfig) -> None:
    t = tiny_cfg.with_overrides({"train.steps": 100, "train.lr": 1e-3, "train.warmup_fraction": 0.1}).train
    assert learning_rate(t, 9) == pytest.approx(1e-3)  # end of warm-up (10 steps)
    assert learning_rate(t, 0) == pytest.approx(4e-5 + (1e-3 - 4e-5) / 10)  # from lr/25, one tenth in
    assert learning_rate(t, 55) == pytest.approx(1e-7 + (1e-3 - 1e-7) * 0.5)  # cosine half way
    cos = tiny_cfg.with_overrides({"train.steps": 100, "train.lr": 1e-3, "train.schedule": "cosine"}).train
    assert learning_rate(cos, 100) == pytest.approx(0.0)


def test_batch_cache_replays_the_same_batches_and_the_same_training(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    plain = train(tiny_cfg, tmp_path / "plain", show_progress=False)
    cache = BatchCache(max_bytes=2**30)
    first = train(tiny_cfg, tmp_path / "first", show_progress=False, batch_cache=cache)
    assert (cache.hits, cache.misses) == (0, tiny_cfg.train.steps)
    second = train(tiny_cfg, tmp_path / "second", show_progress=False, batch_cache=cache)
    assert (cache.hits, cache.misses) == (tiny_cfg.train.steps, tiny_cfg.train.steps)
    states = [checkpoint.load(r.run_dir).model_state for r in (plain, first, second)]
    for key in states[0]:
        for other in states[1:]:
            assert torch.allclose(states[0][key].float(), other[key].float(), atol=1e-5), key


def test_batch_cache_stops_growing_at_its_budget(tiny_cfg: RunConfig) -> None:
    simulator = UplinkSimulator(tiny_cfg.link)
    cache = BatchCache(max_bytes=1)
    a = cache.sample(simulator, 4, seed=1)
    b = cache.sample(simulator, 4, seed=1)
    assert cache.bytes == 0 and cache.misses == 2 and torch.equal(a.y, b.y)


def test_high_sinr_verdict_by_hand() -> None:
    from deeprx.evaluate.validation import high_sinr_verdict

    assert "passes LS-LMMSE (BER 1.00e-03 vs 2.00e-03, 0.5x" in high_sinr_verdict(1e-3, 2e-3, 40.0, 1000)
    assert "does NOT pass LS-LMMSE (BER 1.00e-02 vs 1.00e-03, 10x" in high_sinr_verdict(1e-2, 1e-3, 40.0, 1000)
    assert "ties with LS-LMMSE (BER 0.00e+00 vs 0.00e+00, no errors in 1,000 bits each)" in high_sinr_verdict(
        0.0, 0.0, 40.0, 1000
    )
    # zero errors count as half an error: 0 vs 1 error in 1000 bits is 0.5x
    assert "0.5x" in high_sinr_verdict(0.0, 1e-3, 40.0, 1000)
    # an error-free LS-LMMSE: 2e-3 against the floor 0.5 / 1000 is 4x, and the line says LS-LMMSE made no error
    assert "(BER 2.00e-03 vs 0.00e+00, LS-LMMSE error-free in 1,000 bits; 4x its half-error floor)" in (
        high_sinr_verdict(2e-3, 0.0, 40.0, 1000)
    )


def test_a_run_folder_holds_tensorboard_events_with_the_logged_scalars(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_cfg, tmp_path, show_progress=False)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    sinrs = ("0dB", "15dB", "30dB")  # the validation points of tiny_cfg
    assert {"train/loss", "train/lr", "train/slots_per_s"} <= tags
    assert {f"val_ber/{s}/{who}" for s in sinrs for who in ("deeprx", "ls_lmmse")} <= tags
    log = json.loads((tmp_path / checkpoint.META).read_text())["log"]
    logged = [(r["step"], r["loss"]) for r in log if "loss" in r]
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [
        (s, pytest.approx(v, rel=1e-6)) for s, v in logged
    ]
    validated = [r["step"] for r in log if "val_ber" in r]
    assert [e.step for e in events.Scalars("val_ber/30dB/deeprx")] == validated == [6, 12]
