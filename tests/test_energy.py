"""Energy: operation counts, estimates, meters, the base-power protocol and the life cycle, against hand values."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from deeprx.cli import app
from deeprx.config import LinkConfig, RunConfig
from deeprx.energy.assess import Subject, inference_work
from deeprx.energy.estimate import (
    estimate_layers,
    memory_joules,
    metric0_joules,
    metric1_joules,
    metric2_joules,
    totals,
)
from deeprx.energy.flops import LayerCount, conv_macs, count_layers, front_end_flops, model_totals, slot_flops
from deeprx.energy.meters import EnergyMeter, ModeledMeter, RaplMeter, open_meter
from deeprx.energy.processors import MemoryEnergy, _processor_from_entry, load_catalogue
from deeprx.energy.protocol import (
    base_power_watts,
    break_even_inferences,
    life_cycle,
    measure,
    relative_energy_joules,
)
from deeprx.io import InputError
from deeprx.models.registry import create_model
from deeprx.subjects import step_workload

# --- counts -------------------------------------------------------------------------------------------


def test_depthwise_dilated_conv_matches_analytic_formula() -> None:
    # 2 * (C_in/groups) * k_h * k_w * C_out * H * W for the separable pair of shared/notes/energy-facts.md
    dw = nn.Conv2d(64, 64, 3, padding=(2, 3), dilation=(2, 3), groups=64, bias=False)
    pw = nn.Conv2d(64, 128, 1, bias=False)
    assert conv_macs(dw, (14, 48)) == 1 * 3 * 3 * 64 * 14 * 48 == 387_072
    assert conv_macs(dw, (14, 48)) + conv_macs(pw, (14, 48)) == 5_892_096
    with FlopCounterMode(display=False) as counter:
        pw(dw(torch.zeros(1, 64, 14, 48)))
    assert counter.get_total_flops() == 2 * 5_892_096


def flop_counter_mode(model: torch.nn.Module, n_subcarriers: int) -> int:
    """torch's own count of one slot's forward pass: the oracle the hand counts are checked against."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, model.config.in_channels, 14, n_subcarriers))
    return int(counter.get_total_flops())


def test_conv_totals_equal_flop_counter_mode() -> None:
    for name, n_sc in (("deeprx_eighth", 24), ("deeprx_half_c64", 48)):
        model = create_model(name, n_rx=2, bits_per_symbol=4)
        layers = count_layers(model, n_sc)
        totals_ = model_totals(layers)
        assert totals_["conv_flops"] == flop_counter_mode(model, n_sc) == 2 * totals_["macs"]
        assert totals_["params"] == sum(p.numel() for p in model.parameters())


def test_other_work_is_counted_apart() -> None:
    model = create_model("deeprx_eighth", n_rx=1, bits_per_symbol=2)
    layers = count_layers(model, 12)
    by_kind = {k: [x for x in layers if x.kind == k] for k in ("batchnorm", "relu", "add")}
    grid = 14 * 12
    # 11 blocks x 2 BatchNorms + the head's; each followed by a ReLU; one residual add per block
    assert len(by_kind["batchnorm"]) == len(by_kind["relu"]) == 23 and len(by_kind["add"]) == 11
    bn = by_kind["batchnorm"][0]
    assert bn.other_flops == 2 * bn.in_features * grid and bn.macs == 0
    stem = layers[0]
    assert stem.name == "stem" and stem.other_flops == stem.act_write_bytes // 4  # bias: one add per output
    assert stem.act_read_bytes == 4 * model.config.in_channels * grid


def test_slot_flops_say_what_they_count() -> None:
    """One counter: the network's convolutions, all its work, the front end's, and the receiver's total."""
    model = create_model("deeprx_eighth", n_rx=2, bits_per_symbol=4, in_channels=18)
    flops = slot_flops(model, "enhanced", 24, 13 * 24)
    totals_ = model_totals(count_layers(model, 24))
    assert flops.network_conv == totals_["conv_flops"] == flop_counter_mode(model, 24)
    assert flops.network == totals_["conv_flops"] + totals_["other_flops"]
    # by hand, 2 RX, 14 x 24 REs, 312 data REs: LS 6*2*336 + interpolation 14*2*336 + LMMSE (16*2+20)*312
    # + normalisation (4*2 + 3*2*2)*336 + two log10 per RE 40*336
    assert flops.front_end == front_end_flops("enhanced", 2, 24, 312) == 4032 + 9408 + 16224 + 6720 + 13440
    assert front_end_flops("paper", 2, 24, 312) == 4032
    assert flops.total == flops.network + flops.front_end


# --- estimates ----------------------------------------------------------------------------------------


