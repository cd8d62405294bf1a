"""Inference paths for a trained DeepRx, built side by side so they can be compared in one run.

Every path maps ``z: [batch, 4*n_rx+2, 14, n_sc] float32`` to logits ``[batch, bits, 14, n_sc] float32``:

* ``eager``: the model as trained, fp32, contiguous (the reference).
* ``folded``: BatchNorm folded into the convolution before it, channels-last memory layout.
* ``bf16``: ``folded`` with bf16 weights and activations (pays off on AVX-512-bf16 / AMX CPUs).
* ``int8``: ``folded`` statically quantized with PyTorch FX (x86 backend), calibrated on real slots.
* ``onnx``: ``folded`` with its depthwise convolutions split (below), exported to ONNX and run by ONNX
  Runtime (fp32).
* ``onnx-int8``: that ONNX model statically quantized by ONNX Runtime (QDQ, per-channel int8 weights).

On a CUDA device (``device="cuda"``) the torch paths run on the GPU and two more exist: ``compile``
(``folded`` in bf16 through ``torch.compile``) and ``cuda-graph`` (the same, captured as CUDA graphs with
``mode="reduce-overhead"``: a small batch is launch-bound, a graph replays all kernels in one launch);
``onnx`` runs on ONNX Runtime's CUDA execution provider (TensorRT's when installed) where it is available.
``int8`` (FX, x86 backend) and ``onnx-int8`` (CPU kernels) are CPU paths.

In a pre-activation ResNet only the BatchNorm right after a convolution can be folded (``bn2`` of every
block, after ``conv1``'s pointwise convolution); ``bn1`` and the head's BatchNorm act on the residual
stream, which the skip connections also read, so they stay as per-channel affine maps.

DeepRx's depthwise convolutions have depth multiplier 2 (``groups = C``, ``2C`` outputs). ONNX Runtime's
blocked (NCHWc) kernels only take depthwise convolutions with one output per group, so it runs these on a
generic grouped path and reorders the layout around each of them: profiled on deeprx_quarter at 14 x 312,
depthwise convs took 55 % and layout reorders 16 % of the time for ~5 % of the FLOPs. ``split_depthwise``
rewrites each separable convolution ``P(D(x))`` as ``sum_k P_k(D_k(x))`` with ``D_k`` the multiplier-1
depthwise conv of the k-th output of every group and ``P_k`` the matching input columns of the pointwise
conv: the same function (to float rounding), all in blocked layout, the sums fused into the convolutions.
"""

from __future__ import annotations

import copy
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deeprx.models.deeprx import DeepRx, SeparableConv2d
from deeprx.runtime import CPU

PATHS: tuple[str, ...] = ("eager", "folded", "bf16", "int8", "onnx", "onnx-int8", "compile", "cuda-graph")
CPU_ONLY: tuple[str, ...] = ("int8", "onnx-int8")
CUDA_ONLY: tuple[str, ...] = ("compile", "cuda-graph")
Runner = Callable[[torch.Tensor], torch.Tensor]


