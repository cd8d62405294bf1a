"""Inference commands: ONNX export (checked against PyTorch) and the serving benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deeprx.cli.common import (
    CheckpointOpt,
    DeviceOpt,
    JsonOpt,
    NprbAnyOpt,
    PretrainedOpt,
    check_new_file,
    checkpoint_dir_of,
    console,
    emit,
    guard,
    run_context,
)
from deeprx.config import SERVE_DEADLINE_MS, SERVE_MAX_BATCH
from deeprx.io import InputError

app = typer.Typer()
EXPORT_CHECK_SLOTS = 8  # slots ONNX Runtime and PyTorch are compared on


@app.command("export")
def export_cmd(
    checkpoint_dir: Annotated[
        Path | None, typer.Option("--checkpoint", "-c", help="run folder of a checkpoint")
    ] = None,
    pretrained: PretrainedOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="ONNX file to write")] = Path("out/deeprx.onnx"),
    tolerance: Annotated[float, typer.Option(help="max |logit difference| allowed vs PyTorch")] = 1e-3,
    force: Annotated[bool, typer.Option("--force", help="replace an existing --out file")] = False,
    n_prb: NprbAnyOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a checkpoint to ONNX (BatchNorm folded, depthwise convs split); check ONNX Runtime against PyTorch
    (run on --device) on slots of the checkpoint's grid or of --n-prb."""
    from deeprx.infer.engine import export_verified
    from deeprx.subjects import INFERENCE_SINR_DB, inference_subject, on_device

    with guard():
        check_new_file(out, force, "deeprx.onnx")
        where = run_context(device).device
        subject = inference_subject(checkpoint_dir_of(checkpoint_dir, pretrained), "", n_prb, EXPORT_CHECK_SLOTS)
        subject = on_device(subject, where)
        result = export_verified(subject.net.to(where), out, subject.front_end(subject.slots), tolerance)
        if not emit(result, as_json):
            console.print(
                f"wrote {out}; ONNX Runtime vs PyTorch on {result['test_batch'][0]} slots at {INFERENCE_SINR_DB:g} dB: "
                f"max |logit diff| {result['max_abs_logit_diff']:.2e} (tolerance {tolerance:g}), identical hard "
                f"decisions {result['hard_decision_agreement']:.4%}: {'PASS' if result['passed'] else 'FAIL'}"
            )
        if not result["passed"]:
            raise typer.Exit(1)


