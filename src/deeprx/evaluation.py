"""Evaluations of trained receivers: a checkpoint on a test set beside the baselines (``deeprx evaluate``), on several
test-set seeds, on every case of a suite, two checkpoints compared on the same slots (``deeprx compare``), and
the evaluation a shipped receiver's record carries (``deeprx pretrained add``).

Every slot of a test set is counted (no early stop), and the baselines' curves are kept in the output folder's
store, so a second evaluation on the same test set reuses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deeprx.config import RunConfig, config_hash, load_profile
from deeprx.evaluate.ber import ALL_SLOTS, BerCurve, evaluate, ratio_at_max_sinr
from deeprx.evaluate.suites import Suite
from deeprx.evaluate.summary import summarize
from deeprx.evaluate.temperature import TemperatureFit, fit_temperatures, reusing_last, scaled, scaled_name
from deeprx.io import InputError
from deeprx.link.baselines import LS_LMMSE, PERFECT_CSI_LMMSE, baseline_receivers
from deeprx.link.simulator import UplinkSimulator
from deeprx.link.testset import TestSet, testset_key
from deeprx.receivers import Receiver, load_receiver
from deeprx.report.plots import link_title, plot_ber, plot_bler, plot_calibration
from deeprx.runs import checkpoint
from deeprx.runs.layout import OutputLayout
from deeprx.runtime import RunContext
from deeprx.studies.runner import baseline_curves
from deeprx.studies.store import Store

# What the weights of a checkpoint fix: a run from it takes them from the checkpoint, and refuses other values.
FIXED_BY_WEIGHTS = ("model", "features")


def evaluation_config(run_dir: Path, profile: str | None, overrides: dict[str, Any], device: str | None) -> RunConfig:
    """The configuration a checkpoint is evaluated (served, metered) with.

    The checkpoint's own link, test set and seed, or ``profile``'s; then ``overrides`` (any grid, speed, channel
    family, DMRS count, test-set seed); the model and input features its weights fix (another value is refused);
    and ``device`` (default ``auto``): where the checkpoint was trained is a fact of its record, not a setting of
    this run. n_rx and the modulation are checked against the checkpoint when the receiver is loaded.
    """
    saved = checkpoint.saved_config(run_dir)
    fixed = {key: getattr(saved, key) for key in FIXED_BY_WEIGHTS}
    for key, value in fixed.items():
        if key in overrides and overrides[key] != value:
            raise InputError(f"{run_dir} holds {key}={value!r} weights; {key}={overrides[key]!r} cannot be "
                             f"evaluated with them: drop --set {key}=... or train such a model")  # fmt: skip
    base = load_profile(profile) if profile else saved
    cfg = base.with_overrides({"device": "auto", **overrides, **fixed})
    return cfg if device is None else cfg.with_overrides({"device": device})


def evaluate_checkpoint(
    run_dir: Path,
    cfg: RunConfig,
    out: Path,
    ctx: RunContext,
    show_progress: bool = True,
    seeds: list[int] | None = None,
    held_out_seed: int | None = None,
) -> dict[str, Any]:
    """A checkpoint's BER curve on the test set of ``cfg`` beside the baselines (every slot counted, as in a
    trial), computed in ``ctx``, with the plot in ``out``.

    ``seeds``: the test-set seeds to evaluate on (default ``[cfg.seed]``); with several, the curves of the seeds
    are pooled (bits, errors and slots added up) and each seed's summary is kept beside the pooled one.
    ``held_out_seed``: the temperature fit of :func:`evaluate_checkpoints`.

    Returns ``{"seeds": [...], "curves": [...], "summary": [...], "per_seed": {seed: summary} (several seeds),
    "figures": [...], "temperature": {...} (with ``held_out_seed``)}``.
    """
    name = f"DeepRx ({checkpoint.saved_config(run_dir).model})"
    return evaluate_checkpoints({name: run_dir}, cfg, out, run_dir.name, ctx, show_progress, seeds, held_out_seed)


def evaluate_checkpoints(
    run_dirs: dict[str, Path],
    cfg: RunConfig,
    out: Path,
    title: str,
    ctx: RunContext,
    show_progress: bool = True,
    seeds: list[int] | None = None,
    held_out_seed: int | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_checkpoint` for several checkpoints (``{curve name: run folder}``) on the same slots.

    ``held_out_seed`` (a coded link only): every receiver's LLRs, the baselines' too, are temperature-scaled by
    the scale fitted on that test-set seed (:mod:`deeprx.evaluate.temperature`) and evaluated again on the same
    slots; ``data["temperature"]`` holds the fits, the scaled curves and their summaries.
    """
    seeds = seeds or [cfg.seed]
    if held_out_seed is not None:
        check_held_out(cfg, seeds, held_out_seed)
    device = ctx.device
    layout = OutputLayout(out)
    receivers = {
        name: load_receiver(run_dir, device, weights_of(run_dir, cfg))[0] for name, run_dir in run_dirs.items()
    }
    fits: dict[str, TemperatureFit] = {}
    scaled_receivers: dict[str, Receiver] = {}
    if held_out_seed is not None:
        held_out = TestSet.ensure(cfg.with_overrides({"seed": held_out_seed}), layout.testsets, show_progress)
        everyone = {**receivers, **baseline_receivers(UplinkSimulator(cfg.link, device))}
        fits = fit_temperatures(everyone, held_out, cfg.eval.batch_size, device, held_out_seed)
        # each network runs once per batch of test slots, for its curve and its scaled twin's
        receivers = {n: reusing_last(r) for n, r in receivers.items()}
        everyone |= receivers
        scaled_receivers = {scaled_name(n, f.scale): scaled(everyone[n], f.scale) for n, f in fits.items()}
    per_seed: dict[int, list[BerCurve]] = {}
    per_seed_scaled: dict[int, list[BerCurve]] = {}
    with Store(layout.store) as store:
        for seed in seeds:
            seeded = cfg.with_overrides({"seed": seed})
            testset = TestSet.ensure(seeded, layout.testsets, show_progress)
            both = evaluate({**receivers, **scaled_receivers}, testset, cfg.eval.batch_size, ALL_SLOTS,
                            show_progress, device)  # fmt: skip
            ours, per_seed_scaled[seed] = both[: len(receivers)], both[len(receivers) :]
            per_seed[seed] = [*ours, *baseline_curves(seeded, out, store, ctx, show_progress)]
    curves = _pooled(per_seed, seeds)
    slots = sum(len(c) for c in curves[0].slot_errors) // len(curves[0].sinr_db)
    title = f"{title}: {link_title(cfg)}\ntest-set seed(s) {', '.join(map(str, seeds))}, {slots} slots per point"
    scaled_curves = _pooled(per_seed_scaled, seeds) if scaled_receivers else []
    figures = plot_ber(curves, out / "ber_vs_sinr", title, cfg.eval.target_ber)
    if curves[0].coded:
        by_receiver = dict(zip(fits, scaled_curves, strict=True))  # evaluate() keeps the receivers' order
        figures += plot_bler(curves, out / "bler_vs_sinr", title, cfg.link.slot_duration_s, by_receiver)
        figures += plot_calibration(curves, out / "llr_calibration", title)
    slot_s = cfg.link.slot_duration_s
    data: dict[str, Any] = {
        "seeds": seeds,
        "curves": [c.to_dict() for c in curves],
        "summary": [row.to_dict() for row in summarize(curves, cfg.eval.target_ber, slot_s)],
        "figures": [str(p) for p in figures],
    }
    if fits:
        data["temperature"] = {
            "held_out_seed": held_out_seed,
            "fits": {n: {**f.to_dict(), "scaled_receiver": scaled_name(n, f.scale)} for n, f in fits.items()},
            "curves": [c.to_dict() for c in scaled_curves],
            "summary": [row.to_dict() for row in summarize(scaled_curves, cfg.eval.target_ber, slot_s)],
        }
    if len(seeds) > 1:
        data["per_seed"] = {s: [row.to_dict() for row in summarize(c, cfg.eval.target_ber, slot_s)]
                            for s, c in per_seed.items()}  # fmt: skip
    return data


