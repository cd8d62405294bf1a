"""Inference paths: BatchNorm folding is exact, ONNX matches PyTorch, int8 keeps hard decisions, serving runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from deeprx.cli import app
from deeprx.config import RunConfig
from deeprx.infer.engine import agreement, auto_select, build_engine, fold_batchnorm, split_depthwise
from deeprx.infer.serve import serve
from deeprx.link.simulator import UplinkSimulator
from deeprx.receivers import paper_input
from deeprx.runs import checkpoint
from deeprx.train.trainer import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunConfig]:
    """A checkpoint of a small model (a few steps: the tests need its format, not its quality)."""
    from deeprx.config import EvalConfig, LinkConfig, TrainConfig

    cfg = RunConfig(model="deeprx_eighth", link=LinkConfig(n_prb=2, modulation="16qam"),
                    train=TrainConfig(steps=2, batch_size=8, checkpoint_every=2),
                    eval=EvalConfig(slots_per_point=8))  # fmt: skip
    run_dir = tmp_path_factory.mktemp("infer") / "run"
    train(cfg, run_dir, show_progress=False)
    return run_dir, cfg


def _inputs(cfg: RunConfig, n: int, sinr_db: float, seed: int) -> torch.Tensor:
    return paper_input(UplinkSimulator(cfg.link).sample(n, seed=seed, sinr_db=sinr_db))


def test_folding_gives_the_same_logits(trained) -> None:
    run_dir, cfg = trained
    model, _ = checkpoint.load_model(run_dir)
    z = _inputs(cfg, 4, 20.0, 1)
    with torch.no_grad():
        ref, folded = model(z), fold_batchnorm(model)(z)
    # fp32 re-association only: 1e-4 of the logit scale
    assert torch.allclose(folded, ref, atol=1e-4 * float(ref.abs().max()), rtol=0)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in fold_batchnorm(model).modules()) == 12  # bn1 x 11 + head


def test_splitting_depthwise_convs_gives_the_same_logits(trained) -> None:
    run_dir, cfg = trained
    model, _ = checkpoint.load_model(run_dir)
    _confident(model, _inputs(cfg, 16, 20.0, 2))
    z = _inputs(cfg, 4, 20.0, 1)
    split = split_depthwise(fold_batchnorm(model))
    with torch.no_grad():
        ref, out = model(z), split(z)
    assert torch.allclose(out, ref, atol=1e-4 * float(ref.abs().max()), rtol=0)
    # every depthwise conv now has one output per group (what ONNX Runtime's blocked kernels take)
    depthwise = [m for m in split.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.out_channels == m.groups for m in depthwise)
    assert len(depthwise) == 2 * 2 * len(model.blocks)  # 2 separable convs per block, multiplier 2


def _confident(model: torch.nn.Module, calibration: torch.Tensor) -> torch.nn.Module:
    """Random (seeded) non-zero weights and BatchNorm statistics of real slots, so logits are O(1) and up:
    a few training steps would leave them near 0, where any rounding flips decisions."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(calibration)
    return model.eval()


def test_every_path_keeps_hard_decisions_at_high_sinr(trained) -> None:
    run_dir, cfg = trained
    model, _ = checkpoint.load_model(run_dir)
    calibration, probe = _inputs(cfg, 32, 25.0, 2), _inputs(cfg, 16, 30.0, 3)
    model = _confident(model, calibration)
    ref = build_engine(model, "eager", calibration).run(probe)
    assert float(ref.abs().median()) > 1.0  # logits far from 0 on most bits: agreement is a real test
    # Static int8 with per-tensor activation scales flips 3-7 % of this net's decisions on the Xeon sessions and
    # 10.0 % with ONNX Runtime's int8 kernels on an AVX2 EPYC (measured: agreement 0.89993, also at 675123b);
    # a broken path would agree on ~50 %. Auto selection refuses such a path (below), and the inference
    # benchmark reports its SINR loss.
    tolerance = {"folded": 1.0, "onnx": 1.0, "bf16": 0.99, "int8": 0.85, "onnx-int8": 0.85}
    for path, min_agree in tolerance.items():
        result = agreement(ref, build_engine(model, path, calibration, workdir=run_dir).run(probe))
        assert result["hard_decision_agreement"] >= min_agree, (path, result)
    engine, rows = auto_select(model, calibration, probe, min_agreement=0.999)
    chosen = next(r for r in rows if r["path"] == engine.path)
    assert chosen["hard_decision_agreement"] >= 0.999


