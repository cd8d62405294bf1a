"""Configuration: validated dataclasses and the named profiles ``quick``, ``cpu`` and ``paper``.

One :class:`RunConfig` holds everything a run needs, including the single seed that drives Sionna,
torch and numpy. Every field is checked on construction; a bad value raises :class:`ConfigError`
naming the field, the value and what is allowed. Profiles scale sizes and steps, never the code path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SYMBOLS_PER_SLOT = 14  # OFDM symbols of a 5G NR slot (normal cyclic prefix): the grid's first axis
# A served receiver (serve-bench, recommend on the host): a slot's result is due this long after it arrives, and
# the receiver batches at most this many slots from its queue.
SERVE_DEADLINE_MS = 50.0
SERVE_MAX_BATCH = 32
MODULATIONS: dict[str, int] = {"qpsk": 2, "16qam": 4, "64qam": 6, "256qam": 8}
CHANNEL_MODELS: tuple[str, ...] = (
    *(f"CDL-{m}" for m in "ABCDE"),
    *(f"TDL-{m}" for m in "ABCDE"),
    "UMi",
)
# The broad training mix of the cpu profile: three families (clustered CDL, tapped-delay TDL, the UMi
# scenario), the B/C/D variants of CDL and TDL so A and E stay unseen, at speeds and delay spreads past the
# test set's, so a shipped receiver holds on channels it was not trained on.
BROAD_CHANNEL_MIX: tuple[str, ...] = ("CDL-B", "CDL-C", "CDL-D", "TDL-B", "TDL-C", "TDL-D", "UMi")
BROAD_SPEED_MPS: tuple[float, float] = (0.0, 80.0)
BROAD_DELAY_SPREAD_NS: tuple[float, float] = (10.0, 1000.0)
SUBCARRIER_SPACINGS_KHZ: tuple[int, ...] = (15, 30)
SCHEDULES: tuple[str, ...] = ("onecycle", "cosine")
OPTIMIZERS: tuple[str, ...] = ("adamw", "lamb")  # lamb: the DeepRx paper's, from pytorch-optimizer
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")  # and "cuda:N"
# Network inputs (front ends, see deeprx.receivers): the DeepRx paper's; the paper's plus a classical
# receiver's interpolated estimate and equalised symbols; and that input with the network's output added to
# the classical receiver's LLRs (a residual on LS-LMMSE).
FEATURES: tuple[str, ...] = ("paper", "enhanced", "residual")


def input_channels(features: str, n_rx: int) -> int:
    """Real input channels of the network for a front end: ``paper`` ``4 n_rx + 2``, else ``6 n_rx + 6``."""
    if features not in FEATURES:
        raise ValueError(f"unknown features {features!r}: one of {FEATURES}")
    return 4 * n_rx + 2 if features == "paper" else 6 * n_rx + 6


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field, the value and the fix."""


def _check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"invalid {name}={value!r}: must be {allowed}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _type_problem(value: Any, hint: Any) -> str | None:
    """What ``value`` should be for the type ``hint``, or ``None`` if it is one (bools are not numbers)."""
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "an integer"
    if hint is float:
        return None if _is_number(value) else "a finite number"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    args = typing.get_args(hint)  # tuple[str, ...], tuple[float, float] or X | None
    if type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return None if value is None else _type_problem(value, inner)
    if args and args[-1] is Ellipsis:
        ok = isinstance(value, tuple) and all(_type_problem(v, args[0]) is None for v in value)
        return None if ok else 'a list of strings, e.g. ["CDL-A", "CDL-C"]'
    if args:
        ok = isinstance(value, tuple) and len(value) == len(args) and all(_is_number(v) for v in value)
        return None if ok else f"a list of {len(args)} finite numbers, e.g. [0, 30]"
    raise TypeError(f"no type check for {hint!r}")


