"""The processor catalogue (``processors.yaml``) and detection of the host CPU.

Every figure in the catalogue carries a source; figures that are not from a datasheet are listed in
the entry's ``assumptions``. Users extend or override entries with their own YAML file of the same schema.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from deeprx.io import InputError

# Host TDP is unknown in a VM; assume the Xeon Gold 5320's share per hardware thread (185 W / 52).
HOST_WATTS_PER_THREAD = 185.0 / 52
# metric 2 default overhead: a layer with this many input features pays as much overhead as compute.
METRIC2_OVERHEAD_FEATURES = 16


@dataclass(frozen=True)
class MemoryEnergy:
    """Energy per byte moved (J/B) for the memory-aware estimate, with its source."""

    dram_joules_per_byte: float
    cache_joules_per_byte: float
    source: str


@dataclass(frozen=True)
class Processor:
    """One catalogue entry. Units: GHz, FLOP/s, W, MiB; metric-2 parameters in J per MAC.

    Attributes:
        key: catalogue key, e.g. ``xeon-gold-5320``.
        flops_per_cycle_per_core: ``S`` of metric 1.
        peak_basis: ``base`` or ``turbo``: the clock at which ``peak_flops`` is quoted.
        kappa: effective switched capacitance per core, W/GHz^3 (metric 1).
        a_c, b_c, a_f: metric-2 parameters, J per MAC.
        assumptions: figures that are not from the cited source.
    """

    key: str
    name: str
    kind: str
    cores: int
    base_ghz: float
    turbo_ghz: float
    flops_per_cycle_per_core: float
    peak_basis: str
    tdp_watts: float
    cache_mib: float
    source: str
    kappa: float
    a_c: float
    b_c: float
    a_f: float
    assumptions: tuple[str, ...] = field(default=())

    @property
    def clock_ghz(self) -> float:
        return self.base_ghz if self.peak_basis == "base" else self.turbo_ghz

    @property
    def peak_flops(self) -> float:
        """Peak FLOP/s = cores x clock x FLOP per cycle per core."""
        return self.cores * self.clock_ghz * 1e9 * self.flops_per_cycle_per_core

    @property
    def flops_per_watt(self) -> float:
        """Peak FLOP/s per W of TDP: the denominator of metric 0."""
        return self.peak_flops / self.tdp_watts


PROCESSOR_KINDS = ("cpu", "gpu", "tpu", "npu")
PEAK_BASES = ("base", "turbo")


class _Entry:
    """Reads one catalogue entry field by field; a missing or bad field raises one line naming it."""

    def __init__(self, where: str, entry: Any) -> None:
        if not isinstance(entry, dict):
            raise InputError(f"{where} must be a mapping of fields (name: ..., cores: ...), not {entry!r}")
        self.where, self.entry = where, entry

    def _bad(self, name: str, value: Any, allowed: str) -> InputError:
        return InputError(f"{self.where}: invalid {name}={value!r}: must be {allowed}; fix the catalogue")

    def has(self, name: str) -> bool:
        return name in self.entry

    def number(self, name: str, default: float | None = None, minimum: float = 0.0, inclusive: bool = False) -> float:
        """A finite number above ``minimum`` (or equal to it, with ``inclusive``)."""
        if name not in self.entry and default is not None:
            return default
        value = self.entry.get(name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not (value >= minimum if inclusive else value > minimum):
            raise self._bad(name, value, f"a finite number {'>=' if inclusive else '>'} {minimum:g}")
        return float(value)

    def integer(self, name: str) -> int:
        value = self.entry.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self._bad(name, value, "an integer >= 1")
        return value

    def text(self, name: str, choices: tuple[str, ...] = (), default: str | None = None) -> str:
        value = self.entry.get(name, default)
        if not isinstance(value, str) or not value.strip() or (choices and value not in choices):
            raise self._bad(name, value, f"one of {list(choices)}" if choices else "a non-empty string")
        return value

    def texts(self, name: str) -> list[str]:
        value = self.entry.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(name, value, "a list of strings")
        return list(value)

    def section(self, name: str) -> _Entry:
        return _Entry(f"{self.where}.{name}", self.entry.get(name, {}))


def _processor_from_entry(key: str, raw: Any) -> Processor:
    entry = _Entry(f"processor {key!r}", raw)
    required = ("name", "kind", "cores", "base_ghz", "turbo_ghz", "flops_per_cycle_per_core", "tdp_watts", "source")
    missing = [k for k in required if not entry.has(k)]
    if missing:
        raise InputError(f"processor {key!r} lacks {missing}: every entry needs {list(required)}")
    assumptions = entry.texts("assumptions")
    basis = entry.text("peak_basis", PEAK_BASES, default="base")
    base_ghz, turbo_ghz = entry.number("base_ghz"), entry.number("turbo_ghz")
    clock = base_ghz if basis == "base" else turbo_ghz
    cores, tdp = entry.integer("cores"), entry.number("tdp_watts")
    per_cycle = entry.number("flops_per_cycle_per_core")
    peak = cores * clock * 1e9 * per_cycle
    metric1, metric2 = entry.section("metric1"), entry.section("metric2")
    if not metric1.has("kappa"):
        assumptions.append("metric-1 kappa derived from TDP at the peak clock: kappa = TDP / (cores * f^3)")
    e_mac = 2 * tdp / peak
    if not all(metric2.has(k) for k in ("a_c", "b_c", "a_f")):
        assumptions.append(
            f"metric-2 parameters derived from e_mac = 2*TDP/peak: b_c = a_f = e_mac, "
            f"a_c = {METRIC2_OVERHEAD_FEATURES}*e_mac (no published fit for this processor)"
        )
    return Processor(
        key=key,
        name=entry.text("name"),
        kind=entry.text("kind", PROCESSOR_KINDS),
        cores=cores,
        base_ghz=base_ghz,
        turbo_ghz=turbo_ghz,
        flops_per_cycle_per_core=per_cycle,
        peak_basis=basis,
        tdp_watts=tdp,
        cache_mib=entry.number("cache_mib", default=0.0, inclusive=True),
        source=entry.text("source"),
        kappa=metric1.number("kappa", default=tdp / (cores * clock**3)),
        a_c=metric2.number("a_c", default=METRIC2_OVERHEAD_FEATURES * e_mac, inclusive=True),
        b_c=metric2.number("b_c", default=e_mac, inclusive=True),
        a_f=metric2.number("a_f", default=e_mac, inclusive=True),
        assumptions=tuple(assumptions),
    )


def _read_yaml(path: Path | None) -> dict[str, Any]:
    if path is None:
        text = resources.files("deeprx.energy").joinpath("processors.yaml").read_text()
    else:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise InputError(
                f"cannot read processor catalogue {path}: {err.strerror}; pass an existing YAML file"
            ) from err
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise InputError(f"processor catalogue {path} is not valid YAML ({problem}{where}); fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("processors", {}), dict):
        raise InputError(f"processor catalogue {path} needs a top-level mapping 'processors: {{key: entry}}'")
    return data


def load_catalogue(extra: Path | None = None, include_host: bool = True) -> dict[str, Processor]:
    """The shipped catalogue, then the entries of ``extra`` (same keys replace), then the host CPU."""
    entries = dict(_read_yaml(None)["processors"])
    if extra is not None:
        entries.update(_read_yaml(extra).get("processors", {}))
    catalogue = {key: _processor_from_entry(key, entry) for key, entry in entries.items()}
    if include_host:
        host = detect_host()
        catalogue[host.key] = host
    return catalogue


def load_memory_energy(extra: Path | None = None) -> MemoryEnergy:
    data = _read_yaml(None)["memory_energy"]
    if extra is not None:
        override = _Entry("memory_energy", _read_yaml(extra).get("memory_energy", {}))
        data = {**data, **override.entry}
    entry = _Entry("memory_energy", data)
    return MemoryEnergy(
        entry.number("dram_joules_per_byte"), entry.number("cache_joules_per_byte"), entry.text("source")
    )


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.split("\n\n")[0].splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    return info


def _l3_cache_mib() -> float:
    size = Path("/sys/devices/system/cpu/cpu0/cache/index3/size")
    match = re.fullmatch(r"(\d+)([KM])", size.read_text().strip()) if size.exists() else None
    if not match:
        return 0.0
    return int(match.group(1)) / (1024 if match.group(2) == "K" else 1)


def detect_host() -> Processor:
    """This machine's CPU as a catalogue entry; figures not readable here are listed as assumptions."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    clock = float(info.get("cpu MHz", "2000")) / 1000
    if "avx512f" in flags:
        per_cycle, simd = 64, "AVX-512 (2 FMA units assumed)"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, simd = 32, "AVX2 + FMA (2 FMA units assumed)"
    else:
        per_cycle, simd = 8, "SSE (no FMA)"
    entry = {
        "name": f"this host: {info.get('model name', 'unknown CPU')} ({threads} threads)",
        "kind": "cpu",
        "cores": threads,
        "base_ghz": clock,
        "turbo_ghz": clock,
        "flops_per_cycle_per_core": per_cycle,
        "tdp_watts": round(HOST_WATTS_PER_THREAD * threads, 2),
        "cache_mib": _l3_cache_mib(),
        "source": "detected at run time from /proc/cpuinfo and os.sched_getaffinity",
        "assumptions": [
            f"FLOP/cycle from the CPU flags: {simd}",
            "clock = the 'cpu MHz' reported by the kernel",
            f"TDP unknown (virtual CPUs): {HOST_WATTS_PER_THREAD:.2f} W per thread, the Xeon Gold 5320's share",
        ],
    }
    return _processor_from_entry("host", entry)
