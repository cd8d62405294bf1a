"""The main job, one trial: test set -> train DeepRx (resuming) -> BER vs SINR beside the baselines -> plot + report.

``deeprx run`` is a one-trial use of the study runner (:mod:`deeprx.studies.runner`): the same trial key, run
folder, store (``OUT/studies.sqlite``) and evaluation as ``deeprx reproduce``, so the two commands on one
``--out`` share what they trained. ``deeprx evaluate`` scores any checkpoint the same way.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deeprx.config import RunConfig, load_profile
from deeprx.energy.processors import load_catalogue
from deeprx.evaluate.ber import (
    BerCurve,
    curve_summary,
    evaluate,
    high_sinr_cell,
    never_better,
    ratio_at_max_sinr,
    sinr_gain_db,
)
from deeprx.evaluate.suites import Suite
from deeprx.io import InputError, atomic_write, write_json
from deeprx.link.baselines import BASELINES, LS_LMMSE, PERFECT_CSI_LMMSE
from deeprx.link.testset import TestSet
from deeprx.receivers import load_receiver
from deeprx.report.plots import plot_ber
from deeprx.runtime import resolve_device
from deeprx.studies.runner import ALL_SLOTS, Trial, curve_of, run_baselines, run_trial
from deeprx.studies.store import Store
from deeprx.train import checkpoint


def summarize(curves: list[BerCurve], target_ber: float) -> list[dict[str, Any]]:
    """Per receiver: :func:`curve_summary` (geometric-mean BER, SINR at the target BER, BER at the highest SINR
    with its intervals), the gain over LS-LMMSE at the target, and the flag of a receiver never better than it."""
    ls = next((c for c in curves if c.receiver == LS_LMMSE), None)
    rows = []
    for c in curves:
        rows.append(
            {
                **curve_summary(c, target_ber),
                "gain_over_ls_db": None if ls is None or c is ls else sinr_gain_db(c, ls, target_ber),
                # a neural receiver that beats LS-LMMSE nowhere is flagged in every report
                "never_better_than_ls": bool(c.receiver not in BASELINES and ls and never_better(c, ls)),
            }
        )
    return rows


def channel_label(models: tuple[str, ...]) -> str:
    """Channel models, each family once: ``("CDL-A", "CDL-C", "UMi")`` -> ``CDL-A/C, UMi``."""
    families: dict[str, list[str]] = {}
    for m in models:
        family, _, variant = m.partition("-")
        families.setdefault(family, []).append(variant)
    return ", ".join(f"{f}-{'/'.join(v)}" if all(v) else f for f, v in families.items())


def link_title(cfg: RunConfig) -> str:
    """The evaluated link and test channels, for a figure's title."""
    link, ev = cfg.link, cfg.eval
    return (
        f"{link.modulation.upper()}, {link.n_prb} PRB, {link.n_rx} RX, {link.dmrs_symbols} DMRS symbol(s); "
        f"{channel_label(ev.channel_models)}, {ev.speed_mps[0]:g}-{ev.speed_mps[1]:g} m/s"
    )


def baseline_curves(cfg: RunConfig, out: Path, store: Store, show_progress: bool) -> list[BerCurve]:
    baselines = run_baselines(cfg, out, store, show_progress)
    return [BerCurve.from_dict(c) for c in baselines["curves"].values()]