def _check_types(obj: Any, section: str) -> None:
    """Reject a field whose value has the wrong type before any range check compares it."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            continue  # a sub-section checks itself
        problem = _type_problem(getattr(obj, f.name), hint)
        if problem is not None:
            _check(False, f"{section}{f.name}", getattr(obj, f.name), problem)


def _check_range(name: str, value: tuple[float, float], lo: float, hi: float) -> None:
    ok = len(value) == 2 and lo <= value[0] <= value[1] <= hi
    _check(ok, name, value, f"a pair (low, high) with {lo} <= low <= high <= {hi}")


MCS_TABLES = (1, 2, 3, 4)  # TS 38.214 table 5.1.3.1-1..-4 (PUSCH without transform precoding)


def mcs_modulation(mcs_index: int, mcs_table: int) -> str:
    """The modulation of an MCS, by Sionna's own TS 38.214 tables (imported only where an MCS is named:
    Sionna is heavy and the configuration is light)."""
    from sionna.phy.nr.utils import decode_mcs_index

    try:
        bits_per_symbol, _ = decode_mcs_index(mcs_index, mcs_table, is_pusch=True)
    except (ValueError, AssertionError) as err:
        raise ConfigError(f"invalid link.mcs_index={mcs_index!r} for link.mcs_table={mcs_table}: {err}") from None
    by_bits = {bits: name for name, bits in MODULATIONS.items()}
    bits = int(bits_per_symbol)
    if bits not in by_bits:
        raise ConfigError(f"link.mcs_index={mcs_index} (table {mcs_table}) has {bits} bits per symbol: "
                          f"choose an MCS with one of {list(MODULATIONS)}")  # fmt: skip
    return by_bits[bits]


def data_res(n_subcarriers: int, dmrs_symbols: int, n_symbols: int = SYMBOLS_PER_SLOT) -> int:
    """Data REs per slot: DMRS type 1 with two CDM groups without data reserves each DMRS symbol whole (equal to
    the simulator's data mask from Sionna's PUSCH config: tested)."""
    return (n_symbols - dmrs_symbols) * n_subcarriers


@dataclass(frozen=True)
class LinkConfig:
    """The PUSCH uplink: grid, modulation, channel code, channel models and the ranges drawn per batch or slot.

    Ranges are ``(low, high)`` pairs drawn uniformly. The channel model and delay spread are drawn
    per batch; UE speed, SINR and the interferer's SIR are drawn per slot.

    ``mcs_index`` / ``mcs_table``: a 5G NR MCS (TS 38.214 tables 1-4, PUSCH without transform precoding) makes
    the link coded: each slot carries one LDPC-coded transport block, made and decoded by Sionna's TB encoder and
    decoder, and ``modulation`` must be the MCS's (:meth:`RunConfig.with_overrides` sets it when only the MCS is
    named). ``None`` (the default): the labels are random coded bits, as in the DeepRx paper (uncoded BER only).
    """

    n_prb: int = 4
    n_rx: int = 2
    subcarrier_spacing_khz: int = 30
    dmrs_symbols: int = 1
    modulation: str = "16qam"
    carrier_frequency_hz: float = 3.5e9
    channel_models: tuple[str, ...] = ("CDL-B", "CDL-C", "CDL-D")
    delay_spread_ns: tuple[float, float] = (10.0, 300.0)
    speed_mps: tuple[float, float] = (0.0, 40.0)
    sinr_db: tuple[float, float] = (0.0, 35.0)
    interferer_probability: float = 0.0
    sir_db: tuple[float, float] = (5.0, 30.0)
    mcs_index: int | None = None
    mcs_table: int = 1

    def __post_init__(self) -> None:
        _check_types(self, "link.")
        _check(1 <= self.n_prb <= 275, "link.n_prb", self.n_prb, "an integer in [1, 275]")
        _check(1 <= self.n_rx <= 16, "link.n_rx", self.n_rx, "an integer in [1, 16]")
        _check(
            self.subcarrier_spacing_khz in SUBCARRIER_SPACINGS_KHZ,
            "link.subcarrier_spacing_khz",
            self.subcarrier_spacing_khz,
            f"one of {SUBCARRIER_SPACINGS_KHZ}",
        )
        _check(self.dmrs_symbols in (1, 2), "link.dmrs_symbols", self.dmrs_symbols, "1 or 2")
        _check(self.modulation in MODULATIONS, "link.modulation", self.modulation, f"one of {list(MODULATIONS)}")
        _check(
            0.4e9 <= self.carrier_frequency_hz <= 100e9,
            "link.carrier_frequency_hz",
            self.carrier_frequency_hz,
            "in [0.4e9, 100e9]",
        )
        _check(len(self.channel_models) > 0, "link.channel_models", self.channel_models, "non-empty")
        for m in self.channel_models:
            _check(m in CHANNEL_MODELS, "link.channel_models", m, f"one of {list(CHANNEL_MODELS)}")
        _check_range("link.delay_spread_ns", self.delay_spread_ns, 1.0, 5000.0)
        _check_range("link.speed_mps", self.speed_mps, 0.0, 150.0)
        _check_range("link.sinr_db", self.sinr_db, -20.0, 60.0)
        _check(
            0.0 <= self.interferer_probability <= 1.0,
            "link.interferer_probability",
            self.interferer_probability,
            "in [0, 1]",
        )
        _check_range("link.sir_db", self.sir_db, -10.0, 60.0)
        _check(self.mcs_table in MCS_TABLES, "link.mcs_table", self.mcs_table, f"one of {MCS_TABLES}")
        if self.mcs_index is not None:
            modulation = mcs_modulation(self.mcs_index, self.mcs_table)
            if modulation != self.modulation:
                raise ConfigError(
                    f"link.modulation={self.modulation!r} disagrees with link.mcs_index={self.mcs_index} "
                    f"(table {self.mcs_table}: {modulation}): set one of them, or both to agree"
                )

    @property
    def coded(self) -> bool:
        """Whether each slot carries an LDPC-coded transport block (an MCS is set)."""
        return self.mcs_index is not None

    @property
    def bits_per_symbol(self) -> int:
        return MODULATIONS[self.modulation]

    @property
    def slot_duration_s(self) -> float:
        """One slot of 14 OFDM symbols: 1 ms at 15 kHz, halved with every doubling of the subcarrier spacing."""
        return 1e-3 * 15 / self.subcarrier_spacing_khz

    @property
    def n_subcarriers(self) -> int:
        return 12 * self.n_prb

    @property
    def n_data_re(self) -> int:
        return data_res(self.n_subcarriers, self.dmrs_symbols)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: AdamW (or the DeepRx paper's LAMB) with a warm-up then decay schedule.

    ``init_from``: a run folder or shipped name whose network initialises this one, its channels pruned to this
    preset's widths by their BatchNorm scales (:mod:`deeprx.train.prune`); ``""``: a fresh network.
    ``validation_slots``: slots per SINR point of the validation set scored at every checkpoint (a learning
    curve at 40 dB needs a few hundred to resolve BERs of 1e-4). ``bf16``: autocast to bf16 where the
    device supports it. ``channels_last``: the network's tensors in NHWC layout. Measured with
    ``benchmarks/train_throughput.py`` (deeprx_half, 4 PRB): on the 2-core AVX-512-bf16 CPUs here
    channels-last made a step 2.0x faster and bf16 1.5x slower; on an H200 the opposite way, channels-last
    2.0x slower and bf16 no faster (0.92x). The profiles set what their device
    runs fastest.
    """

    steps: int = 300
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1
    schedule: str = "onecycle"
    grad_clip: float = 1.0
    bf16: bool = False
    channels_last: bool = True
    checkpoint_every: int = 100
    validation_slots: int = 64
    init_from: str = ""

    def __post_init__(self) -> None:
        _check_types(self, "train.")
        _check(self.steps >= 1, "train.steps", self.steps, ">= 1")
        _check(1 <= self.batch_size <= 4096, "train.batch_size", self.batch_size, "in [1, 4096]")
        _check(0 < self.lr < 1, "train.lr", self.lr, "in (0, 1)")
        _check(0 <= self.weight_decay < 1, "train.weight_decay", self.weight_decay, "in [0, 1)")
        _check(0 <= self.warmup_fraction < 1, "train.warmup_fraction", self.warmup_fraction, "in [0, 1)")
        _check(self.schedule in SCHEDULES, "train.schedule", self.schedule, f"one of {SCHEDULES}")
        _check(self.optimizer in OPTIMIZERS, "train.optimizer", self.optimizer, f"one of {OPTIMIZERS}")
        _check(self.grad_clip > 0, "train.grad_clip", self.grad_clip, "> 0")
        _check(self.checkpoint_every >= 1, "train.checkpoint_every", self.checkpoint_every, ">= 1")
        _check(1 <= self.validation_slots <= 65536, "train.validation_slots", self.validation_slots, "in [1, 65536]")


