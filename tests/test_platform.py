"""What holds where fcntl, msvcrt or posix_fallocate is missing: simulated, so Linux CI covers it.

- Windows has no ``fcntl``: the package must import, and exports lock through
  ``msvcrt.locking`` (simulated by ``_fake_msvcrt``, which keeps Windows' rules).
- A platform with neither cannot keep exporters apart: export says so before
  creating anything; everything else works.
- macOS has no ``os.posix_fallocate``: space is reserved by writing zeros, and
  the files are the same bytes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import filelock  # noqa: F401  imported before any test hides fcntl, so it keeps its real lock class
import numpy as np
import pytest

import _fake_msvcrt
from avmnist_torch import AVMNISTAudioDataset, export
from avmnist_torch.common import AVMNISTError, LockedError, StorageError, UnsupportedPlatformError
from avmnist_torch.sources.synthetic import make_synthetic_tree
from avmnist_torch.storage import ExportTarget, partial_path, read_sidecar
from conftest import REPO

ROW = 112 * 112


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return make_synthetic_tree(tmp_path_factory.mktemp("platform-tree"), n_train=8, n_test=9, noise_seconds=0.5)


@pytest.fixture(scope="module")
def reference(tree, tmp_path_factory) -> Path:
    """The file exported with everything the platform offers (fcntl, posix_fallocate on Linux)."""
    [path] = export(tree, "test", "burst_noise", out=tmp_path_factory.mktemp("reference"), chunk_rows=2,
                    progress=False)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _same_export(path: Path, reference: Path) -> None:
    assert _sha(path) == _sha(reference)
    ours, theirs = read_sidecar(path), read_sidecar(reference)
    assert ours["sha256"] == theirs["sha256"] and ours["header_bytes"] == theirs["header_bytes"]
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, f"{path.name}.json"])


# ----------------------------------------------------------------------------
# no fcntl (Windows)


_IMPORT_WITHOUT_FCNTL = textwrap.dedent(
    """
    import sys
    sys.modules["fcntl"] = None  # as on Windows: any 'import fcntl' raises ImportError
    import avmnist_torch
    import avmnist_torch.cache, avmnist_torch.cli, avmnist_torch.export, avmnist_torch.filesystem
    import avmnist_torch.inspection, avmnist_torch.storage
    print("imported", avmnist_torch.__version__)
    """
)


def test_package_imports_without_fcntl():
    done = subprocess.run([sys.executable, "-c", _IMPORT_WITHOUT_FCNTL], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported")


def test_export_through_windows_locks_gives_the_same_bytes(tree, reference, tmp_path, monkeypatch):
    _fake_msvcrt.install(monkeypatch)
    [path] = export(tree, "test", "burst_noise", out=tmp_path, chunk_rows=2, progress=False)
    monkeypatch.undo()
    _same_export(path, reference)
    # the Windows route was the one taken: admin byte and chunk ranges locked and unlocked by position
    modes = {mode for _, mode, _, _ in _fake_msvcrt.calls}
    assert modes == {_fake_msvcrt.LK_LOCK, _fake_msvcrt.LK_NBLCK, _fake_msvcrt.LK_UNLCK}
    assert (_fake_msvcrt.LK_NBLCK, 1, 5) in {(m, s, n) for _, m, s, n in _fake_msvcrt.calls}  # 9 rows = 5 chunks


_HOLDER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, "tests")
    from avmnist_torch.storage import ExportTarget
    {install}
    t = ExportTarget({path!r}, {meta!r}, 4)
    t.open()
    t.claim(0, 2)
    print("claimed", flush=True)
    time.sleep(60)
    """
)
# After the imports: the standard library's subprocess takes a present msvcrt for Windows.
_AS_ON_WINDOWS = "import _fake_msvcrt; _fake_msvcrt.install()"


def _meta(rows: int) -> dict:
    return {
        "format": "avmnist-torch export 1", "split": "test", "scheme": "clean", "scheme_steps": "()", "seed": 0,
        "style": "3.10", "renderer": "fast", "sources": "f" * 64, "version": "0.1.0",
        "shape": [rows, 112, 112], "dtype": "uint8",
    }


def test_windows_locks_keep_exporters_apart_without_naming_the_holder(tmp_path, monkeypatch):
    path = tmp_path / "x.npy"
    script = _HOLDER.format(install=_AS_ON_WINDOWS, path=str(path), meta=_meta(16))
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert holder.stdout.readline().strip() == "claimed"
        _fake_msvcrt.install(monkeypatch)
        target = ExportTarget(path, _meta(16), 4)
        assert target.open() == "partial"
        with target:
            # Windows does not say who holds a lock: the message says so, and what to do
            with pytest.raises(LockedError, match=r"rows 4-11 are being written by another exporter "
                                                  r"\(another process\); wait for it"):
                target.claim(1, 3)
            assert target.claim(2, 4) == [2, 3]
    finally:
        holder.kill()
        holder.wait()


# ----------------------------------------------------------------------------
# neither fcntl nor msvcrt


