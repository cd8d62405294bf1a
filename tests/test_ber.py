"""BER formulas against values computed by hand."""

from __future__ import annotations

import math

import pytest

from deeprx.evaluate.ber import BerCurve, geometric_mean_ber, sinr_at_ber, sinr_gain_db


def test_geometric_mean_ber_is_mean_log10() -> None:
    # BERs 0.1, 0.001 and a zero-error point over 1000 bits (counts as 0.5/1000 = 5e-4)
    # log10: -1, -3, -3.30103 -> mean -2.43368
    assert geometric_mean_ber([10, 1, 0], [100, 1000, 1000]) == pytest.approx(-2.433677, abs=1e-6)


def test_geometric_mean_matches_paper_scale() -> None:
    # the paper's Table III values (-0.445 .. -1.997) are log10 means: BER 1e-2 everywhere gives -2
    assert geometric_mean_ber([10, 10], [1000, 1000]) == pytest.approx(-2.0)


def test_sinr_at_ber_interpolates_log_ber_linearly() -> None:
    assert sinr_at_ber([0, 10, 20], [1e-1, 1e-3, 1e-5], 1e-2) == pytest.approx(5.0)
    # log10(0.03) = -1.52288: 52.288 % of the way from -1 to -2
    assert sinr_at_ber([0, 10], [1e-1, 1e-2], 3e-2) == pytest.approx(5.2288, abs=1e-4)
    assert sinr_at_ber([0, 10], [1e-1, 5e-2], 1e-2) is None  # floor above target
    assert sinr_at_ber([0, 10], [1e-3, 1e-4], 1e-2) == 0.0  # already below at the first point


def test_gain_between_two_receivers() -> None:
    better = BerCurve("a", [0, 10], [1e-1, 1e-3], [100, 1], [1000, 1000])  # 1e-2 at 5 dB
    worse = BerCurve("b", [0, 10], [1e-1, 1e-2], [100, 10], [1000, 1000])  # 1e-2 at 10 dB
    assert sinr_gain_db(better, worse, 1e-2) == pytest.approx(5.0)
    floor = BerCurve("c", [0, 10], [1e-1, 5e-2], [100, 50], [1000, 1000])
    assert sinr_gain_db(better, floor, 1e-2) is None


def test_zero_error_point_uses_half_an_error() -> None:
    curve = BerCurve("z", [0, 10], [1e-1, 0.0], [100, 0], [1000, 1000])
    # second point counts as 5e-4, so 1e-3 is crossed at 10 * log(1e-1/1e-3)/log(1e-1/5e-4) dB
    expected = 10 * math.log10(1e2) / math.log10(2e2)
    assert curve.sinr_at_ber(1e-3) == pytest.approx(expected)


def test_never_better_flags_a_receiver_that_beats_the_reference_nowhere() -> None:
    from deeprx.evaluate.ber import BerCurve, never_better

    ls = BerCurve("LS-LMMSE", [0.0, 10.0, 20.0], [0.2, 0.05, 0.0], [200, 50, 0], [1000, 1000, 1000])
    worse = BerCurve("DeepRx", [0.0, 10.0, 20.0], [0.3, 0.05, 0.001], [300, 50, 1], [1000, 1000, 1000])
    better_once = BerCurve("DeepRx", [0.0, 10.0, 20.0], [0.3, 0.04, 0.0], [300, 40, 0], [1000, 1000, 1000])
    assert never_better(worse, ls)  # equal at 10 dB, worse elsewhere; 0 errors count as 0.5 < 1
    assert not never_better(better_once, ls)
    assert never_better(ls, ls)  # ties everywhere: beats it nowhere


def test_clopper_pearson_by_hand() -> None:
    from deeprx.evaluate.ber import clopper_pearson

    # 0 of 10: [0, 1 - 0.025^(1/10)]; 10 of 10: [0.025^(1/10), 1]; 5 of 10: the textbook [0.1871, 0.8129]
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025**0.1))
    assert clopper_pearson(10, 10) == (pytest.approx(0.025**0.1), 1.0)
    lo, hi = clopper_pearson(5, 10)
    assert lo == pytest.approx(0.18709, abs=1e-5) and hi == pytest.approx(0.81291, abs=1e-5)