@dataclass(frozen=True)
class EvalConfig:
    """The fixed test set and the BER Monte Carlo.

    The test set holds ``slots_per_point`` slots at every SINR point of the grid; evaluation of a
    receiver at a point stops once it has ``target_bit_errors`` errors or has used every slot (the
    bit budget). ``channel_models``, ``speed_mps`` and ``delay_spread_ns`` are the test set's channels, apart
    from the link's training ranges, so a model is tested on channels it was not trained on and the test set
    stays the same when the training mix changes.
    """

    sinr_start_db: float = 0.0
    sinr_stop_db: float = 40.0
    sinr_step_db: float = 5.0
    slots_per_point: int = 128
    batch_size: int = 32
    target_bit_errors: int = 2000
    target_ber: float = 1e-2
    channel_models: tuple[str, ...] = ("CDL-A", "CDL-C", "CDL-D", "CDL-E")
    speed_mps: tuple[float, float] = (0.0, 40.0)
    delay_spread_ns: tuple[float, float] = (10.0, 300.0)

    def __post_init__(self) -> None:
        _check_types(self, "eval.")
        _check(
            self.sinr_stop_db >= self.sinr_start_db,
            "eval.sinr_stop_db",
            self.sinr_stop_db,
            f">= eval.sinr_start_db ({self.sinr_start_db})",
        )
        _check(self.sinr_step_db > 0, "eval.sinr_step_db", self.sinr_step_db, "> 0")
        _check(self.slots_per_point >= 1, "eval.slots_per_point", self.slots_per_point, ">= 1")
        _check(1 <= self.batch_size <= 4096, "eval.batch_size", self.batch_size, "in [1, 4096]")
        _check(self.target_bit_errors >= 1, "eval.target_bit_errors", self.target_bit_errors, ">= 1")
        _check(0 < self.target_ber < 0.5, "eval.target_ber", self.target_ber, "in (0, 0.5)")
        _check(len(self.channel_models) > 0, "eval.channel_models", self.channel_models, "non-empty")
        for m in self.channel_models:
            _check(m in CHANNEL_MODELS, "eval.channel_models", m, f"one of {list(CHANNEL_MODELS)}")
        _check_range("eval.speed_mps", self.speed_mps, 0.0, 150.0)
        _check_range("eval.delay_spread_ns", self.delay_spread_ns, 1.0, 5000.0)

    @property
    def sinr_points_db(self) -> list[float]:
        n = round((self.sinr_stop_db - self.sinr_start_db) / self.sinr_step_db) + 1
        return [round(self.sinr_start_db + i * self.sinr_step_db, 6) for i in range(n)]


