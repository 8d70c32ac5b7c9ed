"""export: both layouts and formats, equal to the dataset's items; interruptions, dead workers, caches, verify."""

from __future__ import annotations

import hashlib
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avmnist_torch import AVMNISTAudioDataset, WorkerError
from avmnist_torch.export import export, output_path
from avmnist_torch.storage import MetadataMismatch, StorageError, parse_writing_path, read_sidecar, writing_path
from avmnist_torch.verify import verify
from _helpers import REPO, digest


@pytest.fixture(scope="module")
def tree(synthetic_tree) -> Path:
    # 1 s noise clips: resampling 5 s clips would dominate these tests' time.
    return synthetic_tree(n_train=48, n_test=30, noise_seconds=1.0)


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _dataset_rows(root: Path, split: str, scheme: str) -> np.ndarray:
    ds = AVMNISTAudioDataset(root, split=split, scheme=scheme)
    return np.stack([ds[i][0][0].numpy() for i in range(len(ds))])


@pytest.mark.parametrize("scheme,workers", [("burst_noise", 2), ("multi_band", 1)])
def test_notebook_layout_is_raw_rows_equal_to_the_dataset(tree, tmp_path, scheme, workers):
    [path] = export(tree, "test", scheme, out=tmp_path, workers=workers, progress=False)
    assert path == tmp_path / "avmnist" / "audio" / f"test_data_augmented_{scheme}.npy"
    want = _dataset_rows(tree, "test", scheme)
    # exactly as the notebook wrote it: N * 12,544 bytes, no header
    assert path.stat().st_size == want.size and not path.read_bytes().startswith(b"\x93NUMPY")
    data = np.memmap(path, dtype=np.uint8, mode="r", shape=want.shape)
    assert digest(data) == digest(want)
    meta = read_sidecar(path)
    assert (meta["split"], meta["scheme"], meta["seed"], meta["style"]) == ("test", scheme, 0, "3.10")
    assert (meta["file_format"], meta["header_bytes"]) == ("raw", 0)
    assert meta["sha256"] == hashlib.sha256(want.tobytes()).hexdigest()
    crcs = np.fromfile(f"{path}.crc32", dtype="<u4")
    assert crcs.tolist() == [__import__("zlib").crc32(row.tobytes()) for row in want]


def test_format_npy_and_the_multibench_layout_are_real_npy_files(tree, tmp_path):
    [path] = export(tree, "test", "distorted", out=tmp_path / "nb", format="npy", progress=False)
    want = _dataset_rows(tree, "test", "distorted")
    assert np.array_equal(np.load(path), want) and read_sidecar(path)["file_format"] == "npy"
    [mb, *_] = export(tree, "test", "distorted", out=tmp_path / "mb", layout="multibench", progress=False)
    assert np.array_equal(np.load(mb), want) and read_sidecar(mb)["header_bytes"] == 128
    with pytest.raises(ValueError, match="multibench layout is always a .npy file"):
        export(tree, "test", "distorted", out=tmp_path / "mb2", layout="multibench", format="raw", progress=False)
    # asking for the other format rewrites the same items in it
    [again] = export(tree, "test", "distorted", out=tmp_path / "nb", progress=False)
    assert again == path and path.stat().st_size == want.size
    assert np.array_equal(np.memmap(path, dtype=np.uint8, mode="r", shape=want.shape), want)


_KILLABLE = textwrap.dedent(
    """
    import sys
    from avmnist_torch.export import export
    export(sys.argv[1], "train", "clean", out=sys.argv[2], workers=1, progress=False)
    """
)


def _wait_for_writing(path: Path, proc: subprocess.Popen, seconds: float = 120) -> Path:
    deadline = time.monotonic() + seconds
    while True:
        found = [p for p in path.parent.glob(f".{path.name}.writing-*")] if path.parent.exists() else []
        if found:
            return found[0]
        assert proc.poll() is None, "the export ended before it could be interrupted"
        assert time.monotonic() < deadline, f"no file being written within {seconds} s"
        time.sleep(0.01)


