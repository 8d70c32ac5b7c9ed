"""load_wav gives librosa.load(path, sr=None)'s bytes, by its fast path and its fallback."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

librosa = pytest.importorskip("librosa")

from avmnist_torch.sources.audio import AudioFileError, _read_pcm16_wav, load_wav  # noqa: E402


def _same(path):
    expected, rate = librosa.load(path, sr=None)
    got, got_rate = load_wav(path)
    return got_rate == rate and got.dtype == expected.dtype and got.tobytes() == expected.tobytes()


@pytest.mark.realdata
def test_every_real_recording_and_noise(real_data):
    paths = sorted(real_data["recordings"].glob("*.wav")) + sorted((real_data["esc50"] / "audio").glob("*.wav"))
    assert len(paths) > 3000
    assert all(_read_pcm16_wav(p.read_bytes()) is not None for p in paths[:50]), "FSDD should take the fast path"
    bad = [p.name for p in paths if not _same(p)]
    assert bad == []


@pytest.mark.parametrize(
    "subtype, channels",
    [("PCM_16", 1), ("PCM_16", 2), ("PCM_24", 1), ("FLOAT", 1), ("PCM_U8", 1)],
)
def test_other_formats_match_librosa(tmp_path, subtype, channels):
    rng = np.random.default_rng(3)
    data = 0.5 * rng.uniform(-1, 1, size=(3001, channels))
    path = tmp_path / f"x_{subtype}_{channels}.wav"
    soundfile.write(str(path), data, 8000, subtype=subtype)
    assert _same(path)


def test_odd_chunks_before_data(tmp_path):
    path = tmp_path / "list.wav"
    soundfile.write(str(path), np.linspace(-0.5, 0.5, 2001), 8000, subtype="PCM_16")
    raw = path.read_bytes()
    extra = b"LIST" + (3).to_bytes(4, "little") + b"abc\x00"  # odd size, padded
    patched = raw[:12] + extra + raw[12:]
    patched = patched[:4] + (len(patched) - 8).to_bytes(4, "little") + patched[8:]
    path.write_bytes(patched)
    assert _read_pcm16_wav(patched) is not None
    assert _same(path)


def test_unreadable_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(AudioFileError, match="broken.wav: not a readable audio file"):
        load_wav(bad)
    with pytest.raises(AudioFileError, match="nowhere.wav: audio file not found"):
        load_wav(tmp_path / "nowhere.wav")
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0), 8000, subtype="PCM_16")
    with pytest.raises(AudioFileError, match="empty.wav: the file holds no samples"):
        load_wav(empty)