@app.command("serve-bench")
def serve_bench(
    checkpoint_dir: Annotated[
        Path | None, typer.Option("--checkpoint", "-c", help="run folder of a checkpoint")
    ] = None,
    pretrained: PretrainedOpt = None,
    model: Annotated[str, typer.Option("--model", "-m", help="untrained preset when no checkpoint")] = "deeprx_full",
    n_prb: NprbAnyOpt = None,
    path: Annotated[
        str, typer.Option(help="auto | eager | folded | bf16 | int8 | onnx | onnx-int8 | compile | cuda-graph (GPU)")
    ] = "auto",
    rate: Annotated[float, typer.Option(help="offered slots per second")] = 400.0,
    duration: Annotated[float, typer.Option(help="seconds of offered traffic")] = 10.0,
    deadline_ms: Annotated[
        float, typer.Option(help="a result later than this after arrival is late")
    ] = SERVE_DEADLINE_MS,
    max_batch: Annotated[int, typer.Option(help="largest batch the receiver forms from its queue")] = SERVE_MAX_BATCH,
    workers: Annotated[int, typer.Option(help="parallel receivers sharing the queue, the cores split among them")] = 1,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Feed simulated slots at RATE for DURATION and report whether the receiver kept up."""
    import torch

    from deeprx.infer.engine import paths_for
    from deeprx.infer.serve import serve
    from deeprx.runtime import use_all_cores
    from deeprx.subjects import SERVE_POOL_SLOTS, inference_subject, on_device, serving_engines

    with guard():
        where = run_context(device).device
        if path != "auto" and path not in paths_for(where):
            raise InputError(f"unknown path {path!r} on {where.type}: choose auto or one of {list(paths_for(where))}")
        if min(rate, duration, deadline_ms) <= 0 or max_batch < 1 or workers < 1:
            raise InputError("--rate, --duration and --deadline-ms must be > 0, --max-batch and --workers >= 1")
        cores = use_all_cores()
        checkpoint_dir = checkpoint_dir_of(checkpoint_dir, pretrained, required=False)
        subject = on_device(inference_subject(checkpoint_dir, model, n_prb, SERVE_POOL_SLOTS), where)
        link, slots = subject.link, subject.slots
        engines = serving_engines(subject, path, workers, cores, where)
        engine = engines[0]
        report = serve(engines, torch.arange(slots.batch_size), rate, duration, deadline_ms / 1e3, max_batch)
        if emit(report.to_dict(), as_json):
            return
        r = report
        console.print(
            f"{engine.description}, {r.workers} worker(s): offered {r.offered} slots at {r.rate_per_s:g}/s "
            f"for {r.duration_s:g} s on a "
            f"14 x {link.n_subcarriers} grid; processed {r.processed} ({r.achieved_per_s:.1f}/s), dropped {r.dropped}, "
            f"late (> {r.deadline_ms:g} ms) {r.late}; latency p50 {r.latency_ms_p50:.1f} / p95 {r.latency_ms_p95:.1f} "
            f"/ p99 {r.latency_ms_p99:.1f} ms; mean batch {r.mean_batch:.1f} -> "
            + ("[green]kept up[/green]" if r.kept_up else "[red]did not keep up[/red]")
        )


@app.command("qat")
def qat_cmd(
    checkpoint_dir: CheckpointOpt = None,
    pretrained: PretrainedOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="int8 ONNX file to write")] = Path("out/deeprx.int8.onnx"),
    steps: Annotated[int, typer.Option(help="fine-tuning steps with fake quantization")] = 100,
    lr: Annotated[float, typer.Option(help="learning rate of the fine-tuning (AdamW)")] = 1e-4,
    force: Annotated[bool, typer.Option("--force", help="replace an existing --out file")] = False,
    device: Annotated[
        str | None, typer.Option("--device", help="auto | cpu: int8 fine-tuning and its kernels run on the CPU")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Quantization-aware fine-tuning to int8 with the run's own loss (KD for a KD student), exported to ONNX (QDQ),
    checked against the fp32 model at high SINR and timed in ONNX Runtime beside the fp32 ONNX path."""
    from deeprx.infer.engine import CALIBRATION_SLOTS, build_engine, onnx_file_engine, throughput
    from deeprx.runtime import use_all_cores
    from deeprx.subjects import inference_subject
    from deeprx.train.qat import qat_finetune

    with guard():
        if steps < 1 or lr <= 0:
            raise InputError("--steps must be >= 1 and --lr > 0")
        if device not in (None, "auto", "cpu"):
            raise InputError(f"--device {device}: int8 QAT runs on the CPU (FX int8, ONNX Runtime's CPU kernels); "
                             "use --device cpu or auto")  # fmt: skip
        check_new_file(out, force, "deeprx.int8.onnx")
        run_dir = checkpoint_dir_of(checkpoint_dir, pretrained)
        threads = use_all_cores()
        result = qat_finetune(run_dir, out, steps, lr)
        subject = inference_subject(run_dir, "", None, CALIBRATION_SLOTS)
        z = subject.front_end(subject.slots)
        int8 = onnx_file_engine(out, threads, "onnx-qat", "QAT int8, ONNX Runtime (QDQ)")
        fp32 = build_engine(subject.net, "onnx", z, workdir=out.parent)
        result["slots_per_s"] = {"onnx fp32": throughput(fp32, z)["slots_per_s"],
                                 "onnx qat int8": throughput(int8, z)["slots_per_s"]}  # fmt: skip
        if emit(result, as_json):
            return
        a, b = result["int8_vs_fp32"], result["int8_vs_fake_quant"]
        console.print(
            f"wrote {out} after {steps} QAT steps (loss {result['loss_first']:.4f} -> {result['loss_last']:.4f}"
            f"{', teacher ' + result['teacher'] if result['teacher'] else ''}); at {result['check_sinr_db']:g} dB on "
            f"{result['check_slots']} slots: hard decisions {a['hard_decision_agreement']:.4%} as fp32's, "
            f"ONNX Runtime vs fake quantization max |logit diff| {b['max_abs_logit_diff']:.2e}; "
            f"{result['slots_per_s']['onnx qat int8']:.0f} slots/s int8 vs {result['slots_per_s']['onnx fp32']:.0f} "
            f"fp32 ONNX (batch {CALIBRATION_SLOTS})"
        )