@pytest.mark.slow  # a fresh process, killed, then a rerun
def test_kill_9_leaves_no_final_file_and_the_rerun_removes_the_leftover(synthetic_tree, tmp_path):
    root = synthetic_tree(tmp_path / "big", n_train=1600, n_test=10, noise_seconds=0.5)
    out = tmp_path / "killed"
    path = output_path(out, "train", "clean")
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(root), str(out)], cwd=REPO)
    try:
        temp = _wait_for_writing(path, proc)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not path.exists(), "an interrupted export must not leave a file under the final name"
    assert temp.exists() and parse_writing_path(temp)[2] == proc.pid

    # a live exporter's file is left alone; the dead one's is removed
    live = writing_path(path, os.getppid())
    live.write_bytes(b"")
    [again] = export(root, "train", "clean", out=out, progress=False)
    [whole] = export(root, "train", "clean", out=tmp_path / "whole", workers=2, progress=False)
    assert file_digest(again) == file_digest(whole)
    assert not temp.exists() and live.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, f"{path.name}.json", f"{path.name}.crc32", live.name])


_KILL_A_WORKER = textwrap.dedent(
    """
    import importlib, os, signal, sys, time
    ex = importlib.import_module("avmnist_torch.export")  # the package's 'export' attribute is the function
    real = ex._render_task
    def task(t):
        if t[0] >= 64:  # a later task: the pool is running
            os.kill(os.getpid(), signal.SIGKILL)
        return real(t)
    ex._render_task = task
    start = time.monotonic()
    try:
        ex.export(sys.argv[1], "train", "clean", out=sys.argv[2], workers=2, progress=False)
    except ex.WorkerError as err:
        print("WorkerError", round(time.monotonic() - start, 1), err)
    """
)


@pytest.mark.slow  # a worker pool whose worker dies
def test_a_dead_worker_fails_the_export_within_seconds(synthetic_tree, tmp_path):
    root = synthetic_tree(tmp_path / "t", n_train=600, n_test=10, noise_seconds=0.5)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", _KILL_A_WORKER, str(root), str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("WorkerError"), done.stdout + done.stderr[-2000:]
    assert "a worker process died" in done.stdout and "run it again" in done.stdout
    assert not output_path(out, "train", "clean").exists()
    assert not list((out / "avmnist" / "audio").glob(".*writing*"))


def _die(task):
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_dead_worker_fails_verify_within_seconds(tree, tmp_path, monkeypatch):
    [path] = export(tree, "train", "clean", out=tmp_path, progress=False)
    monkeypatch.setattr(importlib.import_module("avmnist_torch.export"), "_render_task", _die)
    start = time.monotonic()
    with pytest.raises(WorkerError, match=r"verify of .*train_data_augmented_clean\.npy: a worker process died"):
        verify(path, sample=None, workers=2)
    assert time.monotonic() - start < 30


def test_rerun_with_other_options_refuses(tree, tmp_path):
    export(tree, "test", "clean", out=tmp_path, progress=False)
    with pytest.raises(MetadataMismatch, match=r"test_data_augmented_clean\.npy already exists .*seed=0 \(file\) vs seed=1"):
        export(tree, "test", "clean", out=tmp_path, seed=1, progress=False)
    # the same options again: nothing to do, same file
    before = file_digest(output_path(tmp_path, "test", "clean"))
    export(tree, "test", "clean", out=tmp_path, progress=False)
    assert file_digest(output_path(tmp_path, "test", "clean")) == before


@pytest.mark.slow  # ten files, every scheme, with a worker pool
def test_all_splits_all_schemes_write_ten_files(synthetic_tree, tmp_path):
    root = synthetic_tree(tmp_path / "tiny", n_train=12, n_test=8, noise_seconds=0.5)
    paths = export(root, "all", "all", workers=2, progress=False)
    names = sorted(p.name for p in paths)
    assert len(names) == 10 and names == sorted(
        f"{sp}_data_augmented_{sc}.npy"
        for sp in ("train", "test")
        for sc in ("extreme_noise", "multi_band", "burst_noise", "aliased", "distorted")
    )
    assert all(p.parent == root / "avmnist" / "audio" for p in paths)
    assert paths[0].stat().st_size in (8 * 112 * 112, 12 * 112 * 112)


