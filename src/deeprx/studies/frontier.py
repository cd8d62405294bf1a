"""The decision a user makes: quality against energy per slot for every model of a study, per processor.

A *candidate* is a trained model of the studies (one trial on the shared 1-DMRS test set) with its quality
(geometric-mean BER, lower is better) and its FLOPs per slot (network + front end), or a classical receiver on
the same slots with its hand-counted FLOPs (:func:`deeprx.energy.flops.classical_flops`): LS-LMMSE (role
:data:`CLASSICAL`, a receiver one can deploy) and perfect-CSI LMMSE (:data:`GENIE`, a bound: drawn, never on the
Pareto set, never recommended). On a processor of the catalogue its energy per slot is metric 0
(``estimated``), and the rate it can sustain is the processor's peak FLOP/s over its FLOPs per slot
(``estimated``, an upper bound). On this host the rate can be ``measured`` instead: the throughput of the
model's checkpoint on its fastest decision-keeping path (front end included), or of the classical receiver's
fused path (:class:`deeprx.link.baselines.FusedLmmseReceiver`).

:func:`recommend` names the best-quality candidate that sustains a rate on a processor; :func:`pareto`
the candidates no other one beats on both quality and energy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deeprx.config import LinkConfig
from deeprx.energy.estimate import metric0_joules
from deeprx.energy.flops import classical_flops
from deeprx.energy.processors import Processor
from deeprx.io import InputError
from deeprx.link.baselines import BASELINES, PERFECT_CSI_LMMSE
from deeprx.runs.layout import OutputLayout
from deeprx.studies.trial_result import TrialResult

CLASSICAL = "classical"  # the role of LS-LMMSE among the candidates
GENIE = "genie"  # perfect-CSI LMMSE: a bound no receiver can deploy


@dataclass(frozen=True)
class Candidate:
    """A trained model of a study: its trial ``key``, preset, role, quality and ``total_flops_per_slot`` (network and
    front end: :attr:`deeprx.energy.flops.SlotFlops.total`)."""

    key: str
    model: str
    role: str
    geo: float
    total_flops_per_slot: float
    shipped: str = ""  # the shipped checkpoint's name, where the candidate is one

    @classmethod
    def of(cls, result: TrialResult) -> Candidate:
        """From a trial's result: the network's and its front end's FLOPs together."""
        flops = result.all_flops_per_slot + result.front_end_flops_per_slot
        shipped = (result.shipped or {}).get("name", "")
        return cls(result.key, result.model, result.role, result.geometric_mean_ber, flops, shipped)

    @property
    def name(self) -> str:
        """What a user calls it: the shipped name, else the preset (or the classical receiver)."""
        return self.shipped or self.model


def classical_candidates(references: dict[str, float], link: LinkConfig) -> list[Candidate]:
    """The classical receivers of ``references`` (name -> geo-mean BER on the candidates' test set) as
    candidates on ``link``, their FLOPs counted by hand."""
    return [
        Candidate(name, name, GENIE if name == PERFECT_CSI_LMMSE else CLASSICAL, geo,
                  classical_flops(name == PERFECT_CSI_LMMSE, link.n_rx, link.n_subcarriers, link.n_data_re,
                                  link.bits_per_symbol))
        for name, geo in references.items()
    ]  # fmt: skip


@dataclass
class CandidateSet:
    """What a frontier is drawn from: the ``candidates`` (networks first, then the classical receivers), the
    classical receivers' geo-mean BER (``references``), each network's checkpoint folder by key, and the link
    they were all tested on."""

    candidates: list[Candidate]
    references: dict[str, float]
    folders: dict[str, Path]
    link: LinkConfig


@dataclass(frozen=True)
class RateMeasurement:
    """A candidate's rate on this host: ``slots_per_s``, how it was measured, and ``sustains``, the verdict of a
    streaming run at the asked rate (kept up: nothing dropped or late); ``None`` leaves the verdict to
    ``slots_per_s`` >= the rate."""

    slots_per_s: float
    method: str
    sustains: bool | None = None


@dataclass(frozen=True)
class Assessed:
    """A candidate on one processor: energy per slot and sustainable rate, each with how it was obtained."""

    candidate: Candidate
    joules_per_slot: float
    energy_method: str
    slots_per_s: float
    rate_method: str
    sustains: bool
    pareto: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.candidate), **{k: v for k, v in asdict(self).items() if k != "candidate"}}


def pareto(points: list[tuple[float, float]]) -> list[bool]:
    """For ``(energy, quality)`` pairs (both lower is better): whether each is on the Pareto front, i.e. no
    other point is at most as large in both and smaller in one."""
    return [
        not any((e2 <= e and q2 <= q) and (e2 < e or q2 < q) for j, (e2, q2) in enumerate(points) if j != i)
        for i, (e, q) in enumerate(points)
    ]


