"""What UrbanSound8K's real size costs: chapters 1-2 at book values on a synthetic dataset of its size, with the
local executor and with Ray on a loopback cluster of this machine (issue 39).

    python benchmarks/full_size.py --dataset DIR --out DIR [--executor local|ray] [--nodes 2] [--json FILE]

The dataset (UrbanSound8K's layout, 10 folds, its sample rates and durations: 60 % of clips 4 s, the rest 0.5-4 s)
is synthesised into --dataset when that folder is absent: 87 clips per class per fold, 8,700 clips (the real one
has 8,732). Then `edge-audio run --mode baseline --no-build` runs chapters 1 and 2 at the book's values into --out,
while this script samples the memory of every process of the run (the CLI, the chapters' kernels, their worker
pools and, with Ray, every process of the cluster) twice a second. ``--executor ray`` starts --nodes Ray nodes on
127.0.0.1 (tests/loopback_ray.py), one CPU each, and runs each job with one thread (``job_threads 1``): the two
cores of a 2-core machine as two nodes. It prints, per chapter: wall time (papermill's), peak memory (the sum
over processes; Ray's shared object store counts in each process that maps it), and the output folder's size
after it; every training run's seconds; and, from those, an estimate of chapter 2 under the official 10-fold
protocol on 1, 8 and 64 workers (:func:`protocol_estimate`); and writes them as JSON. The numbers quoted in the
Reference (*Running on a cluster*) are the JSON files in benchmarks/results/ that it wrote.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CLIPS_PER_CLASS_PER_FOLD = 87


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class MemorySampler(threading.Thread):
    """The peak, per chapter, of the summed resident memory of ``root``'s process tree and ``extra()``."""

    def __init__(self, root: psutil.Process, extra=lambda: []):
        super().__init__(daemon=True)
        self.root, self.extra, self.chapter, self.peaks, self.stop = root, extra, None, {}, False

    def run(self) -> None:
        while not self.stop:
            processes = {}
            try:
                for process in (self.root, *self.root.children(recursive=True), *self.extra()):
                    processes[process.pid] = process
            except psutil.NoSuchProcess:
                pass
            total = 0
            for process in processes.values():
                try:
                    total += process.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            if self.chapter is not None:
                self.peaks[self.chapter] = max(self.peaks.get(self.chapter, 0), total)
            time.sleep(0.5)


def run_chapters(dataset: Path, out: Path, extra_args: list[str], env: dict | None, extra=lambda: []) -> dict:
    command = [sys.executable, "-m", "edge_audio.cli", "run", "--mode", "baseline", "--no-build",
               "--dataset-path", str(dataset), "--output-dir", str(out), *extra_args]
    started = time.monotonic()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    sampler = MemorySampler(psutil.Process(process.pid), extra)
    sampler.start()
    disk = {}
    for line in process.stderr:
        sys.stderr.write(line)
        if line.startswith("== executing "):
            if sampler.chapter is not None:
                disk[sampler.chapter] = folder_bytes(out)
            sampler.chapter = line.split()[2][:2]
    process.wait()
    disk[sampler.chapter] = folder_bytes(out)
    sampler.stop = True
    if process.returncode:
        raise SystemExit(f"the run failed ({process.returncode})")
    chapters = {}
    for chapter, peak in sampler.peaks.items():
        [notebook] = (out / "notebooks").glob(f"{chapter}_*.ipynb")
        seconds = json.loads(notebook.read_text())["metadata"]["papermill"]["duration"]
        chapters[chapter] = {"seconds": round(seconds, 1), "peak_memory_bytes": peak, "output_bytes": disk[chapter]}
    return {"wall_seconds": round(time.monotonic() - started, 1), "chapters": chapters}


def training_runs(out: Path) -> list[dict]:
    """Every training run the chapter computed: model, split and seconds (from the runs' cache entries)."""
    runs = []
    for entry in sorted((out / "cache" / "runs").glob("*/entry.json")):
        stored = json.loads(entry.read_text())
        value, key = stored["value"], stored["key"]
        runs.append({"model": value["spec"]["name"], "seed": key["train"]["seed"], "test_fold": key["split"]["test_fold"],
                     "seconds": value["train_seconds"]})
    return runs


