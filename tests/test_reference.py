"""The reference interface: PipelineConfig, NotebookPipeline, and `edge-audio run --mode`."""
import pytest

from edge_audio import NotebookPipeline, PipelineConfig
from edge_audio import book as book_module
from edge_audio.book import MODES, chapters
from edge_audio.cli import main
from edge_audio.errors import ParameterError
from edge_audio.parameters import PARAMETERS


def test_pipeline_config_has_the_reference_settings_and_takes_overrides():
    assert PipelineConfig.CONSTRAINTS == {"max_size_mb": 2.0, "max_latency_ms": 50.0, "min_accuracy": 30.0}
    assert [c["name"] for c in PipelineConfig.MODEL_CONFIGS] == PARAMETERS["model_configs"].book_value
    config = PipelineConfig(NAS_GENERATIONS=7, CONSTRAINTS={"max_size_mb": 0.5})
    parameters = config.parameters()
    assert parameters["nas_generations"] == 7 and parameters["max_size_mb"] == 0.5
    assert parameters["max_latency_ms"] == 50.0  # the other constraints keep their defaults
    assert PipelineConfig.NAS_GENERATIONS != 7  # the class defaults are untouched
    with pytest.raises(ValueError, match="no setting 'NAS_GENERATION'"):
        PipelineConfig(NAS_GENERATION=3)
    with pytest.raises(ValueError, match="unknown constraint"):
        PipelineConfig(CONSTRAINTS={"max_flops": 1})


def test_pipeline_config_is_the_tables_book_values():
    parameters = PipelineConfig().parameters()
    for name, value in parameters.items():
        if name != "model_configs":
            assert value == PARAMETERS[name].book_value, name
    assert [c["name"] for c in parameters["model_configs"]] == PARAMETERS["model_configs"].book_value
    pipeline = NotebookPipeline(progress=False)
    assert pipeline.settings.as_dict() == {**{n: p.book_value for n, p in PARAMETERS.items()},
                                           "model_configs": parameters["model_configs"]}


def test_unknown_notebook_pipeline_parameter_is_a_clear_error():
    with pytest.raises(ParameterError, match=r"unknown parameter 'epoch' \(did you mean epochs"):
        NotebookPipeline(epoch=3)


def test_notebook_pipeline_methods_return_their_results(us8k_dir, tmp_path):
    pipeline = NotebookPipeline(dataset_path=us8k_dir, output_dir=tmp_path, progress=False,
                                model_configs=["tiny"], methods=["ort_static"], latency_runs=5, calibration_size=10,
                                nas_population=2, search_seeds=[0], seeds=[0], proxy_epochs=1, top_k=1,
                                min_accuracy=0.0, device="cpu")
    results = pipeline.run_all(baseline_epochs=1, nas_generations=1)
    [baseline] = results["baselines"]
    assert baseline.name == "tiny" and baseline.record["accuracy"] == baseline.deployed_run.test["accuracy"]
    assert baseline.record["train"]["epochs"] == 1
    # chapter 3's wiring: the baselines with the run's methods, the distilled student like a search finalist
    assert [(q.model, q.method) for q in results["quantization"]] == [
        ("tiny", "ort_static"), ("tiny_kd", "ort_static"), ("tiny_kd", "tflite_int8")]
    nas = results["nas"]
    assert len(nas.search.history["nsga2"]) == 2 and len(nas.finalists) == 1
    assert all(path.is_file() for path in nas.best_files.values())
    assert {"pth", "onnx", "int8"} <= set(nas.best_files)
    frontier = results["frontier"]
    assert set(frontier.report.evaluated["model"]) >= {"tiny", "nas_1"}
    assert all(path.is_file() for path in frontier.paths.values())
    # the steps are cached: a second pipeline over the same output trains nothing
    again = NotebookPipeline(dataset_path=us8k_dir, output_dir=tmp_path, progress=False, model_configs=["tiny"],
                             epochs=1, latency_runs=5, device="cpu")
    assert all(run.reused for run in again.train_baseline()[0].runs)


@pytest.fixture
def recorded_run(monkeypatch, tmp_path):
    """`edge-audio run` with papermill and the book build replaced by recorders."""
    executed, built = [], []

    def execute(notebook, out_path, parameters, progress=True):
        executed.append((notebook.name, parameters))
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text("{}")

    monkeypatch.setattr(book_module, "execute_chapter", execute)
    monkeypatch.setattr(book_module, "build_book", lambda *args: built.append(args) or tmp_path / "html")
    return executed, built


@pytest.mark.parametrize("mode", list(MODES))
def test_each_mode_runs_only_its_chapters_once_the_book_has_run(recorded_run, tmp_path, mode):
    executed, built = recorded_run
    (tmp_path / "out" / "notebooks").mkdir(parents=True)
    for notebook in chapters():
        (tmp_path / "out" / "notebooks" / notebook.name).write_text("{}")
    assert main(["run", "--mode", mode, "--output-dir", str(tmp_path / "out")]) == 0
    assert [name[:2] for name, _ in executed] == list(MODES[mode])
    assert len(built) == 1


def test_a_mode_on_a_fresh_output_also_runs_the_chapters_the_book_lacks(recorded_run, tmp_path):
    executed, _ = recorded_run
    assert main(["run", "--mode", "nas", "--output-dir", str(tmp_path / "out")]) == 0
    assert [name[:2] for name, _ in executed] == ["01", "02", "03", "04", "05"]
    executed.clear()
    assert main(["run", "--mode", "nas", "--no-build", "--output-dir", str(tmp_path / "out2")]) == 0
    assert [name[:2] for name, _ in executed] == ["04"]


def test_run_flags_reach_the_chapters_that_declare_them(recorded_run, tmp_path):
    executed, _ = recorded_run
    assert main(["run", "--mode", "full", "--no-build", "--output-dir", str(tmp_path / "out"), "--epochs", "5",
                 "--batch-size", "16", "--nas-generations", "4", "--nas-population", "10", "--storage",
                 f"sqlite:///{tmp_path / 'x.db'}", "-p", "epochs", "9", "-p", "max_bad_fraction", "0.2"]) == 0
    parameters = dict(executed)
    assert parameters["02_baselines.ipynb"]["epochs"] == 5  # the flag wins over -p
    assert parameters["02_baselines.ipynb"]["batch_size"] == 16
    assert "nas_generations" not in parameters["02_baselines.ipynb"]
    nas = parameters["04_nas.ipynb"]
    assert (nas["nas_generations"], nas["nas_population"], nas["storage"]) == (4, 10, f"sqlite:///{tmp_path / 'x.db'}")
    assert parameters["05_frontier.ipynb"]["min_accuracy"] == 30.0  # the book's value, not the chapter's 20
    # every chapter gets the data parameters, the validation settings included
    assert [parameters[name]["max_bad_fraction"] for name in sorted(parameters)] == [0.2] * 5
    assert parameters["05_frontier.ipynb"]["epochs"] == 5  # the frontier reads the records of these settings


def test_bad_run_flags_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--epochs", "0", "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--mode", "everything", "--output-dir", str(tmp_path)])
