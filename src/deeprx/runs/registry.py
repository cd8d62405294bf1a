"""Shipped, pretrained receivers: a small registry like timm's ``pretrained=True``.

Each entry is a folder ``src/deeprx/weights/<name>/`` with the run's own checkpoint (``checkpoint.safetensors``
and ``checkpoint.json``: resolved config, steps, training log, device, training seconds) and ``record.json``,
which says how it was made and what it measured:

* ``command``: the exact ``deeprx`` command that trained it (re-running it re-makes the weights), ``commit``:
  the commit it ran at, ``device``, ``wall_seconds``, ``steps`` and ``slots_seen``;
* ``tensors_sha256``: the hash of the tensor file, checked on every load;
* ``evaluation``: BER vs SINR of the receiver and both classical baselines on every slot of the profile's
  test set, measured by ``deeprx pretrained add`` (:func:`deeprx.evaluation.evaluate_run`);
* ``checks`` (format 2): BER at chosen SINR points on the test sets of several seeds, the tuning seed beside
  fresh ones, with 95 % intervals and the slots that hold the errors, each with the command and commit that
  measured it (``deeprx pretrained check``, :func:`add_check`);
* ``suites`` (format 3): per named evaluation suite (``robustness``: TDL, UMi, 40-80 m/s, 300-1000 ns beside
  the cpu test set), each case's BER curves of the receiver and both baselines and its BER at the highest
  SINR over LS-LMMSE's, with the command and commit (``deeprx pretrained check NAME --suite robustness``,
  :func:`add_suite`).
* ``superseded`` (format 4): empty for a receiver offered for use; else ``by`` (the shipped receiver to use
  instead), ``why`` and the ``commit`` that said so (``deeprx pretrained supersede``, :func:`supersede`). A
  superseded receiver stays shipped, because records and studies name it (a teacher of a shipped student, the
  start of a fine-tune), but :func:`current_names` leaves it out, and so do ``recommend`` and the frontier.

Entries are made by ``deeprx pretrained add`` from a finished run folder of ``deeprx train``, and checked by
``deeprx pretrained check``, never edited by hand. Guarantees: a name resolves to a folder whose tensors match
the record's hash (else :class:`InputError`); the record's format carries a version (``RECORD_VERSION``);
records of formats 1 to 3 (no ``checks``, no ``suites``, no ``superseded``) still read.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deeprx.io import InputError, read_json, sha256_file, write_json

WEIGHTS_DIR = Path(__file__).parent.parent / "weights"  # package data: src/deeprx/weights/
RECORD = "record.json"
RECORD_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, RECORD_VERSION)  # format 1 had no checks, format 2 no suites, format 3 no superseded


@dataclass(frozen=True)
class PretrainedRecord:
    """How a shipped checkpoint was made, and what it measured (see the module docstring)."""

    name: str
    model: str
    features: str
    profile: str
    dmrs_symbols: int
    command: str
    commit: str
    device: str
    wall_seconds: float
    steps: int
    slots_seen: int
    tensors_sha256: str
    description: str = ""
    evaluation: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    suites: dict[str, dict[str, Any]] = field(default_factory=dict)
    superseded: dict[str, str] = field(default_factory=dict)
    format_version: int = RECORD_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PretrainedRecord:
        if d.get("format_version") not in READABLE_VERSIONS:
            raise InputError(f"pretrained record {d.get('name')!r} has format {d.get('format_version')}, "
                             f"this deeprx reads {list(READABLE_VERSIONS)}; update deeprx")  # fmt: skip
        return cls(**{**d, "format_version": RECORD_VERSION})


def names(root: Path = WEIGHTS_DIR) -> list[str]:
    """Names of the shipped checkpoints."""
    return sorted(p.parent.name for p in root.glob(f"*/{RECORD}"))


def current_names(root: Path = WEIGHTS_DIR) -> list[str]:
    """Names of the shipped checkpoints offered for use: those no other one supersedes."""
    return [n for n in names(root) if not record(n, root).superseded]


def record(name: str, root: Path = WEIGHTS_DIR) -> PretrainedRecord:
    path = root / name / RECORD
    if not path.exists():
        known = ", ".join(names(root)) or "none"
        raise InputError(f"no pretrained checkpoint named {name!r}; shipped: {known} (deeprx pretrained list)")
    return PretrainedRecord.from_dict(read_json(path, "pretrained record"))


@functools.cache
def _verified(folder: Path, tensors_sha256: str, mtime_ns: int) -> bool:
    """Whether the tensor file (as of ``mtime_ns``) has the record's hash; hashed once per process."""
    from deeprx.runs.checkpoint import TENSORS

    return sha256_file(folder / TENSORS) == tensors_sha256


