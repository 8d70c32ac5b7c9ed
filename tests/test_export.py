"""export(): same bytes as the dataset, after kill -9, across shards; MultiBench reads it; caches."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avmnist_torch import AVMNISTAudioDataset
from avmnist_torch.export import export, output_path, parse_shard
from avmnist_torch.sources.synthetic import make_synthetic_tree
from avmnist_torch.storage import MetadataMismatch, StorageError, done_chunks, partial_path, read_sidecar
from avmnist_torch.verify import verify
from conftest import REPO, digest


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    # 1 s noise clips: resampling 5 s clips would dominate these tests' time.
    return make_synthetic_tree(tmp_path_factory.mktemp("export-tree"), n_train=48, n_test=30, noise_seconds=1.0)


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("scheme,workers", [("burst_noise", 2), ("multi_band", 1)])
def test_export_equals_the_dataset(tree, tmp_path, scheme, workers):
    [path] = export(tree, "test", scheme, out=tmp_path, workers=workers, chunk_rows=7, progress=False)
    assert path == tmp_path / "avmnist" / "audio" / f"test_data_augmented_{scheme}.npy"
    data = np.load(path, mmap_mode="r")
    ds = AVMNISTAudioDataset(tree, split="test", scheme=scheme)
    assert data.shape == (len(ds), 112, 112) and data.dtype == np.uint8
    assert digest(data) == digest(np.stack([ds[i][0][0].numpy() for i in range(len(ds))]))
    meta = read_sidecar(path)
    assert (meta["split"], meta["scheme"], meta["seed"], meta["style"]) == ("test", scheme, 0, "3.10")
    assert meta["sha256"] == hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()


_KILLABLE = textwrap.dedent(
    """
    import sys
    from avmnist_torch.export import export
    export(sys.argv[1], "train", "clean", out=sys.argv[2], workers=1, chunk_rows=40, progress=False)
    """
)


def test_kill_9_then_rerun_equals_uninterrupted(tmp_path):
    root = make_synthetic_tree(tmp_path / "big", n_train=1600, n_test=10, noise_seconds=0.5)
    out = tmp_path / "killed"
    path = output_path(out, "train", "clean")
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(root), str(out)], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while len(done_chunks(path)) < 3:
            assert proc.poll() is None, "the export ended before it could be killed"
            assert time.monotonic() < deadline, "no progress recorded within 60 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    done = done_chunks(path)
    assert 3 <= len(done) < 40, "killed too late to test anything"
    assert not path.exists(), "an interrupted export must not leave a file under the final name"
    assert partial_path(path).exists()

    [resumed] = export(root, "train", "clean", out=out, chunk_rows=40, progress=False)
    [whole] = export(root, "train", "clean", out=tmp_path / "whole", workers=2, chunk_rows=40, progress=False)
    assert file_digest(resumed) == file_digest(whole)
    assert not partial_path(resumed).exists() and not Path(f"{resumed}.lock").exists()


def test_three_shards_equal_one(tree, tmp_path, monkeypatch):
    kwargs = dict(chunk_rows=5, progress=False)
    [one] = export(tree, "train", "extreme_noise", out=tmp_path / "one", **kwargs)
    out = tmp_path / "sharded"
    path = output_path(out, "train", "extreme_noise")
    assert export(tree, "train", "extreme_noise", out=out, shard="2/3", **kwargs) == []
    assert not path.exists()
    assert export(tree, "train", "extreme_noise", out=out, shard=(0, 3), workers=2, **kwargs) == []
    assert not path.exists()
    # torchrun's variables pick the shard when none is given
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert export(tree, "train", "extreme_noise", out=out, **kwargs) == [path]
    assert file_digest(path) == file_digest(one)
    assert read_sidecar(path)["sha256"] == read_sidecar(one)["sha256"]


def test_parse_shard():
    assert parse_shard("1/4") == (1, 4) and parse_shard((0, 1)) == (0, 1)
    for bad in ("4/4", "1/0", "a/b", "3"):
        with pytest.raises(ValueError, match="K"):
            parse_shard(bad)


def test_rerun_with_other_options_refuses(tree, tmp_path):
    export(tree, "test", "clean", out=tmp_path, progress=False)
    with pytest.raises(MetadataMismatch, match=r"test_data_augmented_clean\.npy already exists .*seed=0 \(file\) vs seed=1"):
        export(tree, "test", "clean", out=tmp_path, seed=1, progress=False)
    # the same options again: nothing to do, same file
    before = file_digest(output_path(tmp_path, "test", "clean"))
    export(tree, "test", "clean", out=tmp_path, progress=False)
    assert file_digest(output_path(tmp_path, "test", "clean")) == before


def test_all_splits_all_schemes_write_ten_files(tmp_path):
    root = make_synthetic_tree(tmp_path / "tiny", n_train=12, n_test=8, noise_seconds=0.5)
    paths = export(root, "all", "all", workers=2, progress=False)
    names = sorted(p.name for p in paths)
    assert len(names) == 10 and names == sorted(
        f"{sp}_data_augmented_{sc}.npy"
        for sp in ("train", "test")
        for sc in ("extreme_noise", "multi_band", "burst_noise", "aliased", "distorted")
    )
    assert all(p.parent == root / "avmnist" / "audio" for p in paths)
    assert np.load(paths[0]).shape[0] in (8, 12)


# --- MultiBench ------------------------------------------------------------------------------

# datasets/avmnist/get_data.py of pliang279/MultiBench, copied literally except that the split
# sizes (60000, 10000, 55000) are parameters: a literal 60,000-row fixture would take minutes.
def multibench_get_dataloader(data_dir, batch_size=40, num_workers=8, train_shuffle=True, flatten_audio=False,
                              flatten_image=False, unsqueeze_channel=True, generate_sample=False,
                              normalize_image=True, normalize_audio=True, *, N_TRAIN=60000, N_TEST=10000,
                              N_VALID_START=55000):
    trains = [np.load(data_dir+"/image/train_data.npy"), np.load(data_dir +
                                                                 "/audio/train_data.npy"), np.load(data_dir+"/train_labels.npy")]
    tests = [np.load(data_dir+"/image/test_data.npy"), np.load(data_dir +
                                                               "/audio/test_data.npy"), np.load(data_dir+"/test_labels.npy")]
    if flatten_audio:
        trains[1] = trains[1].reshape(N_TRAIN, 112*112)
        tests[1] = tests[1].reshape(N_TEST, 112*112)
    if normalize_image:
        trains[0] /= 255.0
        tests[0] /= 255.0
    if normalize_audio:
        trains[1] = trains[1]/255.0
        tests[1] = tests[1]/255.0
    if not flatten_image:
        trains[0] = trains[0].reshape(N_TRAIN, 28, 28)
        tests[0] = tests[0].reshape(N_TEST, 28, 28)
    if unsqueeze_channel:
        trains[0] = np.expand_dims(trains[0], 1)
        tests[0] = np.expand_dims(tests[0], 1)
        trains[1] = np.expand_dims(trains[1], 1)
        tests[1] = np.expand_dims(tests[1], 1)
    trains[2] = trains[2].astype(int)
    tests[2] = tests[2].astype(int)
    trainlist = [[trains[j][i] for j in range(3)] for i in range(N_TRAIN)]
    testlist = [[tests[j][i] for j in range(3)] for i in range(N_TEST)]
    valids = DataLoader(trainlist[N_VALID_START:N_TRAIN], shuffle=False,
                        num_workers=num_workers, batch_size=batch_size)
    tests = DataLoader(testlist, shuffle=False,
                       num_workers=num_workers, batch_size=batch_size)
    trains = DataLoader(trainlist[0:N_VALID_START], shuffle=train_shuffle,
                        num_workers=num_workers, batch_size=batch_size)
    return trains, valids, tests


def test_multibench_reads_the_multibench_layout(tree, tmp_path):
    out = tmp_path / "mb"
    paths = export(tree, "all", "burst_noise", out=out, layout="multibench", progress=False)
    assert sorted(paths) == sorted([out / "audio" / "train_data.npy", out / "audio" / "test_data.npy"])
    n_train, n_test = 48, 30
    # the image half of AV-MNIST is not ours; MultiBench needs it there (float, it divides in place)
    (out / "image").mkdir()
    np.save(out / "image" / "train_data.npy", np.zeros((n_train, 784), np.float32))
    np.save(out / "image" / "test_data.npy", np.zeros((n_test, 784), np.float32))
    trains, valids, tests = multibench_get_dataloader(str(out), batch_size=8, num_workers=0, train_shuffle=False,
                                                      N_TRAIN=n_train, N_TEST=n_test, N_VALID_START=40)
    ds = {s: AVMNISTAudioDataset(tree, split=s, scheme="burst_noise") for s in ("train", "test")}
    got_test = torch.cat([audio for _, audio, _ in tests])
    want_test = torch.stack([ds["test"][i][0] for i in range(n_test)]).double() / 255.0
    assert got_test.shape == (n_test, 1, 112, 112) and torch.equal(got_test, want_test)
    labels = torch.cat([y for _, _, y in valids])
    assert labels.tolist() == ds["train"].labels[40:].tolist()
    got_valid = torch.cat([audio for _, audio, _ in valids])
    assert torch.equal(got_valid[0, 0], torch.from_numpy(ds["train"].image(40)).double() / 255.0)


# --- caches ----------------------------------------------------------------------------------


def test_cache_changes_speed_not_bytes(tree, tmp_path):
    [path] = export(tree, "test", "aliased", out=tmp_path, progress=False)
    plain = AVMNISTAudioDataset(tree, split="test", scheme="aliased")
    cached = AVMNISTAudioDataset(tree, split="test", scheme="aliased", cache=path)
    assert cached.cache.path == str(path) and cached.cache.provenance == "sidecar"
    want = [digest(plain[i][0]) for i in range(len(plain))]
    assert [digest(cached[i][0]) for i in range(len(cached))] == want
    loader = DataLoader(cached, batch_size=7, num_workers=2)
    assert [digest(x) for xb, _ in loader for x in xb] == want
    assert cached.describe(3)["cache"]["path"] == str(path)

    with pytest.raises(MetadataMismatch, match=r"test_data_augmented_aliased\.npy.*seed=0 \(file\) vs seed=2 \(dataset\)"):
        AVMNISTAudioDataset(tree, split="test", scheme="aliased", seed=2, cache=path)


def test_cache_auto(tmp_path):
    root = make_synthetic_tree(tmp_path / "auto", n_train=10, n_test=9, noise_seconds=0.5)
    assert AVMNISTAudioDataset(root, split="test", scheme="distorted", cache="auto").cache is None
    [path] = export(root, "test", "distorted", progress=False)
    auto = AVMNISTAudioDataset(root, split="test", scheme="distorted", cache="auto")
    assert auto.cache is not None and auto.cache.path == str(path)
    with pytest.warns(UserWarning, match="not used, it was made with other options: seed=0"):
        other = AVMNISTAudioDataset(root, split="test", scheme="distorted", seed=5, cache="auto")
    assert other.cache is None


def test_raw_notebook_file_is_served_as_is(tree, tmp_path):
    n = 30
    notebook_rows = np.random.default_rng(7).integers(0, 256, (n, 112, 112), dtype=np.uint8)
    path = tmp_path / "test_data_augmented_burst_noise.npy"
    mm = np.memmap(path, mode="w+", shape=(n, 112, 112), dtype="uint8")
    mm[:] = notebook_rows
    mm.flush()
    del mm
    ds = AVMNISTAudioDataset(tree, split="test", scheme="burst_noise", cache=path)
    assert torch.equal(ds[4][0][0], torch.from_numpy(notebook_rows[4]))
    info = ds.describe(4)["cache"]
    assert info["provenance"] == "external" and "not what made them" in info["note"]
    with pytest.raises(StorageError, match="raw notebook file of 48 rows"):
        AVMNISTAudioDataset(tree, split="train", scheme="burst_noise", cache=path)


# --- verify ----------------------------------------------------------------------------------


def test_verify_finds_a_changed_row(tree, tmp_path):
    [path] = export(tree, "test", "distorted", out=tmp_path, progress=False)
    assert verify(path, sample=None).ok
    with open(path, "r+b") as f:  # flip one pixel of row 17
        offset = os.path.getsize(path) - (30 - 17) * 112 * 112 + 500
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    report = verify(path, sample=None, workers=2)
    assert report.mismatches == [(17, 1)] and "row 17 (1 px)" in report.summary()
    assert verify(path, sample=5).checked[0] == 0


def test_ctrl_c_through_the_cli_then_rerun_equals_uninterrupted(tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) with 2 workers:
    exit 130, a message saying how to continue, no final file; the same command then completes it."""
    root = make_synthetic_tree(tmp_path / "big", n_train=4000, n_test=10, noise_seconds=0.5)
    out = tmp_path / "interrupted"
    path = output_path(out, "train", "clean")
    command = [sys.executable, "-m", "avmnist_torch.cli", "export", "--root", str(root), "--split", "train",
               "--scheme", "clean", "--workers", "2", "--out", str(out), "--quiet"]
    # A terminal's job gets SIGINT's default action; a background job of a script ('pytest &')
    # inherits it ignored, and Python then leaves it ignored. Restore the terminal's case.
    proc = subprocess.Popen(command, cwd=REPO, start_new_session=True, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while len(done_chunks(path)) < 2:
            assert proc.poll() is None, "the export ended before it could be interrupted"
            assert time.monotonic() < deadline, "no progress recorded within 120 s"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr[-2000:]
    assert "rerun the same command" in stderr
    assert not path.exists() and partial_path(path).exists()
    assert len(done_chunks(path)) < 16, "interrupted too late to test anything"

    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    [whole] = export(root, "train", "clean", out=tmp_path / "whole", workers=2, progress=False)
    assert file_digest(path) == file_digest(whole)