@pytest.fixture
def toy_processor():
    # 2 cores x 1 GHz x 8 FLOP/cycle = 16 GFLOP/s at 8 W: 2 GFLOP/s per W
    return _processor_from_entry(
        "toy",
        {"name": "toy", "kind": "cpu", "cores": 2, "base_ghz": 1.0, "turbo_ghz": 1.0, "flops_per_cycle_per_core": 8,
         "tdp_watts": 8, "cache_mib": 1, "source": "test", "metric1": {"kappa": 1.0},
         "metric2": {"a_c": 1e-9, "b_c": 2e-10, "a_f": 3e-10}},
    )  # fmt: skip


TWO_LAYERS = [
    LayerCount("conv", "stem", "conv", 100, 1_000_000, 2_000_000, 0, 400, 1_000, 2_000, 4),
    LayerCount("bn", "stem", "batchnorm", 8, 0, 0, 1_000, 32, 2_000, 2_000, 4),
]


def test_metrics_against_hand_values(toy_processor) -> None:
    assert toy_processor.peak_flops == 16e9 and toy_processor.flops_per_watt == 2e9
    # metric 0: 2,001,000 FLOP / 2e9 FLOP/s/W
    assert metric0_joules(2_001_000, toy_processor) == pytest.approx(1.0005e-3)
    # metric 1: D = 2.001e6 / (8 * 2 * 1e9) s; E = kappa * N * f^3 * D = 1 * 2 * 1 * D
    assert metric1_joules(2_001_000, toy_processor) == pytest.approx(2 * 2.001e6 / 16e9)
    # metric 2: M_c (a_c/d_0 + b_c) = 1e6 * (1e-9/4 + 2e-10) = 4.5e-4 J; BatchNorm is not in the model
    assert metric2_joules(TWO_LAYERS[0], toy_processor) == pytest.approx(4.5e-4)
    assert metric2_joules(TWO_LAYERS[1], toy_processor) == 0.0
    memory = MemoryEnergy(dram_joules_per_byte=160e-12, cache_joules_per_byte=12.5e-12, source="test")
    # weights from DRAM, activations (3000 B, fits in 1 MiB) from cache
    assert memory_joules(TWO_LAYERS[0], toy_processor, memory) == pytest.approx(400 * 160e-12 + 3000 * 12.5e-12)
    t = totals(estimate_layers(TWO_LAYERS, toy_processor, memory))
    mem = (400 + 32) * 160e-12 + (3000 + 4000) * 12.5e-12
    assert t["metric0"] == pytest.approx(1.0005e-3)
    assert t["memory-aware"] == pytest.approx(1.0005e-3 + mem)


def test_memory_goes_to_dram_when_it_does_not_fit(toy_processor) -> None:
    big = LayerCount("big", "b", "conv", 0, 1, 2, 0, 0, 2**20, 2**20, 1)
    memory = MemoryEnergy(160e-12, 12.5e-12, "test")
    assert memory_joules(big, toy_processor, memory) == pytest.approx(2**21 * 160e-12)


def test_derived_kappa_makes_metric1_equal_metric0(toy_processor) -> None:
    derived = _processor_from_entry("d", {k: getattr(toy_processor, k) for k in
                                          ("name", "kind", "cores", "base_ghz", "turbo_ghz",
                                           "flops_per_cycle_per_core", "tdp_watts", "source")})  # fmt: skip
    assert derived.kappa == pytest.approx(8 / (2 * 1.0**3))
    assert metric1_joules(1e9, derived) == pytest.approx(metric0_joules(1e9, derived))
    assert any("kappa" in a for a in derived.assumptions) and any("metric-2" in a for a in derived.assumptions)


def test_catalogue_has_the_paper_processors_with_sources(tmp_path: Path) -> None:
    catalogue = load_catalogue()
    for key in ("xeon-gold-5320", "xeon-gold-5220", "xeon-e5-2620-v4", "core-i7-8650u", "coral-edge-tpu",
                "rtx-2080-ti", "host"):  # fmt: skip
        assert key in catalogue and catalogue[key].source
    assert catalogue["xeon-gold-5320"].peak_flops == pytest.approx(26 * 2.2e9 * 64)
    assert catalogue["coral-edge-tpu"].flops_per_watt == pytest.approx(2e12)
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        "processors:\n  mine:\n    {name: Mine, kind: cpu, cores: 1, base_ghz: 1, turbo_ghz: 2,\n"
        "     flops_per_cycle_per_core: 4, tdp_watts: 2, source: my lab}\n"
    )
    assert load_catalogue(extra)["mine"].peak_flops == 4e9
    extra.write_text("processors:\n  bad: {name: Bad}\n")
    with pytest.raises(InputError, match="lacks"):
        load_catalogue(extra)


