"""How the prepared data flows through a step: follow one value through the calls and count its bounces.

    python scripts/data_flow.py [--output-dir DIR]

Runs ``train_baselines`` and then ``quantize_models`` (one small model, one method, a fresh output folder, so every
cached computation runs) on a small synthetic dataset, and follows the ``PreparedData`` object through every call
of the package whose arguments (or the variables a closure captured) hold it. It prints, per step:

* **returns to a higher module**: a call, holding the value, made by a module on a lower floor than the callee's
  (a lower module calling back up: a cache helper calling a step's closure that captured the value); a module's
  floor is its depth in the import graph (a module that imports nothing of the package is on
  floor 0, any other one floor above the highest it imports);
* **re-entries**: the value coming back into a module it had left;
* **names**: how many parameter names it goes by.

Issue 36 asked for at most 3 returns to a higher module per step; ``tests/test_structure.py`` checks that.
"""
from __future__ import annotations

import argparse
import ast
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edge_audio"


def module_imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module's edge_audio imports, at module level and inside functions alike, as dotted module names."""
    graph = {}
    for path in package.rglob("*.py"):
        name = ".".join(("edge_audio", *path.relative_to(package).with_suffix("").parts)).removesuffix(".__init__")
        here = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):  # every import, lazy ones inside functions too
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                    target = f"{base}.{node.module}" if node.module else base
                    for alias in node.names:
                        candidate = f"{target}.{alias.name}"
                        is_module = (package / Path(*candidate.split(".")[1:])).with_suffix(".py").is_file() or (
                            package / Path(*candidate.split(".")[1:]) / "__init__.py").is_file()
                        imported.add(candidate if is_module else target)
                elif node.module and node.module.startswith("edge_audio"):
                    imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("edge_audio")}
        graph[name] = imported - {name}
    return graph


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor: 0 when it imports nothing of the package, else one above the highest it imports (a
    package counts as its __init__ module)."""
    known: dict[str, int] = {}

    def floor(module: str, trail: tuple[str, ...] = ()) -> int:
        if module not in known:
            below = [floor(m, trail + (module,)) for m in graph.get(module, ()) if m in graph and m not in trail]
            known[module] = 1 + max(below) if below else 0
        return known[module]

    for module in graph:
        floor(module)
    return known


@dataclass
class Flow:
    """The calls a value went through, in order: (module, function, the names it was bound to, the package module
    that made the call)."""

    calls: list[tuple[str, str, tuple[str, ...], str | None]] = field(default_factory=list)

    def returns_up(self, floor_of: dict[str, int]) -> list[tuple[str, str]]:
        """The calls into a higher module than the one the value came from."""
        return [(caller, f"{module}.{function}") for module, function, _, caller in self.calls
                if caller is not None and floor_of.get(module, 0) > floor_of.get(caller, 0)]

    def reentries(self) -> int:
        seen, previous, count = set(), None, 0
        for module, _, _, _ in self.calls:
            if module != previous and module in seen:
                count += 1
            seen.add(module)
            previous = module
        return count

    def names(self) -> set[str]:
        return {name for _, _, names, _ in self.calls for name in names}


def follow(value: object, call) -> tuple[object, Flow]:
    """Run ``call()`` and record every package call whose frame holds ``value`` (arguments or captured variables)."""
    flow = Flow()

    def profile(frame, event, _arg):
        if event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("edge_audio"):
            return
        names = tuple(name for name, v in frame.f_locals.items() if v is value)
        if not names:
            return
        parent = frame.f_back  # the package module that called it (a library's frames in between are skipped)
        while parent is not None and not parent.f_globals.get("__name__", "").startswith("edge_audio"):
            parent = parent.f_back
        flow.calls.append((module, frame.f_code.co_name, names,
                           None if parent is None else parent.f_globals["__name__"]))

    sys.setprofile(profile)
    try:
        result = call()
    finally:
        sys.setprofile(None)
    return result, flow


def measure(output_dir: Path, dataset_path: Path | None = None) -> dict[str, dict]:
    """The flow of the prepared data through train_baselines and quantize_models on a fresh output folder (on the
    dataset at ``dataset_path``, default a small synthetic one)."""
    from edge_audio.settings import Settings
    from edge_audio.steps.baselines import train_baselines
    from edge_audio.steps.data import prepare_data
    from edge_audio.steps.quantization import quantize_models

    settings = Settings(output_dir=str(output_dir), synth_clips_per_class_per_fold=2,
                        dataset_path=None if dataset_path is None else str(dataset_path), sample_rate=8000, duration=2.0,
                        n_mels=32, n_fft=256, hop_length=128, model_configs=[{"name": "mini", "channels": [8, 16],
                                                                              "fc_size": 16}],
                        epochs=1, latency_runs=3, calibration_size=10, device="cpu")
    data = prepare_data(settings)
    floor_of = floors(module_imports())
    baselines, trained = follow(data, lambda: train_baselines(data, settings))
    _, quantized = follow(data, lambda: quantize_models(data, settings, baselines, ["ort_static"]))
    return {step: {"returns to a higher module": flow.returns_up(floor_of), "re-entries": flow.reentries(),
                   "names": sorted(flow.names()), "calls": len(flow.calls)}
            for step, flow in (("train_baselines", trained), ("quantize_models", quantized))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=None, help="a fresh folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edge-audio-flow-") as scratch:
        results = measure(args.output_dir or Path(scratch))
    for step, result in results.items():
        up = result["returns to a higher module"]
        print(f"{step}: {result['calls']} calls hold the prepared data; {len(up)} return(s) to a higher module, "
              f"{result['re-entries']} re-entries, {len(result['names'])} name(s): {', '.join(result['names'])}")
        for caller, callee in up:
            print(f"    {caller} -> {callee}")


if __name__ == "__main__":
    main()
