"""Seeded, fixed evaluation sets in HDF5, so every model and baseline sees the same received signals.

File layout (``P`` SINR points, ``N`` slots per point):

* ``y``, ``h``: ``[P, N, n_rx, 14, n_sc]`` complex64
* ``bits``: ``[P, N, n_data_re, bits_per_symbol]`` uint8 (gzip)
* ``info_bits``: ``[P, N, tb_size]`` uint8 (gzip), on a coded link only: each slot's transport block, so every
  receiver is decoded on the same blocks (sets of an uncoded link, and older ones, have none)
* ``noise_var``, ``sinr_db``: ``[P, N]`` float32
* ``x_pilot`` ``[14, n_sc]`` complex64, ``data_mask`` ``[14, n_sc]`` bool
* attributes: ``config`` (JSON of link, eval and seed), ``config_hash`` and ``sha256`` over all datasets.

Slots are drawn in small batches (``GEN_BATCH``) so each SINR point mixes many channel draws. Test sets are
always simulated on the CPU, whatever the run's device: Sionna's and torch's random generators differ between
CPU and CUDA, and the same seed must give the same test-set bytes on every machine (the checksum shows it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import torch

from deeprx.config import LinkConfig, RunConfig, config_hash, derive_seed
from deeprx.io import InputError, atomic_write, remove_stale_temporaries
from deeprx.link.simulator import Slot, UplinkSimulator, raw_ls_estimate
from deeprx.runtime import CPU

GEN_BATCH = 8
_DATASETS = ("y", "h", "bits", "noise_var", "sinr_db", "x_pilot", "data_mask")
_CODED_DATASETS = ("info_bits",)  # present on a coded link's sets only, checksummed where present


# The link's ranges that only training draws from: the test set draws its channels from ``eval``'s.
TRAINING_RANGES = ("channel_models", "speed_mps", "delay_spread_ns", "sinr_db")


# Link options added after the key scheme: they enter a key (a test set's, a trial's) only when set away from
# their defaults, so adding one keeps every stored key.
_LINK_DEFAULTS = LinkConfig()
LINK_KEYED_ONLY_WHEN_SET: dict[str, object] = {f: getattr(_LINK_DEFAULTS, f) for f in ("mcs_index", "mcs_table")}


def testset_key(cfg: RunConfig) -> dict:
    """What determines a test set: the link's grid, code and impairments (not its training ranges), the
    evaluation settings and the seed. Runs trained on different mixes are thus tested on the same slots."""
    link = {
        k: v
        for k, v in cfg.to_dict()["link"].items()
        if k not in TRAINING_RANGES and (k not in LINK_KEYED_ONLY_WHEN_SET or v != LINK_KEYED_ONLY_WHEN_SET[k])
    }
    return {"link": link, "eval": cfg.to_dict()["eval"], "seed": cfg.seed}


def testset_path(cfg: RunConfig, folder: Path) -> Path:
    return folder / f"testset-{config_hash(testset_key(cfg))}.h5"


class TestSet:
    """A read-only view of a test set file; build one with :meth:`build` or :meth:`ensure`."""

    __test__ = False  # not a pytest class

    def __init__(self, path: Path, cfg: RunConfig) -> None:
        if not path.exists():
            raise InputError(f"test set not found: {path}")
        try:
            with h5py.File(path, "r") as f:
                stored_hash = f.attrs["config_hash"]
                stored_sha = f.attrs["sha256"]
                actual_sha = _checksum(f)
                self.sinr_points_db = [float(v) for v in f["sinr_db"][:, 0]]
                self.slots_per_point = int(f["y"].shape[1])
                self.x_pilot = torch.from_numpy(f["x_pilot"][()])
                self.data_mask = torch.from_numpy(f["data_mask"][()])
                self.coded = "info_bits" in f  # its slots carry transport blocks
        except (OSError, KeyError) as e:
            raise InputError(f"test set {path} is unreadable or corrupt ({e}); delete it to rebuild") from e
        if stored_sha != actual_sha:
            raise InputError(f"test set {path} fails its checksum; delete it to rebuild")
        if stored_hash != config_hash(testset_key(cfg)):
            raise InputError(f"test set {path} was built for another configuration; delete it or use its config")
        self.path = path
        self.link = cfg.link

    @classmethod
    def ensure(cls, cfg: RunConfig, folder: Path, show_progress: bool = True) -> TestSet:
        """Open the test set for ``cfg`` in ``folder``, building it first if it is not there."""
        path = testset_path(cfg, folder)
        if not path.exists():
            if folder.is_dir():
                remove_stale_temporaries(folder)  # a build killed half-way left its temporary file
            cls.build(cfg, path, show_progress)
        return cls(path, cfg)

    @staticmethod
    def build(cfg: RunConfig, path: Path, show_progress: bool = True) -> None:
        from rich.progress import Progress

        sim = UplinkSimulator(cfg.link, CPU)
        points = cfg.eval.sinr_points_db
        n = cfg.eval.slots_per_point
        shape = (len(points), n, cfg.link.n_rx, 14, cfg.link.n_subcarriers)

        def write(tmp: Path) -> None:
            with h5py.File(tmp, "w") as f, Progress(disable=not show_progress) as progress:
                task = progress.add_task("test set", total=len(points) * n)
                y = f.create_dataset("y", shape, np.complex64)
                h = f.create_dataset("h", shape, np.complex64)
                bits = f.create_dataset(
                    "bits", (len(points), n, sim.n_data_re, sim.bits_per_symbol), np.uint8, compression="gzip"
                )
                info_bits = None
                if sim.codec is not None:
                    info_shape = (len(points), n, sim.codec.tb_size)
                    info_bits = f.create_dataset("info_bits", info_shape, np.uint8, compression="gzip")
                noise_var = f.create_dataset("noise_var", (len(points), n), np.float32)
                sinr = f.create_dataset("sinr_db", (len(points), n), np.float32)
                f["x_pilot"] = sim.x_pilot.numpy()
                f["data_mask"] = sim.data_mask.numpy()
                for p, point in enumerate(points):
                    for start in range(0, n, GEN_BATCH):
                        size = min(GEN_BATCH, n - start)
                        s = sim.sample(
                            size,
                            derive_seed(cfg.seed, "test", p, start),
                            sinr_db=point,
                            channel_models=cfg.eval.channel_models,
                            speed_mps=cfg.eval.speed_mps,
                            delay_spread_ns=cfg.eval.delay_spread_ns,
                        )
                        sl = slice(start, start + size)
                        y[p, sl], h[p, sl] = s.y.numpy(), s.h.numpy()
                        bits[p, sl] = s.bits.numpy().astype(np.uint8)
                        if info_bits is not None:
                            info_bits[p, sl] = s.info_bits.numpy().astype(np.uint8)
                        noise_var[p, sl], sinr[p, sl] = s.noise_var.numpy(), s.sinr_db.numpy()
                        progress.advance(task, size)
                f.attrs["config"] = json.dumps(testset_key(cfg))
                f.attrs["config_hash"] = config_hash(testset_key(cfg))
                f.attrs["sha256"] = _checksum(f)

        atomic_write(path, write)

    def batches(self, point: int, batch_size: int, device: torch.device = CPU) -> Iterator[Slot]:
        """The slots of SINR point ``point`` in stored order, ``batch_size`` at a time, on ``device``."""
        x_pilot, data_mask = self.x_pilot.to(device), self.data_mask.to(device)
        with h5py.File(self.path, "r") as f:
            coded = "info_bits" in f
            for start in range(0, self.slots_per_point, batch_size):
                sl = slice(start, min(start + batch_size, self.slots_per_point))
                y = torch.from_numpy(f["y"][point, sl]).to(device)
                info = torch.from_numpy(f["info_bits"][point, sl].astype(np.float32)).to(device) if coded else None
                yield Slot(
                    y=y,
                    h=torch.from_numpy(f["h"][point, sl]).to(device),
                    h_ls=raw_ls_estimate(y, x_pilot),
                    x_pilot=x_pilot,
                    data_mask=data_mask,
                    bits=torch.from_numpy(f["bits"][point, sl].astype(np.float32)).to(device),
                    noise_var=torch.from_numpy(f["noise_var"][point, sl]).to(device),
                    sinr_db=torch.from_numpy(f["sinr_db"][point, sl]).to(device),
                    info_bits=info,
                )


def _checksum(f: h5py.File) -> str:
    digest = hashlib.sha256()
    for name in (*_DATASETS, *(name for name in _CODED_DATASETS if name in f)):
        data = f[name]
        if data.ndim >= 2 and data.shape[0] > 1:
            for i in range(data.shape[0]):  # one SINR point at a time keeps memory flat
                digest.update(np.ascontiguousarray(data[i]).tobytes())
        else:
            digest.update(np.ascontiguousarray(data[()]).tobytes())
    return digest.hexdigest()
