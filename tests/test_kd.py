"""Knowledge distillation: the Bernoulli KL by hand, T and alpha, the two scalings, and a short distillation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from deeprx.config import ConfigError, RunConfig
from deeprx.io import InputError
from deeprx.link.baselines import LmmseReceiver
from deeprx.link.batches import BatchCache
from deeprx.link.simulator import UplinkSimulator
from deeprx.models.registry import create_model
from deeprx.receivers import FrontEnd, NetworkInput, NeuralReceiver, data_re_logits, paper_input
from deeprx.runs import checkpoint
from deeprx.runs.reference import GENIE_TEACHER, LS_LMMSE_TEACHER
from deeprx.train.distill import distillation_loss, load_teacher
from deeprx.train.losses import bernoulli_kl, kd_loss, masked_bce
from deeprx.train.trainer import train


def _kl_by_hand(zt: float, zs: float, t: float) -> float:
    p, q = 1 / (1 + math.exp(-zt / t)), 1 / (1 + math.exp(-zs / t))
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def test_bernoulli_kl_matches_hand_computation() -> None:
    zt = torch.tensor([1.0, -2.0, 4.0, 0.0])
    zs = torch.tensor([0.0, 1.0, 4.0, -3.0])
    got = bernoulli_kl(zt, zs, temperature=1.0)
    want = [_kl_by_hand(a, b, 1.0) for a, b in zip(zt.tolist(), zs.tolist(), strict=True)]
    assert got.tolist() == pytest.approx(want, rel=1e-5)
    assert got[0].item() == pytest.approx(0.110944, abs=2e-6)  # sigmoid(1) vs 0.5, worked out on paper
    assert got[2].item() == 0.0 and bool((got[[0, 1, 3]] > 0).all())
    # torch's kl_div on probabilities drops the (1-p) term: it is not this KL
    p, q = torch.sigmoid(zt[:1]), torch.sigmoid(zs[:1])
    assert F.kl_div(q.log(), p, reduction="none").item() != pytest.approx(got[0].item(), rel=1e-2)


def test_temperature_softens_both_sides() -> None:
    zt, zs = torch.tensor([2.0]), torch.tensor([0.0])
    assert bernoulli_kl(zt, zs, 2.0).item() == pytest.approx(_kl_by_hand(1.0, 0.0, 1.0), rel=1e-6)
    assert bernoulli_kl(zt, zs, 8.0).item() < bernoulli_kl(zt, zs, 1.0).item()
    with pytest.raises(ConfigError, match=r"kd\.temperature"):
        RunConfig().with_overrides({"kd.temperature": 0})


def test_scalings_and_alpha() -> None:
    torch.manual_seed(0)
    zs, zt = torch.randn(3, 10, 4), torch.randn(3, 10, 4)
    bits = torch.randint(0, 2, (3, 10, 4)).float()
    kl = bernoulli_kl(zt, zs, 3.0)
    bce = masked_bce(zs, bits)
    paper, parts = kd_loss(zs, zt, bits, alpha=5e5, temperature=3.0, scaling="paper")
    assert paper.item() == pytest.approx(
        5e5 * bce.item() + kl.sum().item() / 3, rel=1e-6
    )  # sum per slot, mean over slots
    assert parts["kl_per_bit"] == pytest.approx(kl.mean().item(), rel=1e-6)
    mean, parts = kd_loss(zs, zt, bits, alpha=1.0, temperature=3.0, scaling="mean")
    assert mean.item() == pytest.approx(bce.item() + 9 * kl.mean().item(), rel=1e-6)  # Hinton's T^2
    only_kd, _ = kd_loss(zs, zt, bits, alpha=0.0, temperature=3.0, scaling="mean")
    assert only_kd.item() == pytest.approx(parts["kd"], rel=1e-6)
    with pytest.raises(ConfigError, match=r"kd\.scaling"):
        RunConfig().with_overrides({"kd.scaling": "sum"})


def _kl_on_fixed_batch(student, teacher, cfg: RunConfig) -> float:
    slot = UplinkSimulator(cfg.link).sample(16, seed=999)
    with torch.no_grad():
        zs = data_re_logits(student(paper_input(slot)), slot.data_mask)
        zt = data_re_logits(teacher(paper_input(slot)), slot.data_mask)
    return bernoulli_kl(zt, zs, cfg.kd.temperature).mean().item()


def test_distillation_lowers_the_kd_term(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    teacher_cfg = tiny_cfg.with_overrides({"model": "deeprx_quarter_c32", "train.steps": 20})
    train(teacher_cfg, tmp_path / "teacher", show_progress=False)
    teacher, _ = checkpoint.load_model(tmp_path / "teacher")
    # alpha = 0: the student learns from the teacher alone
    cfg = tiny_cfg.with_overrides(
        {"kd.teacher": str(tmp_path / "teacher"), "kd.alpha": 0.0, "kd.temperature": 2.0, "train.steps": 24}
    )
    train(cfg.with_overrides({"train.steps": 1, "train.lr": 1e-9}), tmp_path / "start", show_progress=False)
    start, _ = checkpoint.load_model(tmp_path / "start")
    train(cfg, tmp_path / "student", show_progress=False)
    student, ckpt = checkpoint.load_model(tmp_path / "student")
    assert ckpt.extra["teacher_model"] == "deeprx_quarter_c32" and len(ckpt.extra["teacher_sha256"]) == 64
    assert _kl_on_fixed_batch(student, teacher, cfg) < 0.8 * _kl_on_fixed_batch(start, teacher, cfg)


def test_students_sharing_a_batch_cache_run_the_teacher_once_per_batch_and_train_the_same(
    tiny_cfg: RunConfig, tmp_path: Path
) -> None:
    teacher_cfg = tiny_cfg.with_overrides({"model": "deeprx_quarter_c32", "train.steps": 4})
    train(teacher_cfg, tmp_path / "t", show_progress=False)
    cfg = tiny_cfg.with_overrides({"kd.teacher": str(tmp_path / "t"), "kd.alpha": 10.0, "kd.temperature": 2.0})
    plain = train(cfg, tmp_path / "plain", show_progress=False)
    cache = BatchCache(max_bytes=2**30)
    first = train(cfg, tmp_path / "first", show_progress=False, batch_cache=cache)
    assert (cache.derived_hits, cache.derived_misses) == (0, cfg.train.steps)
    # another student (another alpha) of the same teacher reads the kept outputs; another teacher does not
    second = train(cfg.with_overrides({"kd.alpha": 1.0}), tmp_path / "second", show_progress=False, batch_cache=cache)
    assert (cache.derived_hits, cache.derived_misses) == (cfg.train.steps, cfg.train.steps)
    genie = cfg.with_overrides({"kd.teacher": GENIE_TEACHER})
    train(genie, tmp_path / "genie", show_progress=False, batch_cache=cache)
    assert cache.derived_misses == 2 * cfg.train.steps
    a, b = (checkpoint.load(r.run_dir).model_state for r in (plain, first))
    assert all(torch.equal(a[k], b[k]) for k in a)  # kept outputs are the outputs: the same training
    uncached = train(cfg.with_overrides({"kd.alpha": 1.0}), tmp_path / "uncached", show_progress=False)
    c, d = (checkpoint.load(r.run_dir).model_state for r in (second, uncached))
    assert all(torch.equal(c[k], d[k]) for k in c)


def test_classical_teachers_are_baseline_receivers_and_can_be_distilled(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    cfg = tiny_cfg.with_overrides({"kd.teacher": GENIE_TEACHER, "kd.alpha": 0.0, "kd.temperature": 2.0})
    genie, facts = load_teacher(cfg, UplinkSimulator(cfg.link))
    simulator = UplinkSimulator(cfg.link)
    slot = simulator.sample(8, seed=5)
    genie_llr = genie(slot, NetworkInput(paper_input(slot)))
    assert torch.equal(genie_llr, LmmseReceiver(simulator, perfect_csi=True)(slot))
    assert facts["teacher_model"] == "Perfect-CSI LMMSE"
    ls, facts = load_teacher(cfg.with_overrides({"kd.teacher": LS_LMMSE_TEACHER}), UplinkSimulator(cfg.link))
    assert torch.equal(ls(slot, NetworkInput(paper_input(slot))), LmmseReceiver(simulator, perfect_csi=False)(slot))
    assert facts["teacher_model"] == "LS-LMMSE"
    # alpha = 0, mean scaling: the step loss is T^2 * KL / T^2, the KL to the genie's softened LLRs
    loss_fn, _ = distillation_loss(cfg, UplinkSimulator(cfg.link))
    student = NeuralReceiver(
        create_model(cfg.model, cfg.link.n_rx, cfg.link.bits_per_symbol), FrontEnd(simulator, "paper")
    )
    zs = data_re_logits(student.model(paper_input(slot)), slot.data_mask)
    expected = bernoulli_kl(genie_llr, zs, 2.0).mean()
    assert loss_fn(student, slot).item() == pytest.approx(expected.item(), rel=1e-5)
    # the KL to the genie is learnable: a few steps on one batch lower it
    optimizer = torch.optim.Adam(student.model.parameters(), lr=3e-3)
    first = loss_fn(student, slot).item()
    for _ in range(30):
        optimizer.zero_grad()
        loss_fn(student, slot).backward()
        optimizer.step()
    assert loss_fn(student, slot).item() < 0.8 * first
    # and the trainer runs it end to end (bf16 autocast where the CPU has it), recording the teacher
    train(cfg.with_overrides({"train.steps": 2}), tmp_path / "student", show_progress=False)
    assert checkpoint.load(tmp_path / "student").extra["teacher_sha256"] == GENIE_TEACHER


def test_distill_rejects_missing_or_mismatched_teacher(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no teacher checkpoint"):
        train(tiny_cfg.with_overrides({"kd.teacher": str(tmp_path / "none")}), tmp_path / "s", show_progress=False)
    train(tiny_cfg.with_overrides({"train.steps": 1}), tmp_path / "t", show_progress=False)
    other = tiny_cfg.with_overrides({"kd.teacher": str(tmp_path / "t"), "link.modulation": "qpsk"})
    with pytest.raises(InputError, match="modulation"):
        train(other, tmp_path / "s2", show_progress=False)


# --- KD options beyond the paper ------------------------------------------------------------------------


def test_logit_mse_masks_and_annealing_by_hand() -> None:
    from deeprx.train.losses import annealed_kd_weight, kd_mask, logit_mse

    assert logit_mse(torch.tensor([-1.0]), torch.tensor([2.0]), 3.0).item() == pytest.approx(1.0)  # 3^2 / 3^2
    teacher = torch.tensor([[[3.0, -2.5, 1.0, -2.0]]])
    bits = torch.tensor([[[1.0, 0.0, 0.0, 1.0]]])
    # confidence 0.9 <=> |logit| >= ln 9 = 2.197: the first two bits
    assert kd_mask(teacher, bits, "confident", 0.9).tolist() == [[[1.0, 1.0, 0.0, 0.0]]]
    # the teacher decides 1, 0, 1, 0: right on the first two bits
    assert kd_mask(teacher, bits, "correct", 0.9).tolist() == [[[1.0, 1.0, 0.0, 0.0]]]
    assert kd_mask(teacher, bits, "all", 0.9) is None
    assert [annealed_kd_weight(p, "linear") for p in (0.0, 0.25, 1.0, 1.5)] == [1.0, 0.75, 0.0, 0.0]
    assert annealed_kd_weight(0.7, "none") == 1.0


def test_masked_mse_kd_loss_by_hand() -> None:
    teacher = torch.tensor([[[3.0, -2.5, 1.0, -2.0]]])
    student = torch.zeros(1, 1, 4)
    bits = torch.tensor([[[1.0, 0.0, 0.0, 1.0]]])
    # per bit (z_s - z_t)^2 / T^2 with T = 1: 9, 6.25, 1, 4; confident keeps 9 and 6.25
    mean, parts = kd_loss(student, teacher, bits, 0.0, 1.0, "mean", term="mse", mask="confident", confidence=0.9)
    assert mean.item() == pytest.approx(15.25 / 2) and parts["kept"] == 0.5
    paper, _ = kd_loss(student, teacher, bits, 0.0, 1.0, "paper", term="mse", mask="confident", kd_weight=0.5)
    assert paper.item() == pytest.approx(0.5 * 15.25)
    everything, parts = kd_loss(student, teacher, bits, 0.0, 1.0, "mean", term="mse")
    assert everything.item() == pytest.approx((9 + 6.25 + 1 + 4) / 4) and parts["kept"] == 1.0
    with pytest.raises(ConfigError, match=r"kd\.mask"):
        RunConfig().with_overrides({"kd.mask": "some"})


def test_sobolev_term_is_zero_for_the_teacher_itself_and_its_gradient_matches_autograd() -> None:
    from deeprx.train.losses import sobolev_term

    torch.manual_seed(0)
    student, teacher = torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.Conv2d(3, 2, 3, padding=1)
    z = torch.randn(2, 3, 4, 5)

    def gen() -> torch.Generator:
        return torch.Generator().manual_seed(7)

    assert sobolev_term(student, student, z, 2, gen()).item() == pytest.approx(0.0, abs=1e-12)
    term = sobolev_term(student, teacher, z, 2, gen())
    (grad,) = torch.autograd.grad(term, student.weight)
    # by hand: the full Jacobians (the maps are linear in z), u^T J for the same two directions
    g = gen()
    us = [torch.randn(student(z).shape, generator=g) for _ in range(2)]
    j_t = torch.autograd.functional.jacobian(teacher, z).detach()
    j_s = torch.autograd.functional.jacobian(student, z, create_graph=True)
    dims = list(range(j_s.dim() - z.dim()))
    expected = sum(((torch.tensordot(u, j_s - j_t, dims=(dims, dims))) ** 2).mean() for u in us) / 2
    (expected_grad,) = torch.autograd.grad(expected, student.weight)
    assert term.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(grad, expected_grad, rtol=1e-4, atol=1e-7)


def test_distillation_loss_anneals_and_sobolev_needs_a_network_teacher(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    from deeprx.train.distill import DistillationLoss

    cfg = tiny_cfg.with_overrides({"kd.teacher": GENIE_TEACHER, "kd.alpha": 0.0, "kd.anneal": "linear"})
    simulator = UplinkSimulator(cfg.link)
    loss_fn, _ = distillation_loss(cfg, simulator)
    student = NeuralReceiver(
        create_model(cfg.model, cfg.link.n_rx, cfg.link.bits_per_symbol), FrontEnd(simulator, "paper")
    )
    slot = simulator.sample(4, seed=3)
    assert loss_fn(student, slot).item() > 0
    loss_fn.set_step(cfg.train.steps - 1)  # the last step: the KD weight is 0 and alpha is 0
    assert loss_fn(student, slot).item() == 0.0
    with pytest.raises(InputError, match="sobolev_weight"):
        DistillationLoss(cfg.with_overrides({"kd.sobolev_weight": 1.0}), loss_fn.teacher)
    # a network teacher with the student's input: the trainer runs Sobolev KD end to end, and resumes it exactly
    train(tiny_cfg.with_overrides({"train.steps": 2}), tmp_path / "teacher", show_progress=False)
    sob = tiny_cfg.with_overrides(
        {"kd.teacher": str(tmp_path / "teacher"), "kd.sobolev_weight": 10.0, "kd.sobolev_directions": 2}
    )
    result = train(sob, tmp_path / "student", show_progress=False)
    assert all(math.isfinite(r["loss"]) for r in result.log if "loss" in r)


def test_trial_keys_ignore_kd_options_at_their_defaults(tiny_cfg: RunConfig) -> None:
    from deeprx.config import config_hash
    from deeprx.studies.runner import Trial

    d = {k: v for k, v in tiny_cfg.to_dict().items() if k not in ("profile", "device")}
    for added in ("term", "mask", "confidence", "anneal", "sobolev_weight", "sobolev_directions", "feature_weight"):
        del d["kd"][added]
    del d["train"]["validation_slots"], d["train"]["init_from"], d["eval"]["delay_spread_ns"]
    del d["link"]["mcs_index"], d["link"]["mcs_table"]
    assert Trial(tiny_cfg, "scratch").key == f"{tiny_cfg.model}-{config_hash(d)}"  # the key before the options
    for changed in ({"kd.term": "mse"}, {"kd.feature_weight": 1.0}, {"train.init_from": "x"},
                    {"eval.delay_spread_ns": [300, 1000]}, {"train.validation_slots": 256},
                    {"link.mcs_index": 14}):  # fmt: skip
        assert Trial(tiny_cfg.with_overrides(changed), "scratch").key != Trial(tiny_cfg, "scratch").key, changed


def test_hint_term_by_hand() -> None:
    from deeprx.train.losses import hint_term

    identity = torch.nn.ModuleList([torch.nn.Conv2d(2, 2, 1, bias=False)])
    with torch.no_grad():
        identity[0].weight.copy_(torch.eye(2)[:, :, None, None])
    t = torch.tensor([1.0, -1.0, 2.0, 0.0]).reshape(1, 2, 1, 2)  # mean(t^2) = 6 / 4
    assert hint_term([t], [t], identity).item() == 0.0
    assert hint_term([2 * t], [t], identity).item() == pytest.approx(1.0)  # mean(t^2) / mean(t^2)
    assert hint_term([torch.zeros_like(t)], [t], identity).item() == pytest.approx(1.0)
    # two pairs: the mean of their relative errors (1 and 0)
    twice = torch.nn.ModuleList([identity[0], identity[0]])
    assert hint_term([2 * t, t], [t, t], twice).item() == pytest.approx(0.5)


def test_feature_kd_adapters_capture_train_and_resume(
    tiny_cfg: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deeprx.train.distill import HINT_BLOCKS, DistillationLoss, FeatureHints

    teacher_cfg = tiny_cfg.with_overrides({"model": "deeprx_quarter_c32", "train.steps": 4})
    train(teacher_cfg, tmp_path / "teacher", show_progress=False)
    cfg = tiny_cfg.with_overrides({"kd.teacher": str(tmp_path / "teacher"), "kd.feature_weight": 1.0,
                                   "train.steps": 12, "train.checkpoint_every": 6})  # fmt: skip
    simulator = UplinkSimulator(cfg.link)
    loss_fn, _ = distillation_loss(cfg, simulator)
    assert isinstance(loss_fn.auxiliary, FeatureHints)
    teacher_net = loss_fn.teacher.receiver.model
    student_widths = create_model(cfg.model).config.channels
    for adapter, block in zip(loss_fn.auxiliary.adapters, HINT_BLOCKS, strict=True):  # student -> teacher width
        assert adapter.weight.shape == (teacher_net.config.channels[block], student_widths[block], 1, 1)
    z = torch.randn(2, teacher_net.config.in_channels, 14, 24)
    with FeatureHints.capture(teacher_net) as outputs:
        teacher_net(z)
    assert [o.shape[1] for o in outputs] == [teacher_net.config.channels[b] for b in HINT_BLOCKS]
    assert not teacher_net.blocks[HINT_BLOCKS[0]]._forward_hooks  # removed on exit

    train(cfg, tmp_path / "straight", show_progress=False)
    sample, draws = UplinkSimulator.sample, 0

    def interrupted(self: UplinkSimulator, batch_size: int, *args, **kwargs):  # killed in step 9
        nonlocal draws
        draws += batch_size == cfg.train.batch_size
        if draws > 8:
            raise KeyboardInterrupt
        return sample(self, batch_size, *args, **kwargs)

    monkeypatch.setattr(UplinkSimulator, "sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "student", show_progress=False)
    monkeypatch.setattr(UplinkSimulator, "sample", sample)
    saved = checkpoint.load(tmp_path / "student")
    assert saved.step == 6
    assert sorted(saved.aux_state) == ["adapters.0.bias", "adapters.0.weight", "adapters.1.bias", "adapters.1.weight"]
    assert train(cfg, tmp_path / "student", resume=True, show_progress=False).step == 12
    straight, final = checkpoint.load(tmp_path / "straight"), checkpoint.load(tmp_path / "student")
    for key, value in straight.aux_state.items():  # resuming restores the adapters: the same run
        assert torch.allclose(final.aux_state[key], value, atol=1e-5), key
    for key, value in straight.model_state.items():
        assert torch.allclose(final.model_state[key].float(), value.float(), atol=1e-5), key
    with pytest.raises(InputError, match="network teacher"):
        DistillationLoss(cfg.with_overrides({"kd.teacher": GENIE_TEACHER}), load_teacher(
            cfg.with_overrides({"kd.teacher": GENIE_TEACHER}), simulator)[0])  # fmt: skip


def test_feature_kd_lowers_the_hint_term(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    from deeprx.train.distill import FeatureHints
    from deeprx.train.losses import hint_term

    train(tiny_cfg.with_overrides({"model": "deeprx_quarter_c32", "train.steps": 10}), tmp_path / "teacher",
          show_progress=False)  # fmt: skip
    cfg = tiny_cfg.with_overrides({"kd.teacher": str(tmp_path / "teacher"), "kd.feature_weight": 100.0,
                                   "kd.alpha": 0.0, "train.steps": 30, "train.checkpoint_every": 30})  # fmt: skip
    simulator = UplinkSimulator(cfg.link)
    slot = simulator.sample(8, seed=123)

    def hint_on_fixed_batch(run: Path) -> float:
        loss_fn, _ = distillation_loss(cfg, simulator)
        ckpt = checkpoint.load(run)
        loss_fn.auxiliary.load_state_dict(ckpt.aux_state)
        student, _ = checkpoint.load_model(run)
        x = paper_input(slot)
        with (
            torch.no_grad(),
            FeatureHints.capture(student) as s,
            FeatureHints.capture(loss_fn.teacher.receiver.model) as t,
        ):
            student(x), loss_fn.teacher.receiver.model(x)
            return hint_term(s, t, loss_fn.auxiliary.adapters).item()

    train(cfg.with_overrides({"train.steps": 1, "train.lr": 1e-9}), tmp_path / "start", show_progress=False)
    train(cfg, tmp_path / "student", show_progress=False)
    assert hint_on_fixed_batch(tmp_path / "student") < 0.7 * hint_on_fixed_batch(tmp_path / "start")
