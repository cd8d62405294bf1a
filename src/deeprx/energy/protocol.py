"""The paper's measurement protocol (Sec. III-A3) and the training-vs-inference life cycle (Sec. IV-A).

1. base power: median of the power over an idle window, sampled at the meter's pace;
2. absolute power: energy read over a window of running work, divided by its duration;
3. relative power = absolute - base;
4. energy = relative power x running time; per inference = energy / inferences.

Windows last at least ``MIN_WINDOW_UPDATES`` meter updates and ``min_window_s`` seconds; the protocol is
repeated and the spread over repeats is reported. Units are in the names: W, s, J.

A relative power that does not stand out of the idle power's own fluctuation is not an energy: when the
median relative power is at most ``NOISE_MULTIPLE`` standard deviations of the idle samples, or any repeat
comes out at or below zero (another load changed the base power), the result is *unresolved*: it keeps the
powers it read, gives no energy and cannot enter the life cycle.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from deeprx.energy.meters import EnergyMeter

MIN_WINDOW_UPDATES = 100
NOISE_MULTIPLE = 2.0  # relative power must exceed this many standard deviations of the idle samples


def base_power_watts(samples: list[float]) -> float:
    """Base system power: the median of idle power samples, W."""
    if not samples:
        raise ValueError("base power needs at least one idle power sample")
    return statistics.median(samples)


def relative_energy_joules(absolute_watts: float, base_watts: float, seconds: float) -> float:
    """Relative energy = (absolute power - base power) x running time, J."""
    return (absolute_watts - base_watts) * seconds


def sample_power_watts(meter: EnergyMeter, seconds: float, interval_s: float) -> list[float]:
    """Power samples over an idle window: energy differences over ``interval_s`` slices, W."""
    samples = []
    end = time.perf_counter() + seconds
    last_t, last_j = time.perf_counter(), meter.read_joules()
    while last_t < end:
        time.sleep(interval_s)
        t, j = time.perf_counter(), meter.read_joules()
        samples.append((j - last_j) / (t - last_t))
        last_t, last_j = t, j
    return samples


@dataclass(frozen=True)
class ProtocolResult:
    """Energy of one unit of work (an inference = one slot, or a training step) under the base-power protocol.

    Attributes:
        method: the meter's label (``rapl``, ``nvml``, ``codecarbon``, ``modeled``).
        is_measurement: ``False`` when the meter models power instead of reading it.
        meter: what was read.
        unit: what one item is (``inference`` = one slot, ``training step``).
        base_watts: median idle power, W; ``base_samples`` idle samples were taken.
        absolute_watts: power while working, W (median over repeats).
        relative_watts: absolute - base, W (median over repeats).
        seconds: running time of one repeat, s (median).
        items: items processed per repeat (median).
        noise_watts: standard deviation of the idle samples, W.
        resolved: whether the relative power stands out of the noise (see the module's docstring).
        joules_per_item: relative energy per item, J (median over repeats); ``None`` when unresolved.
        joules_per_item_spread: standard deviation over repeats, J (0 for one repeat); ``None`` when unresolved.
        joules_per_item_repeats: one value per repeat as read, J (may be <= 0 when unresolved).
        why_unresolved: the reason, empty when resolved.
    """

    method: str
    is_measurement: bool
    meter: str
    unit: str
    base_watts: float
    base_samples: int
    absolute_watts: float
    relative_watts: float
    seconds: float
    items: int
    noise_watts: float
    resolved: bool
    joules_per_item: float | None
    joules_per_item_spread: float | None
    joules_per_item_repeats: tuple[float, ...]
    why_unresolved: str = ""

    def summary(self) -> str:
        """The energy per item, or why there is none, with the powers read (one line)."""
        powers = (
            f"base {self.base_watts:.2f} W (median of {self.base_samples} idle samples, std {self.noise_watts:.2g} W), "
            f"absolute {self.absolute_watts:.2f} W, relative {self.relative_watts:.2f} W"
        )
        kind = "measured" if self.is_measurement else "MODELED, not measured"
        if self.joules_per_item is None:
            return f"UNRESOLVED per {self.unit} [{self.method}]: {self.why_unresolved}; {powers}"
        return (
            f"{self.joules_per_item * 1e3:.3g} mJ per {self.unit} (± {self.joules_per_item_spread * 1e3:.2g} over "
            f"{len(self.joules_per_item_repeats)} repeats) [{self.method}, {kind}]; {powers}; "
            f"{self.items} items in {self.seconds:.1f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    meter: EnergyMeter,
    work: Callable[[], int],
    unit: str,
    *,
    idle_s: float = 3.0,
    min_window_s: float = 2.0,
    repeats: int = 3,
    warmup_calls: int = 3,
    sync: Callable[[], None] = lambda: None,
) -> ProtocolResult:
    """Run the protocol: idle window for the base power, then ``repeats`` windows of ``work``.

    Args:
        meter: an open energy meter.
        work: runs some work and returns how many items (inferences or steps) it did.
        unit: name of one item, for the report.
        idle_s: length of the idle window (no other load should run on the machine).
        min_window_s: shortest working window; raised to ``MIN_WINDOW_UPDATES`` meter updates.
        repeats: working windows; the spread over them is reported.
        warmup_calls: calls of ``work`` before measuring (allocations, kernel selection).
        sync: waits for the device that runs ``work`` (CUDA queues work asynchronously); called before
            every meter read, so a window's energy covers exactly its work.
    """
    if repeats < 1 or idle_s <= 0:
        raise ValueError("measure needs repeats >= 1 and idle_s > 0")
    window = max(min_window_s, MIN_WINDOW_UPDATES * meter.update_interval_s)
    idle = sample_power_watts(meter, idle_s, max(meter.update_interval_s * 10, idle_s / 20))
    base = base_power_watts(idle)
    for _ in range(warmup_calls):
        work()
    sync()
    per_item, absolute, seconds, items = [], [], [], []
    for _ in range(repeats):
        n = 0
        t0, j0 = time.perf_counter(), meter.read_joules()
        while time.perf_counter() - t0 < window:
            n += work()
        sync()
        t1, j1 = time.perf_counter(), meter.read_joules()
        watts = (j1 - j0) / (t1 - t0)
        absolute.append(watts)
        seconds.append(t1 - t0)
        items.append(n)
        per_item.append(relative_energy_joules(watts, base, t1 - t0) / n)
    relative = statistics.median(absolute) - base
    noise = statistics.stdev(idle) if len(idle) > 1 else 0.0
    why = resolution_problem(relative, noise, per_item)
    return ProtocolResult(
        method=meter.method,
        is_measurement=meter.is_measurement,
        meter=meter.description,
        unit=unit,
        base_watts=base,
        base_samples=len(idle),
        absolute_watts=statistics.median(absolute),
        relative_watts=relative,
        seconds=statistics.median(seconds),
        items=int(statistics.median(items)),
        noise_watts=noise,
        resolved=not why,
        joules_per_item=None if why else statistics.median(per_item),
        joules_per_item_spread=None if why else (statistics.stdev(per_item) if repeats > 1 else 0.0),
        joules_per_item_repeats=tuple(per_item),
        why_unresolved=why,
    )


def resolution_problem(relative_watts: float, noise_watts: float, per_item_joules: list[float]) -> str:
    """Why a measurement gives no energy (empty if it does): the relative power is within
    ``NOISE_MULTIPLE`` idle standard deviations, or a repeat is at or below zero."""
    if relative_watts <= NOISE_MULTIPLE * noise_watts:
        return (
            f"relative power {relative_watts:.3g} W is within {NOISE_MULTIPLE:g} x the idle noise "
            f"({noise_watts:.2g} W std); run on a quieter machine or meter a larger batch"
        )
    if min(per_item_joules) <= 0:
        return (
            f"a repeat read {min(per_item_joules):.3g} J per item (the base power changed during the run); "
            "run on a quieter machine"
        )
    return ""


# --- life cycle ---------------------------------------------------------------------------------------


def break_even_inferences(training_joules: float, joules_per_inference: float) -> float:
    """Number of inferences whose cumulative energy equals the training energy."""
    return training_joules / joules_per_inference


@dataclass(frozen=True)
class LifeCycle:
    """Training vs inference energy over a deployment.

    Attributes:
        training_joules: energy of the whole training, J (per-step energy x steps).
        joules_per_inference: J per slot.
        break_even_inferences: inferences after which inference energy exceeds training energy.
        break_even_seconds: time to reach it at ``rate_per_s`` inferences per second, s.
    """

    training_joules: float
    joules_per_inference: float
    rate_per_s: float
    break_even_inferences: float
    break_even_seconds: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def life_cycle(
    joules_per_training_step: float, training_steps: int, joules_per_inference: float, rate_per_s: float, method: str
) -> LifeCycle:
    training = joules_per_training_step * training_steps
    n = break_even_inferences(training, joules_per_inference)
    return LifeCycle(training, joules_per_inference, rate_per_s, n, n / rate_per_s, method)
