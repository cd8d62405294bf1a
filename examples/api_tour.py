"""deeprx from Python, not the command line: a shipped receiver on a link of your choosing, beside LS-LMMSE; a
small student distilled from it for a few steps; the student's energy per slot on two processors.

Run it as it is (about a minute on 2 CPU cores), or change the link:

    python examples/api_tour.py --n-prb 8 --speed 40 80 --channel TDL-A --slots 64 --steps 50

Every object here is the library's own: the CLI is a thin layer over the same calls.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deeprx.energy.assess import estimates
from deeprx.energy.processors import load_catalogue, load_memory_energy
from deeprx.evaluate.ber import evaluate
from deeprx.evaluate.summary import summarize
from deeprx.evaluation import evaluation_config
from deeprx.link.baselines import baseline_receivers
from deeprx.link.simulator import UplinkSimulator
from deeprx.link.testset import TestSet
from deeprx.receivers import load_receiver
from deeprx.runs import registry
from deeprx.runtime import CPU, RunContext
from deeprx.subjects import energy_subject
from deeprx.train.trainer import train

TEACHER = "cpu-teacher-broad-dmrs1"  # deeprx_half on the cpu profile's 4-PRB link (deeprx pretrained list)
STUDENT = "deeprx_eighth"  # a preset of 1/16 of the teacher's FLOPs (deeprx info --model all)
PROCESSORS = ("xeon-gold-5320", "coral-edge-tpu")  # two entries of the catalogue (deeprx energy processors)
QUALITY_FIELDS = ("receiver", "geometric_mean_ber", "ber_at_max_sinr", "ber_at_max_sinr_ci_slots",
                  "slots_with_errors_at_max_sinr")  # fmt: skip


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-prb", type=int, default=8, help="PRBs of your link (the teacher was trained on 4)")
    parser.add_argument("--speed", type=float, nargs=2, default=(20.0, 40.0), help="UE speed range, m/s")
    parser.add_argument("--channel", default="CDL-A", help="test channel family (CDL-A..E, TDL-A..E, UMi)")
    parser.add_argument("--sinr", type=float, nargs=3, default=(10.0, 40.0, 15.0), help="start stop step, dB")
    parser.add_argument("--slots", type=int, default=32, help="test slots per SINR point")
    parser.add_argument("--steps", type=int, default=20, help="distillation steps of the student")
    parser.add_argument("--out", type=Path, default=Path("out/api-tour"))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    # 1. A shipped receiver, evaluated on your link: the network is fully convolutional, so its grid, speeds and
    #    channels may differ from its training link; n_rx, modulation and input features are fixed by its weights.
    teacher_dir = registry.resolve(TEACHER)  # the run folder inside the package, hash-checked
    start, stop, step = args.sinr
    link = {
        "link.n_prb": args.n_prb,
        "eval.channel_models": [args.channel],
        "eval.speed_mps": list(args.speed),
        "eval.sinr_start_db": start,
        "eval.sinr_stop_db": stop,
        "eval.sinr_step_db": step,
        "eval.slots_per_point": args.slots,
    }
    cfg = evaluation_config(teacher_dir, profile=None, overrides=link, device="auto")
    device = RunContext.resolve(cfg.device).device  # a GPU if there is one, else the CPU: never the training device
    receiver, _ = load_receiver(teacher_dir, device, cfg)
    testset = TestSet.ensure(cfg, args.out / "testsets", show_progress=False)  # seeded HDF5, reused on re-runs
    receivers = {f"DeepRx ({TEACHER})": receiver, **baseline_receivers(UplinkSimulator(cfg.link, device))}
    curves = evaluate(receivers, testset, cfg.eval.batch_size, show_progress=False, device=device)  # every slot
    quality = [row.to_dict() for row in summarize(curves, cfg.eval.target_ber)]

    # 2. A small student distilled from it (paper eq. 2: alpha * BCE + KL at temperature T) on the same link.
    student_cfg = cfg.with_overrides({"model": STUDENT, "kd.teacher": TEACHER, "kd.alpha": 300.0,
                                      "kd.temperature": 3.0, "train.steps": args.steps,
                                      "train.checkpoint_every": args.steps, "train.batch_size": 8})  # fmt: skip
    student_dir = args.out / "student"
    result = train(student_cfg, student_dir, resume=(student_dir / "checkpoint.json").exists(), show_progress=False)
    losses = [row["loss"] for row in result.log if "loss" in row]

    # 3. The student's energy per slot on two processors: metric 0 (FLOPs / peak FLOP/s per W), an estimate from
    #    counts and datasheet figures, network and front end apart.
    catalogue = load_catalogue()
    est = estimates(energy_subject(student_dir, "", cfg.link, CPU), catalogue, load_memory_energy())
    energy = {
        key: {
            "processor": catalogue[key].name,
            "network_uJ_per_slot": est["processors"][key]["joules_per_slot"]["metric0"] * 1e6,
            "front_end_uJ_per_slot": est["front_end"]["metric0_joules"][key] * 1e6,
            "method": "metric0 (estimate)",
        }
        for key in PROCESSORS
    }

    report = {
        "link": f"{cfg.link.modulation}, {cfg.link.n_prb} PRB, {args.channel}, {args.speed[0]:g}-{args.speed[1]:g} m/s",
        "device": str(device),
        "quality": [{k: q[k] for k in QUALITY_FIELDS} for q in quality],
        "student": {"model": STUDENT, "steps": result.step, "loss_first": losses[0], "loss_last": losses[-1]},
        "energy": energy,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return report
    print(f"link: {report['link']} on {device}")
    for q in report["quality"]:
        print(f"  {q['receiver']:<32} geo-mean BER {q['geometric_mean_ber']:.3f}, BER at {stop:g} dB "
              f"{q['ber_at_max_sinr']:.2e} ({q['slots_with_errors_at_max_sinr']} slots with errors)")  # fmt: skip
    s = report["student"]
    print(f"student {s['model']}: {s['steps']} KD steps, loss {s['loss_first']:.4f} -> {s['loss_last']:.4f}")
    for e in energy.values():
        print(f"  {e['processor']}: network {e['network_uJ_per_slot']:.3g} µJ/slot + front end "
              f"{e['front_end_uJ_per_slot']:.3g} µJ/slot ({e['method']})")  # fmt: skip
    return report


if __name__ == "__main__":
    main()