def protocol_estimate(result: dict, workers: list[int], folds: int = 10) -> dict:
    """Chapter 2 under the official k-fold protocol (``folds`` splits instead of the holdout's one), from this
    holdout run: every training run measured here once per split, scheduled longest first onto ``w`` workers (one
    job each at a time, as fast as here), plus the rest of the chapter (what the driver does: exports and their
    evaluation, teacher logits, profiles and latencies, records), which is not spread over workers: between once
    (if none of it grew with the splits) and ``folds`` times (if all of it did; the profiles do not). A range of
    estimates, not a measurement."""
    runs = sorted((run["seconds"] for run in result["training_runs"] for _ in range(folds)), reverse=True)
    chapter = result["chapters"]["02"]["seconds"]
    driver = max(0.0, chapter - sum(run["seconds"] for run in result["training_runs"]))
    estimate = {}
    for count in workers:
        loads = [0.0] * count
        for seconds in runs:
            loads[loads.index(min(loads))] += seconds
        estimate[count] = [round(max(loads) + driver, 1), round(max(loads) + driver * folds, 1)]
    return {"runs": len(runs), "training_seconds": round(sum(runs), 1), "driver_seconds": round(driver, 1),
            "wall_seconds_by_workers": estimate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--summarize", action="store_true",
                        help="run nothing: read --json and the runs under --out, and print (and rewrite) the summary")
    args = parser.parse_args()
    result = json.loads(args.json.read_text()) if args.summarize else measure(args)
    summarize(result, args.out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


def measure(args: argparse.Namespace) -> dict:
    """Synthesise the dataset if needed and run chapters 1-2 with the executor asked for."""
    from edge_audio.machine import cpu_name

    dataset = args.dataset / "UrbanSound8K"
    synth_seconds = None
    if not dataset.exists():
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "edge_audio.cli", "data", "synth", str(dataset), "--generator", "2",
                        "--clips-per-class-per-fold", str(CLIPS_PER_CLASS_PER_FOLD), "--quiet"], check=True)
        synth_seconds = round(time.monotonic() - started, 1)
    clips = sum(1 for _ in (dataset / "audio").rglob("*.wav"))
    result = {"cpu": cpu_name(), "cores": psutil.cpu_count(logical=False), "executor": args.executor,
              "clips": clips, "dataset_bytes": folder_bytes(dataset), "synth_seconds": synth_seconds}
    if args.executor == "local":
        result.update(run_chapters(dataset, args.out, [], None))
    else:
        from loopback_ray import LoopbackCluster

        with LoopbackCluster(cpus=1) as cluster:
            cluster.start_head()
            for _ in range(args.nodes - 1):
                cluster.add_node()
            result["nodes"] = args.nodes
            result.update(run_chapters(dataset, args.out, ["--executor", "ray", "--address", cluster.address,
                                                           "-p", "job_threads", "1"], cluster.env,
                                       lambda: [p for node in cluster.nodes for p in
                                                psutil.Process(node.pid).children(recursive=True)]
                                       + cluster.processes()))
    return result


def summarize(result: dict, out: Path) -> None:
    """Add the training runs and the 10-fold estimate to ``result``; print it all."""
    result["training_runs"] = training_runs(out)
    if result["executor"] == "local":  # jobs one after another: the chapter's rest is its time less theirs
        result["kfold_estimate"] = protocol_estimate(result, [1, 8, 64])
    print(f"{result['clips']} clips ({result['dataset_bytes'] / 1e9:.2f} GB) on {result['cpu']}, "
          f"executor {result['executor']}: {result['wall_seconds'] / 60:.1f} min")
    for chapter, numbers in result["chapters"].items():
        print(f"  chapter {chapter}: {numbers['seconds'] / 60:6.1f} min, peak memory "
              f"{numbers['peak_memory_bytes'] / 2**30:5.2f} GiB, output folder {numbers['output_bytes'] / 1e9:5.2f} GB")
    print(f"  {len(result['training_runs'])} training runs, {sum(r['seconds'] for r in result['training_runs']) / 60:.1f} "
          "min of training (summed over the jobs)")
    if "kfold_estimate" in result:
        estimate = result["kfold_estimate"]
        print(f"  the 10-fold protocol ({estimate['runs']} runs) estimated at "
              + ", ".join(f"{low / 3600:.2f}-{high / 3600:.2f} h on {count} worker{'s' * (count > 1)}"
                          for count, (low, high) in estimate["wall_seconds_by_workers"].items()))


if __name__ == "__main__":
    main()