def paths_for(device: torch.device) -> tuple[str, ...]:
    """The inference paths that exist on ``device``."""
    excluded = CUDA_ONLY if device.type == "cpu" else CPU_ONLY
    return tuple(p for p in PATHS if p not in excluded)


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution equal to ``bn(conv(x))`` in eval mode: ``W' = W * g``, ``b' = (b - mean) * g + beta``,
    ``g = gamma / sqrt(var + eps)``."""
    g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True)  # fmt: skip
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * g.reshape(-1, 1, 1, 1))
        fused.bias.copy_((bias - bn.running_mean) * g + bn.bias)
    return fused


class SplitSeparableConv2d(nn.Module):
    """``sum_k pointwise_k(depthwise_k(x))``: a :class:`SeparableConv2d` with its depth multiplier unrolled."""

    def __init__(self, sep: SeparableConv2d) -> None:
        super().__init__()
        depthwise, pointwise = sep[0], sep[1]
        c, m = depthwise.groups, depthwise.out_channels // depthwise.groups
        self.depthwise, self.pointwise = nn.ModuleList(), nn.ModuleList()
        for k in range(m):
            d = nn.Conv2d(c, c, 3, padding=depthwise.padding, dilation=depthwise.dilation, groups=c, bias=False)
            p = nn.Conv2d(c, pointwise.out_channels, 1, bias=k == 0 and pointwise.bias is not None)
            with torch.no_grad():
                d.weight.copy_(depthwise.weight[k::m])  # output 2c + k of a multiplier-2 conv reads channel c
                p.weight.copy_(pointwise.weight[:, k::m])
                if p.bias is not None:
                    p.bias.copy_(pointwise.bias)
            self.depthwise.append(d)
            self.pointwise.append(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pointwise[0](self.depthwise[0](x))
        for d, p in zip(self.depthwise[1:], self.pointwise[1:], strict=True):
            out = out + p(d(x))
        return out


def split_depthwise(model: DeepRx) -> DeepRx:
    """A copy of ``model`` (eval mode) with every separable convolution unrolled over its depth multiplier."""
    split = copy.deepcopy(model).eval()
    for block in split.blocks:
        if isinstance(block.conv1, SeparableConv2d):  # dense blocks have nothing to unroll
            block.conv1 = SplitSeparableConv2d(block.conv1)
            block.conv2 = SplitSeparableConv2d(block.conv2)
    return split


def fold_batchnorm(model: DeepRx) -> DeepRx:
    """A copy of ``model`` (eval mode) with every foldable BatchNorm folded into the convolution before it."""
    folded = copy.deepcopy(model).eval()
    for block in folded.blocks:
        if isinstance(block.conv1, SeparableConv2d):  # bn2 follows the pointwise conv
            block.conv1[1] = fold_conv_bn(block.conv1[1], block.bn2)
        else:  # bn2 follows the dense conv
            block.conv1 = fold_conv_bn(block.conv1, block.bn2)
        block.bn2 = nn.Identity()
    return folded


@dataclass
class Engine:
    """One inference path. ``run``: ``[batch, C, 14, n_sc]`` float32 -> ``[batch, bits, 14, n_sc]`` float32."""

    path: str
    run: Runner
    description: str


def _torch_runner(model: nn.Module, dtype: torch.dtype, channels_last: bool, device: torch.device = CPU) -> Runner:
    """``z`` (any device) -> logits on ``device``; on CUDA the call returns when the GPU is done (latency)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device)

    def run(z: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            out = model(z.to(device=device, dtype=dtype, memory_format=fmt)).float()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out

    return run


def _int8_fx(folded: DeepRx, calibration: torch.Tensor) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    prepared = prepare_fx(folded, get_default_qconfig_mapping("x86"), (calibration[:1],))
    with torch.inference_mode():
        for chunk in calibration.split(8):
            prepared(chunk)
    return convert_fx(prepared)


def export_onnx(model: DeepRx, path: Path, n_subcarriers: int, opset: int = 17) -> None:
    """Write ``model`` with BatchNorm folded and depthwise convs split as ONNX, with a dynamic batch axis
    (input ``z``, output ``logits``)."""
    z = torch.zeros(1, model.config.in_channels, 14, n_subcarriers)
    fast = split_depthwise(fold_batchnorm(copy.deepcopy(model).cpu()))
    torch.onnx.export(fast, (z,), str(path), input_names=["z"], output_names=["logits"],
                      dynamic_axes={"z": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset,
                      dynamo=False)  # fmt: skip


def ort_providers(device: torch.device) -> list[str]:
    """ONNX Runtime execution providers for ``device``: TensorRT, else CUDA, on a GPU when installed; the CPU's.

    Raises ``RuntimeError`` on a CUDA device when ONNX Runtime has no GPU provider (its CPU build)."""
    import onnxruntime as ort

    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    gpu = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
    if not gpu:
        raise RuntimeError(f"ONNX Runtime here has no GPU execution provider (only {available})")
    return [*gpu, "CPUExecutionProvider"]


def onnx_file_engine(onnx_path: Path, threads: int, path: str, description: str) -> Engine:
    """An ONNX file made elsewhere (e.g. a quantization-aware fine-tuned model) run by ONNX Runtime on the CPU."""
    return Engine(path, _ort_runner(onnx_path, threads), description)


def _ort_runner(onnx_path: Path, threads: int, device: torch.device = CPU) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Denormal floats take a slow microcode path on x86; flushing them to zero changes no decision.
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    session = ort.InferenceSession(str(onnx_path), options, providers=ort_providers(device))

    def run(z: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"z": z.cpu().numpy()})[0])

    return run


