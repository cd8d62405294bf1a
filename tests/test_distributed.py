"""``reproduce --executor ray`` on a local Ray (2 CPUs): the same store as the local executor, resume after
a killed driver, and a failing trial retried once then reported."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ENERGY_WINDOW_S
from deeprx.config import RunConfig
from deeprx.studies.distributed import plan_work
from deeprx.studies.plan import StudyPlan
from deeprx.studies.reproduce import reproduce
from deeprx.studies.store import Store

ray = pytest.importorskip("ray")

# one local Ray for the module: its tests share an xdist worker (`--dist loadgroup`)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _plan(cfg: RunConfig) -> StudyPlan:
    """Per DMRS setting a trained teacher, a scratch and a KD student (the KD student waits for its teacher)."""
    return StudyPlan(
        base=cfg.with_overrides({"train.steps": 3, "train.checkpoint_every": 3, "eval.slots_per_point": 8}),
        teacher="deeprx_quarter_c32", teacher_steps=4, teachers=("deeprx_quarter_c32",),
        student="deeprx_eighth", students=("deeprx_eighth",), sizes=("deeprx_eighth",), alphas=(300.0,),
        temperatures=(3.0,), alpha=300.0, temperature=3.0, mean_scaling_alpha=None, classical_teachers=(), n_boot=20,
        energy_window_s=ENERGY_WINDOW_S,
    )  # fmt: skip


def _rows(out: Path) -> dict[str, tuple]:
    """Each finished trial's key -> (steps trained, bit errors per SINR point)."""
    db = sqlite3.connect(out / "studies.sqlite")
    rows = {}
    for key, result in db.execute("SELECT key, result FROM trials WHERE status = 'done'"):
        r = json.loads(result)
        rows[key] = (r.get("trained_steps"), r["curve"]["bit_errors"] if "curve" in r else sorted(r["curves"]))
    return rows


def test_ray_fills_the_store_as_the_local_executor_does(
    tiny_cfg: RunConfig, tmp_path: Path, local_ray: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(tiny_cfg)
    work = plan_work(plan, tmp_path / "ray")
    kinds = sorted(w.kind for w in work)
    assert kinds == ["baselines"] * 2 + ["trial"] * 6
    kd = [w for w in work if w.role == "kd"]
    assert all(len(w.depends_on) == 1 and w.depends_on[0].startswith("deeprx_quarter_c32-") for w in kd)
    # one thread per trial, as each Ray task gets for its 1 CPU: the same arithmetic, so the same numbers
    monkeypatch.setenv("DEEPRX_THREADS", "1")
    local = reproduce("quick", tmp_path / "local", show_progress=False, plan=plan)
    remote = reproduce("quick", tmp_path / "ray", show_progress=False, plan=plan, executor="ray")
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local")
    assert len(_rows(tmp_path / "ray")) == 8
    assert [r["geo"] for r in remote["size"]] == [r["geo"] for r in local["size"]]  # the same report numbers


def test_a_restarted_driver_repeats_no_finished_trial(
    tiny_cfg: RunConfig, tmp_path: Path, local_ray: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(tiny_cfg)
    finished: list[str] = []
    original = Store.finish

    def finish_then_die(self: Store, key: str, result: dict) -> None:
        original(self, key, result)
        finished.append(key)
        if len(finished) == 2:
            raise KeyboardInterrupt  # the driver is killed after its second stored result

    monkeypatch.setattr(Store, "finish", finish_then_die)
    with pytest.raises(KeyboardInterrupt):
        reproduce("quick", tmp_path, show_progress=False, plan=plan, executor="ray")
    monkeypatch.setattr(Store, "finish", original)
    stamps = dict(sqlite3.connect(tmp_path / "studies.sqlite").execute("SELECT key, updated FROM trials"))
    left = {w.key for w in plan_work(plan, tmp_path)}
    assert len(left) == 6 and not left & set(finished)
    reproduce("quick", tmp_path, show_progress=False, plan=plan, executor="ray")
    after = dict(sqlite3.connect(tmp_path / "studies.sqlite").execute("SELECT key, updated FROM trials"))
    assert all(after[k] == stamps[k] for k in finished)  # not run again
    assert len(_rows(tmp_path)) == 8


def test_a_failing_trial_is_retried_once_then_reported(tiny_cfg: RunConfig, tmp_path: Path, local_ray: None) -> None:
    plan = dataclasses.replace(_plan(tiny_cfg), sizes=("deeprx_eighth", "deeprx_quarter_c32"))
    broken = next(w for w in plan_work(plan, tmp_path) if w.trial and w.trial.cfg.model == "deeprx_quarter_c32"
                  and w.role == "scratch")  # fmt: skip
    folder = tmp_path / "runs" / broken.key
    folder.mkdir(parents=True)
    (folder / "checkpoint.json").write_text("{not json")  # a corrupt run folder: training it raises
    (folder / "checkpoint.safetensors").write_bytes(b"")
    results = reproduce("quick", tmp_path, show_progress=False, plan=plan, executor="ray")
    assert [f["key"] for f in results["failed"]] == [broken.key]
    with Store(tmp_path / "studies.sqlite") as store:
        record = store.failures()[broken.key]
    assert record["attempts"] == 2 and "corrupt" in record["error"]
    assert broken.key in (tmp_path / "report.md").read_text() and len(_rows(tmp_path)) == 8
