"""Device, threads and reduced-precision choices for the machine at hand."""

from __future__ import annotations

import contextlib
import os

import torch

CPU = torch.device("cpu")  # the one CPU device of the project


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the current CUDA GPU when there is one, else the CPU; ``cuda`` -> ``cuda:N`` (the current one)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        from deeprx.io import InputError

        if not torch.cuda.is_available():
            raise InputError(f"device={name} requested but no CUDA GPU is visible; use --device cpu or auto")
        index = torch.cuda.current_device() if name == "cuda" else int(name.split(":")[1])
        if index >= torch.cuda.device_count():
            raise InputError(f"device={name}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")
        return torch.device("cuda", index)
    return torch.device(name)


THREADS_ENV = "DEEPRX_THREADS"  # caps the threads of a process that shares the cores (a Ray task's CPUs)


def use_all_cores() -> int:
    """Give torch every core this process may run on (intra-op threads), at most ``$DEEPRX_THREADS``."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cap = os.environ.get(THREADS_ENV, "")
    if cap.isdigit() and int(cap) > 0:
        n = min(n, int(cap))
    torch.set_num_threads(n)
    return n


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast pays off on CUDA with bf16 support and on CPUs with AVX-512 bf16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on the device if ``enabled`` and supported, else a no-op context."""
    if enabled and bf16_supported(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
