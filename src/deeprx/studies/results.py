"""Typed results of ``deeprx reproduce``: one row per trial on the shared test set, KD-vs-scratch comparisons,
and the whole chain's results, each with ``to_dict``/``from_dict``.

``reproduce.json`` carries ``format`` (:data:`RESULTS_FORMAT`); format 1 (before it was typed) had the same
fields and no ``format`` key, and reads as format 2. The study store's records carry their own format
(:data:`deeprx.studies.store.RECORD_FORMAT`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deeprx.evaluate.ber import BerCurve, bootstrap, interval
from deeprx.evaluate.summary import BLER_TARGETS
from deeprx.studies.trial_result import TrialResult

RESULTS_FORMAT = 2
ENERGY_PROCESSOR = "host"  # the quality-vs-energy axis: metric 0 on the machine the run is on

Interval = tuple[float, float]


def _plain(value: Any) -> Any:
    """JSON-ready form: typed records through their ``to_dict``, containers element by element."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _interval(value: Any) -> Interval | None:
    return None if value is None else (float(value[0]), float(value[1]))


# Row fields every row has (kept in to_dict even when None: "not reached" is a measurement)
_ROW_MEASURED = ("model", "role", "key", "flops", "joules", "geo", "geo_ci", "sinr_at_target_db", "ber_at_max_sinr")


