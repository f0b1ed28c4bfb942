"""Helpers shared by the tests (fixtures live in conftest.py)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf


def run_cli(*args, cwd=None):
    """``edge-audio ARGS`` in a fresh interpreter (``cwd``: where it runs); the completed process."""
    return subprocess.run([sys.executable, "-m", "edge_audio.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def write_tone(path: Path, seconds: float = 0.5, rate: int = 16000, freq: float = 440.0, channels: int = 1):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    sf.write(path, np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate, subtype="PCM_16")
    return path


#: The folds of the end-to-end book run's dataset (tests/conftest.py): k-fold needs a training fold, a validation
#: fold and a test fold, and the search one more training fold to score its candidates on.
BOOK_RUN_FOLDS = 4
#: Clips per class in each of them: unequal folds, as real datasets have.
BOOK_RUN_CLIPS = (4, 3, 4, 5)

#: Small feature settings for fast unit tests.
SMALL_FEATURES = dict(sample_rate=8000, duration=2.0, n_mels=32, n_fft=256, hop_length=128)


def small_settings(dataset_path, output_dir, **overrides):
    """Settings for unit tests: a dataset path, an output folder, small features, and any overrides."""
    from edge_audio.settings import Settings

    return Settings(dataset_path=str(dataset_path), output_dir=str(output_dir), **{**SMALL_FEATURES, **overrides})


def write_odd_class_csv(root: Path, class_ids=(3, 7, 12), folds=5, clips=2) -> Path:
    """A CSV dataset whose class ids are not 0..K-1 (and not in file order): tones of three pitches (each clip its
    own, a little apart by fold and clip: the same audio in two folds is refused as a leak). ``clips`` per class
    in every fold, or one count per fold (unequal folds)."""
    per_fold = [clips] * folds if isinstance(clips, int) else list(clips)
    assert len(per_fold) == folds
    rows = ["file,fold,label,class_id"]
    for fold in range(1, folds + 1):
        for k, class_id in enumerate(sorted(class_ids, reverse=True)):
            for clip in range(per_fold[fold - 1]):
                rel = f"clips/{class_id}_{fold}_{clip}.wav"
                write_tone(root / rel, seconds=1.0, freq=220 * (k + 1) + 15 * clip + 2 * fold)
                rows.append(f"{rel},{fold},pitch{class_id},{class_id}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


GLUE_REFERENCE = re.compile(r"\{glue(?::text|:md)?\}`([^`:]+)|\{glue:figure\}\s+(\S+)")


def execute_chapter_here(chapter: str, parameters: dict, monkeypatch) -> tuple[dict, set[str]]:
    """Execute chapter ``chapter``'s code cells in this process, its ``parameters`` cell overridden by
    ``parameters`` as papermill injects them: a cheap stand-in for a papermill run that several tests can afford.
    Returns what the chapter glued (name -> value) and the names its Markdown cells quote (every quoted name must
    be glued, or the book build fails)."""
    import myst_nb

    from edge_audio.book import chapters

    glued: dict = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: glued.setdefault(name, value))
    [notebook] = [path for path in chapters() if path.name.startswith(chapter)]
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    namespace: dict = {}
    quoted: set[str] = set()
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            quoted |= {text or figure for text, figure in GLUE_REFERENCE.findall(source)}
            continue
        exec(compile(source, f"{notebook.name}", "exec"), namespace)
        if "parameters" in cell["metadata"].get("tags", []):
            namespace.update(parameters)
    return glued, quoted
