"""The trials of a study plan: built from the plan's base config, run through the store at most once each."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deeprx.energy.processors import load_catalogue
from deeprx.evaluate.ber import ALL_SLOTS
from deeprx.io import InputError
from deeprx.link.batches import BatchCache
from deeprx.runs import checkpoint, registry
from deeprx.runs.layout import OutputLayout
from deeprx.runs.reference import RefKind, parse
from deeprx.runtime import RunContext
from deeprx.studies.plan import StudyPlan
from deeprx.studies.quantized import qat_key, run_qat_trial
from deeprx.studies.runner import Trial, baselines_key, run_baselines, run_trial
from deeprx.studies.store import Store
from deeprx.studies.trial_result import TrialRef, TrialResult

BATCH_CACHE_BYTES = 6 * 2**30  # ~4,400 batches of 32 slots at 4 PRB; the paper grid's are ~6.5x larger


class Chain:
    """Builds the trials of a plan and runs them through the store (each at most once).

    :meth:`run`, :meth:`baselines` and :meth:`quantize` are the three kinds of work of a study; a chain that
    plans instead of running (:class:`deeprx.studies.distributed.PlanningChain`) overrides them.
    """

    def __init__(
        self,
        plan: StudyPlan,
        out: Path,
        show_progress: bool,
        trainer: Callable[..., Any],
        ctx: RunContext,
        run_missing: bool = True,
    ) -> None:
        self.plan, self.out, self.show_progress = plan, out, show_progress
        self.ctx = ctx  # every trial of the plan runs here (the plan's device, resolved by the entry point)
        # False: only read results (another executor ran the trials); a missing one comes back as failed
        self.run_missing = run_missing
        self.failed: dict[str, str] = {}  # key -> why: what a read-only chain could not find
        # Every trial of one DMRS setting trains on the same batch stream: simulate each batch once.
        self.batches = BatchCache(BATCH_CACHE_BYTES)
        self.trainer = functools.partial(trainer, batch_cache=self.batches)
        self.store = Store(OutputLayout(out).store)
        self.processors = load_catalogue()

    def cfg(self, model: str, dmrs_symbols: int = 1, steps: int | None = None, kd: dict[str, Any] | None = None):
        overrides: dict[str, Any] = {"model": model, "link.dmrs_symbols": dmrs_symbols}
        overrides["eval.target_bit_errors"] = ALL_SLOTS
        if steps is not None:
            overrides["train.steps"] = steps
        overrides.update(kd or {})
        return self.plan.base.with_overrides(overrides)

    def teacher(self, model: str, dmrs_symbols: int = 1) -> Trial:
        """The teacher ``model``: the name of a shipped checkpoint, or a preset, which is the plan's shipped
        teacher where the plan names one for this DMRS setting, else trained here for ``teacher_steps``."""
        if parse(model).kind is RefKind.SHIPPED:
            shipped: str | None = model
        else:
            shipped = dict(self.plan.shipped_teachers).get(dmrs_symbols) if model == self.plan.teacher else None
        if shipped is None:
            return Trial(self.cfg(model, dmrs_symbols, self.plan.teacher_steps), "teacher")
        return self.shipped(shipped, "teacher", dmrs_symbols)

    def shipped(self, name: str, role: str, dmrs_symbols: int) -> Trial:
        """The shipped checkpoint ``name`` as a trial of ``role``: evaluated on this chain's test set of
        ``dmrs_symbols`` DMRS symbols, never trained."""
        saved = checkpoint.saved_config(registry.resolve(name))
        if saved.link.dmrs_symbols != dmrs_symbols:
            raise InputError(f"{role} {name!r} was trained with {saved.link.dmrs_symbols} DMRS symbol(s), "
                             f"the study needs {dmrs_symbols}; name a shipped receiver of that setting")  # fmt: skip
        # The shipped run's own link, model and training; this chain's test set and device.
        cfg = dataclasses.replace(saved, profile=self.plan.base.profile, device=self.plan.base.device,
                                  eval=self.cfg(saved.model, dmrs_symbols).eval)  # fmt: skip
        return Trial(cfg, role, shipped=name)

    def scratch(self, model: str, dmrs_symbols: int = 1) -> Trial:
        return Trial(self.cfg(model, dmrs_symbols), "scratch")

    def kd(
        self,
        student: str,
        teacher: Trial | str,
        alpha: float,
        temperature: float,
        dmrs_symbols: int = 1,
        scaling: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> Trial:
        """A KD student of ``teacher``: a teacher trial, or a classical receiver (``CLASSICAL_TEACHERS``);
        ``options``: further ``kd.*`` overrides (a KD variant)."""
        kd = {
            "kd.teacher": teacher if isinstance(teacher, str) else teacher.shipped or str(teacher.run_dir(self.out)),
            "kd.alpha": alpha,
            "kd.temperature": temperature,
            "kd.scaling": scaling or self.plan.scaling,
            **(options or {}),
        }
        return Trial(self.cfg(student, dmrs_symbols, kd=kd), "kd")

    def run(self, study: str, trial: Trial, **label: Any) -> TrialResult | TrialRef:
        """The result of ``trial`` as a member of ``study``: stored, or run now (at most once)."""
        self.store.add_member(study, trial.key, label)
        if not self.run_missing:
            return self.stored(trial.key)
        return run_trial(trial, self.out, self.store, self.processors, self.ctx, self.show_progress, self.trainer)

    def baselines(self, dmrs_symbols: int) -> dict[str, Any] | TrialRef:
        """LS-LMMSE and perfect-CSI LMMSE on the test set of this DMRS setting."""
        cfg = self.cfg(self.plan.student, dmrs_symbols)
        if not self.run_missing:
            return self.store.result(baselines_key(cfg)) or self._missing(baselines_key(cfg))
        return run_baselines(cfg, self.out, self.store, self.ctx, self.show_progress)

    def quantize(self, source: Trial, source_result: TrialResult | TrialRef, role: str) -> TrialResult | TrialRef:
        """``source`` (whose result is ``source_result``) fine-tuned to int8 for the plan's ``qat_steps``."""
        key = qat_key(source, self.plan.qat_steps)
        self.store.add_member("qat", key, {"source": role})
        if not self.run_missing:
            return self.stored(key)
        assert isinstance(source_result, TrialResult)  # a running chain ran its source before
        return run_qat_trial(source, source_result, self.out, self.store, self.plan.qat_steps,
                             show_progress=self.show_progress)  # fmt: skip

    def stored(self, key: str) -> TrialResult | TrialRef:
        """A finished result from the store, or a :class:`TrialRef` to one that is not there (why: in
        :attr:`failed`)."""
        result = self.store.result(key)
        return self._missing(key) if result is None else TrialResult.from_dict(result)

    def _missing(self, key: str) -> TrialRef:
        self.failed.setdefault(key, self.store.failure(key) or "not run")
        return TrialRef(key)
