"""The clip tables (resampled noise, decoded recordings): exact, shared between processes,
robust to torn writes; caches never change bytes."""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import pytest

from avmnist_torch import AVMNISTAudioDataset
from avmnist_torch import noise as noise_module
from avmnist_torch.noise import NoiseBank
from _helpers import digest

librosa = pytest.importorskip("librosa")


def _noise_paths(root):
    return sorted(str(p) for p in (root / "noise_recordings" / "audio").glob("*.wav"))


def _notebook_noise(path, rate):
    y, sr = librosa.load(path, sr=None)
    return librosa.resample(y, orig_sr=sr, target_sr=rate)


def test_rows_equal_librosa_load_and_resample(synthetic_root, tmp_path):
    paths = _noise_paths(synthetic_root)[:4]
    bank = NoiseBank(paths, keep=6000, cache_dir=tmp_path)
    for i, path in enumerate(paths):
        expected = _notebook_noise(path, 8000)[:6000]
        assert bank.get(i, 8000).tobytes() == expected.tobytes()
    whole = NoiseBank(paths, keep=None, cache_dir=None)
    assert whole.get(0, 8000).tobytes() == _notebook_noise(paths[0], 8000).tobytes()


def _fill(args):
    paths, cache = args
    bank = NoiseBank(paths, keep=5000, cache_dir=cache)
    return [digest(bank.get(i, 8000)) for i in range(len(paths))]


@pytest.mark.slow  # a fresh interpreter
def test_a_second_process_reads_the_table_without_resampling(synthetic_root, tmp_path, monkeypatch):
    paths = _noise_paths(synthetic_root)[:3]
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        filled = pool.map(_fill, [(paths, str(tmp_path))])[0]
    assert len(list(tmp_path.glob("noise-8000hz-*.f32"))) == 1

    def forbidden(*a, **k):
        raise AssertionError("resampled again although the table holds the row")

    monkeypatch.setattr(noise_module, "resample_noise", forbidden)
    bank = NoiseBank(paths, keep=5000, cache_dir=tmp_path)
    assert [digest(bank.get(i, 8000)) for i in range(3)] == filled


def _row_offset(raw, i):
    """Where row ``i``'s samples start: its index entry (after the 64-byte header) says, 24 bytes a row."""
    return int(np.frombuffer(bytes(raw), dtype="<u8", count=1, offset=64 + 24 * i)[0])


def test_torn_row_is_recomputed(synthetic_root, tmp_path):
    paths = _noise_paths(synthetic_root)[:2]
    good = NoiseBank(paths, keep=5000, cache_dir=tmp_path).get(1, 8000).copy()
    (table,) = tmp_path.glob("*.f32")
    raw = bytearray(table.read_bytes())
    row_start = _row_offset(raw, 1)
    raw[row_start + 400 : row_start + 404] = b"\x00\x00\xc0\x7f"  # a NaN where a sample was
    table.write_bytes(bytes(raw))
    fresh = NoiseBank(paths, keep=5000, cache_dir=tmp_path)
    assert fresh.get(1, 8000).tobytes() == good.tobytes()


def test_unwritable_cache_falls_back_to_memory(synthetic_root, tmp_path):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    bank = NoiseBank(_noise_paths(synthetic_root)[:1], keep=3000, cache_dir=blocked / "cache")
    with pytest.warns(RuntimeWarning, match="cannot use the clip cache"):
        row = bank.get(0, 8000)
    assert row.tobytes() == _notebook_noise(_noise_paths(synthetic_root)[0], 8000)[:3000].tobytes()


@pytest.mark.parametrize("scheme", ["burst_noise", "distorted"])
def test_items_are_the_same_with_and_without_the_table(synthetic_root, tmp_path, scheme):
    a = AVMNISTAudioDataset(synthetic_root, split="train", scheme=scheme, clip_tables=tmp_path)
    b = AVMNISTAudioDataset(synthetic_root, split="train", scheme=scheme, clip_tables=None)
    for i in (0, 5, 77, 119):
        assert a.waveform(i)[0].tobytes() == b.waveform(i)[0].tobytes()
    # warm table, new dataset object: still the same
    c = AVMNISTAudioDataset(synthetic_root, split="train", scheme=scheme, clip_tables=tmp_path)
    assert c.waveform(77)[0].tobytes() == b.waveform(77)[0].tobytes()


def test_auto_cache_honours_the_environment(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("AVMNIST_CACHE", str(tmp_path / "here"))
    ds = AVMNISTAudioDataset(synthetic_root, split="test", scheme="burst_noise")
    ds.waveform(0)
    assert list((tmp_path / "here").glob("noise-8000hz-*.f32"))
    assert list((tmp_path / "here").glob("recordings-*.f32"))


def _rss_file_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    pytest.skip("no RssFile in /proc/self/status")



def test_whole_clips_come_from_a_table_and_begin_with_the_fixed_rows(synthetic_root, tmp_path, monkeypatch):
    """get_full: the whole resampled clip, tabled like the fixed rows; its start is get()'s bytes."""
    paths = _noise_paths(synthetic_root)[:3]
    bank = NoiseBank(paths, keep=3000, cache_dir=tmp_path)
    for i, path in enumerate(paths):
        whole = _notebook_noise(path, 8000)
        assert len(whole) > 3000
        assert bank.get_full(i, 8000).tobytes() == whole.tobytes()
        assert bank.get(i, 8000).tobytes() == whole[:3000].tobytes()
    assert len(list(tmp_path.glob("noise-8000hz-3x3000-*.f32"))) == 1
    assert len(list(tmp_path.glob("noise-8000hz-3xall-*.f32"))) == 1

    def forbidden(*a, **k):
        raise AssertionError("resampled again although the table holds the whole clip")

    monkeypatch.setattr(noise_module, "resample_noise", forbidden)
    again = NoiseBank(paths, keep=3000, cache_dir=tmp_path)
    assert again.get_full(1, 8000).tobytes() == _notebook_noise(paths[1], 8000).tobytes()
