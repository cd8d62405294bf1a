"""A streaming receiver run: slots arrive at a fixed rate, the receiver batches what has arrived.

Slots come from a pool simulated beforehand (a deployed receiver gets its samples from the radio, so
simulation time is not the receiver's). A slot is *dropped* when it arrives to a full queue and *late*
when its result comes more than ``deadline_s`` after its arrival. The receiver kept up when nothing was
dropped and at most 1 % was late.

Several workers (each with its own engine, e.g. a one-thread ONNX Runtime session per core) take batches
from the one queue in parallel: on small grids this beats one engine spreading each batch over all cores,
whose per-operator thread synchronisation costs more than the convolutions it splits.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from deeprx.config import SERVE_MAX_BATCH
from deeprx.infer.engine import Engine


@dataclass(frozen=True)
class ServeReport:
    """Outcome of one streaming run. Rates in slots/s, times in ms."""

    path: str
    description: str
    workers: int
    rate_per_s: float
    duration_s: float
    offered: int
    processed: int
    dropped: int
    late: int
    deadline_ms: float
    achieved_per_s: float
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    latency_ms_max: float
    mean_batch: float
    kept_up: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def serve(
    engines: Sequence[Engine],
    pool: torch.Tensor,
    rate_per_s: float,
    duration_s: float,
    deadline_s: float,
    max_batch: int = SERVE_MAX_BATCH,
    max_queue: int = 4096,
) -> ServeReport:
    """Offer ``rate_per_s * duration_s`` slots from ``pool`` and serve them with one worker thread per engine.

    ``pool`` is what an engine's ``run`` takes, indexed along its first axis: network inputs
    ``[N, C, 14, n_sc]``, or slot indices when the engine runs the receiver's front end on stored slots.
    """
    queue: collections.deque[tuple[float, int]] = collections.deque()
    # Idle workers block on the condition instead of polling: a polling thread takes CPU from the busy one.
    ready = threading.Condition()
    offered = int(rate_per_s * duration_s)
    dropped = 0
    finished = False
    latencies: list[float] = []
    batches: list[int] = []

    def produce(start: float) -> None:
        nonlocal dropped, finished
        for i in range(offered):
            due = start + i / rate_per_s
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            with ready:
                if len(queue) >= max_queue:
                    dropped += 1
                else:
                    queue.append((due, i % pool.shape[0]))
                    ready.notify()
        with ready:
            finished = True
            ready.notify_all()

    def work(engine: Engine) -> None:
        while True:
            with ready:
                while not queue and not finished:
                    ready.wait()
                if not queue:
                    return
                items = [queue.popleft() for _ in range(min(max_batch, len(queue)))]
            engine.run(pool[[idx for _, idx in items]])
            now = time.perf_counter()
            with ready:
                latencies.extend(now - arrival for arrival, _ in items)
                batches.append(len(items))

    for engine in engines:
        engine.run(pool[:max_batch])  # warm-up outside the timed run
    t0 = time.perf_counter()
    threads = [threading.Thread(target=produce, args=(t0,), daemon=True)]
    threads += [threading.Thread(target=work, args=(engine,), daemon=True) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1e3 if latencies else np.zeros(1)
    late = int((lat > deadline_s * 1e3).sum())
    achieved = len(latencies) / elapsed
    return ServeReport(
        path=engines[0].path,
        description=engines[0].description,
        workers=len(engines),
        rate_per_s=rate_per_s,
        duration_s=duration_s,
        offered=offered,
        processed=len(latencies),
        dropped=dropped,
        late=late,
        deadline_ms=deadline_s * 1e3,
        achieved_per_s=achieved,
        latency_ms_p50=float(np.percentile(lat, 50)),
        latency_ms_p95=float(np.percentile(lat, 95)),
        latency_ms_p99=float(np.percentile(lat, 99)),
        latency_ms_max=float(lat.max()),
        mean_batch=float(np.mean(batches)) if batches else 0.0,
        kept_up=dropped == 0 and late <= 0.01 * offered and len(latencies) == offered,
    )
