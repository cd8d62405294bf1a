"""Trials: train (from scratch or by distillation), evaluate on the shared test set, attach FLOPs and energy.

A trial's key is the hash of its resolved config (profile and device left out), so two studies that ask
for the same run share it, and a re-run finds it done in the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeprx.config import EvalConfig, KdConfig, RunConfig, TrainConfig, config_hash
from deeprx.energy.estimate import metric0_joules
from deeprx.energy.flops import slot_flops
from deeprx.energy.processors import Processor
from deeprx.evaluate.ber import ALL_SLOTS, BerCurve, evaluate
from deeprx.link.baselines import baseline_receivers
from deeprx.link.simulator import UplinkSimulator
from deeprx.link.testset import LINK_KEYED_ONLY_WHEN_SET, TestSet, testset_key
from deeprx.models.deeprx import count_parameters
from deeprx.receivers import load_receiver
from deeprx.runs import checkpoint, registry
from deeprx.runs.layout import OutputLayout
from deeprx.runs.reference import parse
from deeprx.runtime import RunContext
from deeprx.studies.store import Store
from deeprx.studies.trial_result import TrialResult
from deeprx.train.trainer import train

# Config fields added after trial keys existed: {section: {field: default}}; at their defaults they are left out
# of the key, so the trials of a store made before them keep their keys.
_KD_DEFAULTS, _TRAIN_DEFAULTS, _EVAL_DEFAULTS = KdConfig(), TrainConfig(), EvalConfig()
KEYED_ONLY_WHEN_SET: dict[str, dict[str, Any]] = {
    "kd": {f: getattr(_KD_DEFAULTS, f) for f in ("term", "mask", "confidence", "anneal", "sobolev_weight",
                                                  "sobolev_directions", "feature_weight")},
    "train": {f: getattr(_TRAIN_DEFAULTS, f) for f in ("validation_slots", "init_from")},
    "eval": {"delay_spread_ns": _EVAL_DEFAULTS.delay_spread_ns},
    "link": LINK_KEYED_ONLY_WHEN_SET,
}  # fmt: skip
SHIPPED_STUDENT = "shipped student"  # the role of a converged student a study evaluates, never trains


@dataclass(frozen=True)
class Trial:
    """One training run and its evaluation. ``role``: ``scratch``, ``teacher``, ``kd`` or :data:`SHIPPED_STUDENT`.

    ``shipped`` names a pretrained checkpoint (:mod:`deeprx.runs.registry`) that stands in for the training:
    the trial is evaluated, never trained, and its run folder is the shipped one.
    """

    cfg: RunConfig
    role: str
    shipped: str = ""

    @property
    def key(self) -> str:
        """Hash of the resolved config; a teacher counts by its own trial key, not by where its folder is,
        so an output folder can be moved (or shipped) and its trials still resume. Options added after the
        key scheme count only when set away from their defaults, so adding one keeps every key."""
        d = {k: v for k, v in self.cfg.to_dict().items() if k not in ("profile", "device")}
        if d["kd"]["teacher"]:
            d["kd"]["teacher"] = parse(d["kd"]["teacher"]).name
        for section, defaults in KEYED_ONLY_WHEN_SET.items():
            d[section] = {k: v for k, v in d[section].items() if k not in defaults or v != defaults[k]}
        return f"{self.cfg.model}-{config_hash(d)}"

    def run_dir(self, out: Path) -> Path:
        return registry.resolve(self.shipped) if self.shipped else OutputLayout(out).run(self.key)


def _energy(model: Any, cfg: RunConfig, processors: dict[str, Processor]) -> dict[str, Any]:
    """FLOPs per slot of the network and, as its own line, of its front end; metric-0 energy of both."""
    flops = slot_flops(model, cfg.features, cfg.link.n_subcarriers, cfg.link.n_data_re)
    return {
        "flops_per_slot": flops.network_conv,
        "all_flops_per_slot": flops.network,
        "front_end": cfg.features,
        "front_end_flops_per_slot": flops.front_end,
        "metric0_joules_per_slot": {k: metric0_joules(flops.total, p) for k, p in processors.items()},
    }


def train_trial(
    trial: Trial, out: Path, ctx: RunContext, show_progress: bool = True, trainer: Callable[..., Any] = train
) -> Path:
    """Train a trial to its steps (resuming its run folder) in ``ctx``, unless it is shipped or already there;
    its folder."""
    run_dir = trial.run_dir(out)
    if not trial.shipped and (checkpoint.saved_step(run_dir) or 0) < trial.cfg.train.steps:
        trainer(trial.cfg, run_dir, resume=True, show_progress=show_progress,
                description=f"{trial.role} {trial.cfg.model}", ctx=ctx)  # fmt: skip
    return run_dir


def run_trial(
    trial: Trial,
    out: Path,
    store: Store,
    processors: dict[str, Processor],
    ctx: RunContext,
    show_progress: bool = True,
    trainer: Callable[..., Any] = train,
) -> TrialResult:
    """Train (resuming), evaluate and store one trial in ``ctx``; a finished trial is read from the store
    instead."""
    done = store.result(trial.key)
    if done is not None:
        return TrialResult.from_dict(done)
    store.start(trial.key, trial.role, trial.cfg.to_dict())
    result = execute_trial(trial, out, processors, ctx, show_progress, trainer)
    store.finish(trial.key, result.to_dict())
    return result


def execute_trial(
    trial: Trial,
    out: Path,
    processors: dict[str, Processor],
    ctx: RunContext,
    show_progress: bool = True,
    trainer: Callable[..., Any] = train,
) -> TrialResult:
    """Train (resuming its run folder) and evaluate one trial on every test slot, in ``ctx``; its result, not
    stored (a worker of a distributed study runs this, and the driver alone writes the store)."""
    cfg = trial.cfg
    run_dir = train_trial(trial, out, ctx, show_progress, trainer)
    device = ctx.device
    receiver, ckpt = load_receiver(run_dir, device, expected=cfg)
    model = receiver.model
    testset = TestSet.ensure(cfg, OutputLayout(out).testsets, show_progress)
    curve = evaluate({trial.key: receiver}, testset, cfg.eval.batch_size, ALL_SLOTS, show_progress, device)[0]
    return TrialResult(
        key=trial.key,
        role=trial.role,
        shipped=registry.record(trial.shipped).to_dict() if trial.shipped else None,
        model=cfg.model,
        kd=cfg.kd.__dict__ if cfg.kd.teacher else None,
        dmrs_symbols=cfg.link.dmrs_symbols,
        parameters=count_parameters(model),
        trained_steps=ckpt.step,
        slots_seen=ckpt.step * cfg.train.batch_size,
        # slots behind the weights it started from (a fine-tuned shipped receiver): its budget label counts them
        init_from_slots_seen=int(ckpt.extra.get("init_from_slots_seen", 0)),
        # A shipped trial was not trained by this study: its training time is in its record, not here.
        train_seconds=None if trial.shipped else ckpt.extra.get("train_seconds"),
        testset=config_hash(testset_key(cfg)),
        curve=curve,
        geometric_mean_ber=curve.geometric_mean_ber(),
        sinr_at_target_db=curve.sinr_at_ber(cfg.eval.target_ber),
        ber_at_max_sinr=curve.ber[-1],
        validation_log=[r for r in ckpt.log if "val_ber" in r],
        **_energy(model, cfg, processors),
    )


def result_folder(result: TrialResult, out: Path) -> Path:
    """Where a result's checkpoint is: the shipped receiver's folder, or its trial's run folder in ``out``."""
    return registry.resolve(result.shipped["name"]) if result.shipped else OutputLayout(out).run(result.key)


