"""The studies' receivers on the coded link: Fig. 6 and the KD comparisons in BLER.

A plan with ``coded`` overrides (an MCS, and an SINR grid fine enough for a waterfall) evaluates, per DMRS
setting, the receivers of Fig. 6 (teacher, shipped students, the KD and the scratch student) and, with 1 DMRS,
the KD students of the temperature, alpha and KD-variant studies, on the coded test set of the same channels:
every transport block is decoded by Sionna's TB decoder, the baselines' too. KD against scratch is then also a
gain in dB at BLER 10 % with its paired bootstrap interval, and each receiver's LLRs carry their BMD rate and
calibration counts, which say whether KD at a temperature gives better LLRs than scratch at the same uncoded BER.

Each receiver's coded curve is a store record of its own (key: its trial's and the coded test set's), so an
interrupted study resumes at the next receiver, and a finished study that gains a coded plan runs only these
evaluations. They run in the driver process for either executor: evaluations of stored checkpoints, no training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deeprx.config import RunConfig, config_hash
from deeprx.evaluate.ber import ALL_SLOTS, BerCurve, evaluate
from deeprx.evaluate.summary import summarize
from deeprx.link.coding import BP_ITERATIONS
from deeprx.link.testset import TestSet, testset_key
from deeprx.receivers import load_receiver
from deeprx.report.plots import link_title, plot_bler, plot_calibration
from deeprx.runs.layout import OutputLayout
from deeprx.runtime import RunContext
from deeprx.studies.chain import Chain
from deeprx.studies.figures import budget_label, fig6_receivers
from deeprx.studies.plan import StudyPlan
from deeprx.studies.results import compare
from deeprx.studies.runner import baseline_curves, result_folder
from deeprx.studies.store import Store
from deeprx.studies.trial_result import TrialResult


def coded_config(chain: Chain, dmrs_symbols: int) -> RunConfig:
    """The coded test set's configuration of one DMRS setting: the studies' own, with the plan's ``coded``."""
    return chain.cfg(chain.plan.student, dmrs_symbols).with_overrides(dict(chain.plan.coded))


def coded_key(trial_key: str, cfg: RunConfig) -> str:
    """The store key of a trial's curve on the coded test set of ``cfg``."""
    return f"coded-{trial_key}-{config_hash(testset_key(cfg))}"


def coded_curve(
    result: TrialResult, cfg: RunConfig, out: Path, store: Store, ctx: RunContext, show_progress: bool
) -> BerCurve:
    """``result``'s receiver on the coded test set of ``cfg``: from the store, or evaluated now and stored."""
    from deeprx.evaluation import weights_of

    key = coded_key(result.key, cfg)
    done = store.result(key)
    if done is None:
        store.start(key, "coded", testset_key(cfg))
        folder = result_folder(result, out)
        receiver = load_receiver(folder, ctx.device, weights_of(folder, cfg))[0]
        testset = TestSet.ensure(cfg, OutputLayout(out).testsets, show_progress)
        curve = evaluate({result.key: receiver}, testset, cfg.eval.batch_size, ALL_SLOTS, show_progress, ctx.device)
        done = {"key": key, "curve": curve[0].to_dict()}
        store.finish(key, done)
    return BerCurve.from_dict(done["curve"])


KdPair = tuple[str, str, TrialResult, TrialResult]  # (study, label, KD student, its scratch twin)


def coded_section(
    chain: Chain, curves: dict[int, dict[str, Any]], kd_pairs: list[KdPair], n_boot: int
) -> dict[int, dict[str, Any]]:
    """Per DMRS setting: every Fig. 6 receiver's coded curve and summary and KD against scratch (with the gain at
    BLER 10 %: :func:`deeprx.studies.results.compare`); with 1 DMRS also each of ``kd_pairs`` (the KD comparisons
    of the other studies) on the same coded slots."""
    plan, out = chain.plan, chain.out
    section: dict[int, dict[str, Any]] = {}
    for dmrs, c in curves.items():
        cfg = coded_config(chain, dmrs)

        def coded(result: TrialResult, label: str, cfg: RunConfig = cfg) -> BerCurve:
            curve = coded_curve(result, cfg, out, chain.store, chain.ctx, chain.show_progress)
            curve.receiver = label
            return curve

        named = [coded(r, label) for label, r in fig6_receivers(c)]  # teacher, shipped, KD, scratch
        kd, scratch = named[-2], named[-1]
        named += baseline_curves(cfg, out, chain.store, chain.ctx, chain.show_progress)
        target = plan.base.eval.target_ber
        section[dmrs] = {
            "link": _link_facts(cfg, named[0].tb_size),
            "receivers": [s.to_dict() for s in summarize(named, target, cfg.link.slot_duration_s)],
            "kd_vs_scratch": compare(kd, scratch, target, n_boot).to_dict(),
            "curves": [x.to_dict() for x in named],
            "kd_comparisons": [],
        }
        for study, label, result, twin in kd_pairs if dmrs == 1 else []:
            pair = compare(coded(result, label), coded(twin, budget_label("scratch", twin)), target, n_boot)
            section[dmrs]["kd_comparisons"].append({"study": study, "student": label, "kd_vs_scratch": pair.to_dict()})
    return section


def _link_facts(cfg: RunConfig, tb_size: int) -> dict[str, Any]:
    """What a coded section was measured on, for its report."""
    link, ev = cfg.link, cfg.eval
    return {"mcs_index": link.mcs_index, "mcs_table": link.mcs_table, "modulation": link.modulation,
            "tb_size": tb_size, "bp_iterations": BP_ITERATIONS, "sinr_start_db": ev.sinr_start_db,
            "sinr_stop_db": ev.sinr_stop_db, "sinr_step_db": ev.sinr_step_db,
            "slots_per_point": ev.slots_per_point}  # fmt: skip


def coded_figures(section: dict[int, dict[str, Any]], plan: StudyPlan, out: Path) -> list[str]:
    """Per DMRS setting: Fig. 6 in BLER and goodput, and the LLR calibration of its receivers."""
    figs = []
    for dmrs, entry in section.items():
        curves = [BerCurve.from_dict(c) for c in entry["curves"]]
        cfg = plan.base.with_overrides({**dict(plan.coded), "link.dmrs_symbols": dmrs})
        title = f"MCS {cfg.link.mcs_index} (table {cfg.link.mcs_table}): {link_title(cfg)}"
        figs += plot_bler(curves, out / f"fig6_bler_dmrs{dmrs}", title, cfg.link.slot_duration_s)
        figs += plot_calibration(curves, out / f"fig6_llr_calibration_dmrs{dmrs}", title)
    return [str(p) for p in figs]