def assess(
    candidates: list[Candidate],
    processor: Processor,
    rate_per_s: float,
    measured_rate: Callable[[Candidate], RateMeasurement] | None = None,
) -> list[Assessed]:
    """Every candidate on ``processor``: metric-0 energy, and the rate from ``measured_rate`` (this host's
    measured throughput and how it was measured) or else the peak-FLOPs bound; the Pareto set over energy and
    quality marked."""
    rows = []
    for c in candidates:
        if measured_rate is not None:
            m = measured_rate(c)
        else:
            m = RateMeasurement(
                processor.peak_flops / c.total_flops_per_slot, "estimated (peak FLOP/s / FLOPs per slot)"
            )
        sustains = m.slots_per_s >= rate_per_s if m.sustains is None else m.sustains
        joules = metric0_joules(c.total_flops_per_slot, processor)
        rows.append(Assessed(c, joules, "estimated (metric0)", m.slots_per_s, m.method, sustains))
    real = [r for r in rows if r.candidate.role != GENIE]  # a bound is not a choice
    front = dict(zip(map(id, real), pareto([(r.joules_per_slot, r.candidate.geo) for r in real]), strict=True))
    return [Assessed(**{**r.__dict__, "pareto": front.get(id(r), False)}) for r in rows]


def recommend(assessed: list[Assessed]) -> Assessed | None:
    """The best-quality deployable candidate that sustains the rate (the lower energy on a tie), or ``None``."""
    able = [a for a in assessed if a.sustains and a.candidate.role != GENIE]
    return min(able, key=lambda a: (a.candidate.geo, a.joules_per_slot)) if able else None


def shipped_candidates(dmrs_symbols: int = 1) -> CandidateSet:
    """The current shipped receivers (none superseded) with ``dmrs_symbols`` DMRS symbols as candidates: quality
    from their records (every slot of the cpu test set, seed 0), FLOPs counted on their own grid (network + front
    end), and the classical receivers from the same records."""
    from deeprx.energy.flops import slot_flops
    from deeprx.evaluate.ber import geometric_mean_ber
    from deeprx.runs import checkpoint, registry

    def geo(evaluation: dict[str, Any], receiver: str) -> float:
        r = evaluation["receivers"][receiver]
        return geometric_mean_ber(r["bit_errors"], r["bits"])

    candidates, folders, references = [], {}, {}
    links: list[LinkConfig] = []
    for name in registry.current_names():
        rec = registry.record(name)
        if rec.dmrs_symbols != dmrs_symbols:
            continue
        folder = registry.resolve(name)
        model, ckpt = checkpoint.load_model(folder)
        link = ckpt.config.link
        links.append(link)
        flops = slot_flops(model, rec.features, link.n_subcarriers, link.n_data_re).total
        candidates.append(Candidate(name, rec.model, "shipped", geo(rec.evaluation, "DeepRx"), flops, name))
        folders[name] = folder
        for baseline in BASELINES:
            references.setdefault(baseline, geo(rec.evaluation, baseline))
    if not candidates:
        raise InputError(f"no shipped receiver with {dmrs_symbols} DMRS symbol(s): see deeprx pretrained list")
    link = links[0]  # the records' test set: the first receiver's link
    return CandidateSet(candidates + classical_candidates(references, link), references, folders, link)


def study_candidates(out: Path) -> CandidateSet:
    """The 1-DMRS models of the study in ``out`` (``reproduce.json`` and ``studies.sqlite``) and the classical
    receivers on the same test set, with each network's run folder (shipped ones resolved)."""
    from deeprx.config import RunConfig
    from deeprx.evaluate.ber import BerCurve
    from deeprx.io import read_json
    from deeprx.runs import registry
    from deeprx.studies.store import Store

    if not OutputLayout(out).store.exists():
        raise InputError(f"no study in {out}: run `deeprx reproduce --out {out}` first or pass --from OUT")
    data = read_json(OutputLayout(out).study_results, "study results (reproduce.json)")
    candidates, folders = [], {}
    with Store(OutputLayout(out).store) as store:
        for row in data["quality_vs_energy"]:
            stored = store.result(row["key"])
            if stored is None:
                continue  # a trial the store no longer holds as done
            result = TrialResult.from_dict(stored)
            candidates.append(Candidate.of(result))
            shipped = result.shipped
            folders[row["key"]] = registry.resolve(shipped["name"]) if shipped else OutputLayout(out).run(row["key"])
    curves = data["curves"]["1"]
    references = {c["receiver"]: BerCurve.from_dict(c).geometric_mean_ber() for c in curves["curves"]
                  if c["receiver"] in BASELINES}  # fmt: skip
    link = RunConfig.from_dict(data["plan"]["base"]).with_overrides({"link.dmrs_symbols": 1}).link
    classical = classical_candidates(references, link)
    return CandidateSet(candidates + classical, references, folders, link)
