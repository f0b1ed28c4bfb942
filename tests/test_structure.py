"""The package's structure: modules import one way (no cycles, lazy imports inside functions included), the
parameter table and the analysis primitives stand alone, runtimes are chosen only through their registry,
and no package check is an assert."""
import ast
import json
from pathlib import Path

import sys

import edge_audio

PACKAGE = Path(edge_audio.__file__).parent
sys.path.insert(0, str(PACKAGE.parent / "scripts"))
import data_flow  # noqa: E402 (the import graph and the data-flow tracer, shared with the script)


def module_imports() -> dict[str, set[str]]:
    """Each module's edge_audio imports, at module level and inside functions alike (scripts/data_flow.py)."""
    return data_flow.module_imports(PACKAGE)


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


def test_the_parameter_table_is_a_leaf():
    """The table imports nothing from the package but its error type (a module that imports nothing itself)."""
    graph = module_imports()
    assert graph["edge_audio.parameters"] <= {"edge_audio.errors"}, graph["edge_audio.parameters"]
    assert not graph["edge_audio.errors"]


def test_no_runtime_is_chosen_outside_the_registry():
    """No ``runtime == ...`` chain or file-suffix dispatch outside edge_audio/runtimes/: methods, steps, the
    benchmark, classify and the cards look a runtime up in edge_audio.runtimes.RUNTIMES."""
    import re

    runtimes = "onnxruntime|litert|openvino|pytorch"
    pattern = re.compile(rf"""runtime["'\]]*\s*[!=]=\s*["']|[!=]=\s*["']({runtimes})["']|suffix\s*(==|!=|in|not in)\s*[(\[]?\s*["']\.(onnx|tflite|pth)""")
    offenders = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
                 for path in PACKAGE.rglob("*.py") if "runtimes" not in path.parts
                 for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders


def test_every_method_runs_in_a_registered_runtime():
    from edge_audio.quantize import METHODS
    from edge_audio.runtimes import RUNTIMES

    assert {m.runtime for m in METHODS.values()} <= set(RUNTIMES)
    assert all(m.suffix == RUNTIMES[m.runtime].suffix for m in METHODS.values())