def _pooled(per_seed: dict[int, list[BerCurve]], seeds: list[int]) -> list[BerCurve]:
    """The curves of one seed, or every receiver's curves pooled over ``seeds`` (bits, errors and slots added)."""
    first = per_seed[seeds[0]]
    if len(seeds) == 1:
        return first
    return [BerCurve.pooled([per_seed[s][i] for s in seeds]) for i in range(len(first))]


def check_held_out(cfg: RunConfig, seeds: list[int], held_out_seed: int) -> None:
    if cfg.link.mcs_index is None:
        raise InputError("a temperature fit is judged by its BLER, which needs a coded link: add "
                         "--set link.mcs_index=14 (or another MCS)")  # fmt: skip
    if held_out_seed in seeds:
        raise InputError(f"the held-out seed {held_out_seed} is also a test seed: fit the LLR scale on another "
                         "seed than --seeds")  # fmt: skip


def weights_of(run_dir: Path, cfg: RunConfig) -> RunConfig:
    """``cfg`` with the model and input features of the checkpoint in ``run_dir``: what its weights fix, on the
    link and test set ``cfg`` says (the network is fully convolutional)."""
    saved = checkpoint.saved_config(run_dir)
    return cfg.with_overrides({"model": saved.model, "features": saved.features})


COMPARE_BOOTSTRAP = 2000  # paired resamples over test slots behind every interval of ``deeprx compare``


