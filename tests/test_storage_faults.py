"""Faults in the files the package writes and reads back (clip tables, the image half, exports).

Each scenario ends in the right bytes or one package error naming the file: never SIGBUS (the
test processes would die), never a raw error, never a file outside its folder written. The
scenarios are format-agnostic where they can be: the same fault is tried on every kind of file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from avmnist_torch import AVMNISTAudioDataset
from avmnist_torch import files
from avmnist_torch.common import AVMNISTError, StorageError
from avmnist_torch.export import export
from avmnist_torch.files import FileWriter, StoredFile, sidecar_path, write_bytes
from avmnist_torch.image_pca import image_half, image_half_cache, pca25
from avmnist_torch.inspection import info
from avmnist_torch.sources.clip_tables import ClipCacheWarning
from avmnist_torch.verify import verify

SCHEME = "burst_noise"


@pytest.fixture(scope="module")
def tree(synthetic_tree, tmp_path_factory):
    return synthetic_tree(n_train=40, n_test=24)


@pytest.fixture(scope="module")
def expected(tree):
    """The test split's items, made with no file at all (memory only): what every file must serve."""
    return AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=None).spectrograms(range(24))


def _tables(folder: Path):
    return sorted(p for p in folder.glob("*.f32"))


# ----------------------------------------------------------------------------
# the writer


def test_a_link_planted_at_any_name_leaves_its_target_untouched(tmp_path):
    """Final name, sidecar name and lock name: a link is replaced, never written through."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"precious")
    folder = tmp_path / "folder"
    folder.mkdir()
    target = folder / "file.bin"
    for name in ("file.bin", "file.bin.json"):
        (folder / name).symlink_to(victim)
    write_bytes(target, b"new bytes", sidecar={"what": "test"})
    assert victim.read_bytes() == b"precious"
    assert not target.is_symlink() and target.read_bytes() == b"new bytes"
    assert not sidecar_path(target).is_symlink()


def test_temporary_names_are_created_exclusively(tmp_path, monkeypatch):
    """A link at the temporary name (predicted, or raced in) is never followed: O_EXCL refuses it, another
    name is taken."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    names = iter([tmp_path / ".x.tmp-1-aaaaaaaa", tmp_path / ".x.tmp-1-bbbbbbbb"])
    monkeypatch.setattr(files, "_temporary_name", lambda path: next(names))
    (tmp_path / ".x.tmp-1-aaaaaaaa").symlink_to(victim)
    write_bytes(tmp_path / "x", b"data")
    assert victim.read_bytes() == b"precious"
    assert (tmp_path / "x").read_bytes() == b"data"


def test_an_interrupted_write_leaves_nothing_under_the_final_name(tmp_path):
    target = tmp_path / "f"
    with pytest.raises(KeyboardInterrupt):
        with FileWriter(target, size=8) as writer:
            writer.append(b"1234")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_bytes_never_written_are_refused(tmp_path):
    with pytest.raises(StorageError, match="never written"):
        with FileWriter(tmp_path / "f") as writer:
            writer.write_at(4, b"5678")
            writer.commit()
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------
# the reader


def test_a_file_truncated_while_in_use_is_an_error_not_sigbus(tmp_path):
    path = tmp_path / "f"
    record = write_bytes(path, bytes(range(256)) * 64, sidecar={})
    stored = StoredFile.open(path, sha256=record["sha256"], size=record["size"])
    assert bytes(stored.read(256, 4)) == bytes([0, 1, 2, 3])
    os.truncate(path, 100)
    with pytest.raises(StorageError, match="changed while in use"):
        stored.read(256, 4)


def test_a_changed_byte_is_caught_by_the_checksum(tmp_path):
    path = tmp_path / "f"
    record = write_bytes(path, bytes(4096), sidecar={})
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(b"\x01")
    with pytest.raises(StorageError, match="sha256"):
        StoredFile.open(path, sha256=record["sha256"], size=record["size"])