def run(cfg: RunConfig, out: Path, show_progress: bool = True) -> dict[str, Any]:
    """Run the main job and write ``results.json``, ``report.md`` and ``ber_vs_sinr.{png,svg}`` to ``out``."""
    t0 = time.perf_counter()
    trial = Trial(cfg, "scratch")
    with Store(out / "studies.sqlite") as store:
        result = run_trial(trial, out, store, load_catalogue(), show_progress)
        curves = [curve_of(result, f"DeepRx ({cfg.model})"), *baseline_curves(cfg, out, store, show_progress)]
    figures = plot_ber(curves, out / "ber_vs_sinr", link_title(cfg), cfg.eval.target_ber)
    results = {
        "config": cfg.to_dict(),
        "model": {
            "preset": cfg.model,
            "parameters": result["parameters"],
            "flops_per_slot": result["flops_per_slot"],
            "flops_method": "counted per layer (deeprx.energy.flops), convolutions, FLOP = 2 x MAC",
            "trained_steps": result["trained_steps"],
            "train_seconds": result["train_seconds"],
            "run_dir": str(trial.run_dir(out)),
            "trial": trial.key,
        },
        "training_log": result["validation_log"],
        "curves": [c.to_dict() for c in curves],
        "summary": summarize(curves, cfg.eval.target_ber),
        "figures": [str(p) for p in figures],
        "seconds": time.perf_counter() - t0,
    }
    write_json(out / "results.json", results)
    atomic_write(out / "report.md", lambda p: p.write_text(render_report(results)))
    return results


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
    run_dir: Path, cfg: RunConfig, out: Path, show_progress: bool = True, seeds: list[int] | None = None
) -> dict[str, Any]:
    """A checkpoint's BER curve on the test set of ``cfg`` beside the baselines (every slot counted, as in a
    trial), with the plot in ``out``.

    ``seeds``: the test-set seeds to evaluate on (default ``[cfg.seed]``); with several, the curves of the seeds
    are pooled (bits, errors and slots added up) and each seed's summary is kept beside the pooled one.

    Returns ``{"seeds": [...], "curves": [...], "summary": [...], "per_seed": {seed: summary} (several seeds),
    "figures": [...]}``.
    """
    name = f"DeepRx ({checkpoint.saved_config(run_dir).model})"
    return evaluate_checkpoints({name: run_dir}, cfg, out, run_dir.name, show_progress, seeds)