def test_no_method_is_chosen_by_its_name_outside_the_registry():
    """Outside edge_audio/quantize/ no code names a quantization method (docstrings and prose may): steps, chapters,
    the search and the bench select methods by what the registry says they are."""
    from edge_audio.quantize import METHODS

    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "quantize" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text())
        prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
        prose |= {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        offenders += [f"{path.relative_to(PACKAGE)}:{n.lineno}: {n.value}" for n in ast.walk(tree)
                      if isinstance(n, ast.Constant) and n.value in METHODS and id(n) not in prose]
    assert not offenders, offenders


def test_the_pareto_primitives_depend_on_numpy_alone():
    tree = ast.parse((PACKAGE / "pareto.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert modules <= {"__future__", "numpy"}, modules


def test_plots_draw_what_they_are_given():
    analysis = {"edge_audio.frontier", "edge_audio.nas", "edge_audio.results", "edge_audio.pareto"}
    imported = module_imports()["edge_audio.plots"]
    assert not imported & analysis and not any(m.startswith("edge_audio.steps") for m in imported), imported


def test_tables_lay_out_records_and_compute_nothing():
    """edge_audio.tables reads records only: it imports no step, no runtime and nothing that measures."""
    imported = {m for m in module_imports()["edge_audio.tables"] if m.startswith("edge_audio")}
    assert imported <= {"edge_audio.stats"}, imported


def test_a_record_is_built_in_one_place():
    """Every record is made by edge_audio.records.make_record (or with_fields); no step writes a record literal:
    a dict literal with a "model", a "variant" and a "context" key appears nowhere else in the package."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict) and {"model", "variant", "context"} <= {
                    k.value for k in node.keys if isinstance(k, ast.Constant)}:
                call = path.name == "records.py" or _inside_make_record(path, node)
                if not call:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, offenders


def _inside_make_record(path, target) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "make_record":
            if any(d.lineno == target.lineno for arg in node.keywords for d in ast.walk(arg.value)
                   if isinstance(d, ast.Dict)):
                return True
    return False


#: The package in layers, top to bottom (README.md, "Architecture, in layers"): a module imports only from its own
#: layer or the ones below ("" is the package's __init__).
LAYERS = (
    ("interface", ("cli", "book", "reference", "")),
    ("chapters", ("chapters",)),
    ("pipeline", ("pipeline",)),
    ("steps", ("steps",)),
    ("settings", ("settings",)),
    ("analysis", ("frontier", "nas", "supernet_search", "bench", "bundle", "demo", "classify", "plots", "tables", "claims", "glue", "replication",
                  "results", "records", "cards")),
    ("measurement and training", ("quantize", "runtimes", "targets", "memory", "profile", "npu", "tflite", "export",
                                  "device_latency", "machine", "train", "models", "features", "data", "synth",
                                  "download", "workers", "executor", "metrics", "supernet", "firmware",
                                  "browser")),
    ("foundation", ("parameters", "storage", "paths", "errors", "names", "notices", "processes", "stats", "pareto")),
)


def test_modules_import_downward_only():
    """Every module is in one layer, and imports nothing from a layer above its own."""
    def layer(module: str) -> int:
        short = module.removeprefix("edge_audio").removeprefix(".")
        [index] = [i for i, (_, prefixes) in enumerate(LAYERS)
                   if any(short == p or (p and short.startswith(p + ".")) for p in prefixes)]
        return index

    graph = module_imports()
    upward = [f"{m} ({LAYERS[layer(m)][0]}) imports {i} ({LAYERS[layer(i)][0]})"
              for m, imported in graph.items() for i in imported if i in graph and layer(i) < layer(m)]
    assert not upward, upward


def test_each_chapter_has_its_step_module_and_its_view():
    for room in ("steps", "chapters"):
        modules = {p.stem for p in (PACKAGE / room).glob("*.py")} - {"__init__"}
        assert modules == {"data", "baselines", "quantization", "search", "frontier"}, room


#: What shows a chapter: its prose values, sentences, tables and figures. No step imports any of it.
SHOWING = {"edge_audio.glue", "edge_audio.claims", "edge_audio.tables", "edge_audio.plots"}


def test_steps_compute_and_chapters_show():
    """A step imports nothing that shows (no glued value, claim, table or figure, no IPython display) and no
    chapter view; the chapter views sit above the steps, and only the views and the reference interface above
    them import a view."""
    graph = module_imports()
    for name, imported in graph.items():
        if name.startswith("edge_audio.steps"):
            assert not imported & SHOWING, (name, imported & SHOWING)
            assert not any(m.startswith("edge_audio.chapters") for m in imported), name
            path = PACKAGE / Path(*name.split(".")[1:])
            source = (path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).read_text()
            assert "IPython" not in source and "invariant(" not in source, name
        elif not name.startswith("edge_audio.chapters") and name != "edge_audio.reference":
            assert not any(m.startswith("edge_audio.chapters") for m in imported), name


def test_no_line_of_the_books_prose_is_a_myst_comment():
    """A Markdown line that starts with "%" is a MyST comment: the rest of the line vanishes from the page (a
    glued number followed by a wrapped "% test accuracy" once did)."""
    book = PACKAGE.parent / "book"
    texts = {str(path): path.read_text() for path in book.rglob("*.md")}
    for path in book.glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        texts.update({f"{path}, cell {i}": "".join(c["source"]) for i, c in enumerate(cells)
                      if c["cell_type"] == "markdown"})
    comments = [f"{where}: {line.strip()}" for where, text in texts.items() for line in text.splitlines()
                if line.lstrip().startswith("%")]
    assert not comments, comments


def test_every_chapter_cell_hides_its_code():
    """The book shows a chapter's results, not its machinery: every code cell is tagged ``remove-input`` (its output
    shows) or ``remove-cell`` (imports, glue, the parameters cell), and every chapter shows the parameters that ran."""
    for path in sorted((PACKAGE.parent / "book").glob("0*.ipynb")):
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        shown = [c for c in cells if not {"remove-input", "remove-cell"} & set(c["metadata"].get("tags", []))]
        assert not shown, (path.name, ["".join(c["source"])[:60] for c in shown])
        assert any("settings.table(" in "".join(c["source"]) for c in cells), path.name


def test_no_chapter_binds_the_name_of_one_of_its_parameters():
    """A chapter reads its settings from its namespace (``Settings.of_chapter(chapter, globals())``), so a cell that
    imports or assigns a name its parameters cell declares (``from ... import distill_students`` once did) hands
    the chapter a function instead of the value papermill passed."""
    from edge_audio.parameters import chapter_parameters

    for path in sorted((PACKAGE.parent / "book").glob("0*.ipynb")):
        declared = {p.name for p in chapter_parameters(path.name[:2])}
        cells = [c for c in json.loads(path.read_text())["cells"]
                 if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])]
        bound = set()
        for cell in cells:
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    bound.add(node.id)
        assert not bound & declared, (path.name, sorted(bound & declared))


def test_no_package_check_is_an_assert():
    """A chapter's invariants raise edge_audio.errors.InvariantError (edge_audio.errors.invariant): an ``assert``
    would vanish under ``python -O``."""
    offenders = [f"{path.relative_to(PACKAGE)}:{node.lineno}" for path in PACKAGE.rglob("*.py")
                 for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assert)]
    assert not offenders, offenders


def test_an_invariant_holds_under_python_dash_o():
    import subprocess
    import sys

    code = "from edge_audio.errors import invariant\ninvariant(1 + 1 == 3, 'arithmetic')"
    result = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert result.returncode == 1 and "InvariantError: arithmetic" in result.stderr


def test_the_prepared_data_flows_down_the_steps(us8k_dir, tmp_path):
    """Issue 36: followed through train_baselines and quantize_models (every cached computation run), the prepared
    data returns to a higher module at most 3 times per step (a lower module calling a step's closure that
    captured it); each step's helpers take what they use (scripts/data_flow.py prints the flow)."""
    flows = data_flow.measure(tmp_path, us8k_dir)
    assert set(flows) == {"train_baselines", "quantize_models"}
    for step, flow in flows.items():
        assert flow["calls"] > 0, step  # the tracer saw the value at all
        assert len(flow["returns to a higher module"]) <= 3, (step, flow["returns to a higher module"])


def test_a_chapters_setup_cell_is_one_call_and_imports_what_the_chapter_uses():
    """Each chapter's setup cell (the first code cell after its parameters) builds the chapter with one call of its
    view's run(), and every name it imports is used by the chapter's cells."""
    import re

    for path in sorted((PACKAGE.parent / "book").glob("0*.ipynb")):
        cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                 if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])]
        setup, everything = cells[0], "\n".join(cells)
        assert re.search(r"^chapter = chapter_\d\.run\(globals\(\)\)$", setup, re.MULTILINE), path.name
        imported = [alias.asname or alias.name.split(".")[0] for node in ast.walk(ast.parse(setup))
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names]
        unused = [name for name in imported if len(re.findall(rf"\b{re.escape(name)}\b", everything)) < 2]
        assert not unused, (path.name, unused)