@pytest.mark.slow
def test_descriptors_stay_bounded(tmp_path, tree, expected):
    export(tree, split="test", scheme=SCHEME, out=tmp_path / "e.npy", workers=1, progress=False, clip_tables=None)
    for _ in range(200):
        ds = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=None, from_export=tmp_path / "e.npy")
        assert np.array_equal(ds.spectrogram(3), expected[3])
    assert len(files._OPEN) <= 16  # the descriptors this process holds open for reading


# ----------------------------------------------------------------------------
# clip tables


@pytest.fixture(params=["whole", "row by row"])
def table_reads(request, monkeypatch):
    """Both ways a clip table is read: whole into memory (small tables), or row by row (large ones)."""
    import avmnist_torch.sources.clip_tables as clip_tables

    if request.param == "row by row":
        monkeypatch.setattr(clip_tables, "WHOLE_TABLE_BYTES", 0)
    return request.param


def test_clip_tables_truncated_between_passes_serve_the_right_bytes(tmp_path, tree, expected, table_reads):
    ds = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path)
    assert np.array_equal(ds.spectrograms(range(24)), expected)
    for table in _tables(tmp_path):
        os.truncate(table, table.stat().st_size // 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert np.array_equal(ds.spectrograms(range(24)), expected)  # same process: its own copy, or memory
    # read row by row, the change is noticed (a warning) and the clips come from memory
    assert any(issubclass(w.category, ClipCacheWarning) for w in caught) == (table_reads == "row by row")
    fresh = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path)  # a new process would rebuild
    assert np.array_equal(fresh.spectrograms(range(24)), expected)


@pytest.mark.slow
def test_clip_tables_truncated_under_persistent_workers(tmp_path, tree, expected, table_reads):
    ds = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, persistent_workers=True)
    first = torch.cat([x for x, _ in loader]).numpy()[:, 0]
    for table in _tables(tmp_path):
        os.truncate(table, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClipCacheWarning)
        second = torch.cat([x for x, _ in loader]).numpy()[:, 0]
    assert np.array_equal(first, expected) and np.array_equal(second, expected)


def test_a_flipped_byte_in_a_clip_table_is_never_served(tmp_path, tree, expected, table_reads):
    AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path).spectrogram(0)
    for table in _tables(tmp_path):
        n = json.loads(sidecar_path(table).read_text())["rows"]
        index = np.fromfile(table, dtype="<u8", count=3 * n).reshape(n, 3)
        with open(table, "r+b") as f:  # sample 10 of every clip, which every item uses: same size, other values
            for offset in index[:, 0]:
                f.seek(int(offset) + 4 * 10 + 3)
                byte = f.read(1)
                f.seek(-1, os.SEEK_CUR)
                f.write(bytes([byte[0] ^ 0x40]))
    ds = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path)  # fails the sha256: built again
    assert np.array_equal(ds.spectrograms(range(24)), expected)


def test_a_link_at_a_clip_tables_name_leaves_its_target_untouched(tmp_path, tree, expected):
    ds = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path / "a")
    ds.spectrogram(0)
    names = [p.name for p in _tables(tmp_path / "a")]
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "b").mkdir()
    for name in names:
        for planted in (name, name + ".json", f".{name}.lock"):
            (tmp_path / "b" / planted).symlink_to(victim)
    again = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path / "b")
    assert np.array_equal(again.spectrograms(range(24)), expected)
    assert victim.read_bytes() == b"precious"


def test_marking_a_tables_last_use_never_touches_a_linked_sidecars_target(tmp_path, tree, expected):
    AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path / "cache").spectrogram(0)
    outside = tmp_path / "outside"
    outside.mkdir()
    for table in _tables(tmp_path / "cache"):
        copy = outside / sidecar_path(table).name
        copy.write_bytes(sidecar_path(table).read_bytes())
        os.utime(copy, ns=(10**18, 10**18))
        sidecar_path(table).unlink()
        sidecar_path(table).symlink_to(copy)
    ds = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path / "cache")
    assert np.array_equal(ds.spectrograms(range(24)), expected)
    assert [p.stat().st_mtime_ns for p in outside.iterdir()] == [10**18] * len(list(outside.iterdir()))