def compare_checkpoints(
    named: dict[str, Path],
    cfg: RunConfig,
    out: Path,
    ctx: RunContext,
    show_progress: bool = True,
    seeds: list[int] | None = None,
    held_out_seed: int | None = None,
) -> dict[str, Any]:
    """Two checkpoints (``{name: run folder}``, A first) on the same test sets of ``cfg`` beside the baselines,
    and A - B: the geometric-mean difference and the SINR gain at the target BER, each with a 95 % paired
    bootstrap interval over the test slots (seeds pooled); on a coded link also the gain at BLER 10 %.
    ``held_out_seed``: the temperature fit of :func:`evaluate_checkpoints`.

    Returns :func:`evaluate_checkpoints`' dict with ``"a_minus_b"`` (:class:`deeprx.studies.results.Comparison`
    as a dict: ``geo_diff`` < 0 and ``gain_db`` > 0 when A is better).
    """
    from deeprx.studies.results import compare

    a, b = named
    data = evaluate_checkpoints(named, cfg, out, f"{a} vs {b}", ctx, show_progress, seeds, held_out_seed)
    curve = {c["receiver"]: BerCurve.from_dict(c) for c in data["curves"]}
    data["a_minus_b"] = compare(curve[a], curve[b], cfg.eval.target_ber, COMPARE_BOOTSTRAP).to_dict()
    return data


def evaluate_suite(
    run_dir: Path,
    cfg: RunConfig,
    suite: Suite,
    out: Path,
    ctx: RunContext,
    show_progress: bool = True,
    seeds: list[int] | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_checkpoint` on every case of ``suite`` (``cfg`` with the suite's and the case's overrides),
    each in ``out/<case slug>``.

    Returns ``{"suite": name, "seeds": [...], "cases": [{"case", "slug", "overrides", "summary", "figures"}]}``.
    """
    cases = []
    for case in suite.cases:
        case_cfg = cfg.with_overrides({**suite.common, **case.overrides})
        data = evaluate_checkpoint(run_dir, case_cfg, out / case.slug, ctx, show_progress, seeds)
        cases.append({"case": case.name, "slug": case.slug, "overrides": case.overrides, **data})
    return {"suite": suite.name, "seeds": seeds or [cfg.seed], "cases": cases}


def suite_rows(data: dict[str, Any], receiver: str) -> list[dict[str, Any]]:
    """Per case of a suite's result: the summary rows of ``receiver``, LS-LMMSE and perfect-CSI LMMSE, and
    ``receiver``'s BER at the highest SINR over LS-LMMSE's (zero errors counted as half an error)."""
    rows = []
    for case in data["cases"]:
        curves = {c["receiver"]: BerCurve.from_dict(c) for c in case["curves"]}
        by_name = {r["receiver"]: r for r in case["summary"]}
        rows.append({
            "case": case["case"],
            "receiver": by_name[receiver],
            "ls_lmmse": by_name[LS_LMMSE],
            "perfect_csi": by_name[PERFECT_CSI_LMMSE],
            "ratio_to_ls": ratio_at_max_sinr(curves[receiver], curves[LS_LMMSE]),
        })  # fmt: skip
    return rows


GOAL_BER = 1e-3  # the SINR at this BER is recorded beside the profile's target (issue 12's goal)


def evaluate_run(run_dir: Path, cache: Path, ctx: RunContext, show_progress: bool = True) -> dict[str, Any]:
    """BER vs SINR of a run's receiver and both classical baselines on its profile's test set (every slot).

    The test set is the one of the checkpoint's own link, evaluation settings and seed (built in ``cache``
    if missing), computed in ``ctx`` (the CLI's: the GPU where the machine has one).
    """
    cfg = checkpoint.load(run_dir).config.with_overrides({"device": "auto"})
    device = ctx.device
    receiver, _ = load_receiver(run_dir, device)
    testset = TestSet.ensure(cfg, cache, show_progress)
    receivers = {"DeepRx": receiver, **baseline_receivers(UplinkSimulator(cfg.link, device))}
    curves = evaluate(receivers, testset, cfg.eval.batch_size, ALL_SLOTS, show_progress, device)
    return {
        "testset": config_hash(testset_key(cfg)),
        "slots_per_point": testset.slots_per_point,
        "sinr_db": curves[0].sinr_db,
        "target_ber": cfg.eval.target_ber,
        "receivers": {
            c.receiver: {
                "ber": c.ber,
                "bit_errors": c.bit_errors,
                "bits": c.bits,
                "geometric_mean_ber": c.geometric_mean_ber(),
                "sinr_at_target_db": c.sinr_at_ber(cfg.eval.target_ber),
                f"sinr_at_{GOAL_BER:g}_db": c.sinr_at_ber(GOAL_BER),
            }
            for c in curves
        },
    }
