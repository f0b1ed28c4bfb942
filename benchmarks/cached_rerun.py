"""Time a cached re-run of the baselines chapter on a large synthetic dataset (issue 6: read the data once).

    python benchmarks/cached_rerun.py [--clips-per-class-per-fold 30] [--work DIR] [--cold]

Generates a synthetic UrbanSound8K (K clips per class per fold: 3,000 clips at K = 30) once under --work,
executes ``book/02_baselines.ipynb`` with papermill (one small model, one epoch) to fill every cache, then
executes it again and prints the second run's wall time and CPU time: everything it needs is cached, so what is
left is notebook start-up, fingerprinting the dataset and loading the caches. ``--cold`` drops the page cache
before the second run (needs root), as on a machine where the dataset is not already in memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_chapter(dataset: Path, output: Path, executed: Path) -> float:
    """Execute the baselines chapter once; returns its wall time in seconds."""
    parameters = {"dataset_path": str(dataset), "output_dir": str(output), "model_configs": ["tiny"], "epochs": 1,
                  "latency_runs": 5}
    command = [sys.executable, "-m", "papermill", str(ROOT / "book" / "02_baselines.ipynb"), str(executed),
               "--cwd", str(ROOT / "book"), "--no-progress-bar"]
    for name, value in parameters.items():
        command += ["-y", json.dumps({name: value})]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-per-class-per-fold", type=int, default=30)
    parser.add_argument("--work", type=Path, default=Path("/tmp/edge-audio-cached-rerun"))
    parser.add_argument("--cold", action="store_true", help="drop the page cache before the timed run (root)")
    args = parser.parse_args()
    dataset = args.work / f"us8k-k{args.clips_per_class_per_fold}"
    if not (dataset / "metadata" / "UrbanSound8K.csv").is_file():
        subprocess.run([sys.executable, "-m", "edge_audio.cli", "data", "synth", str(dataset), "--seed", "0",
                        "--clips-per-class-per-fold", str(args.clips_per_class_per_fold), "-q"], check=True)
    output = args.work / "output"
    first = run_chapter(dataset, output, args.work / "first.ipynb")
    if args.cold:
        subprocess.run("sync && echo 3 > /proc/sys/vm/drop_caches", shell=True, check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    second = run_chapter(dataset, output, args.work / "second.ipynb")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    clips = sum(1 for _ in open(dataset / "metadata" / "UrbanSound8K.csv")) - 1
    size = sum(p.stat().st_size for p in (dataset / "audio").rglob("*") if p.is_file())
    print(json.dumps({"clips": clips, "audio_bytes_on_disk": size, "page_cache": "cold" if args.cold else "warm",
                      "first_run_s": round(first, 1), "cached_rerun_s": round(second, 1),
                      "cached_rerun_cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
                                                  1)}, indent=1))


if __name__ == "__main__":
    main()