def test_slot_bootstrap_widens_the_interval_when_errors_cluster_in_one_slot() -> None:
    from deeprx.evaluate.ber import clopper_pearson, slot_bootstrap_interval

    # 100 slots of 1,000 bits, all 100 errors in one slot: BER 1e-3. A resample holds that slot K ~ Bin(100, 0.01)
    # times, BER = K * 1e-3; P(K = 0) = 0.366 > 2.5 % and P(K <= 2) = 0.921 < 97.5 % <= P(K <= 3) = 0.982, so the
    # 95 % interval is [0, 3e-3], where Clopper-Pearson on the 100,000 bits says [8.1e-4, 1.22e-3].
    slots = [0] * 99 + [100]
    assert slot_bootstrap_interval(slots, 1000, n_boot=20_000) == (0.0, pytest.approx(3e-3))
    lo, hi = clopper_pearson(100, 100_000)
    assert lo == pytest.approx(8.137e-4, rel=1e-3) and hi == pytest.approx(1.2161e-3, rel=1e-3)
    # spread evenly over the slots the bootstrap agrees with the binomial interval
    even = slot_bootstrap_interval([1] * 100, 1000, n_boot=20_000)
    assert even == (pytest.approx(1e-3), pytest.approx(1e-3))  # every slot alike: no spread at all


def test_intervals_and_pooling_of_curves() -> None:
    a = BerCurve("r", [0.0, 10.0], [0.1, 0.0], [40, 0], [400, 400], [[10, 10, 10, 10], [0, 0, 0, 0]])
    b = BerCurve("r", [0.0, 10.0], [0.05, 0.005], [20, 2], [400, 400], [[20, 0, 0, 0], [0, 2, 0, 0]])
    iv = a.intervals()
    assert iv["slots"] == [4, 4] and iv["slots_with_errors"] == [4, 0]
    assert iv["ci_slots"][0] == [pytest.approx(0.1), pytest.approx(0.1)] and iv["ci_slots"][1] is None
    pooled = BerCurve.pooled([a, b])
    assert pooled.bit_errors == [60, 2] and pooled.bits == [800, 800] and pooled.ber == [0.075, 0.0025]
    assert pooled.slot_errors[1] == [0, 0, 0, 0, 0, 2, 0, 0]
    with pytest.raises(ValueError, match="different SINR points"):
        BerCurve.pooled([a, BerCurve("r", [0.0, 5.0], [0, 0], [0, 0], [1, 1])])


def test_the_one_summary_and_its_table_by_hand() -> None:
    from deeprx.evaluate.summary import CurveSummary, flags, markdown_table, summarize, summary_table

    ours = BerCurve("DeepRx", [0.0, 10.0], [0.1, 0.0], [100, 0], [1000, 1000], [[40, 60], [0, 0]])
    ls = BerCurve("LS-LMMSE", [0.0, 10.0], [0.2, 0.01], [200, 10], [1000, 1000], [[100, 100], [5, 5]])
    rows = summarize([ours, ls], 0.05)
    # log10(BER) interpolated in dB: ours from -1 to log10(0.5 / 1000) reaches -1.301 at 1.308 dB, LS at 4.628 dB
    assert rows[0].sinr_at_target_db == pytest.approx(10 * 0.30103 / 2.30103, abs=1e-4)
    assert rows[0].gain_over_ls_db == pytest.approx(10 * 0.60206 / 1.30103 - 10 * 0.30103 / 2.30103, abs=1e-4)
    assert rows[0].geometric_mean_ber == pytest.approx((-1 + math.log10(0.0005)) / 2)
    assert rows[1].gain_over_ls_db is None and not rows[0].never_better_than_ls
    # no errors at 10 dB: Clopper-Pearson's upper end 1 - 0.025^(1/1000); LS's 2 slots hold 5 errors each
    assert rows[0].high_sinr_cell == "0 (< 3.7e-03) (0/2 slots)"
    assert rows[1].high_sinr_cell == "1.00e-02 [1.0e-02, 1.0e-02] (2/2 slots)"
    header, cells = summary_table(rows, 0.05)
    assert header[2:] == [
        "SINR at BER 0.05",
        "BER at 10 dB [95 % CI over slots] (slots with errors)",
        "gain over LS-LMMSE",
    ]
    assert cells[0] == ["DeepRx", "-2.151", "1.31 dB", "0 (< 3.7e-03) (0/2 slots)", "+3.32 dB"] and cells[1][-1] == "-"
    assert markdown_table(["a", "b"], [["1", "2"]]) == ["| a | b |", "|---|---|", "| 1 | 2 |"]
    # a dict and back is the same summary; without LS there is no gain column and no flag
    assert CurveSummary.from_dict(rows[0].to_dict()) == rows[0]
    alone = CurveSummary.of(ours, 0.05)
    assert "gain_over_ls_db" not in alone.to_dict() and len(summary_table([alone], 0.05)[0]) == 4
    worse = BerCurve("DeepRx", [0.0, 10.0], [0.3, 0.02], [300, 20], [1000, 1000], [[150, 150], [10, 10]])
    assert flags(summarize([worse, ls], 0.05)) == [
        "DeepRx is no better than LS-LMMSE at any SINR point (broken or under-trained)"]  # fmt: skip