def resolve(name: str, root: Path = WEIGHTS_DIR) -> Path:
    """The run folder of a shipped checkpoint, after checking its tensors against the record's hash (once per
    process and file version: a study names its teacher many times)."""
    from deeprx.runs.checkpoint import TENSORS

    rec = record(name, root)
    folder = root / name
    if not (folder / TENSORS).exists():
        raise InputError(f"pretrained checkpoint {name!r} lacks its tensors; reinstall deeprx")
    if not _verified(folder, rec.tensors_sha256, (folder / TENSORS).stat().st_mtime_ns):
        raise InputError(f"pretrained checkpoint {name!r} fails its hash check; reinstall deeprx")
    return folder


def is_pretrained(name: str, root: Path = WEIGHTS_DIR) -> bool:
    return (root / name / RECORD).exists()


def add(
    run_dir: Path,
    name: str,
    command: str,
    commit: str,
    evaluation: dict[str, Any],
    description: str = "",
    root: Path = WEIGHTS_DIR,
) -> PretrainedRecord:
    """Ship a finished run folder under ``name``: copy its checkpoint and write its record."""
    from deeprx.runs import checkpoint

    ckpt = checkpoint.load(run_dir)
    if ckpt.step < ckpt.config.train.steps:
        raise InputError(f"{run_dir} stopped at step {ckpt.step} of {ckpt.config.train.steps}; finish it first")
    folder = root / name
    if folder.exists():
        raise InputError(f"a pretrained checkpoint named {name!r} exists; remove {folder} to replace it")
    cfg = ckpt.config
    rec = PretrainedRecord(
        name=name,
        model=cfg.model,
        features=cfg.features,
        profile=cfg.profile,
        dmrs_symbols=cfg.link.dmrs_symbols,
        command=command,
        commit=commit,
        device=str(ckpt.extra.get("device", "")),
        wall_seconds=float(ckpt.extra.get("train_seconds", 0.0)),
        steps=ckpt.step,
        slots_seen=ckpt.step * cfg.train.batch_size,
        tensors_sha256=sha256_file(run_dir / checkpoint.TENSORS),
        description=description,
        evaluation=evaluation,
    )
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in (checkpoint.TENSORS, checkpoint.META):
        shutil.copy2(run_dir / f, tmp / f)
    write_json(tmp / RECORD, rec.to_dict())
    tmp.rename(folder)  # atomic: a half-copied entry never carries the name
    return rec


def add_check(name: str, check: dict[str, Any], root: Path = WEIGHTS_DIR) -> PretrainedRecord:
    """Record ``check`` (a :func:`seed_check`) in the record of ``name``, replacing an earlier check of the same
    seeds, SINR points and slots; the record is rewritten atomically (format 2), the tensors are untouched."""
    resolve(name, root)  # the tensors it speaks of are the shipped ones
    same = ("seeds", "sinr_db", "slots_per_point")
    kept = [c for c in record(name, root).checks if any(c.get(k) != check[k] for k in same)]
    return _rewrite(name, root, checks=[*kept, check])