def test_a_sidecar_that_is_not_utf8_means_the_table_is_built_again(tmp_path, tree, expected):
    AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path).spectrogram(0)
    for table in _tables(tmp_path):
        sidecar_path(table).write_bytes(b"\xff\xfe\x00garbage")
    ds = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path)
    assert np.array_equal(ds.spectrograms(range(24)), expected)


def test_an_unusable_cache_folder_warns_and_keeps_clips_in_memory(tmp_path, tree, expected):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"")
    with pytest.warns(ClipCacheWarning, match=str(not_a_folder)):
        ds = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=not_a_folder)
        assert np.array_equal(ds.spectrograms(range(24)), expected)


def test_a_warm_table_is_read_not_rebuilt(tmp_path, tree, monkeypatch):
    AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path).spectrogram(0)
    import avmnist_torch.sources.clip_tables as clip_tables

    monkeypatch.setattr(clip_tables, "_build", lambda *a: pytest.fail("a warm table was built again"))
    AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=tmp_path).spectrogram(5)


# ----------------------------------------------------------------------------
# the image half


def test_the_image_half_cache_truncated_or_changed_is_computed_again(tmp_path, tree):
    images = np.random.default_rng(0).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    cached = image_half_cache(images, cache_dir=tmp_path)
    want = pca25(images)
    assert np.array_equal(cached.all(), want)
    (path,) = tmp_path.glob("pca25-*.f64")
    os.truncate(path, 100)
    with pytest.raises(StorageError, match="changed while in use"):
        cached.row(3)
    assert np.array_equal(image_half_cache(images, cache_dir=tmp_path).all(), want)
    with open(path, "r+b") as f:
        f.write(b"\x00" * 8)
    assert np.array_equal(image_half_cache(images, cache_dir=tmp_path).all(), want)
    with open(path, "r+b") as f:
        f.write(b"\x00" * 8)
    rows = image_half(images, cache_dir=tmp_path)  # read whole once, checked on the bytes read
    assert np.array_equal(rows, want) and rows.flags.writeable


def test_an_unusable_image_cache_folder_warns_and_computes_in_memory(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"")
    monkeypatch.setenv("AVMNIST_CACHE", str(not_a_folder))
    images = np.random.default_rng(1).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    with pytest.warns(RuntimeWarning, match="computing it in memory"):
        rows = image_half_cache(images)
    assert np.array_equal(rows, pca25(images))


# ----------------------------------------------------------------------------
# exports


@pytest.fixture()
def exported(tmp_path, tree):
    out = tmp_path / "out"
    export(tree, split="test", scheme=SCHEME, out=out, workers=1, progress=False, clip_tables=None)
    return tree, out / "avmnist" / "audio" / f"test_data_augmented_{SCHEME}.npy"


@pytest.mark.filterwarnings("ignore::avmnist_torch.export.ImageHalfSkipped")
def test_an_export_rewritten_in_place_while_served_is_an_error_naming_it(exported, expected, tmp_path):
    tree, path = exported
    ds = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=None, from_export=path)
    assert np.array_equal(ds.spectrograms(range(24)), expected)
    copy = tmp_path / "copy"
    shutil.copy(path, copy)
    with open(path, "wb") as f:  # what `cat copy > file` does: truncate, then write
        f.write(copy.read_bytes()[:1000])
    with pytest.raises(StorageError, match=str(path)):
        ds.spectrogram(20)
    with open(path, "wb") as f:
        f.write(copy.read_bytes())
    again = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=None, from_export=path)
    assert np.array_equal(again.spectrograms(range(24)), expected)


