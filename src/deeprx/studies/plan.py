"""What ``deeprx reproduce`` runs for each profile: sizes, teachers, students, alpha and T grids.

Profiles scale sizes and steps, never the code path. Alphas are for the ``paper`` scaling (KL summed
over the bits of a slot): a slot of 4 PRB, 16-QAM, 1 DMRS symbol carries 13 x 48 x 4 = 2,496 bits, the
paper's 26 PRB, 256-QAM slot 32,448, so the paper's alpha = 5e5 weighs the labels ~15x per bit there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deeprx.config import RunConfig, load_profile
from deeprx.runs.reference import GENIE_TEACHER, LS_LMMSE_TEACHER
from deeprx.train.distill import HINT_BLOCKS


@dataclass(frozen=True)
class StudyPlan:
    """One profile's studies.

    Attributes:
        base: link, training and evaluation shared by every student (from the profile).
        teacher: the teacher shared by the alpha, T and curve studies.
        teacher_steps: training steps of every teacher (longer than the students').
        teachers: the teachers of the teacher-size study (Fig. 4): presets (trained here for ``teacher_steps``,
            or the shipped teacher where the preset is ``teacher``) or names of shipped checkpoints.
        student: the student of the alpha, teacher and curve studies (<= 1/3 of the teacher's FLOPs).
        students: student sizes for the T x size study (Fig. 5).
        sizes: presets trained from scratch for the size study (Fig. 3).
        alphas: alpha grid (Table III), ``paper`` scaling.
        temperatures: T grid (Fig. 5).
        alpha, temperature, scaling: the KD setting of the teacher-size and curve studies.
        mean_scaling_alpha: alpha of one more trial of the alpha study with the per-bit-mean scaling (Hinton's
            ``T^2``), the other reduction of the KD term; ``None`` leaves it out.
        classical_teachers: ``(teacher, DMRS symbols)`` pairs: the student distilled from a classical
            receiver's LLRs (see :data:`deeprx.train.distill.CLASSICAL_TEACHERS`), the probes of whether the
            DeepRx teacher is good enough to teach.
        n_boot: bootstrap resamples over test slots for every uncertainty.
        shipped_teachers: ``(DMRS symbols, pretrained name)`` pairs: the main teacher of that DMRS setting is
            the shipped checkpoint (evaluated, not trained); its preset must be ``teacher``.
        shipped_students: ``(DMRS symbols, pretrained name)`` pairs: converged students evaluated (not trained)
            on that setting's test set, drawn beside the teacher and the students trained here (Fig. 6, the
            frontier): what a student becomes with the budget a study cannot spend.
        energy_window_s: the idle and shortest working windows of the teacher's metered energy, s.
        kd_variants: ``(name, kd overrides)``: the main student distilled with each of this project's KD options
            (logit MSE, confident or correct bits only, teacher annealing, Sobolev), against its scratch twin.
        hardware_students: students of another architecture (dense 3x3 blocks), each trained from scratch and
            by KD in the main setting: judged on the frontier by quality and measured speed.
        qat_steps: quantization-aware fine-tuning steps of the main student (from scratch and by KD, 1 DMRS)
            to int8 (:mod:`deeprx.studies.quantized`); 0 leaves the KD + int8 study out.
        coded: overrides of the coded test set (an MCS and its SINR grid) on which the receivers of Fig. 6 and
            the KD students of the temperature, alpha and KD-variant studies are also evaluated in BLER
            (:mod:`deeprx.studies.coded`); empty: not.
    """

    base: RunConfig
    teacher: str
    teacher_steps: int
    teachers: tuple[str, ...]
    student: str
    students: tuple[str, ...]
    sizes: tuple[str, ...]
    alphas: tuple[float, ...]
    temperatures: tuple[float, ...]
    alpha: float
    temperature: float
    scaling: str = "paper"
    mean_scaling_alpha: float | None = None
    classical_teachers: tuple[tuple[str, int], ...] = ((GENIE_TEACHER, 1), (LS_LMMSE_TEACHER, 2))
    n_boot: int = 1000
    shipped_teachers: tuple[tuple[int, str], ...] = ()
    shipped_students: tuple[tuple[int, str], ...] = ()
    energy_window_s: float = 3.0
    kd_variants: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    hardware_students: tuple[str, ...] = ()
    qat_steps: int = 0
    coded: tuple[tuple[str, Any], ...] = ()


# 16-QAM at MCS 14 of table 1 (code rate 0.54), neural_rx's operating point, on a 0.5 dB grid from 0 to 12 dB: the
# shipped receivers' BLER waterfalls fall from 1 to 0.01 within about 1 dB inside it (results/coded/).
CODED_EVALUATION: tuple[tuple[str, Any], ...] = (
    ("link.mcs_index", 14),
    ("link.mcs_table", 1),
    ("eval.sinr_start_db", 0.0),
    ("eval.sinr_stop_db", 12.0),
    ("eval.sinr_step_db", 0.5),
)


# This project's KD options beyond the paper, each one trial of the main student (see deeprx.config.KdConfig).
KD_VARIANTS: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = (
    ("logit MSE", (("kd.term", "mse"),)),
    ("confident bits (p >= 0.9)", (("kd.mask", "confident"),)),
    ("correct bits", (("kd.mask", "correct"),)),
    ("teacher annealing", (("kd.anneal", "linear"),)),
    ("Sobolev (weight 1, 1 direction)", (("kd.sobolev_weight", 1.0),)),
)
# The cpu plan's: those that can carry more than the paper's KL on a budget of 2 cores (Sobolev costs 8x a step).
CPU_KD_VARIANTS = (
    *(v for v in KD_VARIANTS if v[0] in ("logit MSE", "correct bits")),
    (f"feature KD (weight 1, blocks {', '.join(map(str, HINT_BLOCKS))})", (("kd.feature_weight", 1.0),)),
)


# The shipped teachers (deeprx_half: cpu-teacher-dmrs1/2, 295,936 slots of CDL-B/C/D made on a GPU, each fine-tuned
# on the broad mix for 48,000 slots on 2 CPU cores, which cut the 1-DMRS one's BER at 40 dB on TDL and UMi by 4x and
# the 2-DMRS one's on UMi by 3x: deeprx pretrained list).
SHIPPED_TEACHERS: tuple[tuple[int, str], ...] = ((1, "cpu-teacher-broad-dmrs1"), (2, "cpu-teacher-broad-dmrs2"))

# The converged students (1 DMRS: 240,000 slots each on the broad mix, dense_sixteenth by the paper's KD from the
# broad-mix teacher, its floor a sixth of its scratch twin's; 2 DMRS: the scratch ones fine-tuned for 48,000 more; on
# 2 CPU cores: deeprx pretrained list), drawn beside the teacher and the students a study trains on its own budget.
SHIPPED_STUDENTS: tuple[tuple[int, str], ...] = (
    (1, "cpu-student-dense8-dmrs1"),
    (1, "cpu-student-dense16kd-broad-dmrs1"),
    (2, "cpu-student-dense8-dmrs2"),
    (2, "cpu-student-dense16-dmrs2"),
)


def plan_for(profile: str) -> StudyPlan:
    base = load_profile(profile)
    if profile == "quick":
        # The teachers and the converged students are the shipped ones (the quick profile's grid is the cpu
        # profile's): the demo shows converged neural receivers, evaluated, and distils from the teacher; the
        # teacher-size study sets a teacher trained here (160 steps) beside it.
        # Students trained here get 200 steps x 16 slots: the chain end to end, not converged students (the
        # report flags them; the shipped ones took 240,000 slots). The genie probe, the mean-scaling trial,
        # alpha = 30 and a third size are left out so that the demo stays within 15 minutes on 2 cores.
        return StudyPlan(
            # a checkpoint (and a validation point of the learning curves) every 25 steps
            base=base.with_overrides({"train.steps": 200, "train.batch_size": 16, "train.checkpoint_every": 25}),
            teacher="deeprx_half",
            shipped_teachers=SHIPPED_TEACHERS,
            shipped_students=SHIPPED_STUDENTS,
            teacher_steps=160,
            teachers=("deeprx_quarter", "deeprx_half"),
            student="deeprx_eighth",
            students=("deeprx_eighth",),
            sizes=("deeprx_eighth", "deeprx_quarter"),  # two sizes: the demo stays within 15 min
            alphas=(300.0, 3e4),
            temperatures=(1.0, 3.0),
            alpha=300.0,
            temperature=3.0,
            mean_scaling_alpha=None,
            classical_teachers=(),
            n_boot=300,
            energy_window_s=1.0,
            qat_steps=30,
            # the demo's coded link on a 1 dB grid (64 slots a point: BLER intervals of about +-0.1)
            coded=tuple({**dict(CODED_EVALUATION), "eval.sinr_step_db": 1.0}.items()),
        )
    if profile == "cpu":
        # Every teacher is shipped: the chain trains only students, at the budget their learning curves ask for
        # (`deeprx curves`, results/students/): dense_eighth (0.24x the teacher's FLOPs) from scratch first reached
        # 0.1x LS-LMMSE's validation BER at 40 dB after 60,000 slots and 0.01x after 72,000 on a 240,000-slot
        # schedule; a 2,000-step schedule (64,000 slots) anneals its rate by then. The 16,000 slots of the plan
        # before it left every student at LS-LMMSE's level. The KD students of one teacher share its outputs
        # per batch (BatchCache.derived). Studies cut to fit about 4 h on 2 cores: one student for T, the KD
        # options that carry the most (logit MSE, correct bits, feature KD), no Sobolev (8x a step), no
        # mean-scaling trial, dense_sixteenth as the small size (it needs ~170,000 slots: flagged where short).
        return StudyPlan(
            base=base.with_overrides({"train.steps": 2000, "train.checkpoint_every": 100}),
            teacher="deeprx_half",
            shipped_teachers=SHIPPED_TEACHERS,
            shipped_students=SHIPPED_STUDENTS,
            teacher_steps=1000,
            # Teacher size at one budget (two sizes, 32,000 slots each, trained on 2 CPU cores: the budget this
            # project could spend without a GPU), and the converged deeprx_half beside them (budget at one size).
            teachers=("cpu-teacher-half-c64-32k", "cpu-teacher-half-32k", "deeprx_half"),
            student="dense_eighth",
            students=("dense_eighth",),
            sizes=("dense_sixteenth", "dense_eighth"),
            alphas=(30.0, 300.0, 3e4),
            temperatures=(1.0, 3.0),
            alpha=300.0,
            temperature=3.0,
            mean_scaling_alpha=None,
            kd_variants=CPU_KD_VARIANTS,
            qat_steps=100,
            coded=CODED_EVALUATION,
        )
    return StudyPlan(
        base=base.with_overrides({"train.steps": 100_000}),
        teacher="deeprx_large",
        teacher_steps=250_000,
        teachers=("deeprx_full_c128", "deeprx_full", "deeprx_large", "deeprx_xl"),
        student="deeprx_half",
        students=("deeprx_half_c64", "deeprx_half", "deeprx_full_c128"),
        sizes=("deeprx_quarter", "deeprx_half_c64", "deeprx_half", "deeprx_full_c128", "deeprx_full", "deeprx_large"),
        alphas=(0.1, 5e4, 5e5, 1e6),
        temperatures=(1.0, 3.0, 6.0, 10.0),
        alpha=5e5,
        temperature=3.0,
        mean_scaling_alpha=1.0,
    )
