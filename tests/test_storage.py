"""storage: .npy headers, raw notebook files, sidecars, crash-safe targets, locks, full disks."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from avmnist_torch import storage
from avmnist_torch.cache import open_cached_items
from avmnist_torch.storage import (
    ExportTarget,
    LockedError,
    MetadataMismatch,
    StorageError,
    done_chunks,
    open_rows,
    partial_path,
    read_sidecar,
    sidecar_path,
)
from conftest import REPO, digest


def _meta(rows: int, **changes) -> dict:
    meta = {
        "format": storage.FORMAT, "split": "test", "scheme": "clean", "scheme_steps": "()", "seed": 0,
        "style": "3.10", "renderer": "fast", "sources": "f" * 64, "version": "0.1.0",
        "shape": [rows, 112, 112], "dtype": "uint8",
    }
    meta.update(changes)
    return meta


def _rows(start: int, stop: int) -> np.ndarray:
    """Distinct, reproducible rows: row i is filled from its own generator."""
    return np.stack([np.random.default_rng(i).integers(0, 256, (112, 112), dtype=np.uint8) for i in range(start, stop)])


def _write_all(path: Path, meta: dict, chunk_rows: int) -> ExportTarget:
    target = ExportTarget(path, meta, chunk_rows)
    assert target.open() == "partial"
    with target:
        for c in target.claim(0, target.n_chunks):
            target.write_chunk(c, _rows(*target.chunk_range(c)))
        assert target.finish()
    return target


def test_header_is_numpys_own(tmp_path):
    np.save(tmp_path / "ref.npy", np.zeros((7, 112, 112), np.uint8))
    ref = (tmp_path / "ref.npy").read_bytes()
    header = storage.npy_header((7, 112, 112))
    assert ref[: len(header)] == header and len(ref) == len(header) + 7 * 112 * 112


def test_target_writes_a_real_npy_with_sidecar(tmp_path):
    path = tmp_path / "out" / "x.npy"
    _write_all(path, _meta(23), chunk_rows=5)
    data = np.load(path, mmap_mode="r")
    assert data.shape == (23, 112, 112) and data.dtype == np.uint8
    assert digest(data) == digest(_rows(0, 23))
    side = read_sidecar(path)
    import hashlib

    assert side["sha256"] == hashlib.sha256(_rows(0, 23).tobytes()).hexdigest()
    assert side["seed"] == 0 and side["shape"] == [23, 112, 112]
    # nothing of the run in progress is left beside it
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.npy", "x.npy.json"]


def test_raw_notebook_file_is_read(tmp_path):
    rows = _rows(0, 6)
    path = tmp_path / "test_data_augmented_distorted.npy"
    mm = np.memmap(path, mode="w+", shape=(6, 112, 112), dtype="uint8")  # exactly what the notebook does
    mm[:] = rows
    mm.flush()
    del mm
    with pytest.raises(ValueError):
        np.load(path)  # the notebook's files are not .npy files
    array, kind = open_rows(path, 6)
    assert kind == "raw" and digest(array) == digest(rows)
    array, kind = open_rows(path)  # N inferred from the size
    assert array.shape == (6, 112, 112)
    with pytest.raises(StorageError, match=f"{path.name}.*raw notebook file of 7 rows"):
        open_rows(path, 7)
    served, info = open_cached_items(path, _meta(6))
    assert info.provenance == "external" and info.kind == "raw" and digest(served) == digest(rows)


def test_cache_with_other_metadata_is_refused(tmp_path):
    path = tmp_path / "x.npy"
    _write_all(path, _meta(4), chunk_rows=4)
    _, info = open_cached_items(path, _meta(4))
    assert info.provenance == "sidecar"
    with pytest.raises(MetadataMismatch, match=r"x\.npy.*seed=0 \(file\) vs seed=3 \(dataset\)"):
        open_cached_items(path, _meta(4, seed=3))
    with pytest.raises(StorageError, match="has 4 rows, expected 5"):
        open_cached_items(path, _meta(5))


def test_resume_continues_and_refuses_other_options(tmp_path):
    path = tmp_path / "x.npy"
    target = ExportTarget(path, _meta(20), chunk_rows=4)
    target.open()
    todo = target.claim(0, target.n_chunks)
    for c in todo[:2]:
        target.write_chunk(c, _rows(*target.chunk_range(c)))
    target.close()  # as if interrupted
    assert not path.exists() and partial_path(path).exists()
    assert done_chunks(path) == {0, 1}

    other = ExportTarget(path, _meta(20, seed=1), chunk_rows=4)
    with pytest.raises(MetadataMismatch, match=r"x\.npy was started with seed=0, this run has seed=1; delete .*x\.npy\.partial.* or use the same options"):
        other.open()

    # a resumed run keeps the chunk size it started with, whatever it is asked for now
    again = ExportTarget(path, _meta(20), chunk_rows=7)
    assert again.open() == "partial" and again.chunk_rows == 4
    with again:
        todo = again.claim(0, again.n_chunks)
        assert todo == [2, 3, 4]
        for c in todo:
            again.write_chunk(c, _rows(*again.chunk_range(c)))
        assert again.finish()
    assert digest(np.load(path)) == digest(_rows(0, 20))
    # finished: the same options find it complete, others are refused
    assert ExportTarget(path, _meta(20)).open() == "complete"
    with pytest.raises(MetadataMismatch, match="already exists and was made with other options"):
        ExportTarget(path, _meta(20, style="3.11")).open()


def test_torn_progress_line_is_ignored(tmp_path):
    path = tmp_path / "x.npy"
    target = ExportTarget(path, _meta(8), chunk_rows=2)
    target.open()
    with target:
        target.claim(0, 4)
        target.write_chunk(1, _rows(2, 4))
        with open(next(Path(f"{path}.partial.done").glob("*.log")), "a") as log:
            log.write("3")  # a crash in the middle of recording chunk 3
    assert done_chunks(path) == {1}


def test_existing_file_without_sidecar_is_not_overwritten(tmp_path):
    path = tmp_path / "train_data_augmented_clean.npy"
    path.write_bytes(b"\0" * storage.ROW_BYTES * 4)
    with pytest.raises(StorageError, match="already exists and has no .*json"):
        ExportTarget(path, _meta(4)).open()
    assert path.read_bytes() == b"\0" * storage.ROW_BYTES * 4


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from avmnist_torch.storage import ExportTarget
    meta = {meta!r}
    t = ExportTarget({path!r}, meta, 4)
    t.open()
    t.claim({first}, {stop})
    print("claimed", flush=True)
    time.sleep(60)
    """
)