KD_SCALINGS: tuple[str, ...] = ("paper", "mean")
KD_TERMS: tuple[str, ...] = ("kl", "mse")  # Bernoulli KL (the paper's), logit MSE (Kim et al. 2021)
KD_MASKS: tuple[str, ...] = ("all", "confident", "correct")  # which bits the KD term sees
KD_ANNEALING: tuple[str, ...] = ("none", "linear")  # teacher annealing: KD weight 1 -> 0 over training


@dataclass(frozen=True)
class KdConfig:
    """Knowledge distillation (paper eq. 2): ``L = alpha * L_student + L_KD``; off when ``teacher`` is empty.

    ``scaling`` says how the terms are reduced (see :func:`deeprx.train.losses.kd_loss`): ``paper`` sums
    the Bernoulli KL over every data bit of a slot (so the paper's alpha of 1e5-1e6 balances a per-bit
    mean BCE); ``mean`` averages it per bit and multiplies it by Hinton's ``T^2`` (alpha of order 1).

    Beyond the paper: ``term`` (``kl`` or logit ``mse``), ``mask`` (KD on ``all`` bits, only where the teacher
    is ``confident`` — its probability of its decision >= ``confidence`` — or only where it is ``correct``),
    ``anneal`` (``linear``: the KD weight falls from 1 to 0 over training), Sobolev KD
    (``sobolev_weight`` > 0: also match the teacher's input-gradients along ``sobolev_directions`` random
    output directions; network teachers with the student's input only) and feature KD (``feature_weight`` > 0:
    the student's intermediate activations, through trained 1x1 adapters, regress the teacher's; network
    teachers; see :func:`deeprx.train.losses.hint_term`).
    """

    teacher: str = ""
    alpha: float = 1.0
    temperature: float = 3.0
    scaling: str = "mean"
    term: str = "kl"
    mask: str = "all"
    confidence: float = 0.9
    anneal: str = "none"
    sobolev_weight: float = 0.0
    sobolev_directions: int = 1
    feature_weight: float = 0.0

    def __post_init__(self) -> None:
        _check_types(self, "kd.")
        _check(0 <= self.alpha <= 1e9, "kd.alpha", self.alpha, "in [0, 1e9]")
        _check(0 < self.temperature <= 100, "kd.temperature", self.temperature, "in (0, 100]")
        _check(self.scaling in KD_SCALINGS, "kd.scaling", self.scaling, f"one of {KD_SCALINGS}")
        _check(self.term in KD_TERMS, "kd.term", self.term, f"one of {KD_TERMS}")
        _check(self.mask in KD_MASKS, "kd.mask", self.mask, f"one of {KD_MASKS}")
        _check(0.5 < self.confidence < 1, "kd.confidence", self.confidence, "in (0.5, 1)")
        _check(self.anneal in KD_ANNEALING, "kd.anneal", self.anneal, f"one of {KD_ANNEALING}")
        _check(0 <= self.sobolev_weight <= 1e9, "kd.sobolev_weight", self.sobolev_weight, "in [0, 1e9]")
        _check(1 <= self.sobolev_directions <= 64, "kd.sobolev_directions", self.sobolev_directions, "in [1, 64]")
        _check(0 <= self.feature_weight <= 1e9, "kd.feature_weight", self.feature_weight, "in [0, 1e9]")


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs: link, model preset and its input features, training, evaluation, seed, device.

    ``device`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) is where the run simulates, trains and evaluates.
    """

    profile: str = "quick"
    model: str = "deeprx_half"
    seed: int = 0
    device: str = "auto"
    features: str = "paper"
    link: LinkConfig = field(default_factory=LinkConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    kd: KdConfig = field(default_factory=KdConfig)

    def __post_init__(self) -> None:
        _check_types(self, "")
        from deeprx.models.registry import is_model, list_models  # local: torch only once a model is named

        _check(is_model(self.model), "model", self.model, f"one of {list_models()}")
        _check(0 <= self.seed < 2**31, "seed", self.seed, "an integer in [0, 2^31)")
        cuda_n = self.device.startswith("cuda:") and self.device[5:].isdigit()
        _check(self.device in DEVICES or cuda_n, "device", self.device, f"one of {DEVICES} or cuda:N")
        _check(self.features in FEATURES, "features", self.features, f"one of {FEATURES}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        try:
            return cls(
                profile=d["profile"],
                model=d["model"],
                seed=d["seed"],
                device=d["device"],
                features=d.get("features", "paper"),  # checkpoints from before the option had the paper's
                link=_from_dict(LinkConfig, d["link"]),
                train=_from_dict(TrainConfig, {"channels_last": False, **d["train"]}),  # older checkpoints: NCHW
                eval=_from_dict(EvalConfig, d["eval"]),
                kd=_from_dict(KdConfig, d.get("kd", {})),
            )
        except (KeyError, TypeError) as e:
            raise ConfigError(f"config is missing or has an unknown field: {e}") from e

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        """Return a copy with dotted-key overrides applied, e.g. ``{"train.steps": 10}``."""
        d = self.to_dict()
        for key, value in overrides.items():
            parts = key.split(".")
            node = d
            for p in parts[:-1]:
                if p not in node or not isinstance(node[p], dict):
                    raise ConfigError(f"unknown config key {key!r}")
                node = node[p]
            if parts[-1] not in node:
                raise ConfigError(f"unknown config key {key!r}")
            if isinstance(node[parts[-1]], dict):
                field_name = next(iter(node[parts[-1]]))
                raise ConfigError(f"{key!r} is a section; set one of its fields, e.g. {key}.{field_name}=...")
            node[parts[-1]] = value
        link = d["link"]
        names_mcs = {"link.mcs_index", "link.mcs_table"} & set(overrides)
        well_typed = _type_problem(link["mcs_index"], int) is None and link["mcs_table"] in MCS_TABLES
        if names_mcs and "link.modulation" not in overrides and well_typed:
            # the modulation follows from the MCS where only the MCS is named (a bad one: LinkConfig says so)
            link["modulation"] = mcs_modulation(link["mcs_index"], link["mcs_table"])
        return RunConfig.from_dict(d)


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise ConfigError(f"unknown field(s) {sorted(unknown)} for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for k, v in d.items():
        if isinstance(v, list):
            v = tuple(v)
        elif isinstance(v, str) and typing.get_args(hints[k])[-1:] == (Ellipsis,):
            v = (v,)  # a bare name where a list of names is expected: a list of one
        kwargs[k] = v
    return cls(**kwargs)


def config_hash(obj: Any) -> str:
    """A short, stable hash of a (nested) dataclass or dict, used to key test sets and trials."""
    d = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    blob = json.dumps(d, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` where value is JSON (numbers, lists, true/false) or a bare string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.field=value")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


