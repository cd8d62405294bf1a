"""Energy meters behind one small interface (after Zeus's ``ZeusMonitor``): RAPL, NVML, CodeCarbon, modeled.

Each meter is a cumulative energy counter: :meth:`EnergyMeter.read_joules` returns the energy used since
the meter was created. Windows, base power and per-inference energy are built on top of it in
:mod:`deeprx.energy.protocol`, so tests can fake a meter with a few lines.

``is_measurement`` is ``False`` for the ``modeled`` meter (TDP x CPU utilisation) and for CodeCarbon
when it has neither RAPL nor a GPU to read (it then models CPU power from load and TDP): such figures
are never presented as measurements.
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch

from deeprx.energy.processors import Processor, detect_host
from deeprx.io import InputError
from deeprx.runtime import CPU

POWERCAP_ROOT = Path("/sys/class/powercap")
METERS: tuple[str, ...] = ("auto", "rapl", "nvml", "codecarbon", "modeled")


class EnergyMeter(ABC):
    """A cumulative energy counter.

    Attributes:
        method: label carried by every figure it produces (``rapl``, ``nvml``, ``codecarbon``, ``modeled``).
        is_measurement: ``True`` only when the figure comes from a hardware counter or sensor.
        update_interval_s: how often the underlying counter changes; windows must be much longer.
        description: one line saying what is read.
    """

    method: str
    is_measurement: bool
    update_interval_s: float
    description: str

    @abstractmethod
    def read_joules(self) -> float:
        """Energy used since the meter was created, J (monotone)."""

    def close(self) -> None:  # noqa: B027 - most meters hold nothing to release
        """Release the backend (threads, trackers)."""


# --- RAPL ---------------------------------------------------------------------------------------------


class _RaplDomain:
    """One powercap zone: an ``energy_uj`` counter that wraps at ``max_energy_range_uj``."""

    def __init__(self, zone: Path) -> None:
        self.zone = zone
        self.name = (zone / "name").read_text().strip() if (zone / "name").exists() else zone.name
        self.max_range_uj = int(_read(zone / "max_energy_range_uj"))
        self.last_uj = int(_read(zone / "energy_uj"))
        self.total_uj = 0

    def update(self) -> int:
        now = int(_read(self.zone / "energy_uj"))
        delta = now - self.last_uj
        if delta < 0:  # the counter wrapped past max_energy_range_uj
            delta += self.max_range_uj
        self.last_uj = now
        self.total_uj += delta
        return self.total_uj


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except PermissionError:
        raise InputError(
            f"cannot read {path} (permission denied): RAPL is root-only since CVE-2020-8694; "
            "run `sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` (or add a udev rule), "
            "or use --meter modeled"
        ) from None
    except OSError as err:
        raise InputError(f"cannot read {path} ({err.strerror}); use --meter modeled on this machine") from None


class RaplMeter(EnergyMeter):
    """Intel/AMD RAPL through powercap sysfs: package domains plus their ``dram`` subdomains."""

    method = "rapl"
    is_measurement = True
    update_interval_s = 0.001

    def __init__(self, root: Path = POWERCAP_ROOT) -> None:
        packages = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not packages:
            raise InputError(f"no RAPL domains under {root} (a VM or no powercap driver); use --meter modeled")
        zones = [*packages, *(p for pkg in packages for p in sorted(pkg.glob("intel-rapl:*:*")))]
        domains = [_RaplDomain(z) for z in zones]
        # Package energy already holds core and uncore; only DRAM is added to it.
        self.domains = [d for d in domains if d.name.startswith("package") or d.name == "dram"]
        self.description = "RAPL " + ", ".join(f"{d.name} ({d.zone.name})" for d in self.domains)

    def read_joules(self) -> float:
        return sum(d.update() for d in self.domains) / 1e6

    def read_domains_joules(self) -> dict[str, float]:
        """Energy per domain since creation, J (package and DRAM apart)."""
        return {f"{d.zone.name}:{d.name}": d.update() / 1e6 for d in self.domains}


# --- NVML ---------------------------------------------------------------------------------------------


class NvmlMeter(EnergyMeter):
    """NVIDIA GPUs: the total-energy counter (Volta and newer), else integrated power samples."""

    method = "nvml"
    is_measurement = True

    def __init__(self, sample_interval_s: float = 0.05) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except Exception as err:  # ImportError, NVMLError_LibraryNotFound, driver not loaded
            raise InputError(
                f"NVML is not available ({err}); no NVIDIA GPU here, use --meter rapl or modeled"
            ) from None
        if count == 0:
            raise InputError("NVML sees no GPU; use --meter rapl or modeled")
        self._nvml = pynvml
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self._start_mj = [self._energy_mj(h) for h in self._handles]
        self._counter = all(e is not None for e in self._start_mj)
        self.update_interval_s = 0.1 if self._counter else sample_interval_s
        self.description = f"NVML on {count} GPU(s), " + (
            "total-energy counter" if self._counter else f"power samples every {sample_interval_s * 1e3:.0f} ms"
        )
        self._integrated_j = 0.0
        self._stop = threading.Event()
        if not self._counter:
            self._thread = threading.Thread(target=self._sample, args=(sample_interval_s,), daemon=True)
            self._thread.start()

    def _energy_mj(self, handle: Any) -> int | None:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except self._nvml.NVMLError:
            return None

    def _power_w(self) -> float:
        return sum(self._nvml.nvmlDeviceGetPowerUsage(h) for h in self._handles) / 1e3

    def _sample(self, interval: float) -> None:
        last_t, last_p = time.perf_counter(), self._power_w()
        while not self._stop.wait(interval):
            t, p = time.perf_counter(), self._power_w()
            self._integrated_j += 0.5 * (p + last_p) * (t - last_t)  # trapezoid rule
            last_t, last_p = t, p

    def read_joules(self) -> float:
        if self._counter:
            return sum(self._energy_mj(h) - s for h, s in zip(self._handles, self._start_mj, strict=True)) / 1e3
        return self._integrated_j

    def close(self) -> None:
        self._stop.set()


# --- CodeCarbon ---------------------------------------------------------------------------------------


class CodeCarbonMeter(EnergyMeter):
    """CodeCarbon's tracker as a backend (CPU + RAM + GPU, machine-wide).

    Without RAPL or a GPU CodeCarbon models CPU power from load and TDP (and RAM from its size), so its
    figures are then labelled as not measured.
    """

    method = "codecarbon"
    update_interval_s = 1.0

    def __init__(self) -> None:
        import logging

        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self._tracker = OfflineEmissionsTracker(
            country_iso_code="USA", save_to_file=False, log_level="error", measure_power_secs=1
        )
        self._tracker.start()
        self.is_measurement = rapl_available() or nvml_available()
        kind = "reads RAPL/NVML" if self.is_measurement else "models CPU power from load x TDP (no RAPL, no GPU)"
        self.description = f"CodeCarbon {_codecarbon_version()} ({kind})"

    def read_joules(self) -> float:
        # CodeCarbon exposes totals only through its private accumulator; pinned to codecarbon 3.3.2.
        self._tracker._measure_power_and_energy()
        return float(self._tracker._total_energy.kWh) * 3.6e6

    def close(self) -> None:
        self._tracker.stop()


def _codecarbon_version() -> str:
    from importlib.metadata import version

    return version("codecarbon")


# --- modeled ------------------------------------------------------------------------------------------


class ModeledMeter(EnergyMeter):
    """Not a measurement: TDP x machine-wide CPU utilisation, integrated from ``/proc/stat`` jiffies.

    ``energy = TDP * busy_cpu_seconds / n_cpus``: a fully busy machine draws its TDP, an idle one 0 W.
    """

    method = "modeled"
    is_measurement = False
    update_interval_s = 0.01  # one jiffy at HZ=100

    def __init__(self, processor: Processor | None = None, stat_path: Path = Path("/proc/stat")) -> None:
        self.processor = processor or detect_host()
        self.stat_path = stat_path
        self._tick = os.sysconf("SC_CLK_TCK")
        self._start_busy, self._n_cpus = self._busy_seconds()
        self.description = (
            f"modeled: {self.processor.tdp_watts:g} W TDP x CPU utilisation of {self._n_cpus} CPU(s) "
            "(not a measurement)"
        )

    def _busy_seconds(self) -> tuple[float, int]:
        lines = self.stat_path.read_text().splitlines()
        fields = [int(v) for v in lines[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        n_cpus = sum(1 for line in lines[1:] if line.startswith("cpu"))
        return (sum(fields[:8]) - idle) / self._tick, max(n_cpus, 1)

    def read_joules(self) -> float:
        busy, _ = self._busy_seconds()
        return self.processor.tdp_watts * (busy - self._start_busy) / self._n_cpus


# --- choice -------------------------------------------------------------------------------------------


def rapl_available(root: Path = POWERCAP_ROOT) -> bool:
    try:
        RaplMeter(root).read_joules()
    except InputError:
        return False
    return True


def nvml_available() -> bool:
    try:
        NvmlMeter().close()
    except InputError:
        return False
    return True


def open_meter(name: str, processor: Processor | None = None, device: torch.device = CPU) -> tuple[EnergyMeter, str]:
    """Open a meter by name for work on ``device`` (the run context's). Returns the meter and why.

    ``auto`` picks the meter of the device that does the work: NVML for GPU work; RAPL, else the modeled
    host meter, for CPU work. NVML asked for CPU work is refused: it would meter an idle GPU.
    """
    if name not in METERS:
        raise InputError(f"unknown meter {name!r}: choose one of {list(METERS)}")
    on_gpu = device.type == "cuda"
    if name == "nvml" and not on_gpu:
        raise InputError("--meter nvml meters a GPU but the work runs on the CPU; use --device cuda or --meter rapl")
    if name == "rapl":
        return RaplMeter(), "requested"
    if name == "nvml":
        return NvmlMeter(), "requested"
    if name == "codecarbon":
        return CodeCarbonMeter(), "requested"
    if name == "modeled":
        return ModeledMeter(processor), "requested"
    if on_gpu:
        meter = NvmlMeter()  # a GPU without NVML cannot be metered: its error names the other meters
        return meter, f"auto: the work runs on {device}, metered by NVML"
    try:
        meter = RaplMeter()
        meter.read_joules()
        return meter, f"auto: the work runs on the CPU and {meter.method} is readable"
    except InputError as err:
        reason = str(err).split(";")[0]
    return ModeledMeter(processor), f"auto: the work runs on the CPU; modeled, not measured ({reason})"
