"""Checkpoints: tensors in safetensors, everything else (resolved config, step, log) in JSON.

A checkpoint is two files in a run folder: ``checkpoint.safetensors`` (model weights and buffers under
``model.``, AdamW state under ``optim.``, modules trained beside the model, such as feature-KD adapters, under
``aux.``) and ``checkpoint.json`` (format version, resolved config, step,
training log and the SHA-256 of the tensor file, so a corrupt or swapped tensor file is detected).
Both are written atomically, tensors first.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from deeprx.config import ConfigError, RunConfig, input_channels
from deeprx.io import InputError, atomic_write, read_json, sha256_file, write_json
from deeprx.models.deeprx import DeepRx
from deeprx.models.registry import create_model

FORMAT_VERSION = 1
# What a checkpoint and the data it is evaluated on must share: the weights fix them. Everything else of the
# link (PRBs, DMRS symbols, speeds, delay spread, channel family) may differ: the network is fully convolutional.
EVALUATION_MUST_MATCH = ("model", "features", "link.n_rx", "link.modulation")
TENSORS = "checkpoint.safetensors"
META = "checkpoint.json"
# checkpoint.json's fields and their types; a file that lacks one is not a checkpoint this code wrote
META_FIELDS: dict[str, type | tuple[type, ...]] = {
    "config": dict,
    "step": int,
    "optim_param_groups": list,
    "tensors_sha256": str,
    "log": list,
}


@dataclass
class Checkpoint:
    """What a run folder holds. ``log`` rows are dicts with at least ``step`` and ``loss``; ``aux_state``: the
    state of modules trained beside the model (the training loss's, e.g. feature-KD adapters), else empty."""

    config: RunConfig
    step: int
    model_state: dict[str, torch.Tensor]
    optim_state: dict[str, Any] | None
    log: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    aux_state: dict[str, torch.Tensor] = field(default_factory=dict)


def exists(run_dir: Path) -> bool:
    return (run_dir / META).exists()


def _read_meta(run_dir: Path) -> dict[str, Any]:
    """``checkpoint.json``, its format and fields checked (not the tensors: see :func:`load`)."""
    meta = read_json(run_dir / META, "checkpoint metadata")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise InputError(f"{run_dir / META} is not a deeprx checkpoint (format {FORMAT_VERSION})")
    for name, kind in META_FIELDS.items():
        if not isinstance(meta.get(name), kind) or isinstance(meta.get(name), bool):
            raise InputError(
                f"{run_dir / META} lacks a valid {name!r} field; it is damaged: re-train or restore the run folder"
            )
    return meta


def saved_step(run_dir: Path) -> int | None:
    """The step of the checkpoint in ``run_dir`` (``None`` if there is none), from its JSON alone: cheap, no
    tensor hashing. :func:`load` verifies everything before the weights are used."""
    return _read_meta(run_dir)["step"] if exists(run_dir) else None


def saved_config(run_dir: Path) -> RunConfig:
    """The resolved config of the checkpoint in ``run_dir``, from its JSON alone."""
    try:
        return RunConfig.from_dict(_read_meta(run_dir)["config"])
    except ConfigError as e:
        raise InputError(f"checkpoint {run_dir} is corrupt ({e}); re-train or restore it") from e


def saved_log(run_dir: Path) -> list[dict[str, Any]]:
    """The training log of the checkpoint in ``run_dir``, from its JSON alone (``InputError`` if none)."""
    if not exists(run_dir):
        raise InputError(f"{run_dir} holds no checkpoint; give a run folder of deeprx train or distill")
    return _read_meta(run_dir)["log"]


def save(run_dir: Path, ckpt: Checkpoint) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in ckpt.model_state.items()}
    tensors |= {f"aux.{k}": v.detach().cpu().contiguous() for k, v in ckpt.aux_state.items()}
    groups: list[dict[str, Any]] = []
    if ckpt.optim_state is not None:
        for pid, state in ckpt.optim_state["state"].items():
            for name, value in state.items():
                tensors[f"optim.{pid}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
        groups = ckpt.optim_state["param_groups"]
    atomic_write(run_dir / TENSORS, lambda p: _save_tensors(tensors, p))
    write_json(
        run_dir / META,
        {
            "format": FORMAT_VERSION,
            "config": ckpt.config.to_dict(),
            "step": ckpt.step,
            "optim_param_groups": groups,
            "tensors_sha256": sha256_file(run_dir / TENSORS),
            "log": ckpt.log,
            "extra": ckpt.extra,
        },
    )


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors' ``save_file``, with its I/O errors (a full disk) raised as the ``OSError`` they are."""
    try:
        save_file(tensors, str(path))
    except SafetensorError as err:
        code = re.search(r"(?:code: |os error )(\d+)", str(err))  # 'I/O error: ... (os error 28)' and older forms
        number = int(code.group(1)) if code else errno.EIO
        raise OSError(number, os.strerror(number), str(path)) from None


def load(run_dir: Path) -> Checkpoint:
    """Read and verify a checkpoint; raises :class:`InputError` with the fix on any problem."""
    meta = _read_meta(run_dir)
    tensor_path = run_dir / TENSORS
    if not tensor_path.exists():
        raise InputError(f"checkpoint tensors missing: {tensor_path}; re-train or restore the file")
    if sha256_file(tensor_path) != meta.get("tensors_sha256"):
        raise InputError(f"checkpoint tensors are corrupt or do not belong to {META}: {tensor_path}")
    try:
        tensors = load_file(str(tensor_path))
        config = RunConfig.from_dict(meta["config"])
    except (SafetensorError, ConfigError) as e:
        raise InputError(f"checkpoint {run_dir} is corrupt ({e}); re-train or restore it") from e
    model_state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    optim_state = None
    if meta["optim_param_groups"]:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        optim_state = {"state": state, "param_groups": meta["optim_param_groups"]}
    aux_state = {k.removeprefix("aux."): v for k, v in tensors.items() if k.startswith("aux.")}
    return Checkpoint(config, meta["step"], model_state, optim_state, meta["log"], meta.get("extra", {}), aux_state)


def load_model(run_dir: Path, expected: RunConfig | None = None) -> tuple[DeepRx, Checkpoint]:
    """The trained model of a run folder, in eval mode.

    If ``expected`` is given, its model preset and link must match the checkpoint's; otherwise the
    checkpoint cannot be evaluated on that configuration's data.
    """
    ckpt = load(run_dir)
    cfg = ckpt.config
    if expected is not None:
        check_compatible(cfg, expected, keys=EVALUATION_MUST_MATCH)
    model = create_model(
        cfg.model, cfg.link.n_rx, cfg.link.bits_per_symbol, input_channels(cfg.features, cfg.link.n_rx)
    )
    check_weights(ckpt.model_state, model.state_dict(), cfg, run_dir)
    model.load_state_dict(ckpt.model_state)
    model.eval()
    return model, ckpt


def check_weights(
    saved: dict[str, torch.Tensor], wanted: dict[str, torch.Tensor], cfg: RunConfig, run_dir: Path
) -> None:
    """Raise one line if the saved tensors do not fit the model the config asks for, naming the preset
    (and input) whose shapes they do fit, instead of torch's list of every mismatched tensor."""
    if _shapes(saved) == _shapes(wanted):
        return
    from deeprx.config import FEATURES
    from deeprx.models.registry import list_models

    fits = [
        f"{name} with {features} input"
        for name in list_models()
        for features in FEATURES
        if _shapes(
            create_model(
                name, cfg.link.n_rx, cfg.link.bits_per_symbol, input_channels(features, cfg.link.n_rx)
            ).state_dict()
        )
        == _shapes(saved)
    ]
    holds = f"{fits[0]} weights" if fits else "weights of no known preset"
    raise InputError(
        f"checkpoint {run_dir} holds {holds}, but its config asks for {cfg.model} with {cfg.features} input; "
        "restore the matching checkpoint.json or re-train"
    )


def _shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def check_compatible(saved: RunConfig, wanted: RunConfig, keys: tuple[str, ...]) -> None:
    """Raise :class:`InputError` listing every dotted key whose value differs between two configs."""
    a, b = saved.to_dict(), wanted.to_dict()
    diffs = []
    for key in keys:
        va, vb = a, b
        for part in key.split("."):
            va, vb = va[part], vb[part]
        if va != vb:
            diffs.append(f"{key}: checkpoint has {va!r}, config has {vb!r}")
    if diffs:
        raise InputError(
            "checkpoint does not match the config (" + "; ".join(diffs) + "); its weights fix these: use the "
            "checkpoint's values"
        )