# --- caches ----------------------------------------------------------------------------------


def test_cache_changes_speed_not_bytes(tree, tmp_path):
    [path] = export(tree, "test", "aliased", out=tmp_path, progress=False)
    plain = AVMNISTAudioDataset(tree, split="test", scheme="aliased")
    cached = AVMNISTAudioDataset(tree, split="test", scheme="aliased", from_export=path)
    assert cached.export.path == str(path) and cached.export.provenance == "sidecar"
    want = [digest(plain[i][0]) for i in range(len(plain))]
    assert [digest(cached[i][0]) for i in range(len(cached))] == want
    loader = DataLoader(cached, batch_size=7, num_workers=2)
    assert [digest(x) for xb, _ in loader for x in xb] == want
    assert cached.describe(3)["export"]["path"] == str(path)

    with pytest.raises(MetadataMismatch, match=r"test_data_augmented_aliased\.npy.*seed=0 \(file\) vs seed=2 \(dataset\)"):
        AVMNISTAudioDataset(tree, split="test", scheme="aliased", seed=2, from_export=path)


def test_cache_auto(synthetic_tree, tmp_path):
    root = synthetic_tree(tmp_path / "auto", n_train=10, n_test=9, noise_seconds=0.5)
    assert AVMNISTAudioDataset(root, split="test", scheme="distorted", from_export="auto").export is None
    [path] = export(root, "test", "distorted", progress=False)
    auto = AVMNISTAudioDataset(root, split="test", scheme="distorted", from_export="auto")
    assert auto.export is not None and auto.export.path == str(path)
    with pytest.warns(UserWarning, match="not used, it was made with other options: seed=0"):
        other = AVMNISTAudioDataset(root, split="test", scheme="distorted", seed=5, from_export="auto")
    assert other.export is None


def test_raw_notebook_file_is_served_as_is(tree, tmp_path):
    n = 30
    notebook_rows = np.random.default_rng(7).integers(0, 256, (n, 112, 112), dtype=np.uint8)
    path = tmp_path / "test_data_augmented_burst_noise.npy"
    mm = np.memmap(path, mode="w+", shape=(n, 112, 112), dtype="uint8")
    mm[:] = notebook_rows
    mm.flush()
    del mm
    ds = AVMNISTAudioDataset(tree, split="test", scheme="burst_noise", from_export=path)
    assert torch.equal(ds[4][0][0], torch.from_numpy(notebook_rows[4]))
    info = ds.describe(4)["export"]
    assert info["provenance"] == "external" and "not what made them" in info["note"]
    with pytest.raises(StorageError, match="raw notebook file of 48 rows"):
        AVMNISTAudioDataset(tree, split="train", scheme="burst_noise", from_export=path)


# --- verify ----------------------------------------------------------------------------------


def test_verify_finds_a_changed_row(tree, tmp_path):
    [path] = export(tree, "test", "distorted", out=tmp_path, progress=False)
    assert verify(path, sample=None).ok
    with open(path, "r+b") as f:  # flip one pixel of row 17
        offset = 17 * 112 * 112 + 500
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    report = verify(path, sample=None, workers=2)
    assert report.mismatches == [(17, 1)] and "row 17 (1 px)" in report.summary()
    assert report.damaged_rows == [17] and "1 rows differ from their recorded CRC-32: 17" in report.summary()
    assert verify(path, sample=5).checked[0] == 0


