"""The package's shape: light modules stay light, no import circles, one trial path."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import deeprx
from deeprx.config import RunConfig
from deeprx.energy.processors import load_catalogue
from deeprx.pipeline import run as run_pipeline
from deeprx.runtime import CPU, RunContext
from deeprx.studies.runner import Trial, run_trial
from deeprx.studies.store import Store

PACKAGE = Path(deeprx.__file__).parent


@pytest.mark.parametrize("module", ["deeprx.models.deeprx", "deeprx.config", "deeprx.energy.flops", "deeprx.cli"])
def test_light_modules_do_not_import_sionna(module: str) -> None:
    code = f"import sys, {module}; print('sionna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", module


def test_models_import_only_torch_and_their_registry() -> None:
    """Model files know nothing about data: torch, the standard library and ``deeprx.models`` itself."""
    allowed = {"__future__", "collections", "dataclasses", "torch"}
    for path in (PACKAGE / "models").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in allowed or name.startswith("deeprx.models"), (path.name, name)


def _module_imports() -> dict[str, set[str]]:
    """Every deeprx module and the deeprx modules it imports anywhere in its body (local imports too)."""
    modules = {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in PACKAGE.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("deeprx"):
                submodules = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
                # ``from package import module`` depends on that module; any other name, on the package
                found |= submodules if len(submodules) == len(node.names) else {node.module, *submodules}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or ``None`` (depth-first search with colours)."""
    colour = dict.fromkeys(graph, 0)  # 0 unvisited, 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if colour[dep] == 1:
                return [*stack[stack.index(dep) :], dep]
            if colour[dep] == 0 and (found := visit(dep)):
                return found
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if colour[node] == 0 and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_in_the_package() -> None:
    graph = _module_imports()
    assert "deeprx.train.trainer" in graph["deeprx.studies.runner"]  # the walk sees the imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


# The documented layer order (docs/architecture.md), bottom first: a module imports its own layer and those below.
LAYERS = (
    ("io", "runtime", "models", "config"),
    ("runs", "link"),
    ("receivers",),
    ("infer", "evaluate", "report", "energy"),
    ("train",),
    ("subjects", "studies", "pipeline", "evaluation"),
    ("cli",),
)


def _upward_imports(graph: dict[str, set[str]], layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """``module -> import`` for every import of a higher layer than the importer's (by top-level name)."""
    level = {name: i for i, names in enumerate(layers) for name in names}

    def top(module: str) -> str:
        return module.split(".")[1]

    return sorted(f"{m} -> {d}" for m, deps in graph.items() if "." in m for d in deps
                  if "." in d and level[top(d)] > level[top(m)])  # fmt: skip


def test_the_layer_checker_finds_an_upward_import() -> None:
    graph = {"deeprx.io": {"deeprx.cli.app"}, "deeprx.cli.app": {"deeprx.io"}}
    assert _upward_imports(graph, LAYERS) == ["deeprx.io -> deeprx.cli.app"]


def test_imports_follow_the_documented_layer_order() -> None:
    """No module (local and type-checking imports included) imports a layer above its own, and every top-level
    module of the package has its place in the order."""
    graph = _module_imports()
    tops = {m.split(".")[1] for m in graph if "." in m}
    assert tops == {name for names in LAYERS for name in names}, "place a new module in LAYERS and the docs"
    assert _upward_imports(graph, LAYERS) == []


def test_the_output_layout_is_spelled_once() -> None:
    """``studies.sqlite``, ``testsets`` and ``OUT / "runs"`` appear in deeprx.runs.layout alone."""
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "runs" / "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant):
                assert node.value not in ("studies.sqlite", "testsets"), (path.name, node.lineno)
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant):
                assert node.right.value != "runs", (path.name, node.lineno)


def test_one_device_rule_and_one_reader_of_the_ranks() -> None:
    """Which GPU a run uses is decided in deeprx.runtime alone (RunContext.resolve), and only it reads torchrun's
    ranks from the environment."""
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "runtime.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "cuda":
                assert node.attr not in ("is_available", "current_device", "device_count"), (path.name, node.lineno)
            if isinstance(node, ast.Constant):
                assert node.value not in ("RANK", "LOCAL_RANK", "WORLD_SIZE"), (path.name, node.lineno)
            if isinstance(node, ast.Assign):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
                assert "CPU" not in targets, (path.name, node.lineno)  # the one CPU device is runtime.CPU


# The entry points that resolve a run context (a command, a Python API job, a Ray task); all else receives one.
ENTRY_POINTS = {
    ("cli/common.py", "run_context"),  # every CLI command, torchrun ranks included
    ("pipeline.py", "run"),
    ("studies/reproduce.py", "reproduce"),
    ("studies/distributed.py", "execute"),  # a Ray task, on whichever worker it landed
    ("train/trainer.py", "train"),  # called from Python without one (a study or the CLI hands theirs in)
}


def test_run_contexts_are_resolved_at_the_entry_points_alone() -> None:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, ast.FunctionDef) and path != PACKAGE / "runtime.py":
                for node in ast.walk(fn):
                    if (
                        isinstance(node, ast.Attribute)
                        and node.attr == "resolve"
                        and getattr(node.value, "id", "") == "RunContext"
                    ):
                        found.add((str(path.relative_to(PACKAGE)), fn.name))
    assert found == ENTRY_POINTS


def test_energy_imports_nothing_from_train() -> None:
    graph = _module_imports()
    for name, deps in graph.items():
        if name.startswith("deeprx.energy"):
            assert not [d for d in deps if d.startswith("deeprx.train")], name


def test_run_then_a_study_share_the_trial(tiny_cfg: RunConfig, tmp_path: Path) -> None:
    """``deeprx run`` is a one-trial use of the runner: a study asking for the same run finds it trained."""
    cfg = tiny_cfg.with_overrides({"train.steps": 2, "train.checkpoint_every": 2})
    results = run_pipeline(cfg, tmp_path, show_progress=False)
    trial = Trial(cfg, "scratch")
    assert results["model"]["trial"] == trial.key and Path(results["model"]["run_dir"]) == trial.run_dir(tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("a shared trial must not be trained again")

    processors, ctx = load_catalogue(), RunContext(CPU)
    with Store(tmp_path / "studies.sqlite") as store:  # the same store: the result itself is reused
        assert run_trial(trial, tmp_path, store, processors, ctx, False, no_training).key == trial.key
    with Store(tmp_path / "other.sqlite") as store:  # another store on the same --out: the run folder is reused
        again = run_trial(trial, tmp_path, store, processors, ctx, False, no_training)
    assert again.trained_steps == 2
    assert again.curve.bit_errors == results["curves"][0]["bit_errors"]