def test_second_exporter_of_the_same_rows_is_refused(tmp_path):
    path = tmp_path / "x.npy"
    meta = _meta(16)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER.format(meta=meta, path=str(path), first=0, stop=2)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        assert holder.stdout.readline().strip() == "claimed"
        target = ExportTarget(path, meta, 4)
        target.open()
        with target:
            with pytest.raises(LockedError, match=rf"x\.npy: rows 4-11 are being written by another exporter \(pid {holder.pid}\)"):
                target.claim(1, 3)
            # rows nobody holds (another shard's) can be claimed alongside
            assert target.claim(2, 4) == [2, 3]
    finally:
        holder.kill()
        holder.wait()
    # the holder died without finishing: its rows are free again
    target = ExportTarget(path, meta, 4)
    target.open()
    with target:
        assert target.claim(0, 4) == [0, 1, 2, 3]


def test_same_process_cannot_open_one_file_twice(tmp_path):
    path = tmp_path / "x.npy"
    first = ExportTarget(path, _meta(8), 4)
    first.open()
    with first:
        with pytest.raises(LockedError, match="already being exported by this process"):
            ExportTarget(path, _meta(8), 4).open()


def test_full_disk_at_allocation_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "x.npy"

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(StorageError, match=r"x\.npy: cannot allocate .* MiB .*no space left on device.*free space"):
        ExportTarget(path, _meta(40)).open()
    assert not path.exists() and not partial_path(path).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.npy.creating")]


def test_full_disk_while_writing_keeps_written_rows(tmp_path, monkeypatch):
    path = tmp_path / "x.npy"
    real_pwrite = os.pwrite
    calls = {"n": 0}

    def fill_up(fd, data, offset):
        calls["n"] += 1
        if calls["n"] > 3:  # the header and two chunks fit
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", fill_up)
    target = ExportTarget(path, _meta(12), chunk_rows=3)
    target.open()
    with target:
        todo = target.claim(0, target.n_chunks)
        with pytest.raises(StorageError, match=r"x\.npy\.partial: no space left on device while writing rows 6-8.*rerun"):
            for c in todo:
                target.write_chunk(c, _rows(*target.chunk_range(c)))
    assert not path.exists() and done_chunks(path) == {0, 1}
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    _write_all(path, _meta(12), chunk_rows=3)
    assert digest(np.load(path)) == digest(_rows(0, 12))


def _mount_tmpfs(where: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def test_really_full_disk(tmp_path):
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "size=256k"):
        pytest.skip("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN); the monkeypatched tests cover this")
    try:
        path = mnt / "x.npy"
        with pytest.raises(StorageError, match=r"x\.npy: cannot allocate .*no space left on device"):
            ExportTarget(path, _meta(40)).open()  # 40 rows = 490 KiB > 256 KiB
        assert not path.exists() and not partial_path(path).exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.fixture
def unwritable_dir(tmp_path):
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    folder = tmp_path / "ro"
    if not _mount_tmpfs(folder, "ro,size=64k"):
        pytest.skip("running as root without mount rights: no folder can be made unwritable here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_unwritable_folder_is_a_clear_error(unwritable_dir):
    path = unwritable_dir / "audio" / "x.npy"
    with pytest.raises(StorageError, match=r"ro(/audio)?: .*(not writable|read-only|permission)"):
        ExportTarget(path, _meta(4)).open()
    assert not path.exists()


def _package_imports(path: Path, package: str):
    """``(module imported, line)`` for every import in a file of ``package``, relative ones resolved."""
    import ast

    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            yield name, node.lineno


def test_storage_knows_nothing_of_datasets():
    """storage/ sits below the dataset layer: it may import only common, filesystem and itself."""
    allowed = ("avmnist_torch.common", "avmnist_torch.filesystem", "avmnist_torch.storage")
    folder = REPO / "avmnist_torch" / "storage"
    wrong = [
        f"{path.name}:{line} imports {name}"
        for path in sorted(folder.glob("*.py"))
        for name, line in _package_imports(path, "avmnist_torch.storage")
        if name.startswith("avmnist_torch") and not name.startswith(allowed)
    ]
    assert not wrong, wrong


def test_cache_and_storage_import_no_platform_module_at_load():
    """fcntl and msvcrt exist on one platform each: importing them at load would break the other."""
    files = sorted((REPO / "avmnist_torch" / "storage").glob("*.py")) + [REPO / "avmnist_torch" / "cache.py"]
    found = [f"{path.name}:{line}" for path in files for name, line in _package_imports(path, "avmnist_torch")
             if name in ("fcntl", "msvcrt")]
    assert not found, found
