"""Training loop: data simulated on the fly, masked BCE, AdamW with warm-up and decay, checkpoints, resume.

Each step's batch is drawn with ``derive_seed(seed, "train", step)``, so a resumed run sees exactly the
batches an uninterrupted run would have seen. At every checkpoint the model is also scored on a small
fixed validation set beside LS-LMMSE, so a run's log shows when (if ever) DeepRx passes the baseline.
Under ``torchrun`` the processes train one network data-parallel, each drawing its share of every batch
with a rank-derived seed (:mod:`deeprx.train.ddp`). Rank 0 also writes TensorBoard event files into the run
folder (:class:`TensorBoardLog`), so ``tensorboard --logdir OUT`` shows every run and trial below ``OUT``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deeprx.config import RunConfig, TrainConfig, derive_seed, input_channels
from deeprx.evaluate.validation import ValidationSet
from deeprx.io import InputError
from deeprx.link.batches import BatchCache
from deeprx.link.simulator import Slot, UplinkSimulator
from deeprx.models.deeprx import DeepRx
from deeprx.models.registry import create_model
from deeprx.receivers import FrontEnd, NeuralReceiver, initialise
from deeprx.runs import checkpoint
from deeprx.runtime import RunContext, autocast, bf16_supported, use_all_cores
from deeprx.train import ddp
from deeprx.train.board import TensorBoardLog
from deeprx.train.losses import masked_bce

# Loss function of a training step: (receiver being trained, slot on device) -> scalar loss. KD plugs in here.
LossFn = Callable[[NeuralReceiver, Slot], torch.Tensor]
# The loss is read back from the device (a synchronisation) once every this many steps.
SYNC_EVERY = 10


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Learning rate at ``step`` (0-based).

    ``onecycle``: linear warm-up from ``lr/25`` to ``lr``, then cosine decay to ``lr/1e4``.
    ``cosine``: linear warm-up from 0 to ``lr``, then cosine decay to 0.
    """
    warmup = max(1, int(cfg.warmup_fraction * cfg.steps))
    start, end = (cfg.lr / 25, cfg.lr / 1e4) if cfg.schedule == "onecycle" else (0.0, 0.0)
    if step < warmup:
        return start + (cfg.lr - start) * (step + 1) / warmup
    progress = (step - warmup) / max(1, cfg.steps - warmup)
    return end + (cfg.lr - end) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(cfg: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW (torch's) or LAMB (pytorch-optimizer's, the DeepRx paper's choice), at ``cfg.lr``."""
    if cfg.optimizer == "lamb":
        from pytorch_optimizer import Lamb

        return Lamb(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def auxiliary_of(loss_fn: LossFn) -> torch.nn.Module | None:
    """The modules a loss trains beside the network (its ``auxiliary``: feature-KD adapters), if any."""
    return getattr(loss_fn, "auxiliary", None)


def bce_loss(receiver: NeuralReceiver, slot: Slot) -> torch.Tensor:
    return masked_bce(receiver.logits(slot), slot.bits)


@dataclass
class TrainingStep:
    """The trainer's optimisation step: the loss (masked BCE, or distillation), backward, gradient clipping and
    the optimiser's update of ``params`` (the network's and the loss's own), in the run's precision.
    :func:`step_workload` meters this same object.

    Called with a slot batch on the model's device, it returns the loss (on the device, not read back).
    """

    receiver: NeuralReceiver
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn
    grad_clip: float
    use_bf16: bool
    params: list[torch.nn.Parameter]

    def __call__(self, slot: Slot) -> torch.Tensor:
        with autocast(slot.device, self.use_bf16):
            loss = self.loss_fn(self.receiver, slot)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        return loss.detach()


def build_model(cfg: RunConfig, device: torch.device, facts: dict[str, Any] | None = None) -> DeepRx:
    """The run's fresh network (seeded from ``cfg.seed``, or cut from ``cfg.train.init_from``'s) on ``device``, in
    the layout the config asks for; where it was cut from goes into ``facts`` when given."""
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    in_channels = input_channels(cfg.features, cfg.link.n_rx)
    model = initialise(create_model(cfg.model, cfg.link.n_rx, cfg.link.bits_per_symbol, in_channels), cfg.features)
    if cfg.train.init_from:
        source_facts = init_from_checkpoint(cfg, model)
        if facts is not None:
            facts |= source_facts
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if cfg.train.channels_last else model


def init_from_checkpoint(cfg: RunConfig, model: DeepRx) -> dict[str, Any]:
    """Overwrite ``model`` with ``cfg.train.init_from``'s network pruned to its widths; the facts to record."""
    from deeprx.io import sha256_file
    from deeprx.runs.reference import trained_folder
    from deeprx.train.prune import PruneError, prune_into

    name = cfg.train.init_from
    source = trained_folder(name, "train.init_from")
    teacher, ckpt = checkpoint.load_model(source)
    checkpoint.check_compatible(ckpt.config, cfg, ("features", "link.n_rx", "link.modulation"))
    try:
        prune_into(teacher, model)
    except PruneError as e:
        raise InputError(f"train.init_from={name!r} ({ckpt.config.model}) cannot initialise {cfg.model}: {e}") from None
    # the same widths keep every channel: a fine-tune, not a cut
    same = teacher.config == model.config
    criterion = "every channel (same widths)" if same else "BatchNorm |gamma| of the reading layers (network slimming)"
    return {"init_from_model": ckpt.config.model, "init_from_sha256": sha256_file(source / checkpoint.TENSORS),
            "init_criterion": criterion, "init_from_slots_seen": prior_slots_seen(ckpt)}  # fmt: skip


def prior_slots_seen(ckpt: checkpoint.Checkpoint) -> int:
    """The training slots behind a checkpoint's weights: its own steps x batch and those of the checkpoint it was
    initialised from (``init_from_slots_seen``, recorded by :func:`init_from_checkpoint`), so a fine-tuned
    network is labelled with everything it learned from, not only its fine-tune."""
    return ckpt.step * ckpt.config.train.batch_size + int(ckpt.extra.get("init_from_slots_seen", 0))


def build_step(
    cfg: RunConfig,
    model: DeepRx,
    simulator: UplinkSimulator,
    loss_fn: LossFn | None = None,
    batch_cache: BatchCache | None = None,
) -> tuple[TrainingStep, dict[str, Any]]:
    """The run's training step for ``model`` and the facts of its teacher (empty without KD).

    The loss is ``loss_fn`` if given, else the distillation loss when ``cfg.kd.teacher`` names a teacher (which
    shares ``simulator``, and keeps its outputs in ``batch_cache`` when given), else masked BCE.
    """
    facts: dict[str, Any] = {}
    if loss_fn is None and cfg.kd.teacher:
        from deeprx.train.distill import distillation_loss

        loss_fn, facts = distillation_loss(cfg, simulator, batch_cache.derived if batch_cache else None)
    receiver = NeuralReceiver(model, FrontEnd(simulator, cfg.features))
    use_bf16 = cfg.train.bf16 and bf16_supported(simulator.device)
    loss_fn = loss_fn or bce_loss
    auxiliary = auxiliary_of(loss_fn)
    params = [*model.parameters(), *(auxiliary.parameters() if auxiliary is not None else ())]
    step = TrainingStep(receiver, make_optimizer(cfg.train, params), loss_fn, cfg.train.grad_clip, use_bf16, params)
    return step, facts


@dataclass
class TrainResult:
    """Outcome of :func:`train`: final step, seconds spent in this call, and the run's full log."""

    run_dir: Path
    step: int
    seconds: float
    log: list[dict[str, Any]]
    verdict: str = ""


def train(
    cfg: RunConfig,
    run_dir: Path,
    resume: bool = False,
    show_progress: bool = True,
    loss_fn: LossFn | None = None,
    extra: dict[str, Any] | None = None,
    description: str = "train",
    batch_cache: BatchCache | None = None,
    on_log: Callable[[int, int, float], None] | None = None,
    ctx: RunContext | None = None,
) -> TrainResult:
    """Train ``cfg.model`` on simulated slots, writing checkpoints to ``run_dir``.

    Args:
        cfg: the run configuration.
        run_dir: folder for ``checkpoint.safetensors`` and ``checkpoint.json``.
        resume: continue from the checkpoint in ``run_dir`` (the config must match it, except that
            ``train.steps`` may grow). Without it an existing checkpoint is an error, never overwritten.
        show_progress: draw a rich progress bar with loss and slots/s.
        loss_fn: the step's loss; by default masked BCE, or the distillation loss of paper eq. (2) when
            ``cfg.kd.teacher`` names a teacher checkpoint.
        extra: JSON-serialisable facts stored in the checkpoint (e.g. the teacher of a KD run).
        description: label of the progress bar.
        batch_cache: training batches shared with other runs of this process (a study's trials).
        on_log: called at every log point with ``(step, total steps, running loss)``: progress for a caller
            that draws its own (a distributed study's driver).
        ctx: the device and ranks of the run (default: ``cfg.device`` resolved, the environment's ranks).
    """
    use_all_cores()
    ctx = ctx or RunContext.resolve(cfg.device)  # one process, or one of torchrun's (train/ddp.py)
    ranks, device = ctx.ranks, ctx.device
    joined = ddp.start(ctx)
    share = ranks.share(cfg.train.batch_size)
    init_facts: dict[str, Any] = {}
    model = build_model(cfg, device, init_facts)
    # one simulator for the training batches, the front end, the teacher and the validation set
    simulator = UplinkSimulator(cfg.link, device)
    step_fn, teacher_facts = build_step(cfg, model, simulator, loss_fn, batch_cache)
    optimizer = step_fn.optimizer
    receiver = NeuralReceiver(model, step_fn.receiver.front_end)  # the plain network: validation, on rank 0
    auxiliary = auxiliary_of(step_fn.loss_fn)
    if ranks.distributed and auxiliary is not None:  # DDP would not average the auxiliary modules' gradients
        raise InputError("feature KD (kd.feature_weight > 0) trains in one process; run it without torchrun")
    if ranks.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        # buffers synced once at the start, not in every forward: rank 0 validates alone, and a sync in its
        # forward would wait for the others
        step_fn.receiver.model = DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)
    start, log, seconds_before = 0, [], 0.0
    loss_ema: float | None = None
    saved_step: int | None = None
    extra = {**(extra or {}), **teacher_facts, **init_facts}
    if checkpoint.exists(run_dir):
        if not resume:
            raise InputError(
                f"{run_dir} already holds a checkpoint; pass --resume to continue it or choose another --out"
            )
        ckpt = checkpoint.load(run_dir)
        # The teacher may have moved with its output folder: it is checked by its tensor hash below.
        allowed = {"train.steps", "train.checkpoint_every", "train.validation_slots", "profile", "device", "kd.teacher"}
        keys = tuple(k for k in _dotted_keys(cfg.to_dict()) if k not in allowed)
        checkpoint.check_compatible(ckpt.config, cfg, keys)
        checkpoint.check_weights(ckpt.model_state, model.state_dict(), cfg, run_dir)
        model.load_state_dict(ckpt.model_state)
        if auxiliary is not None:
            auxiliary.load_state_dict(ckpt.aux_state)
        if ckpt.optim_state is not None:
            optimizer.load_state_dict(ckpt.optim_state)
        if ckpt.extra.get("teacher_sha256") != extra.get("teacher_sha256"):
            raise InputError(f"{run_dir} was distilled from another teacher checkpoint; use another --out")
        start, log = ckpt.step, ckpt.log
        seconds_before = float(ckpt.extra.get("train_seconds", 0.0))
        loss_ema = ckpt.extra.get("loss_ema")  # the logged loss goes on averaging where it stopped
        saved_step = ckpt.step
    validation = ValidationSet.build(cfg, simulator) if ranks.main else None
    board = TensorBoardLog(run_dir, start) if ranks.main else None

    def save(step: int) -> None:
        assert validation is not None and board is not None  # rank 0 alone validates and writes
        row = {
            "step": step,
            "val_sinr_db": validation.sinr_db,
            "val_ber": validation.score(receiver),
            "val_ls_ber": validation.ls_ber,
        }
        log.append(row)
        board.validation(step, row["val_sinr_db"], row["val_ber"], row["val_ls_ber"])
        facts = {
            "bf16": step_fn.use_bf16,
            "device": str(device),
            "train_seconds": seconds_before + time.perf_counter() - t0,
            "loss_ema": loss_ema,
            **extra,
        }
        aux_state = auxiliary.state_dict() if auxiliary is not None else {}
        nonlocal saved_step
        try:
            checkpoint.save(
                run_dir,
                checkpoint.Checkpoint(cfg, step, model.state_dict(), optimizer.state_dict(), log, facts, aux_state),
            )
        except OSError as err:  # disk full, folder gone read-only: say where the last good checkpoint is
            kept = "no checkpoint was written" if saved_step is None else f"the step-{saved_step} checkpoint is intact"
            raise InputError(
                f"cannot write the step-{step} checkpoint in {run_dir} ({err.strerror or err}); {kept}; "
                "free space or fix the folder, then re-run with --resume"
            ) from None
        saved_step = step

    draw = UplinkSimulator.sample if batch_cache is None else batch_cache.sample
    t0 = time.perf_counter()
    model.train()
    with _progress(show_progress and ranks.main) as progress, contextlib.ExitStack() as closing:
        if board is not None:
            closing.callback(board.close)
        task = progress.add_task(description, total=cfg.train.steps, completed=start, loss=float("nan"), rate=0.0)
        window_start, window_slots = time.perf_counter(), 0
        pending: list[torch.Tensor] = []  # losses not read back yet: reading one waits for the device
        for step in range(start, cfg.train.steps):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg.train, step)
            if hasattr(step_fn.loss_fn, "set_step"):  # a loss with a schedule (teacher annealing, Sobolev draws)
                step_fn.loss_fn.set_step(step)
            slot = draw(simulator, share, ranks.batch_seed(cfg.seed, step))
            pending.append(step_fn(slot))
            window_slots += cfg.train.batch_size  # every rank's share
            log_now = (step + 1) % max(1, cfg.train.steps // 200) == 0
            save_now = (step + 1) % cfg.train.checkpoint_every == 0 or step + 1 == cfg.train.steps
            if len(pending) < SYNC_EVERY and not (log_now or save_now):
                progress.update(task, advance=1)
                continue
            for i, value in enumerate(ddp.mean_over_ranks(torch.stack(pending).float()).tolist()):
                if not math.isfinite(value):
                    bad_step = step + 1 - len(pending) + i
                    raise InputError(f"training diverged at step {bad_step} (loss {value}); lower train.lr")
                loss_ema = value if loss_ema is None else 0.95 * loss_ema + 0.05 * value
            pending.clear()
            rate = window_slots / (time.perf_counter() - window_start)
            progress.update(task, advance=1, loss=loss_ema, rate=rate)
            if log_now:
                lr = learning_rate(cfg.train, step)
                log.append({"step": step + 1, "loss": loss_ema, "lr": lr, "slots_per_s": rate})
                if board is not None:
                    board.train(step + 1, loss_ema, lr, rate)
                if on_log is not None:
                    on_log(step + 1, cfg.train.steps, loss_ema)
            if save_now:
                if ranks.main:
                    save(step + 1)
                window_start, window_slots = time.perf_counter(), 0
        if start >= cfg.train.steps and not checkpoint.exists(run_dir) and ranks.main:
            save(start)
    if joined:
        step_fn.receiver.model = model  # the DDP wrapper goes before its process group (else its teardown hangs)
        ddp.stop()
    scored = [r for r in log if "val_ber" in r]
    verdict = validation.verdict(scored[-1]["val_ber"]) if scored and validation else ""
    return TrainResult(run_dir, max(start, cfg.train.steps), time.perf_counter() - t0, log, verdict)


def _dotted_keys(d: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in d.items():
        keys += _dotted_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return keys


def _progress(enabled: bool):  # -> rich.progress.Progress
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TextColumn("{task.fields[rate]:.1f} slots/s"),
        TimeRemainingColumn(),
        disable=not enabled,
    )
