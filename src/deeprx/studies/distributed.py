"""``deeprx reproduce --executor ray``: a study's trials as Ray tasks, this process the store's only writer.

1. **Plan.** The studies are walked once with a :class:`PlanningChain`, which records each piece of work (a
   trial, the baselines of a test set, the int8 version of a trial) with what it depends on, instead of
   running it. Work the store already holds is left out.
2. **Submit.** Each piece becomes one Ray task with its resource request (``cpus`` and ``gpus`` per task). A
   KD student's task takes its teacher's task's ``ObjectRef`` as an argument and an int8 version its
   source's, so Ray starts it once that result exists; no polling.
3. **Collect.** As tasks finish, this process writes their results to ``studies.sqlite`` (SQLite is not for
   concurrent writers, least of all on shared filesystems); the local pass of :func:`reproduce` then finds
   every trial done and assembles the report.

Files: a task writes its run folder to ``OUT/runs/<key>`` and reads test sets from ``OUT/testsets``, so
``OUT`` must be reachable at the same path from every worker (a shared filesystem on a cluster; the local
disk on one machine). The run folders are not uploaded by the driver because their checkpoints are what
lets an interrupted trial resume on whichever worker takes it next. The driver builds the test sets before
any task starts, so no two workers race to write one.

Failures: a task is retried once (``max_retries=1``, exceptions included); after that its error is recorded
(:meth:`Store.fail`), the tasks that depend on it fail with it, and the report lists them. A killed driver
loses no finished trial: each result is written as it arrives, and a re-run skips those and resumes the
unfinished trials from their checkpoints.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeprx.config import RunConfig, config_hash
from deeprx.io import InputError
from deeprx.link.testset import TestSet, testset_key
from deeprx.runs.layout import OutputLayout
from deeprx.runtime import CPU, THREADS_ENV, RunContext
from deeprx.studies.chain import Chain
from deeprx.studies.plan import StudyPlan
from deeprx.studies.quantized import qat_key
from deeprx.studies.runner import Trial, baselines_key
from deeprx.studies.store import Store
from deeprx.studies.trial_result import TrialRef, TrialResult
from deeprx.studies.walk import run_studies
from deeprx.train.trainer import train

RETRIES = 1  # a failed task runs once more before it is recorded as failed


@dataclass(frozen=True)
class Work:
    """One piece of a study's work: ``kind`` ``trial`` (train and evaluate ``trial``), ``baselines`` (the
    classical receivers on the test set of ``cfg``) or ``qat`` (``trial`` quantized for ``qat_steps``).
    ``depends_on``: keys of work whose results it needs first (a teacher, a source)."""

    key: str
    kind: str
    role: str
    cfg: RunConfig
    trial: Trial | None = None
    qat_steps: int = 0
    depends_on: tuple[str, ...] = ()


class PlanningChain(Chain):
    """A chain that records the work of a plan instead of running it (``work``, in the order asked for)."""

    def __init__(self, plan: StudyPlan, out: Path) -> None:
        # it computes nothing: the tasks resolve their own devices (:func:`execute`)
        super().__init__(plan, out, show_progress=False, trainer=train, ctx=RunContext(CPU))
        self.work: dict[str, Work] = {}

    def _add(self, work: Work) -> TrialRef:
        self.work.setdefault(work.key, work)
        return TrialRef(work.key)

    def run(self, study: str, trial: Trial, **label: Any) -> TrialRef:
        self.store.add_member(study, trial.key, label)
        teacher = Path(trial.cfg.kd.teacher) if trial.cfg.kd.teacher else None
        # a teacher trained by this study (its run folder under OUT/runs) comes first; shipped ones are files
        depends = (teacher.name,) if teacher is not None and OutputLayout(self.out).holds_run(teacher) else ()
        return self._add(Work(trial.key, "trial", trial.role, trial.cfg, trial, depends_on=depends))

    def baselines(self, dmrs_symbols: int) -> TrialRef:
        cfg = self.cfg(self.plan.student, dmrs_symbols)
        return self._add(Work(baselines_key(cfg), "baselines", "baselines", cfg))

    def quantize(self, source: Trial, source_result: TrialResult | TrialRef, role: str) -> TrialRef:
        key = qat_key(source, self.plan.qat_steps)
        self.store.add_member("qat", key, {"source": role})
        return self._add(Work(key, "qat", "qat", source.cfg, source, self.plan.qat_steps, (source.key,)))


def plan_work(plan: StudyPlan, out: Path) -> list[Work]:
    """The work of ``plan`` that the store in ``out`` does not hold yet, dependencies before dependents."""
    planning = PlanningChain(plan, out)
    try:
        run_studies(planning, plan)
        work = [w for w in planning.work.values() if planning.store.result(w.key) is None]
    finally:
        planning.store.close()
    pending, submitted = {w.key for w in work}, set()
    for w in work:  # an unfinished dependency must come first: its task is what the dependent waits for
        if any(k in pending and k not in submitted for k in w.depends_on):
            raise RuntimeError(f"{w.key} was planned before the work it depends on {w.depends_on}")
        submitted.add(w.key)
    return work


def execute(work: Work, out: str, board: Any, *dependencies: dict[str, Any]) -> dict[str, Any]:
    """Run one piece of work in a Ray worker and return its result as the store keeps it (the driver stores
    it; a dependency arrives the same way).

    Torch gets as many threads as the task's CPUs (``$DEEPRX_THREADS``), so tasks sharing a machine do not
    oversubscribe its cores; the worker process keeps one batch cache for every trial it runs.
    """
    import ray

    from deeprx.energy.processors import load_catalogue
    from deeprx.studies.quantized import execute_qat
    from deeprx.studies.runner import execute_baselines, execute_trial

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    os.environ[THREADS_ENV] = str(max(1, int(cpus)))
    folder = Path(out)
    ray.get(board.update.remote(work.key, "started", 0, 0))  # counted before the task can fail
    ctx = RunContext.resolve(work.cfg.device)  # this task's entry point: the device of the worker it landed on
    if work.kind == "baselines":
        return execute_baselines(work.cfg, folder, ctx, show_progress=False)
    assert work.trial is not None
    if work.kind == "qat":
        source = TrialResult.from_dict(dependencies[0])
        return execute_qat(work.trial, source, folder, work.qat_steps, show_progress=False).to_dict()

    def report(step: int, total: int, loss: float) -> None:
        board.update.remote(work.key, "training", step, total)

    trainer = functools.partial(train, batch_cache=_worker_batch_cache(), on_log=report)
    return execute_trial(work.trial, folder, load_catalogue(), ctx, show_progress=False, trainer=trainer).to_dict()


@functools.cache
def _worker_batch_cache() -> Any:
    from deeprx.link.batches import BatchCache
    from deeprx.studies.chain import BATCH_CACHE_BYTES

    return BatchCache(BATCH_CACHE_BYTES)


class Board:
    """A Ray actor the workers tell their progress: ``key -> (state, step, total)``, and how many times each
    task started (its first run and its retries)."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[str, int, int]] = {}
        self.starts: dict[str, int] = {}

    def update(self, key: str, state: str, step: int, total: int) -> None:
        self.state[key] = (state, step, total)
        if state == "started":
            self.starts[key] = self.starts.get(key, 0) + 1

    def read(self) -> dict[str, tuple[str, int, int]]:
        return dict(self.state)

    def attempts(self, key: str) -> int:
        return self.starts.get(key, 0)


