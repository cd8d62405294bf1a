"""The coded link: Sionna's TB encoder and decoder on the simulator's slots, and the LLR sign convention."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import pytest
import torch

from deeprx.config import LinkConfig, RunConfig
from deeprx.evaluate.ber import BerCurve, block_errors, evaluate
from deeprx.evaluate.llr_quality import CALIBRATION_EDGES, bmd_loss_bits, bmd_rate, calibration_counts
from deeprx.evaluate.summary import summarize, summary_table, temperature_table
from deeprx.evaluate.temperature import (
    SCALE_GRID,
    TemperatureFit,
    fit_temperatures,
    reusing_last,
    scaled,
    scaled_loss_bits,
    scaled_name,
)
from deeprx.link.baselines import LS_LMMSE, PERFECT_CSI_LMMSE, baseline_receivers
from deeprx.link.simulator import Slot, UplinkSimulator
from deeprx.link.testset import TestSet, testset_key
from deeprx.pipeline import run
from deeprx.receivers import slot_bit_errors
from deeprx.studies.results import compare

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from sionna.phy.nr import PUSCHReceiver

# 2 PRB, 16-QAM at MCS 14 of table 1 (code rate 0.54): one code block per slot
CODED = LinkConfig(n_prb=2, mcs_index=14)


@pytest.fixture(scope="module")
def simulator() -> UplinkSimulator:
    return UplinkSimulator(CODED)


def test_a_coded_slot_carries_its_transport_block(simulator: UplinkSimulator) -> None:
    codec = simulator.codec
    assert codec is not None and codec.n_coded_bits == simulator.n_data_re * simulator.bits_per_symbol
    assert 0.5 < codec.code_rate < 0.6  # TS 38.214: MCS 14 targets 553/1024 = 0.54
    slot = simulator.sample(8, seed=1, sinr_db=20.0)
    assert slot.info_bits is not None and slot.info_bits.shape == (8, codec.tb_size)
    assert torch.equal(codec.encode(slot.info_bits), slot.bits)  # the labels are the TB's coded bits
    assert 0.45 < slot.bits.mean().item() < 0.55  # scrambled: the labels' statistics are those of random bits
    assert UplinkSimulator(LinkConfig(n_prb=2)).sample(2, seed=1).info_bits is None  # uncoded: no TB


def test_perfect_llrs_decode_every_block_and_random_ones_none(simulator: UplinkSimulator) -> None:
    codec = simulator.codec
    slot = simulator.sample(16, seed=2)
    decoded, crc_ok = codec.decode(20.0 * (2.0 * slot.bits - 1.0))  # logit > 0: bit 1
    assert crc_ok.all() and torch.equal(decoded, slot.info_bits)
    noise = torch.randn(slot.bits.shape, generator=torch.Generator().manual_seed(0))
    _, crc_ok = codec.decode(4.0 * noise)
    assert not crc_ok.any()  # BLER 1
    _, crc_ok = codec.decode(-20.0 * (2.0 * slot.bits - 1.0))  # the wrong sign fails every block
    assert not crc_ok.any()


def test_a_block_with_one_weak_wrong_llr_decodes(simulator: UplinkSimulator) -> None:
    codec = simulator.codec
    slot = simulator.sample(4, seed=3)
    llr = 5.0 * (2.0 * slot.bits - 1.0)
    llr[:, 7, 2] = -0.5 * (2.0 * slot.bits[:, 7, 2] - 1.0)  # one bit per block wrong, with little confidence
    decoded, crc_ok = codec.decode(llr)
    assert crc_ok.all() and torch.equal(decoded, slot.info_bits)


def test_the_llr_sign_is_sionnas_own_receivers(simulator: UplinkSimulator) -> None:
    """Perfect-CSI LMMSE LLRs through our decoder decide the same bits as Sionna's PUSCHReceiver with perfect
    CSI on the same slots, at an SINR where some blocks fail."""
    receiver = PUSCHReceiver(simulator._mapper.transmitter, channel_estimator="perfect")
    genie = baseline_receivers(simulator)[PERFECT_CSI_LMMSE]
    slot = simulator.sample(16, seed=4, sinr_db=4.0)
    ours, crc_ok = simulator.codec.decode(genie(slot))
    theirs = receiver(slot.y[:, None], slot.noise_var, slot.h[:, None, :, None, None])
    assert torch.equal(ours, theirs.reshape(ours.shape))
    assert 0 < int(crc_ok.sum()) < 16  # some blocks decode, some do not: the comparison has teeth
    assert (ours == slot.info_bits).all(dim=1).sum() >= int(crc_ok.sum()) - 1  # CRC passes are (almost) right


def test_the_code_enters_the_test_set_key_only_when_set() -> None:
    uncoded, coded = RunConfig(), RunConfig().with_overrides({"link.mcs_index": 14})
    assert "mcs_index" not in testset_key(uncoded)["link"]  # every stored test set keeps its key
    assert testset_key(coded)["link"]["mcs_index"] == 14


def test_a_coded_test_set_holds_the_blocks_and_an_uncoded_one_reads_as_before(
    tmp_path: Path, tiny_cfg: RunConfig
) -> None:
    coded = tiny_cfg.with_overrides({"link.mcs_index": 14})
    testset = TestSet.ensure(coded, tmp_path, show_progress=False)
    codec = UplinkSimulator(coded.link).codec
    slots = list(testset.batches(0, 8))
    assert all(s.info_bits is not None and s.info_bits.shape[1] == codec.tb_size for s in slots)
    assert all(torch.equal(codec.encode(s.info_bits), s.bits) for s in slots)  # the stored labels are the blocks
    assert TestSet(testset.path, coded).slots_per_point == coded.eval.slots_per_point  # its checksum holds
    uncoded = TestSet.ensure(tiny_cfg, tmp_path, show_progress=False)
    assert next(uncoded.batches(0, 8)).info_bits is None


def test_every_receiver_is_decoded_on_a_coded_test_set(tmp_path: Path, tiny_cfg: RunConfig) -> None:
    cfg = tiny_cfg.with_overrides({"link.mcs_index": 14, "eval.sinr_start_db": -10.0, "eval.sinr_stop_db": 30.0,
                                   "eval.sinr_step_db": 40.0})  # fmt: skip
    testset = TestSet.ensure(cfg, tmp_path, show_progress=False)
    curves = {c.receiver: c for c in evaluate(baseline_receivers(UplinkSimulator(cfg.link)), testset, 8, None, False)}
    genie = curves[PERFECT_CSI_LMMSE]
    assert genie.blocks == [cfg.eval.slots_per_point] * 2 and genie.bler == [1.0, 0.0]  # -10 dB: none; 30 dB: all
    assert genie.goodput_bits_per_slot() == [0.0, genie.tb_size]
    assert genie.bmd_rate[0] < 2.0 < genie.bmd_rate[1] <= 4.0  # 16-QAM: at most 4 bits per channel use
    ls = curves[LS_LMMSE]
    bins = torch.tensor(ls.calibration)  # every bit and every error in one bin of |LLR|
    assert bins[0].sum().item() == sum(ls.bits) and bins[1].sum().item() == sum(ls.bit_errors)
    assert genie.sinr_at_bler(0.1) is not None and -10.0 < genie.sinr_at_bler(0.1) < 30.0
    assert BerCurve.from_dict(genie.to_dict()).bler == genie.bler
    rows = summarize(list(curves.values()), cfg.eval.target_ber, cfg.link.slot_duration_s)
    coded = next(r for r in rows if r.receiver == PERFECT_CSI_LMMSE).coded
    assert coded.points["goodput_mbps"][-1] == pytest.approx(genie.tb_size / 0.5e-3 / 1e6)  # 30 kHz: 0.5 ms slots
    assert coded.from_perfect_csi_db["0.1"] == 0.0  # its own distance
    ls_row = next(r for r in rows if r.receiver == LS_LMMSE).coded
    ls_at = ls.sinr_at_bler(0.1)
    gap = None if ls_at is None else pytest.approx(ls_at - genie.sinr_at_bler(0.1))
    assert ls_row.from_perfect_csi_db["0.1"] == gap
    header, _ = summary_table(rows, cfg.eval.target_ber)
    assert "SINR at BLER 0.1 (from perfect CSI)" in header and "SINR at BLER 0.01 (from perfect CSI)" in header
    uncoded = evaluate(baseline_receivers(UplinkSimulator(tiny_cfg.link)),
                       TestSet.ensure(tiny_cfg, tmp_path, show_progress=False), 8, None, False)  # fmt: skip
    assert "tb_size" not in uncoded[0].to_dict() and "coded" not in summarize(uncoded, 0.02)[0].to_dict()


def test_decoding_only_the_slots_with_bit_errors_equals_decoding_every_slot(simulator: UplinkSimulator) -> None:
    receivers = baseline_receivers(simulator)
    skipped = decoded_slots = 0
    for name, sinr_db in ((LS_LMMSE, 6.0), (LS_LMMSE, 30.0), (PERFECT_CSI_LMMSE, 12.0)):
        slot = simulator.sample(32, seed=5, sinr_db=sinr_db)
        llr = receivers[name](slot)
        errors = slot_bit_errors(llr, slot.bits).tolist()
        decoded, crc_ok = simulator.codec.decode(llr)
        every = (~(crc_ok & (decoded == slot.info_bits).all(dim=1))).long().tolist()
        assert block_errors(simulator.codec, llr, slot, errors) == every, (name, sinr_db)
        skipped += sum(e == 0 for e in errors)
        decoded_slots += sum(e > 0 for e in errors)
    assert skipped > 0 and decoded_slots > 0  # both paths are taken (LS-LMMSE at 30 dB has both kinds of slot)


def test_bmd_rate_by_hand() -> None:
    bits = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])  # one slot, 2 REs of 2 bits
    llr = torch.tensor([[[2.0, -2.0], [0.0, -1.0]]])  # right and sure, right and sure, no idea, wrong
    # log2(1 + e^-2) twice, log2(2) = 1, log2(1 + e^1)
    by_hand = 2 * math.log2(1 + math.exp(-2)) + 1.0 + math.log2(1 + math.e)
    assert bmd_loss_bits(llr, bits).item() == pytest.approx(by_hand)
    assert bmd_rate(by_hand, 4, 2) == pytest.approx(2 * (1 - by_hand / 4))
    sure = 50.0 * (2 * bits - 1)
    assert bmd_rate(bmd_loss_bits(sure, bits).item(), 4, 2) == pytest.approx(2.0)  # all of q
    assert bmd_rate(bmd_loss_bits(torch.zeros_like(bits), bits).item(), 4, 2) == pytest.approx(0.0)
    assert bmd_rate(bmd_loss_bits(-sure, bits).item(), 4, 2) < -50  # sure and wrong costs more than it carries


def test_kd_vs_scratch_gain_at_bler_10_percent_by_hand() -> None:
    def curve(name: str, block_errors: list[int]) -> BerCurve:
        slots = 20
        blocks = [[1] * e + [0] * (slots - e) for e in block_errors]
        slot_errors = [[5 * x for x in b] for b in blocks]  # bit errors where the block fails
        return BerCurve(name, [0.0, 5.0, 10.0], [sum(e) / (slots * 100) for e in slot_errors],
                        [sum(e) for e in slot_errors], [slots * 100] * 3, slot_errors, blocks, 50)  # fmt: skip

    kd, scratch = curve("kd", [20, 2, 0]), curve("scratch", [20, 20, 2])
    assert kd.sinr_at_bler(0.1) == pytest.approx(5.0) and scratch.sinr_at_bler(0.1) == pytest.approx(10.0)
    c = compare(kd, scratch, target_ber=1e-3, n_boot=200)
    assert c.target_bler == 0.1 and c.gain_at_bler_db == pytest.approx(5.0)  # 10 dB - 5 dB
    lo, hi = c.gain_at_bler_db_ci
    assert lo <= 5.0 <= hi and lo > 0  # KD better in every resample that reaches the target
    uncoded = compare(*(dataclasses.replace(x, slot_block_errors=[], tb_size=0) for x in (kd, scratch)), 1e-3, 50)
    assert "target_bler" not in uncoded.to_dict()  # an uncoded comparison's record is as before


def test_calibration_counts_by_hand() -> None:
    llr = torch.tensor([[[0.2, -0.7], [2.5, -20.0]]])
    bits = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])  # wrong, right, right, wrong
    counts = calibration_counts(llr, bits)
    assert counts.shape == (3, len(CALIBRATION_EDGES))
    assert counts[0].tolist() == [1, 1, 0, 1, 0, 0, 0, 0, 0, 1]  # bins [0, .5), [.5, 1), [2, 3), [16, inf)
    assert counts[1].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    predicted = [1 / (1 + math.exp(x)) for x in (0.2, 0.7, 2.5, 20.0)]
    assert counts[2, 0].item() == pytest.approx(predicted[0]) and counts[2, 9].item() == pytest.approx(predicted[3])
    assert counts[2].sum().item() == pytest.approx(sum(predicted))


def test_scaled_cross_entropy_by_hand() -> None:
    llr = torch.tensor([2.0, -1.0, 0.5])
    bits = torch.tensor([1.0, 1.0, 0.0])  # right, wrong, wrong
    losses = scaled_loss_bits(llr, bits, torch.tensor([1.0, 2.0]))
    # s = 1: log2(1 + e^-2) + log2(1 + e^1) + log2(1 + e^0.5); s = 2: each margin doubled
    assert losses[0].item() == pytest.approx(sum(math.log2(1 + math.exp(m)) for m in (-2.0, 1.0, 0.5)))
    assert losses[1].item() == pytest.approx(sum(math.log2(1 + math.exp(m)) for m in (-4.0, 2.0, 1.0)))


def test_the_fitted_scale_refines_the_grid_by_a_parabola() -> None:
    # a loss exactly quadratic in log s with its minimum at s = 1.3, between grid points: the parabola finds it
    log_grid = torch.tensor([math.log(s) for s in SCALE_GRID], dtype=torch.float64)
    losses = 10.0 + (log_grid - math.log(1.3)) ** 2
    fit = TemperatureFit.of(losses * 100, bits=100, held_out_seed=7)
    assert fit.scale == pytest.approx(1.3, rel=1e-9)
    assert fit.loss_bits == pytest.approx(10.0 + math.log(1.3) ** 2)  # the loss at s = 1, per bit
    assert fit.scaled_loss_bits <= fit.loss_bits and fit.held_out_seed == 7


def test_temperature_scaling_undoes_over_and_under_confidence() -> None:
    # BPSK in unit Gaussian noise: L = 2y / sigma^2 is the exact posterior LLR, calibrated by construction
    generator = torch.Generator().manual_seed(0)
    bits = torch.randint(0, 2, (200_000,), generator=generator).float()
    llr = 2.0 * ((2 * bits - 1) + torch.randn(bits.shape, generator=generator))
    grid = torch.tensor(SCALE_GRID, dtype=torch.float64)
    for factor in (1.0, 3.0, 0.25):  # as it is, 3x over-confident, 4x under-confident
        fit = TemperatureFit.of(scaled_loss_bits(factor * llr, bits, grid), bits.numel(), 0)
        assert fit.scale == pytest.approx(1.0 / factor, rel=0.03), factor


def test_a_coded_evaluation_fits_llr_scales_on_a_held_out_seed(tmp_path: Path, tiny_cfg: RunConfig) -> None:
    cfg = tiny_cfg.with_overrides({"link.mcs_index": 14, "eval.sinr_start_db": 4.0, "eval.sinr_stop_db": 12.0,
                                   "eval.sinr_step_db": 4.0})  # fmt: skip
    receivers = baseline_receivers(UplinkSimulator(cfg.link))
    held_out = TestSet.ensure(cfg.with_overrides({"seed": 9}), tmp_path, show_progress=False)
    fits = fit_temperatures(receivers, held_out, 8, torch.device("cpu"), held_out_seed=9)
    # LS-LMMSE with one pilot symbol trusts a channel estimate that ages over the slot: over-confident
    assert fits[LS_LMMSE].scale < 1.0 and fits[LS_LMMSE].scaled_loss_bits < fits[LS_LMMSE].loss_bits
    assert all(SCALE_GRID[0] < f.scale < SCALE_GRID[-1] for f in fits.values())
    test = TestSet.ensure(cfg, tmp_path, show_progress=False)
    ls = scaled(receivers[LS_LMMSE], fits[LS_LMMSE].scale)
    slot = next(test.batches(0, 8))
    assert torch.allclose(ls(slot), fits[LS_LMMSE].scale * receivers[LS_LMMSE](slot))
    rows = summarize(evaluate({**receivers, scaled_name(LS_LMMSE, 0.5): ls}, test, 8, None, False), 0.02, 5e-4)
    temperature = {
        "held_out_seed": 9,
        "summary": [r.to_dict() for r in rows],
        "fits": {LS_LMMSE: {**fits[LS_LMMSE].to_dict(), "scaled_receiver": scaled_name(LS_LMMSE, 0.5)}},
    }
    header, cells = temperature_table(rows, temperature)  # fmt: skip
    assert len(cells) == 1 and cells[0][0] == LS_LMMSE and "seed 9" in header[1]


def test_the_main_job_on_a_coded_link_reports_bler_and_llr_quality(tmp_path: Path, tiny_cfg: RunConfig) -> None:
    cfg = tiny_cfg.with_overrides({"link.mcs_index": 14, "train.steps": 2, "train.checkpoint_every": 2})
    results = run(cfg, tmp_path, show_progress=False)
    assert all("coded" in row for row in results["summary"])
    text = (tmp_path / "report.md").read_text()
    assert "MCS 14 (table 1)" in text and r"observed / predicted errors at \|LLR\| >= 8" in text  # escaped in a table
    for figure in ("ber_vs_sinr.png", "bler_vs_sinr.png", "llr_calibration.png"):
        assert (tmp_path / figure).exists(), figure


def test_a_network_runs_once_per_batch_for_its_curve_and_its_scaled_twin(tmp_path: Path, tiny_cfg: RunConfig) -> None:
    cfg = tiny_cfg.with_overrides({"link.mcs_index": 14})
    testset = TestSet.ensure(cfg, tmp_path, show_progress=False)
    ls = baseline_receivers(UplinkSimulator(cfg.link))[LS_LMMSE]
    calls = []

    def counted(slot: Slot) -> torch.Tensor:
        calls.append(slot)
        return ls(slot)

    once = reusing_last(counted)
    curves = evaluate({"as is": once, "x 2": scaled(once, 2.0)}, testset, 8, None, False)
    batches = len(testset.sinr_points_db) * cfg.eval.slots_per_point // 8
    assert len(calls) == batches  # not twice
    assert curves[0].bit_errors == curves[1].bit_errors  # a scale keeps every sign
