"""The energy section of ``deeprx reproduce``: counts at this grid and the paper's, the teacher metered on this
host (cached in ``OUT/energy_measured.json``), and the training-vs-inference life cycle. Every energy says how
it was obtained."""

from __future__ import annotations

from typing import Any

from deeprx.config import PAPER_LINK
from deeprx.energy.assess import lifecycle_table, metered
from deeprx.energy.flops import block_totals, count_layers
from deeprx.io import read_json, write_json
from deeprx.models.registry import create_model
from deeprx.studies.chain import Chain
from deeprx.studies.paper import PAPER
from deeprx.studies.plan import StudyPlan
from deeprx.studies.trial_result import TrialResult
from deeprx.subjects import energy_subject


def energy_section(plan: StudyPlan, chain: Chain, teacher: TrialResult, student: TrialResult) -> dict[str, Any]:
    """FLOPs and metric-0 energy of teacher and student at this grid and at the paper grid; a metered
    (or modeled) inference and training step of the teacher on this host; the life cycle."""
    paper_grid = PAPER_LINK.n_subcarriers
    full = create_model("deeprx_full", PAPER_LINK.n_rx, PAPER_LINK.bits_per_symbol)
    blocks = block_totals(count_layers(full, paper_grid))
    total = sum(b["flops"] for b in blocks.values())
    central = sum(blocks[f"block{i}"]["flops"] for i in (5, 6, 7)) / total
    coral = chain.processors["coral-edge-tpu"]
    full_flops = sum(b["flops"] for b in blocks.values())
    cache = chain.out / "energy_measured.json"
    link = plan.base.link
    if cache.exists():
        measured = read_json(cache, "energy measurement")
    else:
        subject = energy_subject(chain.teacher(plan.teacher, 1).run_dir(chain.out), plan.teacher, link)
        window = plan.energy_window_s
        m, description, why = metered(subject, "auto", chain.processors["host"], batch=16,
                                      train_batch=plan.base.train.batch_size, repeats=3, window_s=window,
                                      idle_s=window)  # fmt: skip
        measured = {
            "meter": description,
            "why": why,
            "inference": m["inference"].to_dict(),
            "training_step": m["training_step"].to_dict(),
        }
        write_json(cache, measured)
    inf, step = measured["inference"], measured["training_step"]
    batch = plan.base.train.batch_size
    teacher_slots = teacher.shipped["slots_seen"] if teacher.shipped else teacher.trained_steps * batch
    return {
        "paper_grid_full": {
            "flops_per_slot": full_flops,
            "central_blocks_share": central,
            "coral_metric0_joules": full_flops / coral.flops_per_watt,
        },
        "models": {
            r.model: {
                "role": r.role,
                "flops_per_slot": r.flops_per_slot,
                "metric0_joules_per_slot": r.metric0_joules_per_slot,
            }
            for r in (teacher, student)
        },
        "student_over_teacher_flops": student.flops_per_slot / teacher.flops_per_slot,
        "measured": measured,
        # The teacher's training on this host: its slots (a shipped teacher's, from its record) in this
        # host's metered steps of the plan's batch.
        "teacher_training_slots": teacher_slots,
        "life_cycle_measured": lifecycle_table(
            step["joules_per_item"], teacher_slots // batch, inf["joules_per_item"], inf["method"]
        ),
        "life_cycle_paper_inputs": lifecycle_table(
            PAPER["train_step_joules"], PAPER["train_steps"], PAPER["coral_mj"] * 1e-3, "paper's figures"
        ),
    }
