"""Several processes downloading into one root at once (every DDP rank built with download=True).

One downloader per root at a time: the others wait on the root's lock, then find the verified
result. Temporary extraction trees belong to the process named in them; only those of ended
processes are removed.
"""

from __future__ import annotations

import builtins
import errno
import gzip
import multiprocessing
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from _mnist_fixtures import synthetic_images
from _download_helpers import (  # noqa: F401  (fixtures are used by name)
    ESC50_PATH,
    FSDD_PATH,
    MNIST_IMAGE_PATHS,
    MNIST_PATHS,
    FakeESC50,
    _loopback_only,
    _mnist_gz,
    closed_port,
    start_downloaders,
    esc50,
    fsdd,
    hold_root_lock_in_child,
    idx3_image_bytes,
    image_md5_patches,
    apply_md5_patches,
    mnist,
    server,
)
from avmnist_torch.sources import download as dl
from avmnist_torch.sources import mnist_idx
from avmnist_torch.sources.download import workspace

_TABLES = ("MNIST_LABEL_COUNTS", "MNIST_RAW_MD5", "MNIST_GZ_MD5",
           "MNIST_IMAGE_RAW_MD5", "MNIST_IMAGE_GZ_MD5")


@pytest.mark.slow
def test_four_processes_on_one_root_download_each_file_once(tmp_path, server, fsdd, esc50,
                                                            mnist, monkeypatch):
    raw = {"train": idx3_image_bytes(synthetic_images(600, 1)),
           "test": idx3_image_bytes(synthetic_images(100, 2))}
    apply_md5_patches(image_md5_patches(raw), monkeypatch)
    server.files[FSDD_PATH] = fsdd.archive()
    server.files[ESC50_PATH] = esc50.archive()
    for split in ("train", "test"):
        server.files[MNIST_PATHS[split][0]] = _mnist_gz(mnist[split])
        server.files[MNIST_IMAGE_PATHS[split][0]] = gzip.compress(raw[split], mtime=0)
    # Each answer takes a while, so the four surely overlap: without the lock each would
    # fetch every file (and append to the same .part files).
    server.delay = 0.3
    # The children start from fresh imports: hand them the checksums as patched here
    # (synthetic images; synthetic labels too when the real ones are absent).
    patches = {name: dict(getattr(mnist_idx, name)) for name in _TABLES}
    root = tmp_path / "DATA"

    barrier = multiprocessing.get_context("spawn").Barrier(4)
    procs, queue = start_downloaders(4, barrier, str(root), server.url, fsdd.manifest,
                                     FakeESC50.N, patches, dl.SOURCES)
    try:
        results = [queue.get(timeout=300) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)

    assert results == [str(root.resolve())] * 4, results
    for path in server.files:
        assert len(server.requests(path)) == 1, (path, server.requests(path))
    # The tree is whole and verifies.
    dl.verify_fsdd(root / "recordings", fsdd.manifest)
    dl.verify_esc50(root / "noise_recordings", FakeESC50.N)
    for split in ("train", "test"):
        dl.verify_mnist_labels(root / "avmnist" / f"{split}_labels.npy", split)
        image_file = root / "mnist" / (mnist_idx.MNIST_IMAGE_FILES[split] + ".gz")
        assert gzip.decompress(image_file.read_bytes()) == raw[split]
        dl.verify_mnist_images(image_file, split)
    assert not list(root.glob(".avmnist-tmp-*"))
    # Only markers remain in the bookkeeping folder: no lock file, no .part.
    assert sorted(p.name for p in (root / ".downloads").iterdir()) == \
        ["download.lock", "esc50.verified", "fsdd.verified"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_ended_processes_temp_trees_are_removed(tmp_path, closed_port, fsdd):
    rec = tmp_path / "recordings"
    rec.mkdir()
    for n, b in fsdd.recordings.items():
        (rec / n).write_bytes(b)
    host = workspace.host_name()
    dead = tmp_path / f".avmnist-tmp-{host}-{_dead_pid()}-recordings-abc123"
    live = tmp_path / f".avmnist-tmp-{host}-{os.getpid()}-noise_recordings-def456"
    foreign = tmp_path / ".avmnist-tmp-othernode-1-recordings-ghi789"
    for tree in (dead, live, foreign):
        (tree / "recordings").mkdir(parents=True)
        (tree / "recordings" / "0_alice_0.wav").write_bytes(b"partial")

    dl.download(tmp_path, sources=["fsdd"], mirror=f"http://127.0.0.1:{closed_port}",
                progress=False, fsdd_manifest=fsdd.manifest)

    assert not dead.exists(), "a tree whose process has ended was kept"
    assert live.is_dir(), "a running process's tree was removed"
    assert foreign.is_dir(), "another machine's tree was removed"


def test_temp_tree_names_its_process(tmp_path):
    tree = workspace.temp_tree(tmp_path, "noise_recordings")
    assert tree.parent == tmp_path and tree.is_dir()
    owner = workspace._OWNER.match(tree.name)
    assert owner is not None, tree.name
    assert owner["host"] == workspace.host_name() and int(owner["pid"]) == os.getpid()


@pytest.mark.slow
def test_waiter_blocks_until_the_holder_is_done(tmp_path, fsdd, closed_port):
    """A second downloader waits while the lock is held, then finds the result and returns."""
    downloads = tmp_path / ".downloads"
    downloads.mkdir()
    rec = tmp_path / "recordings"
    rec.mkdir()
    for n, b in fsdd.recordings.items():
        (rec / n).write_bytes(b)
    barrier = multiprocessing.get_context("spawn").Barrier(2)  # this process and the child
    with workspace.root_lock(downloads, lambda msg: None):
        (child,), queue = start_downloaders(1, barrier, str(tmp_path),
                                            f"http://127.0.0.1:{closed_port}", fsdd.manifest,
                                            FakeESC50.N, {}, ["fsdd"])
        try:
            barrier.wait(timeout=120)  # the child calls download() right after this
            # Verifying 60 recordings in place takes milliseconds; the child must still be
            # waiting for the lock after this long.
            child.join(2.0)
            assert child.is_alive() and queue.empty(), \
                "download() ran while another process held the lock"
        except BaseException:
            child.kill()
            raise
    try:
        assert queue.get(timeout=60) == str(tmp_path.resolve())
    finally:
        child.join(timeout=60)
    assert (downloads / "fsdd.verified").is_file()
    assert sorted(p.name for p in downloads.iterdir()) == ["download.lock", "fsdd.verified"]


def _next(queue, child, timeout=120.0) -> str:
    deadline = time.monotonic() + timeout
    while queue.empty():
        assert child.is_alive() or not queue.empty(), f"the child ended (exit code {child.exitcode})"
        assert time.monotonic() < deadline, "the child reported nothing"
        time.sleep(0.02)
    return queue.get()


def _drain(queue) -> list[str]:
    items = []
    while not queue.empty():
        items.append(queue.get())
    return items



def test_read_only_root_with_everything_in_place(tmp_path, closed_port, fsdd, mnist,
                                                 monkeypatch):
    """A container image with the data baked in: nothing can be written, nothing needs to be."""
    (tmp_path / "recordings").mkdir()
    for n, b in fsdd.recordings.items():
        (tmp_path / "recordings" / n).write_bytes(b)
    (tmp_path / "avmnist").mkdir()
    for split in ("train", "test"):
        np.save(tmp_path / "avmnist" / f"{split}_labels.npy", mnist[split].astype(np.int64))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    # The tests run as root, so a chmod would not stop a write: refuse writes under tmp_path
    # the way a read-only file system does.
    real_open, real_mkdir, real_io_open = os.open, os.mkdir, builtins.open

    def inside(path) -> bool:
        return str(os.fspath(path)).startswith(str(tmp_path))

    def ro_open(path, flags, *args, **kw):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kw)

    def ro_mkdir(path, *args, **kw):
        if inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kw)

    def ro_io_open(file, mode="r", *args, **kw):
        if isinstance(file, (str, os.PathLike)) and inside(file) and set(mode) & set("wax+"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
        return real_io_open(file, mode, *args, **kw)

    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "mkdir", ro_mkdir)
    monkeypatch.setattr(builtins, "open", ro_io_open)
    said = []
    monkeypatch.setattr(sys, "stderr", type("W", (), {"write": lambda self, s: said.append(s),
                                                       "flush": lambda self: None})())
    out = dl.download(tmp_path, sources=["fsdd", "mnist"],
                      mirror=f"http://127.0.0.1:{closed_port}", fsdd_manifest=fsdd.manifest)
    monkeypatch.undo()
    assert out == tmp_path.resolve()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert any("not writable" in s for s in said), said
