"""Teacher-initialised students: the pruning criterion keeps the channels it says, and a cut network runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deeprx.config import RunConfig
from deeprx.io import InputError
from deeprx.models.registry import create_model
from deeprx.runs import checkpoint
from deeprx.train.prune import PruneError, kept_channels, prune_into, stream_groups
from deeprx.train.trainer import train


def test_stream_groups_follow_the_identity_skips() -> None:
    assert stream_groups([32, 32, 32, 64, 64, 128, 128, 128, 64, 64]) == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    assert stream_groups([8]) == [0]


def test_the_criterion_keeps_the_channels_with_the_largest_batchnorm_scales() -> None:
    torch.manual_seed(0)
    teacher, student = create_model("deeprx_quarter").eval(), create_model("deeprx_eighth").eval()
    # stream group 0 = stem output + outputs of blocks 0 and 1 (16 channels, read by bn1 of blocks 0-2): make
    # channels 1, 3, ..., 15 matter through block 1's bn1 alone, all others' scales zero
    wanted = torch.arange(1, 16, 2)
    with torch.no_grad():
        for block in teacher.blocks[:3]:
            block.bn1.weight.zero_()
        teacher.blocks[1].bn1.weight[wanted] = torch.linspace(1.0, 2.0, 8)
        teacher.blocks[4].bn2.weight.copy_(torch.arange(64.0))  # block 4's inner layer: the top 32 are 32..63
    stream, inner = kept_channels(teacher, student)
    assert [len(s) for s in stream] == [8, 8, 8, 16, 16, 32, 32, 32, 16, 16, 8, 8]
    for position in (0, 1, 2):  # one group: one set of indices
        assert stream[position].tolist() == wanted.tolist()
    assert inner[4].tolist() == list(range(32, 64))


def test_a_network_cut_to_its_own_widths_is_itself() -> None:
    torch.manual_seed(1)
    teacher, student = (
        create_model("deeprx_eighth", in_channels=18).eval(),
        create_model("deeprx_eighth", in_channels=18),
    )
    with torch.no_grad():  # non-trivial BatchNorm statistics and scales
        for m in teacher.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.running_mean.normal_(), m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0, 0.2)
    prune_into(teacher, student)
    z = torch.randn(2, 18, 14, 24)
    assert torch.allclose(student.eval()(z), teacher(z), atol=1e-5)


def test_other_layouts_are_refused() -> None:
    with pytest.raises(PruneError, match="layout"):
        kept_channels(create_model("deeprx_half"), create_model("dense_eighth"))  # separable -> dense
    with pytest.raises(PruneError, match="identity"):
        kept_channels(create_model("deeprx_half"), create_model("deeprx_quarter_c32"))  # other skips
    with pytest.raises(PruneError, match="widths"):
        kept_channels(create_model("deeprx_eighth"), create_model("deeprx_quarter"))  # wider


def test_train_init_from_a_teacher_fine_tunes_the_cut_network(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    teacher_cfg = tiny_cfg.with_overrides({"model": "deeprx_quarter", "train.steps": 6})
    train(teacher_cfg, tmp_path / "teacher", show_progress=False)
    cfg = tiny_cfg.with_overrides({"train.init_from": str(tmp_path / "teacher"), "train.steps": 12})
    result = train(cfg, tmp_path / "student", show_progress=False)
    ckpt = checkpoint.load(tmp_path / "student")
    assert ckpt.extra["init_from_model"] == "deeprx_quarter" and len(ckpt.extra["init_from_sha256"]) == 64
    assert ckpt.extra["init_from_slots_seen"] == 6 * teacher_cfg.train.batch_size  # the teacher's 6 steps
    assert "network slimming" in ckpt.extra["init_criterion"]
    losses = [r["loss"] for r in result.log if "loss" in r]
    assert losses[-1] < losses[0]
    # step 0 of the cut network is the teacher's channels: not the fresh network of the same seed
    start = train(cfg.with_overrides({"train.steps": 1, "train.lr": 1e-9}), tmp_path / "start", show_progress=False)
    fresh = train(
        tiny_cfg.with_overrides({"train.steps": 1, "train.lr": 1e-9}), tmp_path / "fresh", show_progress=False
    )
    cut_stem = checkpoint.load(tmp_path / "start").model_state["stem.weight"]
    assert not torch.equal(cut_stem, checkpoint.load(tmp_path / "fresh").model_state["stem.weight"])
    assert start.step == fresh.step == 1
    with pytest.raises(InputError, match="cannot initialise"):
        train(cfg.with_overrides({"model": "dense_sixteenth"}), tmp_path / "dense", show_progress=False)
    # the teacher's own widths: a fine-tune that keeps every channel, and the record says so
    train(cfg.with_overrides({"model": "deeprx_quarter", "train.steps": 1}), tmp_path / "same", show_progress=False)
    assert checkpoint.load(tmp_path / "same").extra["init_criterion"] == "every channel (same widths)"