def test_export_without_any_byte_range_lock_says_so_and_creates_nothing(tree, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.setitem(sys.modules, "msvcrt", None)
    out = tmp_path / "out"
    with pytest.raises(UnsupportedPlatformError, match=r"byte-range file locks are not available on .*"
                                                       r"run them on Linux, macOS or Windows") as err:
        export(tree, "test", "clean", out=out, progress=False)
    assert isinstance(err.value, AVMNISTError)
    assert not out.exists()
    # generating items needs no locks: the dataset still works there
    ds = AVMNISTAudioDataset(tree, split="test", scheme="clean")
    assert ds[0][0].shape == (1, 112, 112)


# ----------------------------------------------------------------------------
# no posix_fallocate (macOS)


def test_export_without_posix_fallocate_gives_the_same_bytes(tree, reference, tmp_path, monkeypatch):
    monkeypatch.delattr(os, "posix_fallocate", raising=False)
    [path] = export(tree, "test", "burst_noise", out=tmp_path, chunk_rows=2, progress=False)
    _same_export(path, reference)


def test_without_posix_fallocate_the_space_is_still_reserved_up_front(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "posix_fallocate", raising=False)
    path = tmp_path / "x.npy"
    target = ExportTarget(path, _meta(64), 16)
    with target:
        assert target.open() == "partial"
        st = os.stat(partial_path(path))
        assert st.st_size == 128 + 64 * ROW
        # blocks really allocated (written), not a sparse file that a full disk would fail later
        assert st.st_blocks * 512 >= 64 * ROW


def test_full_disk_without_posix_fallocate_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "posix_fallocate", raising=False)

    def no_space(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", no_space)
    path = tmp_path / "x.npy"
    with pytest.raises(StorageError, match=r"x\.npy: cannot allocate 0\.8 MiB .*no space left on device.*free space"):
        ExportTarget(path, _meta(64)).open()
    assert not path.exists() and not partial_path(path).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.npy.creating")]


# ----------------------------------------------------------------------------
# who holds a lock


def test_holder_pid_is_reported_where_the_os_tells_it(tmp_path):
    pytest.importorskip("fcntl", reason="POSIX byte-range locks")
    from avmnist_torch.filesystem import RangeLocks

    if not RangeLocks(os.open(tmp_path / "probe", os.O_RDWR | os.O_CREAT)).reports_holder:
        pytest.skip(f"{sys.platform}: the OS does not report lock holders")
    path = tmp_path / "x.npy"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER.format(install="", path=str(path), meta=_meta(16))],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert holder.stdout.readline().strip() == "claimed"
        fd = os.open(f"{path}.lock", os.O_RDWR)
        try:
            locks = RangeLocks(fd)
            assert not locks.acquire(2, 1, blocking=False)
            assert locks.holder_pid(2, 1) == holder.pid
            assert locks.holder_pid(100, 5) is None  # nobody holds those bytes
        finally:
            os.close(fd)
    finally:
        holder.kill()
        holder.wait()


# ----------------------------------------------------------------------------
# Windows cannot rename a file another process has open


def _sharing_violation() -> PermissionError:
    err = PermissionError(errno.EACCES, "The process cannot access the file: it is being used by another process")
    err.winerror = 32  # what Windows sets; POSIX never raises this, it renames open files
    return err


def _write_rows(path: Path, rows: int) -> ExportTarget:
    target = ExportTarget(path, _meta(rows), 4)
    target.open()
    for c in target.claim(0, target.n_chunks):
        start, stop = target.chunk_range(c)
        target.write_chunk(c, np.full((stop - start, 112, 112), c, np.uint8))
    return target


def _hold_partial_open(monkeypatch, times: int) -> None:
    real_replace = os.replace
    left = {"n": times}

    def replace(source, target):
        if str(source).endswith(".partial") and left["n"] > 0:
            left["n"] -= 1
            raise _sharing_violation()
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)


def test_finishing_waits_while_another_exporter_closes_the_file(tmp_path, monkeypatch):
    _hold_partial_open(monkeypatch, times=3)
    path = tmp_path / "x.npy"
    with _write_rows(path, 10) as target:
        assert target.finish()
    assert np.load(path)[9, 0, 0] == 2 and not partial_path(path).exists()


def test_finishing_leaves_a_file_still_held_open_to_its_holder_or_a_rerun(tmp_path, monkeypatch):
    _hold_partial_open(monkeypatch, times=10**6)
    path = tmp_path / "x.npy"
    with _write_rows(path, 10) as target:
        assert not target.finish()  # not complete, and not an error: the other exporter finishes it
    assert not path.exists() and partial_path(path).exists()
    monkeypatch.undo()
    again = ExportTarget(path, _meta(10), 4)
    assert again.open() == "partial"
    with again:
        assert again.claim(0, again.n_chunks) == []
        assert again.finish()
    assert np.load(path)[9, 0, 0] == 2


def test_windows_lock_errors_that_are_not_contention_are_raised(tmp_path, monkeypatch):
    from avmnist_torch.filesystem import RangeLocks

    _fake_msvcrt.install(monkeypatch)

    def broken(fd, mode, nbytes):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(_fake_msvcrt, "locking", broken)
    fd = os.open(tmp_path / "x.lock", os.O_RDWR | os.O_CREAT)
    try:
        locks = RangeLocks(fd)
        # not "another process holds it" (which would become a misleading LockedError), nor a wait forever
        with pytest.raises(OSError, match="Invalid argument"):
            locks.acquire(1, 2, blocking=False)
        with pytest.raises(OSError, match="Invalid argument"):
            locks.acquire(0, 1)
    finally:
        os.close(fd)