# --- profiles ----------------------------------------------------------------------------------------


def quick() -> RunConfig:
    """The demo: a small model, a few minutes of training, a small test set. Runs anywhere."""
    return RunConfig(
        profile="quick",
        model="deeprx_quarter",
        features="enhanced",
        link=LinkConfig(n_prb=4, modulation="16qam", dmrs_symbols=1),
        train=TrainConfig(steps=200, batch_size=32, lr=8e-3, checkpoint_every=50),
        eval=EvalConfig(sinr_step_db=5.0, slots_per_point=64, target_bit_errors=1000, target_ber=3e-2),
    )


def cpu() -> RunConfig:
    """A serious run on 2 CPU cores (about half an hour of training per model, fp32 on AVX2).

    It trains on the broad mix (``BROAD_CHANNEL_MIX``, 0-80 m/s, 10-1000 ns) and tests on CDL-A/C/D/E at
    20-40 m/s; ``deeprx evaluate --suite robustness`` tests the families and conditions beyond.
    """
    return RunConfig(
        profile="cpu",
        model="deeprx_half",
        features="enhanced",
        link=LinkConfig(
            n_prb=4,
            modulation="16qam",
            dmrs_symbols=1,
            channel_models=BROAD_CHANNEL_MIX,
            speed_mps=BROAD_SPEED_MPS,
            delay_spread_ns=BROAD_DELAY_SPREAD_NS,
        ),
        train=TrainConfig(steps=1200, batch_size=32, lr=6e-3, checkpoint_every=150, validation_slots=256),
        eval=EvalConfig(
            sinr_step_db=2.5,
            slots_per_point=256,
            target_bit_errors=3000,
            target_ber=2e-2,
            speed_mps=(20.0, 40.0),
        ),
    )


