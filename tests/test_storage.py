"""storage: the two file formats, sidecars and checksums, writing safely, full disks."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from avmnist_torch import storage
from avmnist_torch.exported import open_export
from avmnist_torch.storage import (
    ItemFileWriter,
    MetadataMismatch,
    StorageError,
    open_rows,
    read_sidecar,
    remove_dead_leftovers,
    writing_path,
)
from _helpers import REPO, digest


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


def _write_all(path: Path, meta: dict, file_format: str = "raw", block: int = 5) -> dict:
    rows = int(meta["shape"][0])
    with ItemFileWriter(path, rows, file_format) as writer:
        # out of order, as workers finish
        for start in reversed(range(0, rows, block)):
            writer.write(start, _rows(start, min(rows, start + block)))
        return writer.commit(meta)


def test_header_is_numpys_own(tmp_path):
    np.save(tmp_path / "ref.npy", np.zeros((7, 112, 112), np.uint8))
    ref = (tmp_path / "ref.npy").read_bytes()
    header = storage.npy_header((7, 112, 112))
    assert ref[: len(header)] == header and len(ref) == len(header) + 7 * 112 * 112


@pytest.mark.parametrize("file_format", ["raw", "npy"])
def test_writer_writes_the_format_with_sidecar_and_row_checksums(tmp_path, file_format):
    path = tmp_path / "out" / "x.npy"
    _write_all(path, _meta(23), file_format)
    want = _rows(0, 23)
    if file_format == "npy":
        data = np.load(path, mmap_mode="r")
    else:
        assert path.stat().st_size == want.size  # exactly the rows: what np.memmap(mode="w+") leaves
        data = np.memmap(path, dtype=np.uint8, mode="r", shape=(23, 112, 112))
    assert digest(data) == digest(want)
    side = read_sidecar(path)
    assert side["sha256"] == hashlib.sha256(want.tobytes()).hexdigest()
    assert (side["file_format"], side["header_bytes"]) == (file_format, 128 if file_format == "npy" else 0)
    crc = Path(f"{path}.crc32").read_bytes()
    assert np.frombuffer(crc, "<u4").tolist() == [zlib.crc32(r.tobytes()) for r in want]
    assert side["checksums_sha256"] == hashlib.sha256(crc).hexdigest()
    # nothing of the writing is left beside it
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.npy", "x.npy.crc32", "x.npy.json"]


def test_rows_never_written_are_refused_and_nothing_is_left(tmp_path):
    path = tmp_path / "x.npy"
    with pytest.raises(StorageError, match=r"x\.npy: 3 rows were never written \(first: 6\)"):
        with ItemFileWriter(path, 9, "raw") as writer:
            writer.write(0, _rows(0, 6))
            writer.commit(_meta(9))
    assert list(tmp_path.iterdir()) == []


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
    served = open_export(path, _meta(6))
    assert served.provenance == "external" and served.kind == "raw"
    assert digest(served.items(range(6))) == digest(rows)


def test_a_raw_file_whose_sidecar_says_npy_and_the_reverse_are_refused(tmp_path):
    path = tmp_path / "x.npy"
    _write_all(path, _meta(4), "raw")
    side = read_sidecar(path)
    storage.write_json_atomic(Path(f"{path}.json"), dict(side, file_format="npy"))
    with pytest.raises(StorageError, match="its sidecar says a .npy file, but it has no .npy header"):
        open_export(path, _meta(4))
    _write_all(path, _meta(4), "npy")
    storage.write_json_atomic(Path(f"{path}.json"), dict(read_sidecar(path), file_format="raw"))
    with pytest.raises(StorageError, match="its sidecar says raw rows, but the file starts with a .npy header"):
        open_export(path, _meta(4))


def test_cache_with_other_metadata_is_refused(tmp_path):
    path = tmp_path / "x.npy"
    _write_all(path, _meta(4))
    assert open_export(path, _meta(4)).provenance == "sidecar"
    with pytest.raises(MetadataMismatch, match=r"x\.npy.*seed=0 \(file\) vs seed=3 \(dataset\)"):
        open_export(path, _meta(4, seed=3))
    with pytest.raises(MetadataMismatch, match=r"shape=\[4, 112, 112\] \(file\) vs shape=\[5, 112, 112\]"):
        open_export(path, _meta(5))


def test_served_items_pickle_as_a_few_fields(tmp_path):
    import pickle

    path = tmp_path / "x.npy"
    _write_all(path, _meta(40))
    served = open_export(path, _meta(40))
    assert digest(served.items(range(40))) == digest(_rows(0, 40))  # mapped in this process
    assert len(pickle.dumps(served)) < 1000
    assert digest(pickle.loads(pickle.dumps(served)).items([39])) == digest(_rows(39, 40))


def test_only_dead_exporters_leftovers_are_removed(tmp_path):
    path = tmp_path / "x.npy"
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftovers = {pid: writing_path(path, pid) for pid in (dead.pid, os.getpid())}
    for p in leftovers.values():
        p.write_bytes(b"x")
    other = writing_path(tmp_path / "y.npy", dead.pid)
    other.write_bytes(b"x")
    assert remove_dead_leftovers(path) == [leftovers[dead.pid]]
    assert not leftovers[dead.pid].exists() and leftovers[os.getpid()].exists() and other.exists()


def test_full_disk_at_reservation_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "x.npy"

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space, raising=False)
    with pytest.raises(StorageError, match=r"x\.npy: cannot reserve .* MiB .*no space left on device.*free space"):
        with ItemFileWriter(path, 40, "raw"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_full_disk_while_writing_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "x.npy"
    real_pwrite = os.pwrite
    calls = {"n": 0}

    def fill_up(fd, data, offset):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", fill_up)
    with pytest.raises(StorageError, match=r"no space left on device while writing rows 0-4 of x\.npy"):
        _write_all(path, _meta(12), block=5)
    assert list(tmp_path.iterdir()) == []


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
        with pytest.raises(StorageError, match=r"x\.npy: cannot reserve .*no space left on device"):
            with ItemFileWriter(path, 40, "raw"):  # 40 rows = 490 KiB > 256 KiB
                pass
        assert list(mnt.iterdir()) == []
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
        with ItemFileWriter(path, 4, "raw"):
            pass
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


def test_exports_and_storage_import_no_platform_module():
    """fcntl and msvcrt exist on one platform each; exports need neither (no locks)."""
    files = sorted((REPO / "avmnist_torch" / "storage").glob("*.py")) + [
        REPO / "avmnist_torch" / name for name in ("exported.py", "export.py", "verify.py")]
    found = [f"{path.name}:{line}" for path in files for name, line in _package_imports(path, "avmnist_torch")
             if name in ("fcntl", "msvcrt")]
    assert not found, found