def baselines_key(cfg: RunConfig) -> str:
    """The store key of the baselines on the test set of ``cfg``."""
    return f"baselines-{config_hash(testset_key(cfg))}"


def run_baselines(
    cfg: RunConfig, out: Path, store: Store, ctx: RunContext, show_progress: bool = True
) -> dict[str, Any]:
    """LS-LMMSE and perfect-CSI LMMSE on the test set of ``cfg`` (stored like a trial), run in ``ctx``."""
    key = baselines_key(cfg)
    done = store.result(key)
    if done is not None:
        return done
    store.start(key, "baselines", testset_key(cfg))
    result = execute_baselines(cfg, out, ctx, show_progress)
    store.finish(key, result)
    return result


def baseline_curves(cfg: RunConfig, out: Path, store: Store, ctx: RunContext, show_progress: bool) -> list[BerCurve]:
    """The baselines' curves on the test set of ``cfg``, from the store or run now (:func:`run_baselines`)."""
    baselines = run_baselines(cfg, out, store, ctx, show_progress)
    return [BerCurve.from_dict(c) for c in baselines["curves"].values()]


def execute_baselines(cfg: RunConfig, out: Path, ctx: RunContext, show_progress: bool = True) -> dict[str, Any]:
    """The baselines' curves on the test set of ``cfg``, run in ``ctx``, not stored."""
    testset = TestSet.ensure(cfg, OutputLayout(out).testsets, show_progress)
    device = ctx.device
    receivers = baseline_receivers(UplinkSimulator(cfg.link, device))
    curves = evaluate(receivers, testset, cfg.eval.batch_size, ALL_SLOTS, show_progress, device)
    return {"key": baselines_key(cfg), "curves": {c.receiver: c.to_dict() for c in curves}}
