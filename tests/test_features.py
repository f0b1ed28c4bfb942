import numpy as np
import pytest
import soundfile as sf
import torch

from edge_audio.features import FeatureConfig
from edge_audio.data import load_dataset
from edge_audio.features import LogMelFrontEnd, extract_features, load_audio

SMALL = FeatureConfig(sample_rate=16000, duration=1.0, n_mels=32, n_fft=512, hop_length=256)


def test_load_audio_mixes_resamples_and_pads(tmp_path):
    rate = 8000
    stereo = np.stack([np.ones(rate // 2), -np.ones(rate // 2) * 0.5], axis=1).astype(np.float32) * 0.5
    sf.write(tmp_path / "a.wav", stereo, rate, subtype="FLOAT")
    wave = load_audio(tmp_path / "a.wav", SMALL)
    assert wave.shape == (SMALL.num_samples,) and wave.dtype == np.float32
    assert np.allclose(wave[2000:6000], 0.125, atol=0.01)  # (0.5 - 0.25) / 2, resampled to 16 kHz
    assert np.all(wave[8200:] == 0)  # zero-padded after 0.5 s


def test_load_audio_crops_long_clips(tmp_path):
    sf.write(tmp_path / "long.wav", np.random.default_rng(0).uniform(-1, 1, 48000).astype(np.float32), 16000)
    assert load_audio(tmp_path / "long.wav", SMALL).shape == (16000,)


def test_front_end_shape_and_values():
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal((2, SMALL.num_samples)).astype(np.float32))
    out = LogMelFrontEnd(SMALL)(wave)
    assert out.shape == (2, 1, *SMALL.shape)
    assert torch.isfinite(out).all()


def test_features_are_deterministic_and_cached(us8k_dir, tmp_path):
    dataset = load_dataset(us8k_dir)
    first = extract_features(dataset, SMALL, tmp_path, dataset.fingerprint(), progress=False)
    assert not first.cache_hit
    assert first.features.shape == (len(dataset), *SMALL.shape)
    again = extract_features(dataset, SMALL, tmp_path, dataset.fingerprint(), progress=False)
    assert again.cache_hit and again.key == first.key
    fresh = extract_features(dataset, SMALL, tmp_path / "other", dataset.fingerprint(), workers=1, progress=False)
    assert np.array_equal(fresh.features, first.features)


def test_features_are_memory_mapped_and_an_interrupted_extraction_resumes(us8k_dir, tmp_path, monkeypatch):
    import edge_audio.features as features_module

    dataset = load_dataset(us8k_dir)
    extract = features_module._extract_chunk
    calls = []

    def interrupted(args):
        if len(calls) == 40:
            raise KeyboardInterrupt
        calls.append(len(args[0]))
        return extract(args)

    monkeypatch.setattr(features_module, "_extract_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract_features(dataset, SMALL, tmp_path, dataset.fingerprint(), workers=1, chunk_size=1, progress=False)
    monkeypatch.setattr(features_module, "_extract_chunk", lambda args: calls.append(len(args[0])) or extract(args))
    resumed = extract_features(dataset, SMALL, tmp_path, dataset.fingerprint(), workers=1, chunk_size=1,
                               progress=False)
    assert sum(calls) == len(dataset) + 40 - 32  # clips 33..40 are redone: progress is saved every 32 clips
    assert isinstance(resumed.features, np.memmap) and not resumed.features.flags.writeable
    monkeypatch.undo()
    whole = extract_features(dataset, SMALL, tmp_path / "other", dataset.fingerprint(), progress=False)
    assert np.array_equal(resumed.features, whole.features)
    assert not list(tmp_path.glob("features/*/progress.json"))


def test_changed_setting_makes_a_new_cache_entry(us8k_dir, tmp_path):
    dataset = load_dataset(us8k_dir)
    first = extract_features(dataset, SMALL, tmp_path, dataset.fingerprint(), progress=False)
    other = extract_features(dataset, FeatureConfig(**{**SMALL.to_dict(), "n_mels": 24}), tmp_path,
                             dataset.fingerprint(), progress=False)
    assert not other.cache_hit and other.key != first.key
    assert other.features.shape[1] == 24


def test_changed_audio_content_makes_a_new_cache_entry(us8k_copy, tmp_path):
    dataset = load_dataset(us8k_copy)
    first = extract_features(dataset, SMALL, tmp_path, dataset.fingerprint(), progress=False)
    path = dataset.table["path"].iloc[0]
    audio, rate = sf.read(path)
    sf.write(path, audio * 0.5, rate)
    assert extract_features(dataset, SMALL, tmp_path, dataset.fingerprint(), progress=False).key != first.key


@pytest.mark.parametrize("kwargs", [{"sample_rate": 10}, {"duration": 0}, {"n_mels": 0}, {"fmax": 99999}])
def test_bad_feature_settings_are_rejected(kwargs):
    with pytest.raises(ValueError, match="invalid feature settings"):
        FeatureConfig(**kwargs)


def test_a_garbled_feature_cache_is_discarded_and_rebuilt(us8k_dir, tmp_path, capsys):
    dataset = load_dataset(us8k_dir)
    first = extract_features(dataset, SMALL, tmp_path, dataset.fingerprint(), workers=1, progress=False)
    values = np.array(first.features)
    path = next((tmp_path / "features").glob("features-*")) / "features.npy"
    garbled = bytearray(path.read_bytes())
    garbled[-4096:] = b"\xff" * 4096  # NaN bits, same size: what a size check would let through
    path.write_bytes(bytes(garbled))
    again = extract_features(dataset, SMALL, tmp_path, dataset.fingerprint(), workers=1, progress=False)
    assert "is damaged (features.npy not as written): discarded, recomputing" in capsys.readouterr().err
    assert not again.cache_hit and np.array_equal(again.features, values) and again.key == first.key


def test_non_finite_audio_stops_feature_extraction(us8k_copy, tmp_path):
    from edge_audio.errors import DatasetError

    dataset = load_dataset(us8k_copy)
    victim = dataset.table["path"].iloc[3]
    wave, rate = sf.read(victim, dtype="float32")
    wave[100:200] = np.nan
    sf.write(victim, wave, rate, subtype="FLOAT")
    dataset = load_dataset(us8k_copy)
    with pytest.raises(DatasetError, match="non-finite log-mel features"):
        extract_features(dataset, SMALL, tmp_path, dataset.fingerprint(), workers=1, progress=False)
    assert not [p for p in (tmp_path / "features").iterdir() if p.is_dir() and not p.name.endswith(".partial")]


def test_a_chapters_notices_reach_the_terminal(us8k_dir, tmp_path, capsys):
    """A discarded cache entry is said inside the chapter's kernel, where nobody running `edge-audio run` looks:
    the runner repeats each such line on the terminal, whole."""
    from edge_audio.book import chapters, execute_chapter
    from edge_audio.settings import Settings
    from edge_audio.steps.data import prepare_data

    parameters = {"dataset_path": str(us8k_dir), "output_dir": str(tmp_path / "out"), "sample_rate": 8000,
                  "duration": 1.0, "n_mels": 32, "n_fft": 256, "hop_length": 128}
    prepare_data(Settings(**parameters))  # what an earlier run of the chapter cached
    [entry] = (tmp_path / "out" / "cache" / "features").glob("features-*")
    garbled = bytearray((entry / "features.npy").read_bytes())
    garbled[-64:] = b"\xff" * 64
    (entry / "features.npy").write_bytes(bytes(garbled))
    capsys.readouterr()
    execute_chapter(chapters()[0], tmp_path / "out" / "notebooks" / "01_data.ipynb", parameters, progress=False)
    assert capsys.readouterr().err.splitlines() == [
        f"edge-audio: cache entry {entry} is damaged (features.npy not as written): discarded, recomputing"]


def test_a_notice_is_a_line_of_its_own_beside_a_progress_bar(capsys):
    import sys

    from tqdm import tqdm

    from edge_audio.notices import notice, notices_in

    with tqdm(total=3, desc="epochs", file=sys.stderr) as bar:
        bar.update(1)
        notice("refusing to resume from x.pt (not an edge-audio training snapshot): training this run from the start")
        bar.update(1)
    assert notices_in(capsys.readouterr().err) == [
        "edge-audio: refusing to resume from x.pt (not an edge-audio training snapshot): training this run from the "
        "start"]
