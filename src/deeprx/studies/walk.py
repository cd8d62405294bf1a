"""The studies of a plan as one walk over their trials: which trials each study needs, in what order.

:func:`run_studies` asks a :class:`~deeprx.studies.chain.Chain` for each trial; the chain decides what that
means: run it now (the local executor), read it from the store, or record it as work for Ray tasks
(:class:`~deeprx.studies.distributed.PlanningChain`). :mod:`~deeprx.studies.reproduce` assembles the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deeprx.studies.chain import Chain
from deeprx.studies.plan import StudyPlan
from deeprx.studies.runner import SHIPPED_STUDENT
from deeprx.studies.trial_result import TrialResult


@dataclass
class Collected:
    """The result of every trial of a plan, grouped as the studies use them (:func:`run_studies`). A chain
    that plans, or reads a store that lacks a trial, holds a :class:`~deeprx.studies.trial_result.TrialRef`
    in its place (and says so in ``chain.failed``), which nobody reads.

    Attributes:
        curves: per DMRS setting, the ``teacher``, ``scratch`` and ``kd`` results, the ``shipped`` students'
            (a list) and the ``baselines``' one.
        size: the size study's students from scratch; teacher: the main teacher (1 DMRS).
        alpha, mean_scaling: the alpha study (and its mean-scaling trial, or ``None``).
        temperature, temperature_scratch: per student, the KD trials over T and its scratch twin.
        teachers: ``(teacher, KD student)`` of the teacher-size study.
        classical: ``(teacher name, DMRS, KD student)`` of the teacher-quality probe.
        variants: ``(name, KD student)``; hardware: ``(scratch, KD)`` per hardware student.
        quantized: the int8 main students (scratch, then KD), empty without a QAT study.
    """

    curves: dict[int, dict[str, Any]]
    size: list[TrialResult]
    teacher: TrialResult
    alpha: list[TrialResult]
    mean_scaling: TrialResult | None
    temperature: dict[str, list[TrialResult]]
    temperature_scratch: dict[str, TrialResult]
    teachers: list[tuple[TrialResult, TrialResult]]
    classical: list[tuple[str, int, TrialResult]]
    variants: list[tuple[str, TrialResult]]
    hardware: list[tuple[TrialResult, TrialResult]]
    quantized: list[TrialResult]


def run_studies(chain: Chain, plan: StudyPlan) -> Collected:
    """Every trial of ``plan`` through ``chain`` (run, read from the store, or planned, as the chain does), in
    the order the studies need them: a teacher before its students, a student before its int8 version."""
    # Fig. 6 first: the chain's headline, and the teacher every KD study shares.
    teacher = chain.teacher(plan.teacher)
    curves = {}
    for dmrs in (1, 2):
        t = chain.teacher(plan.teacher, dmrs)
        base = chain.baselines(dmrs)
        res_t = chain.run(f"curves-dmrs{dmrs}", t, role="teacher")
        res_s = chain.run(f"curves-dmrs{dmrs}", chain.scratch(plan.student, dmrs), role="scratch")
        res_k = chain.run(
            f"curves-dmrs{dmrs}", chain.kd(plan.student, t, plan.alpha, plan.temperature, dmrs), role="kd"
        )
        shipped = [
            chain.run(f"curves-dmrs{dmrs}", chain.shipped(name, SHIPPED_STUDENT, dmrs), role=SHIPPED_STUDENT)
            for d, name in plan.shipped_students
            if d == dmrs
        ]
        curves[dmrs] = {"teacher": res_t, "scratch": res_s, "kd": res_k, "shipped": shipped, "baselines": base}

    # Fig. 3: size from scratch.
    size_results = [chain.run("size", chain.scratch(m), model=m) for m in plan.sizes]
    teacher_result = chain.run("size", teacher, model=plan.teacher, role="teacher")
    # Table III: alpha.
    alpha_results = [
        chain.run("alpha", chain.kd(plan.student, teacher, a, plan.temperature), alpha=a) for a in plan.alphas
    ]
    mean_result = None
    if plan.mean_scaling_alpha is not None:
        mean_trial = chain.kd(plan.student, teacher, plan.mean_scaling_alpha, plan.temperature, scaling="mean")
        mean_result = chain.run("alpha", mean_trial, alpha=plan.mean_scaling_alpha, scaling="mean")
    # Fig. 5: T x student size.
    temp_results = {
        s: [
            chain.run("temperature", chain.kd(s, teacher, plan.alpha, t), student=s, temperature=t)
            for t in plan.temperatures
        ]
        for s in plan.students
    }
    student_scratch = {s: chain.run("temperature", chain.scratch(s), student=s, role="scratch") for s in plan.students}
    # Fig. 4: teacher size for a fixed student.
    teacher_rows = []
    for name in plan.teachers:
        t = chain.teacher(name)
        res_t = chain.run("teacher", t, teacher=name, role="teacher")
        res_k = chain.run("teacher", chain.kd(plan.student, t, plan.alpha, plan.temperature), teacher=name)
        teacher_rows.append((res_t, res_k))
    # (ours) Teacher quality: the same student distilled from classical receivers far better than DeepRx.
    classical = []
    for name, dmrs in plan.classical_teachers:
        trial = chain.kd(plan.student, name, plan.alpha, plan.temperature, dmrs)
        classical.append((name, dmrs, chain.run("teacher-quality", trial, teacher=name, dmrs=dmrs)))
    # (ours) The KD options beyond the paper, each on the main student in the main setting.
    variant_results = [
        (name, chain.run("kd-variants", chain.kd(plan.student, teacher, plan.alpha, plan.temperature,
                                                  options=dict(options)), variant=name))
        for name, options in plan.kd_variants
    ]  # fmt: skip
    # (ours) Students built for the hardware: from scratch and by KD, judged on the frontier.
    hardware_results = [
        (
            chain.run("hardware", chain.scratch(s), student=s, role="scratch"),
            chain.run("hardware", chain.kd(s, teacher, plan.alpha, plan.temperature), student=s, role="kd"),
        )
        for s in plan.hardware_students
    ]
    # (ours) KD + int8 QAT: the main student from scratch and by KD (1 DMRS), each quantized, scored in pairs.
    quantized = []
    if plan.qat_steps:
        sources = {"scratch": chain.scratch(plan.student), "kd": chain.kd(plan.student, teacher, plan.alpha,
                                                                           plan.temperature)}  # fmt: skip
        quantized = [chain.quantize(trial, curves[1][role], role) for role, trial in sources.items()]
    return Collected(
        curves=curves,
        size=size_results,
        teacher=teacher_result,
        alpha=alpha_results,
        mean_scaling=mean_result,
        temperature=temp_results,
        temperature_scratch=student_scratch,
        teachers=teacher_rows,
        classical=classical,
        variants=variant_results,
        hardware=hardware_results,
        quantized=quantized,
    )
