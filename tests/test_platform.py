"""What holds where fcntl, msvcrt or posix_fallocate is missing: simulated, so Linux CI covers it.

- Windows has no ``fcntl``: the package must import (its one kind of lock is
  ``filelock``'s, which uses ``msvcrt`` there).
- Exports take no locks (two exporters of a file write identical bytes and
  rename atomically), so they work where there is neither ``fcntl`` nor
  ``msvcrt``, and give the same bytes.
- macOS has no ``os.posix_fallocate``: nothing is reserved up front, a full disk
  is an error naming the file while writing, and the files are the same bytes.
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

from avmnist_torch import AVMNISTAudioDataset, export
from avmnist_torch.common import StorageError
from avmnist_torch.files import FileWriter, read_sidecar
from _helpers import REPO

ROW = 112 * 112


@pytest.fixture(scope="module")
def tree(synthetic_tree) -> Path:
    return synthetic_tree(n_train=8, n_test=9, noise_seconds=0.5)


@pytest.fixture(scope="module")
def reference(tree, tmp_path_factory) -> Path:
    """The file exported with everything the platform offers (fcntl, posix_fallocate on Linux)."""
    [path] = export(tree, "test", "burst_noise", out=tmp_path_factory.mktemp("reference"), progress=False)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _same_export(path: Path, reference: Path) -> None:
    assert _sha(path) == _sha(reference)
    ours, theirs = read_sidecar(path), read_sidecar(reference)
    assert ours["sha256"] == theirs["sha256"] and ours["header_bytes"] == theirs["header_bytes"]
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, f"{path.name}.json"])


# ----------------------------------------------------------------------------
# no fcntl (Windows)


_IMPORT_WITHOUT_FCNTL = textwrap.dedent(
    """
    import sys
    sys.modules["fcntl"] = None  # as on Windows: any 'import fcntl' raises ImportError
    import avmnist_torch
    import avmnist_torch.exported, avmnist_torch.cli, avmnist_torch.export, avmnist_torch.files
    import avmnist_torch.inspection, avmnist_torch.storage
    print("imported", avmnist_torch.__version__)
    """
)


@pytest.mark.slow
def test_package_imports_without_fcntl():
    done = subprocess.run([sys.executable, "-c", _IMPORT_WITHOUT_FCNTL], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported")


@pytest.mark.slow
def test_export_without_fcntl_or_msvcrt_gives_the_same_bytes(tree, reference, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.setitem(sys.modules, "msvcrt", None)
    [path] = export(tree, "test", "burst_noise", out=tmp_path, progress=False)
    _same_export(path, reference)
    # and it is served, checked, there too
    ds = AVMNISTAudioDataset(tree, split="test", scheme="burst_noise", from_export=path)
    assert np.array_equal(ds.spectrograms(range(len(ds))), np.fromfile(reference, np.uint8).reshape(-1, 112, 112))


# ----------------------------------------------------------------------------
# no posix_fallocate (macOS)


def test_export_without_posix_fallocate_gives_the_same_bytes(tree, reference, tmp_path, monkeypatch):
    monkeypatch.delattr(os, "posix_fallocate", raising=False)
    [path] = export(tree, "test", "burst_noise", out=tmp_path, progress=False)
    _same_export(path, reference)


def test_full_disk_without_posix_fallocate_is_a_clear_error(tmp_path, monkeypatch):
    """Without a reservation the disk fills while writing: an error naming the file, and nothing left behind."""
    monkeypatch.delattr(os, "posix_fallocate", raising=False)

    def no_space(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", no_space)
    path = tmp_path / "x.npy"
    with pytest.raises(StorageError, match=r"x\.npy: no space left on device while writing"):
        with FileWriter(path, 64 * ROW) as writer:
            writer.append(bytes(64 * ROW))
    assert list(tmp_path.iterdir()) == []


def test_full_disk_with_posix_fallocate_is_refused_before_any_byte(tmp_path, monkeypatch):
    def no_space(fd, offset, size):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space, raising=False)
    with pytest.raises(StorageError, match=r"x\.npy: cannot reserve 0\.8 MiB .*no space left on device.*free space"):
        with FileWriter(tmp_path / "x.npy", 64 * ROW):
            pass
    assert list(tmp_path.iterdir()) == []



# ----------------------------------------------------------------------------
# Windows cannot rename a file another process has open


def _sharing_violation() -> PermissionError:
    err = PermissionError(errno.EACCES, "The process cannot access the file: it is being used by another process")
    err.winerror = 32  # what Windows sets; POSIX never raises this, it renames open files
    return err


def test_a_final_file_held_open_on_windows_is_a_clear_error_and_leaves_no_temporary_file(tree, tmp_path, monkeypatch):
    real_replace = os.replace

    def replace(source, target):
        if str(target).endswith("test_data_augmented_clean.npy"):
            raise _sharing_violation()  # a reader (a dataset serving it) has the old file open
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(StorageError, match=r"test_data_augmented_clean\.npy: .* while renaming the finished file"):
        export(tree, "test", "clean", out=tmp_path, progress=False)
    folder = tmp_path / "avmnist" / "audio"
    assert not [p for p in folder.iterdir() if ".tmp-" in p.name]