def run_on_ray(
    plan: StudyPlan,
    out: Path,
    address: str | None = None,
    show_progress: bool = True,
    cpus_per_task: float = 1.0,
    gpus_per_task: float = 0.0,
) -> dict[str, str]:
    """Run every unfinished piece of ``plan``'s work as Ray tasks and store the results; the failures,
    ``{key: error}``. Connects to the Ray cluster at ``address`` (``auto``: the one ``ray start`` made on this
    machine), else starts a local one, unless Ray is already initialised (tests start their own)."""
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'ray[default]'") from None
    work = plan_work(plan, out)
    for cfg in {config_hash(testset_key(w.cfg)): w.cfg for w in work}.values():  # each test set once
        TestSet.ensure(cfg, OutputLayout(out).testsets, show_progress)
    started_here = not ray.is_initialized()
    if started_here:
        context = ray.init(address=address, log_to_driver=False)
        if show_progress and getattr(context, "dashboard_url", None):
            print(f"Ray dashboard: http://{context.dashboard_url}")
    board = ray.remote(num_cpus=0)(Board).remote()
    task = ray.remote(max_retries=RETRIES, retry_exceptions=True)(execute)
    store = Store(OutputLayout(out).store)
    try:
        refs: dict[str, Any] = {}
        for w in work:
            store.start(w.key, w.role, {"kind": w.kind, **w.cfg.to_dict()})
            # an unfinished dependency was submitted before (plan_work orders them); a finished one is a file
            deps = [refs[k] for k in w.depends_on if k in refs]
            if w.kind == "qat" and not deps:
                deps = [store.result(w.depends_on[0])]
            options = {"num_cpus": cpus_per_task, "num_gpus": gpus_per_task if w.kind != "baselines" else 0}
            refs[w.key] = task.options(**options, name=w.key).remote(w, str(out), board, *deps)
        return _collect(refs, store, board, show_progress)
    finally:
        store.close()
        if started_here:
            ray.shutdown()


def _collect(refs: dict[str, Any], store: Store, board: Any, show_progress: bool) -> dict[str, str]:
    """Store each task's result as it finishes (one progress line per running task); the failures."""
    import ray
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    keys = {ref: key for key, ref in refs.items()}
    pending, failures = list(refs.values()), {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not show_progress) as progress, _cancel_on_exit(pending):
        overall = progress.add_task("trials done", total=len(pending))
        lines: dict[str, Any] = {}
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in ready:
                key = keys[ref]
                try:
                    store.finish(key, ray.get(ref))
                except ray.exceptions.RayError as err:
                    failures[key] = str(err)
                    # 0 starts: it never ran (a task it depends on failed)
                    store.fail(key, str(err), ray.get(board.attempts.remote(key)))
                progress.advance(overall)
                if key in lines:
                    progress.remove_task(lines.pop(key))
            if show_progress:
                _draw(progress, lines, ray.get(board.read.remote()), {keys[r] for r in pending})
            elif not ready:
                time.sleep(0.1)
    return failures


@contextlib.contextmanager
def _cancel_on_exit(pending: list[Any]) -> Iterator[None]:
    """A driver stopped by an exception or Ctrl-C stops its tasks, as Ray does when a driver's process dies:
    no orphan keeps writing a run folder that the next run resumes (cancelling a finished task does nothing)."""
    import ray

    try:
        yield
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def _draw(progress: Any, lines: dict[str, Any], state: dict[str, tuple[str, int, int]], running: set[str]) -> None:
    for key, (what, step, total) in state.items():
        if key not in running:
            continue
        if key not in lines:
            lines[key] = progress.add_task(f"{key} {what}", total=total or None)
        progress.update(lines[key], description=f"{key} {what}", completed=step, total=total or None)
