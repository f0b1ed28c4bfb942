"""edge-audio classify's input handling (the end-to-end runs are in test_cli's whole-book test)."""
import pytest

from edge_audio.classify import Classifier
from edge_audio.features import FeatureConfig
from edge_audio.errors import DatasetError, ModelFileError
from helpers import write_tone


def reader():
    """A classifier without a model: enough to read and window audio."""
    classifier = Classifier(None, {})
    classifier._config = FeatureConfig(sample_rate=8000, duration=1.0)
    return classifier


def test_any_rate_and_channels_become_mono_at_the_models_rate(tmp_path):
    wave = reader().read(write_tone(tmp_path / "a.wav", seconds=2.0, rate=44100, channels=2))
    assert wave.ndim == 1 and abs(wave.size - 16000) <= 1
    assert reader().window(wave).size == 8000  # cropped to the model's window


def test_missing_and_unreadable_audio_are_one_line_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        reader().read(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_text("not audio")
    with pytest.raises(DatasetError, match="cannot read audio file"):
        reader().read(tmp_path / "bad.wav")


def test_a_model_without_its_card_or_not_onnx_is_a_clear_error(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ModelFileError, match="no model card beside"):
        Classifier.load(tmp_path / "m.onnx")
    (tmp_path / "m.pth").write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"published models are \.onnx \(onnxruntime\) or \.tflite \(litert\) files, got \.pth"):
        Classifier.load(tmp_path / "m.pth")
    with pytest.raises(ModelFileError, match="does not exist"):
        Classifier.load(tmp_path / "none.onnx")
