"""The package's structure: modules import one way (no cycles), and the analysis primitives stand alone."""
import ast
from pathlib import Path

import edge_audio

PACKAGE = Path(edge_audio.__file__).parent


def module_imports() -> dict[str, set[str]]:
    """Each module's edge_audio imports made at import time (module level), as dotted names."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("edge_audio", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        imported = set()
        for node in ast.parse(path.read_text()).body:  # module level only: lazy imports inside functions are fine
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    target = f"{base}.{node.module}" if node.module else base
                    for alias in node.names:
                        candidate = f"{target}.{alias.name}"
                        is_module = (PACKAGE / Path(*candidate.split(".")[1:])).with_suffix(".py").is_file()
                        imported.add(candidate if is_module else target)
                elif node.module and node.module.startswith("edge_audio"):
                    imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("edge_audio")}
        graph[name] = imported
    return graph


def test_no_module_imports_itself_through_a_cycle():
    graph = module_imports()
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(trail + [module])
        state[module] = "open"
        for child in graph.get(module, ()):
            visit(child, trail + [module])
        state[module] = "done"

    for module in graph:
        visit(module, [])


def test_the_pareto_primitives_depend_on_numpy_alone():
    tree = ast.parse((PACKAGE / "pareto.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert modules <= {"__future__", "numpy"}, modules


def test_plots_draw_what_they_are_given():
    analysis = {"edge_audio.frontier", "edge_audio.nas", "edge_audio.results", "edge_audio.pareto"}
    imported = module_imports()["edge_audio.plots"]
    assert not imported & analysis and not any(m.startswith("edge_audio.steps") for m in imported), imported


def test_each_chapter_has_its_step_module():
    steps = {p.stem for p in (PACKAGE / "steps").glob("*.py")} - {"__init__"}
    assert steps == {"data", "baselines", "quantization", "search", "frontier"}
