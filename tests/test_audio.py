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


def _with_rate(path, rate: int) -> None:
    """Rewrite the sample rate in a wav file's fmt chunk (and the byte rate after it), as a damaged header would."""
    import struct

    data = bytearray(path.read_bytes())
    fmt = data.index(b"fmt ") + 8
    channels, bits = struct.unpack_from("<H", data, fmt + 2)[0], struct.unpack_from("<H", data, fmt + 14)[0]
    struct.pack_into("<II", data, fmt + 4, rate, (rate * channels * bits // 8) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])  # the fast path and soundfile's
def test_an_absurd_sample_rate_is_refused_naming_the_file(tmp_path, subtype):
    from avmnist_torch.sources.audio import check_audio_files

    path = tmp_path / f"rate_{subtype}.wav"
    soundfile.write(str(path), np.linspace(-0.5, 0.5, 3000), 8000, subtype=subtype)
    for rate in (2_000_000_000, 999, 384_001):
        _with_rate(path, rate)
        with pytest.raises(AudioFileError, match=rf"rate_{subtype}.wav: its header gives a sample rate of {rate:,} Hz, "
                                                 r"outside 1,000 to 384,000 Hz"):
            load_wav(path)
        with pytest.raises(AudioFileError, match=rf"unusable recording file\(s\): .*rate_{subtype}.wav: .*{rate:,} Hz"):
            check_audio_files([path], what="recording")  # what a dataset runs at construction
    for rate in (1_000, 384_000):  # both ends are accepted
        _with_rate(path, rate)
        assert load_wav(path)[1] == rate and check_audio_files([path]) == [(rate, 3000)]


def test_nan_or_infinite_samples_are_refused_naming_the_file(tmp_path):
    samples = np.linspace(-0.5, 0.5, 3000, dtype=np.float32)
    for bad, subtype in ((np.nan, "FLOAT"), (np.inf, "FLOAT"), (-np.inf, "DOUBLE")):
        samples[1234] = bad
        path = tmp_path / f"bad_{subtype}.wav"
        soundfile.write(str(path), samples, 8000, subtype=subtype)
        with pytest.raises(AudioFileError, match=rf"bad_{subtype}.wav: 1 of its 3,000 samples are NaN or infinite "
                                                 r"\(the first at sample 1,234"):
            load_wav(path)
    samples[1234] = 0.25
    soundfile.write(str(tmp_path / "fine.wav"), samples, 8000, subtype="FLOAT")
    assert np.isfinite(load_wav(tmp_path / "fine.wav")[0]).all()


def test_a_dataset_refuses_a_recording_with_an_absurd_rate_when_it_is_made(synthetic_tree, tmp_path):
    from avmnist_torch.dataset import AVMNISTAudioDataset

    root = synthetic_tree(tmp_path / "tree", n_train=10, n_test=10, noise_seconds=0.2)
    victim = sorted((root / "recordings").glob("*_4.wav"))[0]  # take 4: a test recording
    _with_rate(victim, 2_000_000_000)
    with pytest.raises(AudioFileError, match=rf"{victim.name}: its header gives a sample rate of 2,000,000,000 Hz"):
        AVMNISTAudioDataset(root, "test", "clean", clip_tables=None)
