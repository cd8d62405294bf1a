"""What every table says of a BER curve: one summary (:class:`CurveSummary`) and one table of them, drawn by the
console, the markdown reports and ``--json`` alike.

A summary holds the geometric-mean BER, the SINR at the target BER (``None``: not reached), the BER at the highest
SINR with both 95 % intervals and the slots that hold its errors, every point's BER with its intervals, and, in a
table beside LS-LMMSE, the gain over it at the target and the flag of a neural receiver never better than it.
On a coded link it also holds the transport blocks' side (:class:`CodedSummary`): the SINR at BLER 10 % and 1 %,
and every point's BLER with its interval and the goodput.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from deeprx.evaluate.ber import BerCurve, never_better, sinr_gain_db
from deeprx.evaluate.llr_quality import CALIBRATION_EDGES
from deeprx.link.baselines import BASELINES, LS_LMMSE, PERFECT_CSI_LMMSE

Interval = list[float]
BLER_TARGETS = (0.1, 0.01)  # the BLERs every coded table gives the SINR at (a link's usual operating points)


@dataclass(frozen=True)
class CodedSummary:
    """The coded side of a curve: ``sinr_at_bler_db`` at each of :data:`BLER_TARGETS` (``None``: not reached),
    the TB size, and per point the BLER, its Clopper-Pearson 95 % interval, the block errors and blocks, and the
    goodput in decoded information bits per slot and in Mbit/s at the link's slot duration.
    ``from_perfect_csi_db``: how many dB more SINR than perfect-CSI LMMSE it needs at each target (made beside
    that curve; ``None``: either does not reach it)."""

    tb_size: int
    sinr_at_bler_db: dict[str, float | None]
    points: dict[str, list]
    from_perfect_csi_db: dict[str, float | None] | None = None

    @classmethod
    def of(cls, curve: BerCurve, slot_duration_s: float, genie: BerCurve | None = None) -> CodedSummary:
        goodput = curve.goodput_bits_per_slot()
        at = {f"{t:g}": curve.sinr_at_bler(t) for t in BLER_TARGETS}
        from_genie = None
        if genie is not None and genie.coded:
            from_genie = {}
            for t in BLER_TARGETS:
                mine, best = at[f"{t:g}"], genie.sinr_at_bler(t)
                from_genie[f"{t:g}"] = None if mine is None or best is None else mine - best
        return cls(
            tb_size=curve.tb_size,
            sinr_at_bler_db=at,
            from_perfect_csi_db=from_genie,
            points={
                "bler": curve.bler,
                "bler_ci": [list(ci) for ci in curve.bler_intervals()],
                "block_errors": curve.block_errors,
                "blocks": curve.blocks,
                "goodput_bits_per_slot": goodput,
                "goodput_mbps": [g / slot_duration_s / 1e6 for g in goodput],
            },
        )


@dataclass(frozen=True)
class CurveSummary:
    """One receiver's curve in a table (the module docstring); ``versus_ls``: made beside LS-LMMSE, so
    ``gain_over_ls_db`` and ``never_better_than_ls`` are measured (and written)."""

    receiver: str
    geometric_mean_ber: float
    sinr_at_target_db: float | None
    ber_at_max_sinr: float
    ber_at_max_sinr_ci_bits: Interval | None = None
    ber_at_max_sinr_ci_slots: Interval | None = None
    slots_with_errors_at_max_sinr: int | None = None
    slots_at_max_sinr: int | None = None
    points: dict[str, Any] = dataclasses.field(default_factory=dict)
    gain_over_ls_db: float | None = None
    never_better_than_ls: bool = False
    coded: CodedSummary | None = None
    versus_ls: bool = False

    @classmethod
    def of(
        cls,
        curve: BerCurve,
        target_ber: float,
        ls: BerCurve | None = None,
        slot_duration_s: float | None = None,
        genie: BerCurve | None = None,
    ) -> CurveSummary:
        """The summary of ``curve``; with ``ls`` (LS-LMMSE's curve on the same slots) also the gain over it and
        the flag; a coded curve's with its coded side (goodput per second at ``slot_duration_s``, the distance to
        ``genie``, perfect-CSI LMMSE's curve on the same slots, at each BLER target)."""
        iv = curve.intervals()
        neural = curve.receiver not in BASELINES
        return cls(
            receiver=curve.receiver,
            geometric_mean_ber=curve.geometric_mean_ber(),
            sinr_at_target_db=curve.sinr_at_ber(target_ber),
            ber_at_max_sinr=curve.ber[-1],
            ber_at_max_sinr_ci_bits=iv["ci_bits"][-1],
            ber_at_max_sinr_ci_slots=iv["ci_slots"][-1],
            slots_with_errors_at_max_sinr=iv["slots_with_errors"][-1],
            slots_at_max_sinr=iv["slots"][-1],
            points={"sinr_db": curve.sinr_db, "ber": curve.ber, "bit_errors": curve.bit_errors, **iv},
            # a neural receiver that beats LS-LMMSE nowhere is flagged in every report
            gain_over_ls_db=None if ls is None or curve is ls else sinr_gain_db(curve, ls, target_ber),
            never_better_than_ls=bool(neural and ls is not None and never_better(curve, ls)),
            coded=CodedSummary.of(curve, slot_duration_s, genie) if curve.coded and slot_duration_s else None,
            versus_ls=ls is not None,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CurveSummary:
        coded = CodedSummary(**d["coded"]) if d.get("coded") else None
        return cls(**{**d, "coded": coded}, versus_ls="gain_over_ls_db" in d)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        del d["versus_ls"]
        if not self.versus_ls:
            del d["gain_over_ls_db"], d["never_better_than_ls"]
        if self.coded is None:  # an uncoded summary reads as before the coded link
            del d["coded"]
        return d

    @property
    def high_sinr_cell(self) -> str:
        """The BER at the highest SINR for a table: ``1.7e-04 [9.1e-05, 2.9e-04] (11/1024 slots)``, the interval
        over slots where the curve kept them (else Clopper-Pearson on bits), and the slots with errors; a point
        without errors shows Clopper-Pearson's upper end: ``0 (< 7.2e-06)``."""
        ci = self.ber_at_max_sinr_ci_slots or self.ber_at_max_sinr_ci_bits
        if self.ber_at_max_sinr == 0 and self.ber_at_max_sinr_ci_bits:
            text = f"0 (< {self.ber_at_max_sinr_ci_bits[1]:.1e})"
        else:
            text = f"{self.ber_at_max_sinr:.2e}" + (f" [{ci[0]:.1e}, {ci[1]:.1e}]" if ci else "")
        if self.slots_at_max_sinr:
            text += f" ({self.slots_with_errors_at_max_sinr}/{self.slots_at_max_sinr} slots)"
        return text


def summarize(curves: list[BerCurve], target_ber: float, slot_duration_s: float | None = None) -> list[CurveSummary]:
    """Every curve's summary beside LS-LMMSE (when one of ``curves`` is LS-LMMSE's); coded curves with their
    coded side where the link's ``slot_duration_s`` is given."""
    ls = next((c for c in curves if c.receiver == LS_LMMSE), None)
    genie = next((c for c in curves if c.receiver == PERFECT_CSI_LMMSE), None)
    return [CurveSummary.of(c, target_ber, ls, slot_duration_s, genie) for c in curves]


def _dbs(value: float | None, spec: str) -> str:
    return "not reached" if value is None else f"{value:{spec}} dB"


def summary_table(rows: list[CurveSummary], target_ber: float) -> tuple[list[str], list[list[str]]]:
    """The one table of summaries (of curves on the same SINR points): its header and its rows of cells, with the
    gain column where the rows were made beside LS-LMMSE."""
    gains = all(r.versus_ls for r in rows)
    at = f"{rows[0].points['sinr_db'][-1]:g} dB" if rows and rows[0].points else "max SINR"
    header = ["receiver", "geo-mean BER (log10)", f"SINR at BER {target_ber:g}",
              f"BER at {at} [95 % CI over slots] (slots with errors)"]  # fmt: skip
    cells = [[r.receiver, f"{r.geometric_mean_ber:.3f}", _dbs(r.sinr_at_target_db, ".2f"), r.high_sinr_cell]
             for r in rows]  # fmt: skip
    if gains:
        header.append("gain over LS-LMMSE")
        for row, r in zip(cells, rows, strict=True):
            row.append("-" if r.gain_over_ls_db is None else f"{r.gain_over_ls_db:+.2f} dB")
    if rows and all(r.coded for r in rows):
        genie = all(r.coded.from_perfect_csi_db is not None for r in rows)
        header += [*(f"SINR at BLER {t:g}" + (" (from perfect CSI)" if genie else "") for t in BLER_TARGETS),
                   f"goodput at {at} (Mbit/s)"]  # fmt: skip
        for row, r in zip(cells, rows, strict=True):
            for t in BLER_TARGETS:
                cell = _dbs(r.coded.sinr_at_bler_db[f"{t:g}"], ".2f")
                gap = r.coded.from_perfect_csi_db[f"{t:g}"] if genie else None
                row.append(cell if gap is None or r.receiver == PERFECT_CSI_LMMSE else f"{cell} ({gap:+.2f} dB)")
            row.append(f"{r.coded.points['goodput_mbps'][-1]:.2f}")
    return header, cells


def calibration_table(curves: list[BerCurve]) -> tuple[list[str], list[list[str]]]:
    """Coded curves' LLR calibration as one table: per bin of |LLR| (:data:`CALIBRATION_EDGES`), each receiver's
    observed error probability vs the one its LLRs predict, and the share of its bits in the bin."""
    edges = [*CALIBRATION_EDGES, None]
    header = ["|LLR|", *(f"{c.receiver}: observed vs predicted (share of bits)" for c in curves)]
    totals = [sum(c.calibration[0]) for c in curves]
    cells = []
    for b in range(len(CALIBRATION_EDGES)):
        hi = edges[b + 1]
        row = [f"[{edges[b]:g}, {hi:g})" if hi is not None else f">= {edges[b]:g}"]
        for c, total in zip(curves, totals, strict=True):
            bits, errors, predicted = (c.calibration[k][b] for k in range(3))
            row.append("-" if bits == 0 else f"{errors / bits:.1e} vs {predicted / bits:.1e} ({bits / total:.1%})")
        cells.append(row)
    return header, cells


# Coarse |LLR| ranges of the one-row-per-receiver calibration check, as bin indices of CALIBRATION_EDGES.
CALIBRATION_GROUPS = (("[0, 2)", range(0, 3)), ("[2, 4)", range(3, 5)), ("[4, 8)", range(5, 7)),
                      (">= 8", range(7, len(CALIBRATION_EDGES))))  # fmt: skip


def llr_quality_table(
    curves: list[BerCurve], at_sinr_db: tuple[float, ...] | None = None
) -> tuple[list[str], list[list[str]]]:
    """One row per coded curve: its BMD rate at the points of ``at_sinr_db`` (bits per channel use; default the
    points a third and two thirds up the grid) and, per range of |LLR| (:data:`CALIBRATION_GROUPS`), its observed
    over its predicted errors (1: calibrated, > 1: over-confident, < 1: under-confident) with the share of its bits
    there."""
    if at_sinr_db is None:
        grid = curves[0].sinr_db
        at_sinr_db = (grid[len(grid) // 3], grid[2 * len(grid) // 3])
    header = ["receiver", *(f"BMD rate at {x:g} dB" for x in at_sinr_db),
              *(f"observed / predicted errors at |LLR| {g}" for g, _ in CALIBRATION_GROUPS)]  # fmt: skip
    cells = []
    for c in curves:
        bits, errors, predicted = c.calibration
        total = sum(bits)
        row = [c.receiver, *(f"{c.bmd_rate[c.sinr_db.index(x)]:.2f}" if x in c.sinr_db else "-" for x in at_sinr_db)]
        for _, bins in CALIBRATION_GROUPS:
            n, e, p = (sum(v[b] for b in bins) for v in (bits, errors, predicted))
            share = f"{n / total:.1%} of bits"
            row.append("-" if n == 0 else f"{e / p:.2f} ({share})" if e else f"0 of {p:.2g} ({share})")
        cells.append(row)
    return header, cells


def temperature_table(summary: list[CurveSummary], temperature: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The temperature fits (``data["temperature"]`` of an evaluation) beside ``summary`` (its rows as they are):
    per receiver the fitted scale, the held-out cross-entropy as-is and scaled, and the SINR at each BLER target
    as-is and with the scaled LLRs, on the same test slots."""
    scaled = {r.receiver: r for r in (CurveSummary.from_dict(d) for d in temperature["summary"])}
    header = ["receiver", f"LLR scale (fitted on seed {temperature['held_out_seed']})",
              "cross-entropy, bit/bit: as-is -> scaled",
              *(f"SINR at BLER {t:g}: as-is -> scaled" for t in BLER_TARGETS)]  # fmt: skip
    cells = []
    for row in summary:
        fit = temperature["fits"].get(row.receiver)
        if fit is None or row.coded is None:
            continue
        other = scaled[fit["scaled_receiver"]].coded
        cells.append([row.receiver, f"{fit['scale']:.3f}", f"{fit['loss_bits']:.4f} -> {fit['scaled_loss_bits']:.4f}",
                      *(f"{_dbs(row.coded.sinr_at_bler_db[f'{t:g}'], '.2f')} -> "
                        f"{_dbs(other.sinr_at_bler_db[f'{t:g}'], '.2f')}" for t in BLER_TARGETS)])  # fmt: skip
    return header, cells


def markdown_table(header: list[str], cells: list[list[str]]) -> list[str]:
    """A table as markdown lines (a ``|`` inside a cell, as in ``|LLR|``, escaped)."""

    def line(row: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in cells)]


def flags(rows: list[CurveSummary]) -> list[str]:
    """One line per neural receiver no better than LS-LMMSE at any SINR point."""
    return [f"{r.receiver} is no better than LS-LMMSE at any SINR point (broken or under-trained)"
            for r in rows if r.never_better_than_ls]  # fmt: skip