def test_export_checks_onnx_runtime_against_pytorch(trained, tmp_path: Path) -> None:
    run_dir, _ = trained
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(app, ["export", "--checkpoint", str(run_dir), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    check = json.loads(result.stdout)
    assert check["passed"] and check["max_abs_logit_diff"] <= 1e-3 and out.stat().st_size > 10_000
    bad = CliRunner().invoke(app, ["export", "--checkpoint", str(tmp_path / "nothing")])
    assert bad.exit_code == 2


def test_serve_counts_every_offered_slot(trained) -> None:
    run_dir, cfg = trained
    model, _ = checkpoint.load_model(run_dir)
    pool = _inputs(cfg, 16, 20.0, 4)
    engines = [build_engine(model, "folded", pool) for _ in range(2)]
    report = serve(engines, pool, rate_per_s=50, duration_s=1.0, deadline_s=1.0)
    assert report.offered == 50 and report.processed + report.dropped == 50 and report.workers == 2
    assert report.latency_ms_p50 <= report.latency_ms_p99 <= report.latency_ms_max


def test_a_dense_student_runs_on_the_folded_and_onnx_paths(trained, tmp_path: Path) -> None:
    """The hardware-friendly student (dense 3x3 blocks) goes through BatchNorm folding and ONNX unchanged."""
    from deeprx.models.registry import create_model

    _, cfg = trained
    model = create_model("dense_sixteenth", cfg.link.n_rx, cfg.link.bits_per_symbol)
    calibration, probe = _inputs(cfg, 32, 25.0, 2), _inputs(cfg, 16, 30.0, 3)
    model = _confident(model, calibration)
    ref = build_engine(model, "eager", calibration).run(probe)
    for path in ("folded", "onnx"):
        result = agreement(ref, build_engine(model, path, calibration, workdir=tmp_path).run(probe))
        assert result["hard_decision_agreement"] == 1.0 and result["max_abs_logit_diff"] < 1e-3, (path, result)


def test_qat_export_keeps_hard_decisions_at_high_sinr(trained, tmp_path: Path) -> None:
    """Quantization-aware fine-tuning to int8, exported as QDQ ONNX: ONNX Runtime's int8 run agrees with the
    fake-quantized model and keeps the fp32 model's hard decisions on a high-SINR batch."""
    from deeprx.train.qat import qat_finetune

    run_dir, cfg = trained
    model, ckpt = checkpoint.load_model(run_dir)
    model = _confident(model, _inputs(cfg, 32, 25.0, 2))  # logits far from 0, as after real training
    confident = tmp_path / "confident"
    checkpoint.save(confident, checkpoint.Checkpoint(ckpt.config, ckpt.step, model.state_dict(), None, ckpt.log))
    out = tmp_path / "m.int8.onnx"
    result = qat_finetune(confident, out, steps=2, lr=1e-6)
    assert out.exists() and math.isfinite(result["loss_last"])
    # ORT's int8 rounding: measured 0.984 on the Xeon sessions, 0.905 on an AVX2 EPYC without AVX-512 (also at
    # 675123b: ONNX Runtime's u8s8 kernels without VNNI saturate their 16-bit sums); a broken export agrees on ~50 %
    assert result["int8_vs_fake_quant"]["hard_decision_agreement"] >= 0.88, result
    # static int8 flips 3-10 % of this net's decisions (test above); QAT starts from the same scales
    assert result["int8_vs_fp32"]["hard_decision_agreement"] >= 0.88, result  # measured 0.981 (Xeon), 0.911 (AVX2)