@dataclass(frozen=True)
class Row:
    """One trial on the shared test set, with its bootstrap interval, and what its study varied.

    Attributes:
        model, role, key: the trial (``role``: scratch, teacher or kd).
        flops: network FLOPs per slot; joules: metric-0 energy per slot on :data:`ENERGY_PROCESSOR`, J.
        geo, geo_ci: geometric-mean BER (log10) and its 95 % interval.
        sinr_at_target_db: SINR at the profile's target BER (``None``: not reached); ber_at_max_sinr: floor.
        diff_vs_scratch, diff_ci, p_better_than_scratch: this trial minus the same student from scratch
            (geo-mean, paired bootstrap), where compared.
        alpha, scaling, temperature, teacher, teacher_flops, teacher_row, variant: the study's variable, where set.
    """

    model: str
    role: str
    key: str
    flops: float
    joules: float
    geo: float
    geo_ci: Interval
    sinr_at_target_db: float | None
    ber_at_max_sinr: float
    diff_vs_scratch: float | None = None
    diff_ci: Interval | None = None
    p_better_than_scratch: float | None = None
    alpha: float | None = None
    scaling: str | None = None
    temperature: float | None = None
    teacher: str | None = None
    teacher_flops: float | None = None
    teacher_row: Row | None = None
    variant: str | None = None

    @classmethod
    def of(cls, result: TrialResult, samples: np.ndarray) -> Row:
        """The row of a trial's result; ``samples``: its bootstrap ``[n_boot, 2]`` (geo-mean, SINR)."""
        return cls(
            model=result.model,
            role=result.role,
            key=result.key,
            flops=result.flops_per_slot,
            joules=result.metric0_joules_per_slot[ENERGY_PROCESSOR],
            geo=result.geometric_mean_ber,
            geo_ci=interval(samples[:, 0]),
            sinr_at_target_db=result.sinr_at_target_db,
            ber_at_max_sinr=result.ber_at_max_sinr,
        )

    def to_dict(self) -> dict[str, Any]:
        """Every measured field, and the study's variables where that study set them."""
        return {
            f.name: _plain(v)
            for f in dataclasses.fields(self)
            if (v := getattr(self, f.name)) is not None or f.name in _ROW_MEASURED
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Row:
        teacher_row = d.get("teacher_row")
        return cls(**{
            **d,
            "geo_ci": _interval(d["geo_ci"]),
            "diff_ci": _interval(d.get("diff_ci")),
            "teacher_row": None if teacher_row is None else cls.from_dict(teacher_row),
        })  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """A KD student against the same student from scratch on the same slots (paired bootstrap).

    Attributes:
        geo_diff, geo_diff_ci: KD - scratch geometric-mean BER (log10; < 0: KD better) and its 95 % interval.
        p_kd_better: the share of resamples in which KD is better.
        gain_db, gain_db_ci: scratch - KD SINR at the target BER (> 0: KD better), ``None`` if either curve
            does not reach the target; the interval over the resamples in which both do.
        gain_reached_fraction: the share of resamples in which both reach the target.
        floor_kd, floor_scratch: BER at the highest SINR.
        target_bler, gain_at_bler_db, gain_at_bler_db_ci: on a coded test set, scratch - KD SINR at BLER
            ``target_bler`` (> 0: KD better; ``None`` if either curve does not reach it) and its interval from the
            same resamples; ``None`` (and left out of the record) on an uncoded one.
    """

    geo_diff: float
    geo_diff_ci: Interval
    p_kd_better: float
    gain_db: float | None
    gain_db_ci: Interval
    gain_reached_fraction: float
    floor_kd: float
    floor_scratch: float
    target_bler: float | None = None
    gain_at_bler_db: float | None = None
    gain_at_bler_db_ci: Interval | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.target_bler is None:  # an uncoded comparison's record reads as before the coded link
            del d["target_bler"], d["gain_at_bler_db"], d["gain_at_bler_db_ci"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Comparison:
        bler_ci = d.get("gain_at_bler_db_ci")
        return cls(**{**d, "geo_diff_ci": _interval(d["geo_diff_ci"]), "gain_db_ci": _interval(d["gain_db_ci"]),
                      **({"gain_at_bler_db_ci": _interval(bler_ci)} if bler_ci is not None else {})})  # fmt: skip


def compare(kd: BerCurve, scratch: BerCurve, target_ber: float, n_boot: int) -> Comparison:
    """KD vs scratch on the same slots: geo-mean difference and SINR gain at the target, with 95 % intervals."""
    a, b = dataclasses.replace(kd, receiver="kd"), dataclasses.replace(scratch, receiver="scratch")
    target_bler = BLER_TARGETS[0] if a.coded and b.coded else None
    boot = bootstrap([a, b], target_ber, n_boot, target_bler=target_bler)
    geo_diff = boot["kd"][:, 0] - boot["scratch"][:, 0]
    gain = boot["scratch"][:, 1] - boot["kd"][:, 1]
    both = a.sinr_at_ber(target_ber) is not None and b.sinr_at_ber(target_ber) is not None
    coded: dict[str, Any] = {}
    if target_bler is not None:
        at_a, at_b = a.sinr_at_bler(target_bler), b.sinr_at_bler(target_bler)
        coded = {"target_bler": target_bler,
                 "gain_at_bler_db": None if at_a is None or at_b is None else at_b - at_a,
                 "gain_at_bler_db_ci": interval(boot["scratch"][:, 2] - boot["kd"][:, 2])}  # fmt: skip
    return Comparison(
        geo_diff=a.geometric_mean_ber() - b.geometric_mean_ber(),
        geo_diff_ci=interval(geo_diff),
        p_kd_better=float(np.mean(geo_diff < 0)),
        gain_db=b.sinr_at_ber(target_ber) - a.sinr_at_ber(target_ber) if both else None,
        gain_db_ci=interval(gain),
        gain_reached_fraction=float(np.mean(np.isfinite(gain))),
        floor_kd=a.ber[-1],
        floor_scratch=b.ber[-1],
        **coded,
    )


@dataclass
class StudyResults:
    """Everything one ``deeprx reproduce`` produced, as ``reproduce.json`` holds it.

    The studies' rows are :class:`Row`; ``curves`` maps a DMRS setting to its Fig. 6 summary (receivers'
    numbers, the :class:`Comparison` of KD and scratch, the curves), ``coded`` the same on the coded link
    (:mod:`deeprx.studies.coded`, plain dicts; empty without one); ``teacher_quality`` holds the classical
    teacher probes; ``energy`` the counted, estimated and metered energy and the life cycles (each energy
    says its method); ``claims`` the table of the paper's claims beside ours.
    """

    profile: str
    plan: dict[str, Any]
    models: dict[str, Any] = field(default_factory=dict)
    size: list[Row] = field(default_factory=list)
    kd_headroom: Row | None = None
    alpha: list[Row] = field(default_factory=list)
    alpha_mean_scaling: Row | None = None
    temperature_scratch: dict[str, Row] = field(default_factory=dict)
    temperature: dict[str, list[Row]] = field(default_factory=dict)
    teacher: list[Row] = field(default_factory=list)
    teacher_quality: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[int, dict[str, Any]] = field(default_factory=dict)
    coded: dict[int, dict[str, Any]] = field(default_factory=dict)
    energy: dict[str, Any] = field(default_factory=dict)
    quality_vs_energy: list[Row] = field(default_factory=list)
    kd_variants: list[Row] = field(default_factory=list)
    hardware: list[Row] = field(default_factory=list)
    frontier: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    learning: dict[int, dict[str, Any]] = field(default_factory=dict)
    quantized: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    claims: list[dict[str, str]] = field(default_factory=list)
    seconds_this_run: float = 0.0
    train_seconds_all_trials: float = 0.0
    store: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        if self.alpha_mean_scaling is None:
            del d["alpha_mean_scaling"]  # the plan had no mean-scaling trial
        if not self.coded:
            del d["coded"]  # the plan had no coded evaluation
        return {"format": RESULTS_FORMAT, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyResults:
        """Read ``reproduce.json`` of format 1 or 2."""
        if d.get("format", 1) > RESULTS_FORMAT:
            raise ValueError(f"reproduce.json of format {d['format']}; this deeprx reads up to {RESULTS_FORMAT}")

        def rows(items: list[dict[str, Any]]) -> list[Row]:
            return [Row.from_dict(r) for r in items]

        def with_comparison(x: dict[str, Any]) -> dict[str, Any]:
            return {**x, "comparison": Comparison.from_dict(x["comparison"])}

        quality = [
            {**with_comparison(q), "network_teacher": with_comparison(q["network_teacher"])}
            for q in d.get("teacher_quality", [])
        ]
        mean = d.get("alpha_mean_scaling")
        headroom = d.get("kd_headroom")
        return cls(
            profile=d["profile"],
            plan=d["plan"],
            models=d.get("models", {}),
            size=rows(d["size"]),
            kd_headroom=None if headroom is None else Row.from_dict(headroom),
            alpha=rows(d["alpha"]),
            alpha_mean_scaling=None if mean is None else Row.from_dict(mean),
            temperature_scratch={s: Row.from_dict(r) for s, r in d["temperature_scratch"].items()},
            temperature={s: rows(rs) for s, rs in d["temperature"].items()},
            teacher=rows(d["teacher"]),
            teacher_quality=quality,
            curves={int(k): with_comparison(c) for k, c in d["curves"].items()},
            coded={int(k): c for k, c in d.get("coded", {}).items()},
            energy=d["energy"],
            quality_vs_energy=rows(d["quality_vs_energy"]),
            kd_variants=rows(d.get("kd_variants", [])),
            hardware=rows(d.get("hardware", [])),
            frontier=d.get("frontier", {}),
            learning={int(k): v for k, v in d.get("learning", {}).items()},
            quantized=d.get("quantized", {}),
            figures=d.get("figures", []),
            claims=d.get("claims", []),
            seconds_this_run=d.get("seconds_this_run", 0.0),
            train_seconds_all_trials=d.get("train_seconds_all_trials", 0.0),
            store=d.get("store", {}),
        )