# --- meters -------------------------------------------------------------------------------------------


def _zone(path: Path, name: str, energy_uj: int, max_uj: int = 1_000_000) -> Path:
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return path


def test_rapl_sums_package_and_dram_and_handles_wraparound(tmp_path: Path) -> None:
    pkg = _zone(tmp_path / "intel-rapl:0", "package-0", 990_000)
    core = _zone(pkg / "intel-rapl:0:0", "core", 5_000)
    dram = _zone(pkg / "intel-rapl:0:1", "dram", 100)
    meter = RaplMeter(tmp_path)
    assert meter.read_joules() == 0.0
    (pkg / "energy_uj").write_text("2000\n")  # wrapped: 10,000 uJ to the top, then 2,000
    (core / "energy_uj").write_text("9000\n")  # core is part of the package: not added again
    (dram / "energy_uj").write_text("600\n")
    assert meter.read_joules() == pytest.approx((12_000 + 500) / 1e6)
    assert meter.read_domains_joules() == pytest.approx(
        {"intel-rapl:0:package-0": 0.012, "intel-rapl:0:1:dram": 0.0005}
    )


def test_rapl_unreadable_counter_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _zone(tmp_path / "intel-rapl:0", "package-0", 1)
    original = Path.read_text

    def deny(self: Path, *args, **kwargs) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", deny)
    with pytest.raises(InputError, match=r"permission denied.*chmod"):
        RaplMeter(tmp_path)
    with pytest.raises(InputError, match="no RAPL domains"):
        RaplMeter(tmp_path / "empty")


def test_modeled_meter_is_tdp_times_utilisation(tmp_path: Path, toy_processor) -> None:
    stat = tmp_path / "stat"
    tick = __import__("os").sysconf("SC_CLK_TCK")
    stat.write_text("cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 1\ncpu1 1\n")
    meter = ModeledMeter(toy_processor, stat)
    assert meter.is_measurement is False and "not a measurement" in meter.description
    stat.write_text(f"cpu  {100 + 2 * tick} 0 100 {1000 + 2 * tick} 0 0 0 0 0 0\ncpu0 1\ncpu1 1\n")
    # 2 busy CPU-seconds out of 2 CPUs = 1 s at full load: TDP (8 W) x 1 s
    assert meter.read_joules() == pytest.approx(8.0)


def test_auto_meter_says_what_it_picked() -> None:
    meter, why = open_meter("auto")
    assert why.startswith("auto:") and meter.method in why
    assert meter.method != "nvml"  # CPU work is never metered by a GPU's counter
    meter.close()
    with pytest.raises(InputError, match="unknown meter"):
        open_meter("voltmeter")


def test_nvml_refuses_cpu_work() -> None:
    with pytest.raises(InputError, match="work runs on the CPU"):
        open_meter("nvml", device=torch.device("cpu"))


def test_inference_workload_runs_on_the_subjects_device() -> None:
    """The meta device (shapes only, no data) stands in for a GPU: every tensor the work touches must be there."""
    model = create_model("deeprx_eighth", 2, 4)
    meta = torch.device("meta")
    work = inference_work(Subject(model, "deeprx_eighth", 24, device=meta), batch=3)
    seen = []
    handle = model.register_forward_hook(lambda m, args, out: seen.append((args[0].device, out.device)))
    assert work() == 3
    handle.remove()
    assert seen == [(meta, meta)] and {p.device for p in model.parameters()} == {meta}