# The DeepRx paper's link: 26 PRB (312 subcarriers), 256-QAM, 2 RX antennas, 1 DMRS symbol, every channel model.
# The grid an untrained preset is counted and metered on, and the paper profile's link.
PAPER_LINK = LinkConfig(n_prb=26, n_rx=2, modulation="256qam", dmrs_symbols=1, channel_models=CHANNEL_MODELS)


def paper() -> RunConfig:
    """The paper's link: 256-QAM, 26 PRB, full-size model. Meant for a GPU."""
    return RunConfig(
        profile="paper",
        model="deeprx_full",
        link=PAPER_LINK,
        train=TrainConfig(steps=250_000, batch_size=64, lr=1e-3, checkpoint_every=2000, channels_last=False),
        eval=EvalConfig(
            sinr_step_db=2.0,
            slots_per_point=2048,
            target_bit_errors=20_000,
            target_ber=1e-3,
            channel_models=CHANNEL_MODELS,
        ),
    )


def gpu() -> RunConfig:
    """The cpu profile's link and test set with the DeepRx paper's training budget, for one GPU.

    The paper trains 30,000 steps x 80 slots (2.4 M slot presentations); here 9,375 steps x 256 slots, the
    same number of slots in fewer, larger steps (a GPU is faster per slot at large batches). The link and
    the test set are the cpu profile's, so a teacher made here is compared with the CPU runs on the same
    slots and can serve as the CPU studies' shipped teacher.
    """
    base = cpu()
    return dataclasses.replace(
        base,
        profile="gpu",
        train=TrainConfig(steps=9375, batch_size=256, lr=6e-3, checkpoint_every=625, channels_last=False),
    )


PROFILES = {"quick": quick, "cpu": cpu, "gpu": gpu, "paper": paper}


def load_profile(name: str) -> RunConfig:
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}: must be one of {list(PROFILES)}")
    return PROFILES[name]()


def derive_seed(seed: int, *tags: int | str) -> int:
    """A child seed for one purpose (``"train", step`` or ``"test", point, batch``) from the run's seed.

    Every random draw of a run descends from ``RunConfig.seed`` through this function, so the same seed
    gives the same training batches, the same test set and the same numbers.
    """
    words = [seed] + [t if isinstance(t, int) else int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in tags]
    return int(np.random.SeedSequence(words).generate_state(1)[0])
