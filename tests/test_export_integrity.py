"""Caches change speed, never bytes: an exported file is served only while it is what its records say.

Each test is one way wrong bytes used to be served without an error: a file changed after export, a
source edited in place (same size, same mtime), a file swapped while in use, a temporary file damaged
before it got its name.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from avmnist_torch import AVMNISTAudioDataset, StorageError
from avmnist_torch.export import export
from avmnist_torch.storage import MetadataMismatch, read_sidecar
from avmnist_torch.verify import verify

ROW = 112 * 112
N_TEST = 150


@pytest.fixture(scope="module")
def tree(synthetic_tree) -> Path:
    return synthetic_tree(n_train=6, n_test=N_TEST,
                               noise_seconds=0.5)


@pytest.fixture(scope="module")
def want(tree) -> np.ndarray:
    return AVMNISTAudioDataset(tree, split="test", scheme="burst_noise").spectrograms(range(N_TEST))


@pytest.fixture
def exported(tree, tmp_path) -> Path:
    """A fresh notebook-layout export of the test split, in a root of its own (for from_export="auto")."""
    root = tmp_path / "root"
    shutil.copytree(tree, root, copy_function=shutil.copy2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        [path] = export(root, "test", "burst_noise", progress=False)
    return path


def _auto(path: Path, **kwargs) -> AVMNISTAudioDataset:
    return AVMNISTAudioDataset(path.parents[2], split="test", scheme="burst_noise", from_export="auto", **kwargs)


def _flip_byte(path: Path, row: int, at: int = 321) -> None:
    with open(path, "r+b") as f:
        f.seek(row * ROW + at)
        byte = f.read(1)
        f.seek(row * ROW + at)
        f.write(bytes([byte[0] ^ 0x01]))


def _zero_rows(path: Path, start: int, stop: int) -> None:
    with open(path, "r+b") as f:
        f.seek(start * ROW)
        f.write(bytes((stop - start) * ROW))


# 1. the file changed after export -------------------------------------------------------------


@pytest.mark.parametrize("damage", ["one flipped byte", "100 zeroed rows"])
def test_a_changed_file_is_never_served_and_export_writes_it_again(exported, want, damage, capsys):
    if damage == "one flipped byte":
        _flip_byte(exported, 40)
        bad = [40]
    else:
        _zero_rows(exported, 20, 120)
        bad = list(range(20, 120))
    # from_export=PATH: the damaged rows are refused, the others served
    served = AVMNISTAudioDataset(exported.parents[2], split="test", scheme="burst_noise", from_export=exported)
    assert np.array_equal(served.spectrograms([0, 1, 149]), want[[0, 1, 149]])
    with pytest.raises(StorageError, match=rf"row {bad[0]}.* differs from the CRC-32 recorded"):
        served.spectrograms([0, bad[0]])
    with pytest.raises(StorageError, match="CRC-32"):
        served[bad[-1]]
    # from_export="auto": the damaged rows are generated instead, with a warning
    auto = _auto(exported)
    with pytest.warns(UserWarning, match="differs from the CRC-32 recorded.*generating those items instead"):
        got = auto.spectrograms(range(N_TEST))
    assert np.array_equal(got, want)
    # verify's default sample (64 rows) still reads every row against the records
    report = verify(exported)
    assert not report.ok and report.damaged_rows == bad and f"DAMAGED: {len(bad)} rows differ" in report.summary()
    # export does not call it complete: it says so and writes it again
    capsys.readouterr()
    export(exported.parents[2], "test", "burst_noise", progress=True)
    assert "damaged since it was written" in capsys.readouterr().err
    assert np.array_equal(np.fromfile(exported, np.uint8).reshape(want.shape), want)
    assert verify(exported, sample=2).ok


def test_a_damaged_checksums_file_is_refused(exported):
    crc = Path(f"{exported}.crc32")
    data = bytearray(crc.read_bytes())
    data[8] ^= 0xFF
    crc.write_bytes(bytes(data))
    with pytest.raises(StorageError, match=r"\.crc32: its sha256 is not the one .*\.json records"):
        AVMNISTAudioDataset(exported.parents[2], split="test", scheme="burst_noise", from_export=exported)
    assert not verify(exported, sample=1).ok


# 2. a source edited in place, same size, same mtime -------------------------------------------


def test_a_recording_edited_in_place_is_noticed(exported, capsys):
    root = exported.parents[2]
    ds = AVMNISTAudioDataset(root, split="test", scheme="burst_noise", clip_tables=None)
    recording = Path(ds.describe(0)["recording"])
    before = recording.stat()
    data = recording.read_bytes()
    assert data[36:40] == b"data"
    samples = np.frombuffer(data[44:], dtype="<i2") // 2  # -6 dB
    recording.write_bytes(data[:44] + samples.astype("<i2").tobytes())
    os.utime(recording, ns=(before.st_atime_ns, before.st_mtime_ns))  # even with its mtime put back
    assert recording.stat().st_size == before.st_size and recording.stat().st_mtime_ns == before.st_mtime_ns

    with pytest.raises(MetadataMismatch, match="sources=.* \\(file\\) vs sources="):
        AVMNISTAudioDataset(root, split="test", scheme="burst_noise", from_export=exported)
    with pytest.warns(UserWarning, match="is not used, it was made with other options: sources="):
        assert _auto(exported).export is None
    with pytest.raises(MetadataMismatch, match="already exists and was made with other options: sources="):
        export(root, "test", "burst_noise", progress=False)


# 3. the file swapped while a dataset serves it ------------------------------------------------


def _swap_for_seed_1(path: Path) -> None:
    for p in (path, Path(f"{path}.json"), Path(f"{path}.crc32")):
        p.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export(path.parents[2], "test", "burst_noise", seed=1, progress=False)
    assert read_sidecar(path)["seed"] == 1


def test_a_file_swapped_while_in_use_is_not_served_by_the_next_epochs_workers(exported, want):
    served = AVMNISTAudioDataset(exported.parents[2], split="test", scheme="burst_noise", from_export=exported)
    loader = DataLoader(served, batch_size=50, num_workers=2)
    first = np.concatenate([x[:, 0].numpy() for x, _ in loader])
    assert np.array_equal(first, want)
    _swap_for_seed_1(exported)
    with pytest.raises(StorageError, match="was (replaced by another file|modified or replaced)"):
        [x for x, _ in loader]
    with pytest.raises(StorageError, match="was (replaced by another file|modified or replaced)"):
        served.spectrograms([3])


def test_a_file_swapped_while_in_use_is_regenerated_with_auto(exported, want):
    auto = _auto(exported)
    assert np.array_equal(auto.spectrograms(range(N_TEST)), want)
    _swap_for_seed_1(exported)
    loader = DataLoader(auto, batch_size=50, num_workers=2)
    assert np.array_equal(np.concatenate([x[:, 0].numpy() for x, _ in loader]), want)
    with pytest.warns(UserWarning, match="was (replaced by another file|modified or replaced)"):
        assert np.array_equal(auto.spectrograms([7, 8]), want[[7, 8]])


def test_a_file_rewritten_in_place_while_mapped_is_not_served(exported, want):
    served = AVMNISTAudioDataset(exported.parents[2], split="test", scheme="burst_noise", from_export=exported)
    assert np.array_equal(served.spectrograms([5]), want[[5]])  # mapped now
    with open(exported, "r+b") as f:  # same size, same inode
        f.seek(0)
        f.write(bytes(10))
    with pytest.raises(StorageError, match="was modified or replaced"):
        served.spectrograms([5])


# 4. a temporary file damaged before it gets its name --------------------------------------------


@pytest.mark.parametrize("fault", ["a flipped byte in a row", "a lost write", "a zeroed header"])
def test_a_damaged_temporary_file_is_never_renamed_into_place(tree, tmp_path, monkeypatch, fault):
    from avmnist_torch.storage import writer

    real = writer.pwrite_all
    calls = []

    def faulty(fd, data, offset):
        calls.append(offset)
        data = bytearray(data)
        if fault == "a flipped byte in a row" and len(calls) == 2:
            data[100] ^= 0x10
        elif fault == "a lost write" and len(calls) == 2:
            return None
        elif fault == "a zeroed header" and offset == 0 and len(data) == 128:
            data[:] = bytes(128)
        return real(fd, bytes(data), offset)

    monkeypatch.setattr(writer, "pwrite_all", faulty)
    out = tmp_path / "out"
    with pytest.raises(StorageError, match="nothing was renamed into place"):
        export(tree, "test", "burst_noise", out=out, format="npy" if fault == "a zeroed header" else "raw",
               progress=False, workers=1)
    folder = out / "avmnist" / "audio"
    assert sorted(p.name for p in folder.iterdir()) == [], "neither a final nor a temporary file is left"
