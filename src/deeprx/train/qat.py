"""Quantization-aware fine-tuning to int8 (the paper's future work: KD combined with quantization).

A trained receiver's network, BatchNorm folded where it can be, is prepared for quantization-aware training
with PyTorch FX (per-channel symmetric int8 weights, per-tensor uint8 activations, simulated by fake
quantization) and fine-tuned for a few steps with its run's own loss: the distillation loss when the run was
a KD student (its teacher teaches the quantized student too), else masked BCE. It is then exported to ONNX
as QuantizeLinear/DequantizeLinear pairs, which ONNX Runtime runs with int8 kernels.

Two details the export needs (measured): x86's default QAT configuration uses a fused observer-and-fake-
quantize operator that does not export, so plain ``FakeQuantize`` modules are used; and the exporter writes
per-tensor scales as 1-element tensors, which ONNX Runtime's fused int8 operators refuse, so they are
rewritten as scalars.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deeprx.config import derive_seed
from deeprx.infer.engine import agreement, fold_batchnorm, split_depthwise
from deeprx.link.simulator import UplinkSimulator
from deeprx.receivers import FrontEnd
from deeprx.runs import checkpoint
from deeprx.runtime import CPU  # the int8 kernels are CPU ones (x86 FX backend, ONNX Runtime's CPU provider)
from deeprx.train.trainer import build_step


def qat_qconfig_mapping() -> Any:
    """Per-channel symmetric int8 weights and per-tensor uint8 activations, with exportable fake quantization."""
    from torch.ao.quantization import (
        FakeQuantize,
        MovingAverageMinMaxObserver,
        MovingAveragePerChannelMinMaxObserver,
        QConfig,
        QConfigMapping,
    )

    activation = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                        dtype=torch.quint8, qscheme=torch.per_tensor_affine)  # fmt: skip
    weight = FakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
                                    dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0)  # fmt: skip
    return QConfigMapping().set_global(QConfig(activation=activation, weight=weight))


def prepare_qat(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of ``model`` with BatchNorm folded (where it follows a conv), depthwise convs split and fake
    quantization inserted; the
    remaining BatchNorms keep their statistics frozen. It keeps ``model.config`` (a receiver reads it)."""
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    torch.backends.quantized.engine = "x86"
    # depthwise convs split to one output per group, as for the fp32 ONNX path: ONNX Runtime's int8 (and
    # blocked fp32) kernels only take those
    folded = split_depthwise(fold_batchnorm(copy.deepcopy(model).cpu())).train()
    prepared = prepare_qat_fx(folded, qat_qconfig_mapping(), (example,))
    prepared.config = model.config
    freeze_batchnorm(prepared)
    return prepared


def freeze_batchnorm(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def scalar_qdq_scales(path: Path) -> int:
    """Rewrite the 1-element scales and zero points of per-tensor QuantizeLinear/DequantizeLinear nodes in the ONNX
    file at ``path`` as scalars (ONNX Runtime's fused int8 operators need scalars); returns how many changed."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path))
    producers = {out: n for n in graph.graph.node for out in n.output}
    initializers = {i.name: i for i in graph.graph.initializer}

    def source(name: str) -> Any:
        """The tensor behind ``name``: an initializer or a Constant's value, through Identity nodes."""
        while name not in initializers and producers[name].op_type == "Identity":
            name = producers[name].input[0]
        return initializers[name] if name in initializers else producers[name].attribute[0].t

    changed = 0
    for node in graph.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or any(a.name == "axis" for a in node.attribute):
            continue
        for name in node.input[1:3]:
            tensor = source(name)
            array = numpy_helper.to_array(tensor)
            if array.shape == (1,):
                tensor.CopyFrom(numpy_helper.from_array(array.reshape(()), tensor.name))
                changed += 1
    onnx.save(graph, str(path))
    return changed


def export_qat(prepared: nn.Module, path: Path, example: torch.Tensor) -> None:
    """The fine-tuned model as a QDQ ONNX file (observers off: the learnt scales are fixed)."""
    from torch.ao.quantization import disable_observer

    from deeprx.io import atomic_write

    prepared.eval().apply(disable_observer)

    def write(tmp: Path) -> None:
        torch.onnx.export(prepared, (example,), str(tmp), input_names=["z"], output_names=["logits"],
                          dynamic_axes={"z": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)  # fmt: skip
        scalar_qdq_scales(tmp)

    atomic_write(path, write)


def qat_finetune(run_dir: Path, out: Path, steps: int, lr: float, check_slots: int = 64) -> dict[str, Any]:
    """Fine-tune the receiver of ``run_dir`` to int8 for ``steps`` steps at learning rate ``lr`` with its run's
    loss, export it to ``out`` (ONNX, QDQ) and check it on ``check_slots`` slots at the highest evaluation SINR:
    ONNX Runtime's int8 logits against the fake-quantized model, and its hard decisions against the fp32 model.

    Returns the facts: the loss at the first and last steps, the teacher (if any) and both agreements.
    """
    import onnxruntime as ort

    model, ckpt = checkpoint.load_model(run_dir)
    cfg = ckpt.config.with_overrides(
        {"device": "cpu", "train.lr": lr, "train.bf16": False, "train.channels_last": False}
    )
    simulator = UplinkSimulator(cfg.link, CPU)
    front_end = FrontEnd(simulator, cfg.features)
    check = simulator.sample(check_slots, derive_seed(cfg.seed, "qat-check"), sinr_db=cfg.eval.sinr_stop_db)
    z_check = front_end(check)
    prepared = prepare_qat(model, z_check[:1])
    step, teacher = build_step(cfg, prepared, simulator)
    if hasattr(step.loss_fn, "set_step"):  # a scheduled KD loss: at the weights of its last training step
        step.loss_fn.set_step(cfg.train.steps - 1)
    losses = []
    for i in range(steps):
        losses.append(float(step(simulator.sample(cfg.train.batch_size, derive_seed(cfg.seed, "qat", i)))))
    export_qat(prepared, out, z_check[:1])
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    int8 = torch.from_numpy(session.run(None, {"z": z_check.numpy()})[0])
    with torch.inference_mode():
        fake_quant, fp32 = prepared(z_check), model(z_check)
    return {
        "onnx": str(out),
        "steps": steps,
        "lr": lr,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "teacher": teacher.get("teacher_model"),
        "check_sinr_db": cfg.eval.sinr_stop_db,
        "check_slots": check_slots,
        "int8_vs_fake_quant": agreement(fake_quant, int8),
        "int8_vs_fp32": agreement(fp32, int8),
    }