def add_suite(name: str, result: dict[str, Any], root: Path = WEIGHTS_DIR) -> PretrainedRecord:
    """Record ``result`` (a :func:`suite_result`) in the record of ``name`` under its suite's name, replacing an
    earlier one; atomically, the tensors untouched."""
    resolve(name, root)
    return _rewrite(name, root, suites={**record(name, root).suites, result["suite"]: result})


def _rewrite(name: str, root: Path, **changes: Any) -> PretrainedRecord:
    """The record of ``name`` with ``changes``, written back atomically (at this format)."""
    rec = dataclasses.replace(record(name, root), **changes)
    write_json(root / name / RECORD, rec.to_dict())
    return rec


def suite_result(data: dict[str, Any], rows: list[dict[str, Any]], command: str, commit: str, device: str) -> dict:
    """A suite's result for a record, from :func:`deeprx.evaluation.evaluate_suite` and its ``suite_rows``: per case,
    every receiver's BER per point with both intervals and the slots with errors, and the ratio to LS-LMMSE."""
    keep = ("ber", "bit_errors", "ci_bits", "ci_slots", "slots", "slots_with_errors")
    cases = []
    for case, row in zip(data["cases"], rows, strict=True):
        cases.append({
            "case": case["case"],
            "slug": case["slug"],
            "overrides": case["overrides"],
            "sinr_db": case["summary"][0]["points"]["sinr_db"],
            "receivers": {r["receiver"]: {k: r["points"][k] for k in keep} for r in case["summary"]},
            "ratio_to_ls_at_max_sinr": row["ratio_to_ls"],
        })  # fmt: skip
    return {"suite": data["suite"], "command": command, "commit": commit, "device": device, "seeds": data["seeds"],
            "cases": cases}  # fmt: skip


def seed_check(evaluation: dict[str, Any], command: str, commit: str, device: str) -> dict[str, Any]:
    """A check for a record from :func:`deeprx.evaluation.evaluate_checkpoint` over several seeds: per seed and
    pooled, each receiver's BER per point with both 95 % intervals and the slots with errors."""

    def points(rows: list[dict[str, Any]]) -> dict[str, Any]:
        keep = ("ber", "bit_errors", "ci_bits", "ci_slots", "slots", "slots_with_errors")
        return {r["receiver"]: {k: r["points"][k] for k in keep} for r in rows}

    per_seed = evaluation.get("per_seed") or {evaluation["seeds"][0]: evaluation["summary"]}
    first = evaluation["summary"][0]["points"]
    return {
        "command": command,
        "commit": commit,
        "device": device,
        "seeds": evaluation["seeds"],
        "sinr_db": first["sinr_db"],
        "slots_per_point": first["slots"][0] // len(evaluation["seeds"]),
        "per_seed": {str(seed): points(rows) for seed, rows in per_seed.items()},
        "pooled": points(evaluation["summary"]),
    }


def supersede(name: str, by: str, why: str, commit: str, root: Path = WEIGHTS_DIR) -> PretrainedRecord:
    """Mark ``name`` as superseded by the shipped receiver ``by`` (same DMRS setting, itself current), saying
    ``why``; the record is rewritten atomically, the tensors untouched."""
    rec, successor = record(name, root), record(by, root)
    if by == name:
        raise InputError(f"{name!r} cannot supersede itself; name the receiver to use instead")
    if successor.superseded:
        raise InputError(f"{by!r} is itself superseded by {successor.superseded['by']!r}; name that one")
    if successor.dmrs_symbols != rec.dmrs_symbols:
        raise InputError(f"{by!r} has {successor.dmrs_symbols} DMRS symbol(s), {name!r} has {rec.dmrs_symbols}; "
                         "name a receiver of the same setting")  # fmt: skip
    if not why.strip():
        raise InputError("say why it is superseded: --why TEXT")
    return _rewrite(name, root, superseded={"by": by, "why": why.strip(), "commit": commit})
