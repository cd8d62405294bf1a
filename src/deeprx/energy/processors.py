"""The processor catalogue (``processors.yaml``) and detection of the host CPU.

Every figure in the catalogue carries a source; figures that are not from a datasheet are listed in
the entry's ``assumptions``. Users extend or override entries with their own YAML file of the same schema.
"""

from __future__ import annotations

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


def _processor_from_entry(key: str, entry: dict[str, Any]) -> Processor:
    required = ("name", "kind", "cores", "base_ghz", "turbo_ghz", "flops_per_cycle_per_core", "tdp_watts", "source")
    missing = [k for k in required if k not in entry]
    if missing:
        raise InputError(f"processor {key!r} lacks {missing}: every entry needs {list(required)}")
    assumptions = list(entry.get("assumptions", []))
    basis = entry.get("peak_basis", "base")
    clock = float(entry["base_ghz"] if basis == "base" else entry["turbo_ghz"])
    cores, tdp = int(entry["cores"]), float(entry["tdp_watts"])
    peak = cores * clock * 1e9 * float(entry["flops_per_cycle_per_core"])
    metric1 = entry.get("metric1", {})
    if "kappa" not in metric1:
        assumptions.append("metric-1 kappa derived from TDP at the peak clock: kappa = TDP / (cores * f^3)")
    metric2 = entry.get("metric2", {})
    e_mac = 2 * tdp / peak
    if not {"a_c", "b_c", "a_f"} <= metric2.keys():
        assumptions.append(
            f"metric-2 parameters derived from e_mac = 2*TDP/peak: b_c = a_f = e_mac, "
            f"a_c = {METRIC2_OVERHEAD_FEATURES}*e_mac (no published fit for this processor)"
        )
    return Processor(
        key=key,
        name=str(entry["name"]),
        kind=str(entry["kind"]),
        cores=cores,
        base_ghz=float(entry["base_ghz"]),
        turbo_ghz=float(entry["turbo_ghz"]),
        flops_per_cycle_per_core=float(entry["flops_per_cycle_per_core"]),
        peak_basis=basis,
        tdp_watts=tdp,
        cache_mib=float(entry.get("cache_mib", 0.0)),
        source=str(entry["source"]),
        kappa=float(metric1.get("kappa", tdp / (cores * clock**3))),
        a_c=float(metric2.get("a_c", METRIC2_OVERHEAD_FEATURES * e_mac)),
        b_c=float(metric2.get("b_c", e_mac)),
        a_f=float(metric2.get("a_f", e_mac)),
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
        raise InputError(f"processor catalogue {path} is not valid YAML ({err}); fix the file") from err
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
        data = {**data, **_read_yaml(extra).get("memory_energy", {})}
    return MemoryEnergy(float(data["dram_joules_per_byte"]), float(data["cache_joules_per_byte"]), str(data["source"]))


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
