"""export: both layouts and formats, equal to the dataset's items; interruptions, dead workers, caches, verify."""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import select
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
from avmnist_torch.export import export, output_path, stopped_note
from avmnist_torch.common import MetadataMismatch, StorageError
from avmnist_torch.files import read_sidecar, temporary_pid, write_json
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
    data = np.fromfile(path, dtype=np.uint8).reshape(want.shape)
    assert digest(data) == digest(want)
    meta = read_sidecar(path)
    identity = meta["identity"]
    assert (identity["split"], identity["scheme"], identity["seed"], identity["style"]) == ("test", scheme, 0, "3.10")
    assert (meta["file_format"], meta["header_bytes"], meta["size"]) == ("raw", 0, want.size)
    assert meta["sha256"] == hashlib.sha256(want.tobytes()).hexdigest()


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
    assert np.array_equal(np.fromfile(path, dtype=np.uint8).reshape(want.shape), want)


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
        found = [p for p in path.parent.glob(f".{path.name}.tmp-*")] if path.parent.exists() else []
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
    assert temp.exists() and temporary_pid(temp.name) == proc.pid

    # a live exporter's file is left alone; the dead one's is removed
    live = temp.with_name(temp.name.replace(f"-{proc.pid}-", f"-{os.getppid()}-"))
    live.write_bytes(b"")
    [again] = export(root, "train", "clean", out=out, progress=False)
    [whole] = export(root, "train", "clean", out=tmp_path / "whole", workers=2, progress=False)
    assert file_digest(again) == file_digest(whole)
    assert not temp.exists() and live.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, f"{path.name}.json", live.name])