@pytest.mark.slow
def test_ctrl_c_through_the_cli_then_rerun_equals_uninterrupted(synthetic_tree, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) with 2 workers:
    exit 130, a message saying how to continue, no file left (final or temporary); the same command then writes it."""
    root = synthetic_tree(tmp_path / "big", n_train=4000, n_test=10, noise_seconds=0.5)
    out = tmp_path / "interrupted"
    path = output_path(out, "train", "clean")
    command = [sys.executable, "-m", "avmnist_torch.cli", "export", "--root", str(root), "--split", "train",
               "--scheme", "clean", "--workers", "2", "--out", str(out), "--quiet"]
    # A terminal's job gets SIGINT's default action; a background job of a script ('pytest &')
    # inherits it ignored, and Python then leaves it ignored. Restore the terminal's case.
    proc = subprocess.Popen(command, cwd=REPO, start_new_session=True, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        temp = _wait_for_writing(path, proc)
        time.sleep(0.5)
        assert proc.poll() is None, "the export ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr[-2000:]
    assert "rerun the same command" in stderr
    assert not path.exists() and not temp.exists()

    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    [whole] = export(root, "train", "clean", out=tmp_path / "whole", workers=2, progress=False)
    assert file_digest(path) == file_digest(whole)


# --- notebook-layout files with a .npy header ---------------------------------------------------


def test_info_and_verify_flag_a_notebook_file_with_a_header_and_say_how_to_fix_it(tree, tmp_path):
    from avmnist_torch.inspection import format_info, info
    from avmnist_torch.storage import write_json_atomic

    want = _dataset_rows(tree, "test", "clean")
    folder = tmp_path / "avmnist" / "audio"
    folder.mkdir(parents=True)
    # as an older version wrote it: a .npy file under the notebook's name, sidecar format 1
    old = folder / "test_data_augmented_clean.npy"
    np.save(old, want)
    meta = dict(AVMNISTAudioDataset(tree, split="test", scheme="clean").metadata(), format="avmnist-torch export 1",
                sha256=hashlib.sha256(want.tobytes()).hexdigest(), header_bytes=128, made_from={"root": str(tree)})
    write_json_atomic(Path(f"{old}.json"), meta)
    # someone else's .npy under a notebook name, no sidecar
    foreign = folder / "test_data_augmented_distorted.npy"
    np.save(foreign, _dataset_rows(tree, "test", "distorted"))

    text = format_info(info(tmp_path))
    assert "every item it reads would be shifted by 128 bytes" in text
    assert f"avmnist export --root '{tree}' --split test --scheme clean --seed 0 --out '{tmp_path}'" in text
    assert "written by an older version (no row checksums): not served by from_export=" in text
    report = verify(foreign, root=tree, sample=2)
    [note] = [n for n in report.notes if "shifted" in n]
    command = note.split("convert it to raw rows in place: ")[1]
    assert subprocess.run(["bash", "-c", command], capture_output=True).returncode == 0
    assert np.array_equal(np.memmap(foreign, dtype=np.uint8, mode="r", shape=want.shape),
                          _dataset_rows(tree, "test", "distorted"))

    # the older version's file is served by nobody, and the export command info gave replaces it
    with pytest.warns(UserWarning, match="written by an older version"):
        assert AVMNISTAudioDataset(tmp_path, split="test", scheme="clean", from_export="auto",
                                   recordings=tree / "recordings", labels=tree).export is None
    export(tree, "test", "clean", out=tmp_path, progress=False)
    assert old.stat().st_size == want.size and read_sidecar(old)["format"] == "avmnist-torch export 2"
    assert "shifted" not in format_info(info(tmp_path))


_EXPORT_ONCE = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("ignore")
    from avmnist_torch.export import export
    export(sys.argv[1], "train", "clean", out=sys.argv[2], workers=1, progress=False)
    """
)


@pytest.mark.slow  # two exporting processes at once
def test_two_exporters_of_one_file_at_once_need_no_locks(synthetic_tree, tmp_path):
    root = synthetic_tree(tmp_path / "t", n_train=400, n_test=4, noise_seconds=0.5)
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, "-c", _EXPORT_ONCE, str(root), str(out)], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    path = output_path(out, "train", "clean")
    assert verify(path, sample=3).ok
    assert np.array_equal(np.fromfile(path, np.uint8).reshape(-1, 112, 112), _dataset_rows(root, "train", "clean"))
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, f"{path.name}.json", f"{path.name}.crc32"])
