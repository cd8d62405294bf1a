"""(ours) KD combined with int8 quantization-aware training, the paper's future work, as a study.

A trained student (its fp32 trial) is fine-tuned with fake quantization and its run's own loss (the
distillation loss for a KD student: the teacher also teaches the quantized network), exported as QDQ ONNX
(:mod:`deeprx.train.qat`) and scored by ONNX Runtime's int8 kernels on every slot of the shared test set, so
it is compared in pairs with the fp32 students like any other trial.
"""

from __future__ import annotations

from pathlib import Path

from deeprx.evaluate.ber import ALL_SLOTS, evaluate
from deeprx.infer.engine import onnx_file_engine
from deeprx.link.simulator import UplinkSimulator
from deeprx.link.testset import TestSet
from deeprx.receivers import FrontEnd, RunnerReceiver
from deeprx.runs import checkpoint
from deeprx.runs.layout import OutputLayout
from deeprx.runtime import use_all_cores
from deeprx.studies.runner import Trial
from deeprx.studies.store import Store
from deeprx.studies.trial_result import TrialResult
from deeprx.train.qat import CPU, qat_finetune

QAT_STEPS = 100  # fine-tuning steps: the loss settles within them on the cpu profile's students
QAT_LR = 1e-4  # AdamW; a tenth of the students' final learning rate range keeps the fp32 solution nearby
INT8_ONNX = "model.int8.onnx"


def qat_key(source: Trial, steps: int = QAT_STEPS, lr: float = QAT_LR) -> str:
    """The store key of ``source`` quantized with ``steps`` QAT steps at ``lr``."""
    return f"{source.key}-qat{steps}-lr{lr:g}"


def run_qat_trial(
    source: Trial,
    source_result: TrialResult,
    out: Path,
    store: Store,
    steps: int = QAT_STEPS,
    lr: float = QAT_LR,
    show_progress: bool = True,
) -> TrialResult:
    """Quantize the trained ``source`` trial (QAT, ``steps`` at ``lr``) and score the int8 ONNX model on every
    test slot; stored under its own key, so a resumed study does not repeat it.

    Returns the source's result with the int8 model's curve, ``role = "qat"`` and the QAT facts (losses, the
    teacher, agreement with fp32 and with the fake-quantized model). FLOPs and metric-0 energy stay the fp32
    network's: the same operations in int8 arithmetic, which the catalogue's fp32 peaks do not price.
    """
    key = qat_key(source, steps, lr)
    done = store.result(key)
    if done is not None:
        return TrialResult.from_dict(done)
    store.start(key, "qat", {"source": source.key, "steps": steps, "lr": lr})
    result = execute_qat(source, source_result, out, steps, lr, show_progress)
    store.finish(key, result.to_dict())
    return result


def execute_qat(
    source: Trial,
    source_result: TrialResult,
    out: Path,
    steps: int = QAT_STEPS,
    lr: float = QAT_LR,
    show_progress: bool = True,
) -> TrialResult:
    """:func:`run_qat_trial`'s work and result, not stored."""
    key = qat_key(source, steps, lr)
    folder = OutputLayout(out).run(key)
    folder.mkdir(parents=True, exist_ok=True)
    onnx = folder / INT8_ONNX
    facts = qat_finetune(source.run_dir(out), onnx, steps, lr)
    cfg = checkpoint.saved_config(source.run_dir(out))
    engine = onnx_file_engine(onnx, use_all_cores(), "onnx-qat", "QAT int8, ONNX Runtime (QDQ)")
    receiver = RunnerReceiver(engine.run, FrontEnd(UplinkSimulator(cfg.link, CPU), cfg.features))
    testset = TestSet.ensure(source.cfg, OutputLayout(out).testsets, show_progress)
    curve = evaluate({key: receiver}, testset, source.cfg.eval.batch_size, ALL_SLOTS, show_progress, CPU)[0]
    return source_result.as_int8(key, source.key, facts, curve, source.cfg.eval.target_ber)