_KILL_A_WORKER = textwrap.dedent(
    """
    import importlib, os, signal, sys, time
    ex = importlib.import_module("avmnist_torch.export")  # the package's 'export' attribute is the function
    pool = importlib.import_module("avmnist_torch.workers")
    real = pool._render_task
    def task(t):
        if t[0] >= 64:  # a later task: the pool is running
            os.kill(os.getpid(), signal.SIGKILL)
        return real(t)
    pool._render_task = task
    start = time.monotonic()
    try:
        ex.export(sys.argv[1], "train", "clean", out=sys.argv[2], workers=2, progress=False)
    except pool.WorkerError as err:
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
    assert not list((out / "avmnist" / "audio").glob(".*.tmp-*"))


def _die(task):
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_dead_worker_fails_verify_within_seconds(tree, tmp_path, monkeypatch):
    [path] = export(tree, "train", "clean", out=tmp_path, progress=False)
    monkeypatch.setattr(importlib.import_module("avmnist_torch.workers"), "_render_task", _die)
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





def _children(pid: int) -> list:
    """The pids of ``pid``'s child processes (Linux: from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _read_until_first_rows(proc: subprocess.Popen, seconds: float = 120) -> bytes:
    """What the export wrote to stderr up to a progress bar showing rows done (``| 256/20000 [``)."""
    deadline, seen = time.monotonic() + seconds, b""
    while not re.search(rb"\| *[1-9][0-9]*/[0-9]+ \[", seen):
        left = deadline - time.monotonic()
        assert left > 0 and select.select([proc.stderr], [], [], left)[0], f"no rows within {seconds} s: {seen!r}"
        chunk = os.read(proc.stderr.fileno(), 65536)
        assert chunk, f"the export ended before it could be stopped: {seen.decode(errors='replace')[-2000:]}"
        seen += chunk
    return seen


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker processes in /proc")
@pytest.mark.parametrize("signum, whole_group, status, said", [
    (signal.SIGINT, True, 130, "interrupted"),  # Ctrl-C at a terminal: the whole process group gets it
    (signal.SIGTERM, False, 143, "terminated (SIGTERM)"),  # a batch scheduler stopping the job
])
def test_a_stopped_export_answers_once_within_seconds_and_leaves_nothing_behind(synthetic_tree, tmp_path, signum,
                                                                                 whole_group, status, said):
    root = synthetic_tree(tmp_path / "big", n_train=20_000, n_test=10, noise_seconds=0.5)
    path = tmp_path / "out" / "train.npy"  # one file: no image half, so no warning among the messages
    command = [sys.executable, "-m", "avmnist_torch.cli", "export", "--root", str(root), "--split", "train",
               "--scheme", "clean", "--workers", "2", "--out", str(path)]  # its progress bar shows the first rows
    # A terminal's job gets SIGINT's default action; a background job of a script ('pytest &')
    # inherits it ignored, and Python then leaves it ignored. Restore the terminal's case.
    proc = subprocess.Popen(command, cwd=REPO, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        seen = _read_until_first_rows(proc)
        workers = _children(proc.pid)
        assert len(workers) == 2 and list(path.parent.glob(f".{path.name}.tmp-*"))
        sent = time.monotonic()
        os.killpg(proc.pid, signum) if whole_group else proc.send_signal(signum)
        seen += proc.communicate(timeout=60)[1]  # to the end: the process has exited
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = seen.decode(errors="replace")
    assert proc.returncode == status, stderr[-2000:]
    # Measured 0.8 to 1.6 s on a busy 2-core machine, most of it the interpreter's own exit; the workers
    # used to finish their task first (seconds), or run on after the exporter ended.
    assert took < 3, f"{took:.1f} s from the signal to the exit"
    assert not [pid for pid in workers if _running(pid)], "a worker process outlived the export"
    assert not path.exists() and not list(path.parent.glob(f".{path.name}.tmp-*"))
    messages = [line for line in re.split(r"[\r\n]", stderr) if line.strip() and not line.startswith(f"{path.name}:")]
    assert messages == [f"avmnist export: {said}: {path} was not written (nothing of it is left); nothing is "
                        "finished: the same command run again starts from the beginning"]


_STOP_WHILE_A_WORKER_SENDS = textwrap.dedent(
    """
    import importlib
    import numpy as np
    ex = importlib.import_module("avmnist_torch.workers")
    class Rows:
        def spectrograms(self, indices):
            return np.zeros((len(indices), 112, 112), np.uint8)  # 25 MB a task: sending it takes a while
    ex._spectrograms = lambda items, indices: items.spectrograms(list(indices))
    tasks = [(start, range(start, start + 2048)) for start in range(0, 8 * 2048, 2048)]
    try:
        for _ in ex.render_rows(Rows(), tasks, 2, "test"):
            raise KeyboardInterrupt  # Ctrl-C as the first rows arrive, while the other worker sends its own
    except KeyboardInterrupt:
        print("stopped", flush=True)
    """
)


def test_a_worker_killed_while_sending_its_rows_does_not_hold_up_the_exit():
    # The pool's manager thread, half-way through reading the killed worker's rows, would wait for the
    # rest for ever, and this process with it at exit (4 runs in 5 before the fix).
    done = subprocess.run([sys.executable, "-c", _STOP_WHILE_A_WORKER_SENDS], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "stopped\n", "")


def test_an_interrupted_export_says_that_finished_files_are_kept_and_skipped(tmp_path):
    done = [tmp_path / "train.npy", tmp_path / "image" / "train_data.npy"]
    assert stopped_note(tmp_path / "test.npy", done) == (
        f"{tmp_path / 'test.npy'} was not written (nothing of it is left); the 2 files finished are kept: the same "
        "command run again checks them, skips them and writes the rest")
    assert stopped_note(None, done[:1]) == (f"{done[0]} is finished and kept: the same command run again checks "
                                            "it, skips it and writes the rest")


# --- partial exports (--limit) and one epoch to a file ---------------------------------------------


def test_limit_writes_a_partial_export_that_nothing_takes_for_a_whole_split(tree, tmp_path, capsys):
    from avmnist_torch.cli import main

    assert main(["export", "--root", str(tree), "--split", "test", "--scheme", "clean", "--limit", "5",
                 "--out", str(tmp_path), "--quiet"]) == 0
    path = tmp_path / "avmnist" / "audio" / "test_data_augmented_clean_first5.npy"
    assert capsys.readouterr().out == f"{path}\n"
    ds = AVMNISTAudioDataset(tree, "test", "clean")
    assert np.array_equal(np.fromfile(path, dtype=np.uint8).reshape(5, 112, 112), ds.spectrograms(range(5)))
    identity = read_sidecar(path)["identity"]
    assert identity["items"] == {"start": 0, "stop": 5, "of": 30} and identity["shape"] == [5, 112, 112]
    # the audio alone: the split's labels and image half would not pair with 5 rows
    assert sorted(p.name for p in (tmp_path / "avmnist").iterdir()) == ["audio"]
    with pytest.raises(MetadataMismatch) as refused:
        AVMNISTAudioDataset(tree, "test", "clean", from_export=path)
    assert str(refused.value) == (
        f"from_export {path} is a partial export (the first 5 of the split's 30 items, made with --limit / limit=): "
        "it cannot serve a whole split; export it without --limit, or pass from_export=None")
    report = verify(path, sample=None, progress=False)
    assert report.ok and report.checked == [0, 1, 2, 3, 4], report.summary()
    # MultiBench's loader reads {dir}/audio/test_data.npy: a partial file never takes that name
    [partial] = export(tree, "test", "clean", out=tmp_path / "mb", layout="multibench", limit=5, progress=False)
    assert partial == tmp_path / "mb" / "audio" / "test_data_first5.npy"
    assert sorted(p.name for p in (tmp_path / "mb").rglob("*.npy")) == ["test_data_first5.npy"]


def test_an_epochs_file_carries_its_epoch(tmp_path):
    assert output_path(tmp_path, "train", "burst_noise", epoch=3) == \
        tmp_path / "avmnist" / "audio" / "train_data_augmented_burst_noise_epoch3.npy"
    assert output_path(tmp_path, "train", "burst_noise", layout="multibench", epoch=3) == \
        tmp_path / "multibench" / "burst_noise_epoch3" / "audio" / "train_data.npy"
    assert output_path(tmp_path, "train", "burst_noise", epoch=3, limit=10).name == \
        "train_data_augmented_burst_noise_epoch3_first10.npy"


# --- notebook-layout files with a .npy header ---------------------------------------------------



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
        [path.name, f"{path.name}.json"])


def test_cache_auto(synthetic_tree, tmp_path):
    root = synthetic_tree(tmp_path / "auto", n_train=10, n_test=9, noise_seconds=0.5)
    assert AVMNISTAudioDataset(root, split="test", scheme="distorted", from_export="auto").export is None
    [path] = export(root, "test", "distorted", progress=False)
    auto = AVMNISTAudioDataset(root, split="test", scheme="distorted", from_export="auto")
    assert auto.export is not None and auto.export.path == str(path)
    with pytest.warns(UserWarning, match=r"is not used: .* seed=0 \(file\) vs seed=5 \(dataset\)"):
        other = AVMNISTAudioDataset(root, split="test", scheme="distorted", seed=5, from_export="auto")
    assert other.export is None


def test_raw_notebook_file_is_served_as_is(tree, tmp_path):
    n = 30
    notebook_rows = np.random.default_rng(7).integers(0, 256, (n, 112, 112), dtype=np.uint8)
    path = tmp_path / "test_data_augmented_burst_noise.npy"
    notebook_rows.tofile(path)  # what the notebook's np.memmap(mode="w+") left: raw rows, no header
    ds = AVMNISTAudioDataset(tree, split="test", scheme="burst_noise", from_export=path)
    assert torch.equal(ds[4][0][0], torch.from_numpy(notebook_rows[4]))
    info = ds.describe(4)["export"]
    assert info["provenance"] == "external" and "not what made them" in info["note"]
    with pytest.raises(StorageError, match="cut short: a raw file of 48 rows"):
        AVMNISTAudioDataset(tree, split="train", scheme="burst_noise", from_export=path)


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
    assert "DAMAGED" in report.summary() and "sha256" in report.summary()
    assert verify(path, sample=5).checked[0] == 0


def test_info_and_verify_flag_a_notebook_file_with_a_header_and_say_how_to_fix_it(tree, tmp_path):
    from avmnist_torch.inspection import format_info, info

    # ours, written as .npy under the notebook's name (--format npy)
    [ours] = export(tree, "test", "clean", out=tmp_path, format="npy", progress=False)
    # someone else's .npy under a notebook name, no sidecar
    foreign = ours.parent / "test_data_augmented_distorted.npy"
    np.save(foreign, _dataset_rows(tree, "test", "distorted"))

    text = format_info(info(tmp_path))
    assert "every item it reads would be shifted by 128 bytes" in text
    assert f"avmnist export --root '{tree}' --split test --scheme clean --seed 0 --out '{tmp_path}'" in text
    report = verify(foreign, root=tree, sample=2)
    [note] = [n for n in report.notes if "shifted" in n]
    command = note.split("convert it to raw rows in place: ")[1]
    assert subprocess.run(["bash", "-c", command], capture_output=True).returncode == 0
    assert np.array_equal(np.fromfile(foreign, np.uint8).reshape(-1, 112, 112),
                          _dataset_rows(tree, "test", "distorted"))

    # the command info gave writes it again as raw rows
    export(tree, "test", "clean", out=tmp_path, progress=False)
    assert ours.stat().st_size == 30 * 112 * 112 and read_sidecar(ours)["file_format"] == "raw"
    assert "shifted" not in format_info(info(tmp_path))