def _ort_int8(fp32_path: Path, int8_path: Path, calibration: torch.Tensor) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"z": c.numpy()} for c in calibration.split(8)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    quantize_static(str(fp32_path), str(int8_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)  # fmt: skip


def _folded_engine(folded: DeepRx, path: str, calibration: torch.Tensor, device: torch.device) -> Engine:
    if path == "folded":
        cl = folded.to(memory_format=torch.channels_last)
        return Engine(path, _torch_runner(cl, torch.float32, True, device), "BatchNorm folded, channels-last, fp32")
    if path in ("bf16", "compile", "cuda-graph"):
        bf = folded.to(device=device, dtype=torch.bfloat16, memory_format=torch.channels_last)
        if path == "bf16":
            return Engine(path, _torch_runner(bf, torch.bfloat16, True, device), "folded, channels-last, bf16")
        mode = "reduce-overhead" if path == "cuda-graph" else "default"
        compiled = torch.compile(bf, mode=mode, dynamic=False)
        return Engine(path, _torch_runner(compiled, torch.bfloat16, True, device),
                      f"folded, channels-last, bf16, torch.compile mode={mode}")  # fmt: skip
    return Engine(path, _torch_runner(_int8_fx(folded, calibration), torch.float32, False),
                  "folded, static int8 (PyTorch FX, x86 backend)")  # fmt: skip


def build_engine(
    model: DeepRx,
    path: str,
    calibration: torch.Tensor,
    workdir: Path | None = None,
    threads: int | None = None,
    device: torch.device = CPU,
) -> Engine:
    """Build one path for ``model`` on ``device``. ``calibration``: real inputs ``[N, C, 14, n_sc]`` for int8
    ranges. ``threads``: ONNX Runtime intra-op threads (default: torch's); the torch paths use torch's setting."""
    if path not in paths_for(device):
        raise ValueError(f"unknown inference path {path!r} on {device.type}: one of {paths_for(device)}")
    model = copy.deepcopy(model).eval()  # the caller's model stays where it is
    if path == "eager":
        return Engine(path, _torch_runner(model, torch.float32, False, device), "PyTorch eager fp32 (reference)")
    if path in ("folded", "bf16", "int8", "compile", "cuda-graph"):
        return _folded_engine(fold_batchnorm(model.cpu()), path, calibration, device)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="deeprx-onnx-"))
    fp32 = workdir / "model.onnx"
    if not fp32.exists():
        export_onnx(model, fp32, calibration.shape[-1])
    threads = threads or torch.get_num_threads()
    if path == "onnx":
        provider = ort_providers(device)[0].removesuffix("ExecutionProvider")
        description = f"folded, depthwise split, ONNX Runtime fp32 ({provider})"
        return Engine(path, _ort_runner(fp32, threads, device), description)
    int8 = workdir / "model.int8.onnx"
    if not int8.exists():
        _ort_int8(fp32, int8, calibration)
    description = "folded, depthwise split, ONNX Runtime static int8 (QDQ, per-channel)"
    return Engine(path, _ort_runner(int8, threads), description)


def build_copies(
    model: DeepRx, path: str, calibration: torch.Tensor, copies: int, cores: int, device: torch.device = CPU
) -> list[Engine]:
    """``copies`` engines of one path on ``device`` that share one ONNX export, each on ``cores // copies``
    threads. Sets torch's intra-op threads to that share too (the torch paths read it at run time)."""
    threads = max(1, cores // copies)
    torch.set_num_threads(threads)
    workdir = Path(tempfile.mkdtemp(prefix="deeprx-copies-"))
    return [build_engine(model, path, calibration, workdir, threads, device) for _ in range(copies)]


def throughput(engine: Engine, z: torch.Tensor, min_seconds: float = 1.0, warmup: int = 2) -> dict[str, float]:
    """Slots per second and per-call latency percentiles (ms) of ``engine`` on batch ``z``."""
    for _ in range(warmup):
        engine.run(z)
    latencies = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_seconds or len(latencies) < 3:
        t = time.perf_counter()
        engine.run(z)
        latencies.append(time.perf_counter() - t)
    lat = np.asarray(latencies) * 1e3
    return {
        "slots_per_s": z.shape[0] * len(latencies) / (time.perf_counter() - start),
        "latency_ms_p50": float(np.percentile(lat, 50)),
        "latency_ms_p90": float(np.percentile(lat, 90)),
        "latency_ms_p99": float(np.percentile(lat, 99)),
        "calls": len(latencies),
    }


def parallel_throughput(engines: list[Engine], z: torch.Tensor, min_seconds: float = 1.0) -> dict[str, float]:
    """Slots per second of ``engines`` run concurrently, one thread each, every call on batch ``z``."""
    counts = [0] * len(engines)
    for engine in engines:
        engine.run(z)
    start = time.perf_counter()

    def work(i: int) -> None:
        while time.perf_counter() - start < min_seconds or counts[i] < 3:
            engines[i].run(z)
            counts[i] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(engines))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"slots_per_s": z.shape[0] * sum(counts) / (time.perf_counter() - start), "workers": len(engines)}


