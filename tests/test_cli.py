import hashlib
import subprocess
import sys
from pathlib import Path

from edge_audio.cli import main


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edge_audio.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def checksums(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_twice_with_one_seed_gives_identical_checksums(tmp_path):
    for name in ("a", "b"):
        assert main(["data", "synth", str(tmp_path / name), "--seed", "7", "--clips-per-class-per-fold", "1",
                     "-q"]) == 0
    assert checksums(tmp_path / "a") == checksums(tmp_path / "b")
    assert len(checksums(tmp_path / "a")) == 100 + 2  # clips, metadata, generator info


def test_check_names_a_truncated_file_and_counts_it(us8k_copy):
    victim = next((us8k_copy / "audio" / "fold3").glob("*.wav"))
    victim.write_bytes(victim.read_bytes()[:300])
    result = run_cli("data", "check", us8k_copy, "-q")
    assert result.returncode == 0, result.stderr  # 1 bad file of 100 is under the default 5%
    assert f"truncated: audio/fold3/{victim.name}" in result.stdout
    assert "truncated          1" in result.stdout


def test_check_fails_above_the_threshold(us8k_copy):
    for victim in list((us8k_copy / "audio" / "fold1").glob("*.wav"))[:3]:
        victim.unlink()
    result = run_cli("data", "check", us8k_copy, "-q", "--max-bad-fraction", "0.02")
    assert result.returncode == 1 and "above --max-bad-fraction" in result.stderr


def test_wrong_dataset_path_is_one_line_without_traceback(tmp_path):
    result = run_cli("data", "check", tmp_path / "missing")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "missing") in lines[0] and "UrbanSound8K" in lines[0]


def test_missing_column_is_one_line_naming_the_column(us8k_copy):
    csv = us8k_copy / "metadata" / "UrbanSound8K.csv"
    csv.write_text(csv.read_text().replace("classID", "class_number"))
    result = run_cli("data", "check", us8k_copy)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "classID" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_run_with_wrong_dataset_path_fails_before_executing(tmp_path):
    result = run_cli("run", "--dataset-path", tmp_path / "nope", "--output-dir", tmp_path / "out")
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_bad_parameter_file_is_a_clear_error(tmp_path):
    (tmp_path / "p.yaml").write_text("- just\n- a list\n")
    result = run_cli("run", "-f", tmp_path / "p.yaml", "--output-dir", tmp_path / "out")
    assert result.returncode == 2 and "must hold a mapping" in result.stderr
