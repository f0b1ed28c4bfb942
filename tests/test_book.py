"""The runner executes the chapters with papermill and builds the HTML book from the executed copies."""
import json
import re

import pytest

from edge_audio.book import chapters, statement_problems
from helpers import BOOK_RUN_FOLDS


@pytest.fixture(scope="module")
def built_book(book_run):
    """The HTML of the session's end-to-end run (tests/conftest.py: k-fold, odd class ids, two seeds)."""
    return book_run.html


@pytest.fixture(scope="module")
def notebooks(book_run):
    """The folder of that run's executed chapters."""
    return book_run.output / "notebooks"


def test_book_has_an_index_and_every_chapter_page(built_book):
    index = (built_book / "index.html").read_text(encoding="utf-8")
    assert re.search(r'http-equiv="Refresh" content="0; url=book/intro.html"', index, re.IGNORECASE), index[:300]
    assert (built_book / "book" / "intro.html").is_file()
    for notebook in chapters():
        assert (built_book / "book" / f"{notebook.stem}.html").is_file(), notebook.name


def test_data_chapter_shows_its_figures_and_glued_numbers(built_book, notebooks):
    page = (built_book / "book" / "01_data.html").read_text(encoding="utf-8")
    assert len(re.findall(r"<img[^>]+src=\"[^\"]+\.png\"", page)) >= 3
    images = list((built_book / "_images").glob("*.png"))
    assert len(images) >= 3
    # glued numbers are rendered in place of their keys
    assert "{glue:text}" not in page
    value = glued(notebooks / "01_data.ipynb", "n_usable")
    assert re.search(rf"of which\s+(<[^>]+>\s*)*{value}(\s*<[^>]+>)*\s+are usable", page)


def test_sources_stay_unexecuted_copies(built_book):
    for notebook in chapters():
        cells = json.loads(notebook.read_text())["cells"]
        assert not any("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in cells)


def glued(notebook_path, name):
    """The plain-text value a chapter glued under ``name``."""
    executed = json.loads(notebook_path.read_text())
    for cell in executed["cells"]:
        for output in cell.get("outputs", []):
            if output.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                return output["data"]["application/papermill.record/text/plain"]
    raise AssertionError(f"{notebook_path.name} glues no {name!r}")


def test_every_chapter_reports_every_fold_and_states_only_resolved_differences(built_book, notebooks):
    folds = [f"fold {k}" for k in range(1, BOOK_RUN_FOLDS + 1)]  # every fold of the run's CSV dataset
    for notebook in chapters():
        executed = notebooks / notebook.name
        assert statement_problems(executed) == [], notebook.name
        text = executed.read_text(encoding="utf-8")
        if notebook.name[:2] in ("02", "03", "05"):  # a per-fold table of every test fold
            assert all(fold in text for fold in folds), notebook.name
        if notebook.name[:2] == "04":  # the finalists are choices: they report on the deployed split's test fold
            assert glued(executed, "nas_test_fold") == str(BOOK_RUN_FOLDS)
    intro = text_of((built_book / "book" / "intro.html").read_text(encoding="utf-8"))
    assert "all k folds' test clips pooled" in intro


def test_no_page_claims_an_equality_or_no_loss_that_no_chapter_shows(built_book, notebooks):
    """The introduction and every page quote the chapters: none may call two models equal, a pick free ("nothing
    is given up") or a model dominant where the chapters' verdicts do not show it, nor say "tie within noise"."""
    from edge_audio.book import page_problems

    pages = sorted((built_book / "book").rglob("*.html"))
    assert len(pages) > 5
    for page in pages:
        assert page_problems(text_of(page.read_text(encoding="utf-8")), notebooks) == [], page.name


def test_book_has_the_reference_pages(built_book):
    for page in ("intro", "configuration", "reproducibility"):
        assert (built_book / "book" / f"{page}.html").is_file(), page
    reference = ("cli", "evidence", "datasets", "models", "runtimes", "devices", "search", "cluster", "demo", "tests",
                 "decisions")
    for page in reference:  # the Reference part: what the README used to hold
        assert (built_book / "book" / "reference" / f"{page}.html").is_file(), page
    runtimes = text_of((built_book / "book" / "reference" / "runtimes.html").read_text(encoding="utf-8"))
    assert "Adding a runtime" in runtimes and "RUNTIMES" in runtimes


def test_frontier_chapter_shows_the_frontier_figure(built_book, notebooks, book_run):
    page = (built_book / "book" / "05_frontier.html").read_text(encoding="utf-8")
    assert len(re.findall(r"<img[^>]+src=\"[^\"]+\.png\"", page)) >= 2  # the frontier and the feasibility plots
    assert "{glue:text}" not in page
    assert (book_run.output / "reports" / "pareto_frontier.png").is_file()
    best = glued(notebooks / "05_frontier.ipynb", "fr_best_model").strip("'")
    assert best in page
    # each host target's pick with the command that writes its browser demo, of a file the run published
    demos = re.findall(r"edge-audio demo (models/\S+\.onnx) demo/(\w+)", text_of(page))
    assert {target for _, target in demos} >= {"smart_speaker", "gateway"}
    assert all((book_run.output / model).is_file() for model, _ in demos)


def text_of(html_page):
    """The visible text of an HTML page, whitespace collapsed."""
    import html

    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", html_page)))


def test_intro_summary_numbers_are_glued_from_the_chapters(built_book, notebooks):
    intro = text_of((built_book / "book" / "intro.html").read_text(encoding="utf-8"))
    assert "glue:text" not in intro and "::" not in intro
    frontier = notebooks / "05_frontier.ipynb"
    for key in ("fr_best_model", "fr_mcu_model", "fr_mcu_small_model", "fr_budget_model", "fr_dataset", "fr_protocol"):
        assert glued(frontier, key).strip("'") in intro, key
    accuracy = float(glued(frontier, "fr_best_acc"))
    assert f"{accuracy} % test accuracy" in intro
    nas = notebooks / "04_nas.ipynb"
    assert glued(nas, "nas_winner").strip(chr(39)) in intro
    assert f"95% interval {glued(frontier, 'fr_best_interval').strip(chr(39))}" in intro


def test_nas_chapter_rejects_invalid_budgets_with_a_clear_error(tmp_path):
    from edge_audio.book import ChapterFailed, book_dir, execute_chapter

    with pytest.raises(ChapterFailed, match=r"min_accuracy = 120.0: expected a percentage") as info:
        execute_chapter(book_dir() / "04_nas.ipynb", tmp_path / "04_nas.ipynb",
                        {"output_dir": str(tmp_path / "out"), "min_accuracy": 120.0}, progress=False)
    assert info.value.is_user_error and info.value.ename == "ParameterError"


def test_every_page_reads_as_a_reader_needs(built_book):
    """Every page of the end-to-end book (k-fold, odd class ids) as a reader sees it: figures captioned, no table
    wider than the limit, no None, NaN, raw dict or pandas' "..." in a cell, no code on show
    (:func:`edge_audio.book.html_problems`)."""
    from edge_audio.book import html_problems

    pages = sorted((built_book / "book").rglob("*.html"))
    problems = {page.name: html_problems(page.read_text(encoding="utf-8")) for page in pages}
    assert not any(problems.values()), {name: found for name, found in problems.items() if found}
    chapter = (built_book / "book" / "02_baselines.html").read_text(encoding="utf-8")
    assert chapter.count("<figcaption") >= 3 and "The parameters of this run" in chapter
