"""Files: atomic writes, output folders claimed before work starts, and the project's error type for bad input.

Guarantees:
- :func:`atomic_write` leaves either the old file or the new one, never a half-written file; its temporary
  file is named after the writing process, so :func:`remove_stale_temporaries` can delete the leftovers of
  a killed process (and only those) when a folder is next claimed.
- :func:`claim_output_folder` checks that a folder is a writable folder before any work starts, and holds
  an exclusive lock on it (``fcntl.flock`` on ``.deeprx.lock``) for as long as the command runs: a second
  process that asks for the same folder is refused at once. The kernel drops the lock when the process
  dies, so a killed run never leaves a folder locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

LOCK_FILE = ".deeprx.lock"
# .<target name>.<pid of the writer>-<random>.tmp, as atomic_write names its temporary files
_TEMPORARY = re.compile(r"^\..+\.(\d+)-[^.]+\.tmp$")


class InputError(Exception):
    """Bad input (missing or corrupt file, mismatched checkpoint, ...): the CLI prints it and exits 2."""


def os_error_message(err: OSError) -> str:
    """One line for an operating-system error: what failed, on which path, and what to do."""
    where = f" ({err.filename})" if err.filename else ""
    what = err.strerror or str(err)
    if err.errno == errno.ENOSPC:
        fix = "free disk space (or choose another --out) and re-run; interrupted training resumes with --resume"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "choose a writable --out"
    elif err.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        fix = "choose another path"
    elif err.errno == errno.ENOENT:
        fix = "check the path"
    else:
        fix = "check the path and the disk"
    return f"{what}{where}: {fix}"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file in the same folder, then rename it onto ``path``.

    A crash leaves either the old file or the new one, never a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o644)  # mkstemp makes 0600: results are meant to be read by others
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files of :func:`atomic_write` under ``folder`` whose writing process is gone."""
    removed = []
    for path in folder.rglob(".*.tmp"):
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def check_writable_folder(folder: Path, option: str = "--out") -> None:
    """Create ``folder`` if needed and prove it writable with a probe file; :class:`InputError` if not."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{option} {folder} is a file, not a folder; choose another {option}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise InputError(f"{option} {folder} is not a writable folder ({reason}); choose another {option}") from None


@contextlib.contextmanager
def claim_output_folder(folder: Path, option: str = "--out") -> Iterator[Path]:
    """Check ``folder`` (see :func:`check_writable_folder`), lock it for this process and clean up the
    temporary files a killed run left in it; released when the block ends."""
    check_writable_folder(folder, option)
    lock_path = folder / LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise InputError(
                f"{option} {folder} is in use by another deeprx process (pid {holder}); "
                f"wait for it to finish or choose another {option}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        remove_stale_temporaries(folder)
        yield folder
    finally:
        os.close(fd)  # releases the lock


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2, default=_json_default) + "\n"))


def read_json(path: Path, what: str) -> Any:
    if not path.exists():
        raise InputError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{what} is unreadable or corrupt ({path}: {e}); delete it and re-run") from e


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
