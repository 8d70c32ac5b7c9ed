"""Files of items that are not what they claim: cut short, too long, foreign arrays.

Every reader (``cache=``, ``verify``, ``info``, a rerun of ``export``) must
refuse them with a :class:`StorageError` naming the file, the rows found and
expected, and what to do, never with numpy's "mmap length is greater than file
size" and no path, and never by serving or accepting a file that is not whole.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from avmnist_torch import AVMNISTAudioDataset, StorageError, verify
from avmnist_torch.inspection import info
from avmnist_torch import export
from avmnist_torch.storage import open_rows, read_sidecar

ROW = 112 * 112
N = 6  # test items of the synthetic tree


@pytest.fixture(scope="module")
def tree(synthetic_tree) -> Path:
    return synthetic_tree(n_train=8, n_test=N, noise_seconds=0.5)


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (n, 112, 112), dtype=np.uint8)


def _cut(path: Path, keep_bytes: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(keep_bytes)


def _npy_cut_short(path: Path, n: int = N, whole_rows: int = 3) -> Path:
    """An np.save file of ``n`` rows, cut after ``whole_rows`` rows and half of the next."""
    np.save(path, _rows(n))
    header = path.stat().st_size - n * ROW
    _cut(path, header + whole_rows * ROW + ROW // 2)
    return path


def test_cache_cut_short_names_the_file_and_the_rows(tree, tmp_path):
    path = _npy_cut_short(tmp_path / "test_data_augmented_clean.npy")
    with pytest.raises(StorageError) as err:
        AVMNISTAudioDataset(tree, split="test", scheme="clean", from_export=path)
    message = str(err.value)
    assert str(path) in message
    assert re.search(rf"cut short: 3 whole rows of the {N}", message)
    assert "export it again" in message and "mmap" not in message


def test_export_copy_cut_short_with_its_sidecar_is_refused_as_cache(tree, tmp_path):
    # An exported file whose sidecar matches, copied incompletely: the sidecar cannot vouch for it.
    [path] = export(tree, "test", "clean", out=tmp_path, progress=False)
    _cut(path, path.stat().st_size - ROW - 100)
    with pytest.raises(StorageError, match=rf"{re.escape(str(path))}: cut short: {N - 2} whole rows of the {N} "
                                           "its sidecar records"):
        AVMNISTAudioDataset(tree, split="test", scheme="clean", from_export=path)


def test_file_longer_than_its_header_is_refused(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, _rows(4))
    with open(path, "ab") as f:
        f.write(b"\0" * 100)
    with pytest.raises(StorageError, match=r"x\.npy: 100 bytes follow its 4 rows"):
        open_rows(path)


@pytest.mark.parametrize(
    "array,message",
    [
        (np.zeros((N, 112, 112), np.float32), r"holds float32 \(6, 112, 112\), not \(N, 112, 112\) uint8 items; give"),
        (np.zeros((N, 112, 111), np.uint8), r"holds uint8 \(6, 112, 111\), not .*; give a file written by export"),
        (np.empty((N, 112, 112), object), r"holds Python objects \(object\), not .*; give a file written by export"),
        (np.asfortranarray(np.zeros((N, 112, 112), np.uint8)), r"holds a Fortran-ordered array.*np\.ascontiguousarray"),
    ],
    ids=["float32", "shape", "object", "fortran"],
)
def test_foreign_npy_as_cache_says_what_it_holds_and_what_to_do(tree, tmp_path, array, message):
    path = tmp_path / "foreign.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(StorageError, match=rf"foreign\.npy: {message}"):
        AVMNISTAudioDataset(tree, split="test", scheme="clean", from_export=path)


def test_verify_of_a_file_cut_short_is_a_storage_error(tmp_path):
    path = _npy_cut_short(tmp_path / "test_data_augmented_clean.npy")
    with pytest.raises(StorageError, match=r"test_data_augmented_clean\.npy: cut short: 3 whole rows of the 6"):
        verify(path)


def test_info_lists_a_file_cut_short_as_unreadable(tree, tmp_path):
    folder = tmp_path / "avmnist" / "audio"
    folder.mkdir(parents=True)
    _npy_cut_short(folder / "test_data_augmented_clean.npy")
    [entry] = info(tmp_path)["exports"]
    assert entry["kind"] == "unreadable" and "cut short: 3 whole rows of the 6" in entry["error"]


def test_rerun_over_a_final_file_cut_short_writes_it_again_instead_of_calling_it_complete(tree, tmp_path, capsys):
    [path] = export(tree, "test", "clean", out=tmp_path, progress=False)
    whole = path.read_bytes()
    _cut(path, path.stat().st_size - 3 * ROW)
    capsys.readouterr()
    export(tree, "test", "clean", out=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert f"{path}: damaged since it was written ({path}: cut short: {N - 3} whole rows of the {N}" in err
    assert path.read_bytes() == whole


def test_rerun_over_a_final_file_replaced_by_a_foreign_npy_writes_it_again(tree, tmp_path, capsys):
    [path] = export(tree, "test", "clean", out=tmp_path, progress=False)
    whole = path.read_bytes()
    np.save(path, np.zeros((N, 112, 112), np.int16))  # replaced by something else, sidecar left behind
    capsys.readouterr()
    export(tree, "test", "clean", out=tmp_path, progress=True)
    assert "its sidecar says raw rows, but the file starts with a .npy header" in capsys.readouterr().err
    assert path.read_bytes() == whole and read_sidecar(path)["file_format"] == "raw"