def evaluate_checkpoints(
    run_dirs: dict[str, Path],
    cfg: RunConfig,
    out: Path,
    title: str,
    show_progress: bool = True,
    seeds: list[int] | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_checkpoint` for several checkpoints (``{curve name: run folder}``) on the same slots."""
    seeds = seeds or [cfg.seed]
    device = resolve_device(cfg.device)
    receivers = {
        name: load_receiver(run_dir, device, weights_of(run_dir, cfg))[0] for name, run_dir in run_dirs.items()
    }
    per_seed: dict[int, list[BerCurve]] = {}
    with Store(out / "studies.sqlite") as store:
        for seed in seeds:
            seeded = cfg.with_overrides({"seed": seed})
            testset = TestSet.ensure(seeded, out / "testsets", show_progress)
            ours = evaluate(receivers, testset, cfg.eval.batch_size, ALL_SLOTS, show_progress, device)
            per_seed[seed] = [*ours, *baseline_curves(seeded, out, store, show_progress)]
    first = per_seed[seeds[0]]
    curves = first if len(seeds) == 1 else [BerCurve.pooled([per_seed[s][i] for s in seeds]) for i in range(len(first))]
    slots = sum(len(c) for c in curves[0].slot_errors) // len(curves[0].sinr_db)
    title = f"{title}: {link_title(cfg)}\ntest-set seed(s) {', '.join(map(str, seeds))}, {slots} slots per point"
    figures = plot_ber(curves, out / "ber_vs_sinr", title, cfg.eval.target_ber)
    data: dict[str, Any] = {
        "seeds": seeds,
        "curves": [c.to_dict() for c in curves],
        "summary": summarize(curves, cfg.eval.target_ber),
        "figures": [str(p) for p in figures],
    }
    if len(seeds) > 1:
        data["per_seed"] = {s: summarize(c, cfg.eval.target_ber) for s, c in per_seed.items()}
    return data


def weights_of(run_dir: Path, cfg: RunConfig) -> RunConfig:
    """``cfg`` with the model and input features of the checkpoint in ``run_dir``: what its weights fix, on the
    link and test set ``cfg`` says (the network is fully convolutional)."""
    saved = checkpoint.saved_config(run_dir)
    return cfg.with_overrides({"model": saved.model, "features": saved.features})


COMPARE_BOOTSTRAP = 2000  # paired resamples over test slots behind every interval of ``deeprx compare``


def compare_checkpoints(
    named: dict[str, Path], cfg: RunConfig, out: Path, show_progress: bool = True, seeds: list[int] | None = None
) -> dict[str, Any]:
    """Two checkpoints (``{name: run folder}``, A first) on the same test sets of ``cfg`` beside the baselines,
    and A - B: the geometric-mean difference and the SINR gain at the target BER, each with a 95 % paired
    bootstrap interval over the test slots (seeds pooled).

    Returns :func:`evaluate_checkpoints`' dict with ``"a_minus_b"`` (:class:`deeprx.studies.results.Comparison`
    as a dict: ``geo_diff`` < 0 and ``gain_db`` > 0 when A is better).
    """
    from deeprx.studies.results import compare

    a, b = named
    data = evaluate_checkpoints(named, cfg, out, f"{a} vs {b}", show_progress, seeds)
    curve = {c["receiver"]: {"curve": c} for c in data["curves"]}
    data["a_minus_b"] = compare(curve[a], curve[b], cfg.eval.target_ber, COMPARE_BOOTSTRAP).to_dict()
    return data


def evaluate_suite(
    run_dir: Path, cfg: RunConfig, suite: Suite, out: Path, show_progress: bool = True, seeds: list[int] | None = None
) -> dict[str, Any]:
    """:func:`evaluate_checkpoint` on every case of ``suite`` (``cfg`` with the suite's and the case's overrides),
    each in ``out/<case slug>``.

    Returns ``{"suite": name, "seeds": [...], "cases": [{"case", "slug", "overrides", "summary", "figures"}]}``.
    """
    cases = []
    for case in suite.cases:
        case_cfg = cfg.with_overrides({**suite.common, **case.overrides})
        data = evaluate_checkpoint(run_dir, case_cfg, out / case.slug, show_progress, seeds)
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


def _fmt(v: float | None, spec: str, none: str = "not reached") -> str:
    return none if v is None else format(v, spec)


def render_report(results: dict[str, Any]) -> str:
    cfg, m = results["config"], results["model"]
    link, ev = cfg["link"], cfg["eval"]
    lines = [
        "# DeepRx vs classical receivers",
        "",
        f"Profile `{cfg['profile']}`, seed {cfg['seed']}. {link['modulation'].upper()}, {link['n_prb']} PRB "
        f"({12 * link['n_prb']} subcarriers), {link['n_rx']} RX, {link['dmrs_symbols']} DMRS symbol(s), "
        f"{link['subcarrier_spacing_khz']} kHz.",
        f"Training channels {', '.join(link['channel_models'])}; test channels {', '.join(ev['channel_models'])}, "
        f"UE speed {ev['speed_mps'][0]:g}-{ev['speed_mps'][1]:g} m/s, {ev['slots_per_point']} slots per SINR point.",
        "",
        f"Model `{m['preset']}`: {m['parameters']:,} parameters, {m['flops_per_slot'] / 1e9:.3f} GFLOP per slot "
        f"({m['flops_method']}), trained {m['trained_steps']} steps.",
        "",
        f"| receiver | geometric-mean BER (log10) | SINR at BER {ev['target_ber']:g} [dB] | BER at "
        f"{ev['sinr_stop_db']:g} dB [95 % CI over slots] (slots with errors) | gain over LS-LMMSE [dB] |",
        "|---|---|---|---|---|",
    ]
    for row in results["summary"]:
        lines.append(
            f"| {row['receiver']} | {row['geometric_mean_ber']:.3f} | {_fmt(row['sinr_at_target_db'], '.2f')} | "
            f"{high_sinr_cell(row)} | {_fmt(row['gain_over_ls_db'], '+.2f', '-')} |"
        )
    lines += [
        "",
        *(
            f"**Flag: {row['receiver']} is no better than LS-LMMSE at any SINR point** (broken or under-trained)."
            for row in results["summary"]
            if row.get("never_better_than_ls")
        ),
        "",
        "Zero-error points count as half an error (BER = 0.5 / bits) in the geometric mean.",
        "",
        "![BER vs SINR](ber_vs_sinr.png)",
        "",
    ]
    return "\n".join(lines)