def test_auto_serves_generated_items_when_the_export_changes(tree, expected, tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(tree, root)
    export(root, split="test", scheme=SCHEME, workers=1, progress=False, clip_tables=None)
    path = root / "avmnist" / "audio" / f"test_data_augmented_{SCHEME}.npy"
    ds = AVMNISTAudioDataset(root, "test", SCHEME, clip_tables=None, from_export="auto")
    assert ds.export is not None
    os.truncate(path, 5000)
    with pytest.warns(UserWarning, match="generating those items"):
        assert np.array_equal(ds.spectrograms(range(24)), expected)


def test_a_sidecar_that_is_not_utf8_is_a_package_error_everywhere(exported):
    tree, path = exported
    sidecar_path(path).write_bytes(b"\xff\xfe\x00not json")
    calls = [
        lambda: AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=None, from_export=path),
        lambda: verify(path, tree, sample=2),
        lambda: export(tree, split="test", scheme=SCHEME, out=path, workers=1, progress=False, clip_tables=None),
    ]
    for call in calls:
        with pytest.raises(AVMNISTError, match=r"\.json: not a JSON sidecar"):
            call()
    entries = info(path.parents[2])["exports"]  # info reports it instead of raising
    assert any("not a JSON sidecar" in e.get("error", "") for e in entries)


def test_an_export_is_checked_against_its_sha256_when_opened(exported):
    tree, path = exported
    with open(path, "r+b") as f:
        f.seek(12544 * 5 + 7)
        f.write(b"\x01")
    with pytest.raises(StorageError, match="sha256"):
        AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=None, from_export=path)
    assert verify(path, tree, sample=2).integrity


def test_a_link_at_the_exports_name_is_replaced_not_written_through(tmp_path, tree, expected):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    out = tmp_path / "e.npy"
    out.symlink_to(victim)
    with pytest.raises(StorageError, match="already exists"):  # a file there is never overwritten unasked
        export(tree, split="test", scheme=SCHEME, out=out, workers=1, progress=False, clip_tables=None)
    out.unlink()
    sidecar_path(out).symlink_to(victim)
    export(tree, split="test", scheme=SCHEME, out=out, workers=1, progress=False, clip_tables=None)
    assert victim.read_bytes() == b"precious"
    served = AVMNISTAudioDataset(tree, "test", SCHEME, clip_tables=None, from_export=out)
    assert np.array_equal(served.spectrograms(range(24)), expected)


def test_no_mmap_of_our_files_anywhere_in_the_package():
    """The promise behind 'no SIGBUS': no code in the package maps a file (docstrings may name np.memmap)."""
    import ast

    package = Path(__file__).resolve().parents[1] / "avmnist_torch"
    offenders = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr in ("memmap", "open_memmap")) \
                    or (isinstance(node, ast.keyword) and node.arg == "mmap_mode") \
                    or (isinstance(node, (ast.Import, ast.ImportFrom))
                        and "mmap" in [a.name for a in node.names] + [getattr(node, "module", None)]):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize("cache", ["table", None])
def test_clips_are_handed_out_read_only(tmp_path, cache):
    from avmnist_torch.sources.clip_tables import ClipBank

    def load(path):
        return np.arange(100, dtype=np.float32) * os.path.getsize(path), 8000

    paths = [tmp_path / "a", tmp_path / "bb"]
    for p in paths:
        p.write_bytes(p.name.encode())
    bank = ClipBank(paths, load, kind="test", cache_dir=tmp_path if cache else None)
    for i in range(2):
        samples, rate = bank.get(i)
        assert rate == 8000 and np.array_equal(samples, np.arange(100, dtype=np.float32) * (i + 1))
        with pytest.raises(ValueError, match="read-only"):
            samples[0] = 1.0  # a table's rows are views every caller shares
    assert bool(list(tmp_path.glob("test-*.f32"))) == (cache is not None)