def test_training_workload_is_the_trainers_step(monkeypatch: pytest.MonkeyPatch) -> None:
    import deeprx.train.trainer as trainer

    calls = []
    real_step = trainer.TrainingStep.__call__
    spy = lambda s, slot: calls.append(slot.device) or real_step(s, slot)  # noqa: E731
    monkeypatch.setattr(trainer.TrainingStep, "__call__", spy)
    model = create_model("deeprx_eighth", 2, 4)
    before = [p.detach().clone() for p in model.parameters()]
    cfg = RunConfig(model="deeprx_eighth", link=LinkConfig(n_prb=2, modulation="16qam"))
    work = Subject(model, "deeprx_eighth", 24, training_workload=partial(step_workload, cfg, model))
    assert work.training_workload(2)() == 1
    assert calls == [torch.device("cpu")]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_the_metered_step_is_the_trainers_step_same_loss_on_the_same_batch() -> None:
    """The energy workload and the trainer take the same step: same optimiser, loss and update on one batch."""
    import deeprx.train.trainer as trainer
    from deeprx.link.simulator import UplinkSimulator

    cfg = RunConfig(model="deeprx_eighth", link=LinkConfig(n_prb=2, modulation="16qam"))
    metered = trainer.build_model(cfg, torch.device("cpu"))
    trained = trainer.build_model(cfg, torch.device("cpu"))
    losses = []
    original = trainer.TrainingStep.__call__

    def spy(step, slot):
        loss = original(step, slot)
        losses.append(float(loss))
        return loss

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trainer.TrainingStep, "__call__", spy)
        step_workload(cfg, metered, 4)()
        step, _ = trainer.build_step(cfg, trained, UplinkSimulator(cfg.link))
        step(UplinkSimulator(cfg.link).sample(4, trainer.derive_seed(cfg.seed, "train", 0)))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    for a, b in zip(metered.parameters(), trained.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


# --- protocol -----------------------------------------------------------------------------------------


def test_base_power_and_relative_energy_by_hand() -> None:
    trace = [30.0, 31.0, 29.0, 80.0, 30.5]  # one spike: the median ignores it
    assert base_power_watts(trace) == 30.5
    assert relative_energy_joules(absolute_watts=50.0, base_watts=30.5, seconds=4.0) == pytest.approx(78.0)


class SyntheticMeter(EnergyMeter):
    """10 W of base power plus 0.5 J for every item of work done."""

    method = "synthetic"
    is_measurement = True
    update_interval_s = 0.001
    description = "synthetic"

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.work_joules = 0.0

    def read_joules(self) -> float:
        return 10.0 * (time.perf_counter() - self.t0) + self.work_joules


def test_protocol_recovers_energy_per_item_from_a_synthetic_trace() -> None:
    meter = SyntheticMeter()

    def work() -> int:
        time.sleep(0.002)
        meter.work_joules += 0.5 * 4
        return 4

    result = measure(meter, work, "item", idle_s=0.2, min_window_s=0.2, repeats=3)
    assert result.base_watts == pytest.approx(10.0, rel=1e-3)
    assert result.joules_per_item == pytest.approx(0.5, rel=0.05)
    assert len(result.joules_per_item_repeats) == 3 and result.method == "synthetic"


def test_break_even_by_hand() -> None:
    # the paper's inputs: 20 J per step x 250,000 steps, 2 mJ per inference, 400 inferences/s
    assert break_even_inferences(5e6, 2e-3) == pytest.approx(2.5e9)
    cycle = life_cycle(20.0, 250_000, 2e-3, 400.0, "metric0")
    assert cycle.training_joules == 5e6 and cycle.break_even_seconds == pytest.approx(2.5e9 / 400)


# --- command line -------------------------------------------------------------------------------------


def test_energy_estimate_json_and_bad_input() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["energy", "estimate", "--model", "deeprx_eighth", "--n-prb", "2", "--json"])
    assert result.exit_code == 0, result.output
    est = json.loads(result.stdout)
    model = create_model("deeprx_eighth", 2, 8)
    assert est["totals"]["conv_flops"] == flop_counter_mode(model, 24)
    assert set(est["processors"]) >= {"coral-edge-tpu", "rtx-2080-ti", "host"}
    tpu = est["processors"]["coral-edge-tpu"]
    assert tpu["joules_per_slot"]["metric0"] == pytest.approx(est["totals"]["flops"] / 2e12)
    assert sum(tpu["blocks_joules"]["metric0"].values()) == pytest.approx(tpu["joules_per_slot"]["metric0"])
    for args in (["energy", "estimate", "--processor", "abacus"], ["energy", "measure", "--meter", "voltmeter"],
                 ["energy", "estimate", "--method", "metric9"]):  # fmt: skip
        bad = runner.invoke(app, args)
        assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1, (args, bad.output)


def test_energy_report_writes_figures_and_labels_the_method(tmp_path: Path) -> None:
    args = ["energy", "report", "--model", "deeprx_eighth", "--n-prb", "1", "--out", str(tmp_path),
            "--window", "0.3", "--idle", "0.3", "--repeats", "2", "--training-steps", "100", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for stem in ("energy_per_processor", "energy_breakdown", "lifecycle_metric0"):
        assert (tmp_path / f"{stem}.png").exists() and (tmp_path / f"{stem}.svg").exists()
    text = (tmp_path / "energy.md").read_text()
    inference = data["inference"]
    # a busy machine can leave the metered energy unresolved: then no metered life cycle, and the report says so
    metered = data["life_cycle"]["metered"]
    assert (tmp_path / "lifecycle_metered.png").exists() == metered["resolved"]
    assert metered["resolved"] or "unresolved" in text
    assert inference["method"] in text and len(inference["joules_per_item_repeats"]) == 2
    if not inference["is_measurement"]:
        assert "modeled, not measured" in text
    assert json.loads((tmp_path / "energy.json").read_text())["model"] == "deeprx_eighth"