def agreement(reference: torch.Tensor, logits: torch.Tensor) -> dict[str, float]:
    """Max absolute logit difference and the fraction of identical hard decisions."""
    return {
        "max_abs_logit_diff": float((reference - logits).abs().max()),
        "hard_decision_agreement": float(((reference > 0) == (logits > 0)).float().mean()),
    }


def auto_select(
    model: DeepRx,
    calibration: torch.Tensor,
    probe: torch.Tensor,
    min_agreement: float = 0.999,
    device: torch.device = CPU,
) -> tuple[Engine, list[dict[str, object]]]:
    """The fastest path on ``device`` whose hard decisions agree with eager fp32 on ``probe`` at least
    ``min_agreement``."""
    reference = build_engine(model, "eager", calibration, device=device).run(probe).cpu()
    rows, best = [], None
    for path in paths_for(device):
        try:
            engine = build_engine(model, path, calibration, device=device)
        except Exception as err:  # a path the platform lacks (e.g. no quantized engine) is skipped, and said
            rows.append({"path": path, "error": f"{type(err).__name__}: {err}"})
            continue
        row = {"path": path, **throughput(engine, probe, min_seconds=0.5),
               **agreement(reference, engine.run(probe).cpu())}  # fmt: skip
        rows.append(row)
        if row["hard_decision_agreement"] >= min_agreement and (best is None or row["slots_per_s"] > best[1]):
            best = (engine, row["slots_per_s"])
    assert best is not None  # eager always agrees with itself
    return best[0], rows


# Slots a served receiver's path is chosen on: the first CALIBRATION_SLOTS calibrate (int8) and the next
# PROBE_SLOTS measure speed and agreement with eager fp32.
CALIBRATION_SLOTS = 32
PROBE_SLOTS = 16


def calibration_and_probe(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a pool of network inputs (at least ``CALIBRATION_SLOTS + PROBE_SLOTS``) into calibration and probe."""
    if z.shape[0] < CALIBRATION_SLOTS + PROBE_SLOTS:
        raise ValueError(f"need {CALIBRATION_SLOTS + PROBE_SLOTS} slots to choose a path, got {z.shape[0]}")
    return z[:CALIBRATION_SLOTS], z[CALIBRATION_SLOTS : CALIBRATION_SLOTS + PROBE_SLOTS]


def export_verified(model: DeepRx, out: Path, z: torch.Tensor, tolerance: float) -> dict[str, Any]:
    """Export ``model`` to ONNX at ``out`` (atomically) and run ONNX Runtime on ``z`` beside PyTorch.

    Returns the agreement (:func:`agreement`), whether it ``passed`` (max |logit difference| <= ``tolerance``
    and every hard decision identical) and the test batch's shape.
    """
    import onnxruntime as ort

    from deeprx.io import atomic_write

    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(model, Path(tmp) / "m.onnx", z.shape[-1])
        data = (Path(tmp) / "m.onnx").read_bytes()
    atomic_write(out, lambda p: p.write_bytes(data))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        reference = model(z).cpu()  # PyTorch on the model's device; ONNX Runtime's CPU provider
    check = agreement(reference, torch.from_numpy(session.run(None, {"z": z.cpu().numpy()})[0]))
    passed = check["max_abs_logit_diff"] <= tolerance and check["hard_decision_agreement"] == 1.0
    return {"onnx": str(out), "tolerance": tolerance, "passed": passed, "test_batch": list(z.shape), **check}
