"""A training run's scalars as TensorBoard events in its run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class TensorBoardLog:
    """The run's scalars as TensorBoard events in its run folder (``torch.utils.tensorboard``), at the steps of
    the checkpoint log: ``train/loss``, ``train/lr``, ``train/slots_per_s``, and at every checkpoint
    ``val_ber/<SINR>dB/deeprx`` beside ``val_ber/<SINR>dB/ls_lmmse`` (the validation set's BER).

    A resumed run drops the events logged after its checkpoint (``purge_step``), so its curves do not fold back.
    The events file is opened at the first scalar, so resuming a finished run leaves no empty one behind.
    """

    def __init__(self, run_dir: Path, resumed_at: int) -> None:
        self._run_dir = run_dir
        self._resumed_at = resumed_at
        self._opened: Any = None

    @property
    def _writer(self) -> Any:
        if self._opened is None:
            from torch.utils.tensorboard import SummaryWriter

            self._opened = SummaryWriter(str(self._run_dir), purge_step=self._resumed_at or None)
        return self._opened

    def train(self, step: int, loss: float, lr: float, slots_per_s: float) -> None:
        self._writer.add_scalar("train/loss", loss, step)
        self._writer.add_scalar("train/lr", lr, step)
        self._writer.add_scalar("train/slots_per_s", slots_per_s, step)

    def validation(self, step: int, sinr_db: list[float], ber: list[float], ls_ber: list[float]) -> None:
        for sinr, ours, ls in zip(sinr_db, ber, ls_ber, strict=True):
            self._writer.add_scalar(f"val_ber/{sinr:g}dB/deeprx", ours, step)
            self._writer.add_scalar(f"val_ber/{sinr:g}dB/ls_lmmse", ls, step)
        self._writer.flush()

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()
