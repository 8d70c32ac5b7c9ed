"""Download, verification and layout, against a local HTTP server on 127.0.0.1.

The server (tests/_download_helpers.py) serves archives the tests build in the real archives'
shapes at the real URLs' paths, and the downloader is pointed at it with a mirror. A guard makes
any connection to a non-loopback address fail the test.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from _download_helpers import (  # noqa: F401  (fixtures are used by name)
    ESC50_ARCHIVE,
    ESC50_PATH,
    FSDD_ARCHIVE,
    FSDD_PATH,
    MNIST_PATHS,
    PROJECT,
    SHARED,
    FakeESC50,
    _assert_nothing_half_done,
    _get,
    _loopback_only,
    _mnist_gz,
    _serve_all,
    _tar_gz,
    _wav_bytes,
    _zip,
    closed_port,
    esc50,
    fsdd,
    mnist,
    server,
)
from avmnist_torch.sources import download as dl
from avmnist_torch.sources.mnist_idx import idx1_label_bytes


# ------------------------------------------------------------------------------------------
# Tests


def test_apply_mirror():
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz"
    assert dl.apply_mirror(url, None) == url
    assert dl.apply_mirror(url, "http://127.0.0.1:8080") == \
        "http://127.0.0.1:8080/mnist/train-labels-idx1-ubyte.gz"
    assert dl.apply_mirror(url, "https://proxy.example/cache/") == \
        "https://proxy.example/cache/mnist/train-labels-idx1-ubyte.gz"
    with pytest.raises(ValueError, match="scheme://host"):
        dl.apply_mirror(url, "127.0.0.1:8080")


def test_urls_are_the_pinned_sources():
    assert dl.FSDD_URL == ("https://github.com/Jakobovski/free-spoken-digit-dataset/archive/"
                           "refs/tags/v1.0.10.tar.gz")
    assert len(dl.ESC50_COMMIT) == 40 and int(dl.ESC50_COMMIT, 16) >= 0
    assert dl.ESC50_URL.endswith(f"/karolpiczak/ESC-50/archive/{dl.ESC50_COMMIT}.tar.gz")
    assert dl.MNIST_BASE_URLS[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"


def test_full_download_then_rerun_is_free(tmp_path, server, fsdd, esc50, mnist):
    _serve_all(server, fsdd, esc50, mnist)
    root = tmp_path / "DATA"
    assert _get(root, server, manifest=fsdd.manifest) == root.resolve()

    recs = sorted(p.name for p in (root / "recordings").glob("*.wav"))
    assert recs == sorted(fsdd.recordings)
    assert (root / "recordings" / "3_bob_1.wav").read_bytes() == fsdd.recordings["3_bob_1.wav"]
    audio = root / "noise_recordings" / "audio"
    assert sorted(p.name for p in audio.iterdir()) == sorted(esc50.clips)
    assert (root / "noise_recordings" / "meta" / "esc50.csv").read_bytes() == esc50.csv()
    for split in ("train", "test"):
        y = np.load(root / "avmnist" / f"{split}_labels.npy")
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, mnist[split])
    # Only what the notebook's layout has, plus the bookkeeping folder.
    assert sorted(p.name for p in root.iterdir()) == \
        [".downloads", "avmnist", "noise_recordings", "recordings"]
    assert sorted(p.name for p in (root / ".downloads").iterdir()) == \
        ["download.lock", "esc50.verified", "fsdd.verified"]  # archives removed once installed

    n = len(server.log)
    _get(root, server, manifest=fsdd.manifest)
    assert len(server.log) == n, "a rerun over verified data made HTTP requests"
    _assert_nothing_half_done(root)


def test_resume_uses_range(tmp_path, server, fsdd):
    data = fsdd.archive()
    server.files[FSDD_PATH] = data
    root = tmp_path / "DATA"
    cut = len(data) * 2 // 5
    (root / ".downloads").mkdir(parents=True)
    (root / ".downloads" / (FSDD_ARCHIVE + ".part")).write_bytes(data[:cut])

    _get(root, server, sources=["fsdd"], manifest=fsdd.manifest)

    assert server.requests(FSDD_PATH) == [f"bytes={cut}-"]
    assert server.sent[FSDD_PATH] == len(data) - cut
    assert len(list((root / "recordings").glob("*.wav"))) == len(fsdd.recordings)


def test_complete_part_is_finished_by_a_416(tmp_path, server, fsdd):
    # A run killed between the last byte and the rename leaves a whole .part; the server
    # answers the resume with 416 and the file is used as it is.
    data = fsdd.archive()
    server.files[FSDD_PATH] = data
    (tmp_path / ".downloads").mkdir()
    (tmp_path / ".downloads" / (FSDD_ARCHIVE + ".part")).write_bytes(data)
    _get(tmp_path, server, sources=["fsdd"], manifest=fsdd.manifest)
    assert server.requests(FSDD_PATH) == [f"bytes={len(data)}-"]
    assert FSDD_PATH not in server.sent
    assert (tmp_path / "recordings").is_dir()


def test_server_error_is_retried(tmp_path, server, fsdd):
    server.files[FSDD_PATH] = fsdd.archive()
    server.fails[FSDD_PATH] = (503, 2)
    _get(tmp_path, server, sources=["fsdd"], manifest=fsdd.manifest)
    assert len(server.requests(FSDD_PATH)) == 3
    server.fails[FSDD_PATH] = (503, 99)
    with pytest.raises(dl.DownloadError, match=r"HTTP 503.*gave up after 2 attempts"):
        _get(tmp_path / "again", server, sources=["fsdd"], manifest=fsdd.manifest, retries=1)


def test_server_ignoring_range_restarts_cleanly(tmp_path, server, fsdd):
    data = fsdd.archive()
    server.files[FSDD_PATH] = data
    server.ranges = False
    root = tmp_path / "DATA"
    (root / ".downloads").mkdir(parents=True)
    # A stale .part that a 200 answer must overwrite, not be appended to.
    (root / ".downloads" / (FSDD_ARCHIVE + ".part")).write_bytes(b"stale" * 100)
    _get(root, server, sources=["fsdd"], manifest=fsdd.manifest)
    assert server.sent[FSDD_PATH] == len(data)
    assert (root / "recordings").is_dir()


def test_dropped_connection_is_resumed_within_the_run(tmp_path, server, esc50):
    data = esc50.archive()
    server.files[ESC50_PATH] = data
    server.drops[ESC50_PATH] = (len(data) // 3, 2)  # cut twice, then serve
    root = tmp_path / "DATA"
    _get(root, server, sources=["esc50"])
    reqs = server.requests(ESC50_PATH)
    assert reqs[0] is None
    assert reqs[1] == f"bytes={len(data) // 3}-"
    assert reqs[2] == f"bytes={2 * (len(data) // 3)}-"
    assert len(reqs) == 3
    assert len(list((root / "noise_recordings" / "audio").glob("*.wav"))) == FakeESC50.N


def test_connection_that_always_drops_fails_then_resumes_next_run(tmp_path, server, esc50):
    data = esc50.archive()
    server.files[ESC50_PATH] = data
    server.drops[ESC50_PATH] = (1000, 10**9)
    root = tmp_path / "DATA"
    with pytest.raises(dl.DownloadError) as info:
        _get(root, server, sources=["esc50"], retries=2)
    msg = str(info.value)
    assert server.url + ESC50_PATH in msg
    assert "connection closed after" in msg and "gave up after 3 attempts" in msg
    assert str(root.resolve() / ".downloads" / ESC50_ARCHIVE) in msg  # where a manual copy goes
    part = root / ".downloads" / (ESC50_ARCHIVE + ".part")
    assert part.stat().st_size == 3000  # what arrived is kept
    assert not (root / "noise_recordings").exists()

    server.drops.clear()
    _get(root, server, sources=["esc50"])
    assert server.requests(ESC50_PATH)[-1] == "bytes=3000-"
    assert (root / "noise_recordings" / "meta" / "esc50.csv").is_file()


def test_corrupt_recording_is_rejected_and_named(tmp_path, server, fsdd):
    recs = dict(fsdd.recordings)
    recs["7_alice_2.wav"] = recs["7_alice_2.wav"][:-2] + b"\x00\x01"
    server.files[FSDD_PATH] = fsdd.archive(recs)
    root = tmp_path / "DATA"
    with pytest.raises(dl.VerificationError) as info:
        _get(root, server, sources=["fsdd"], manifest=fsdd.manifest)
    assert "7_alice_2.wav" in str(info.value)
    assert "sha256" in str(info.value)
    assert info.value.problems
    assert not (root / "recordings").exists()
    assert (root / ".downloads" / (FSDD_ARCHIVE + ".rejected")).is_file()
    assert not (root / ".downloads" / "fsdd.verified").exists()
    _assert_nothing_half_done(root)

    # The next run downloads afresh and succeeds once the server has the right file.
    server.files[FSDD_PATH] = fsdd.archive()
    _get(root, server, sources=["fsdd"], manifest=fsdd.manifest)
    assert len(list((root / "recordings").glob("*.wav"))) == len(fsdd.recordings)


def test_missing_and_extra_recordings_are_named(tmp_path, server, fsdd):
    recs = dict(fsdd.recordings)
    del recs["0_bob_0.wav"]
    recs["0_carol_0.wav"] = b"RIFF"
    server.files[FSDD_PATH] = fsdd.archive(recs)
    with pytest.raises(dl.VerificationError, match=r"(?s)missing: 0_bob_0\.wav.*not in FSDD.*0_carol_0\.wav"):
        _get(tmp_path, server, sources=["fsdd"], manifest=fsdd.manifest)
    assert not (tmp_path / "recordings").exists()


def test_truncated_archive_installs_nothing(tmp_path, server, fsdd):
    data = fsdd.archive()
    server.files[FSDD_PATH] = data[: len(data) // 2]  # complete per HTTP, broken as an archive
    with pytest.raises(dl.DownloadError, match="unreadable archive") as info:
        _get(tmp_path, server, sources=["fsdd"], manifest=fsdd.manifest)
    assert FSDD_ARCHIVE in str(info.value)
    assert not (tmp_path / "recordings").exists()
    _assert_nothing_half_done(tmp_path)


@pytest.mark.parametrize("pos", [-12, -6])
def test_flipped_byte_in_gzip_is_caught(tmp_path, server, esc50, pos):
    # -12: the end of the deflate stream; -6: gzip's CRC trailer, which only a reader that
    # drains the stream to its end ever checks (ESC-50's clips have no per-file hash).
    data = bytearray(esc50.archive())
    data[pos] ^= 0x55
    server.files[ESC50_PATH] = bytes(data)
    with pytest.raises(dl.DownloadError, match="unreadable archive"):
        _get(tmp_path, server, sources=["esc50"])
    assert not (tmp_path / "noise_recordings").exists()


def test_zip_archive_is_accepted(tmp_path, server, fsdd):
    # GitHub also serves .zip; a manual copy in that form must work the same.
    root = tmp_path / "DATA"
    (root / ".downloads").mkdir(parents=True)
    (root / ".downloads" / FSDD_ARCHIVE.replace(".tar.gz", ".zip")).write_bytes(_zip(fsdd.members()))
    _get(root, server, sources=["fsdd"], manifest=fsdd.manifest)
    assert server.log == []
    assert len(list((root / "recordings").glob("*.wav"))) == len(fsdd.recordings)


@pytest.mark.parametrize("fault", ["short_clip", "wrong_rate", "stereo", "missing", "extra"])
def test_esc50_faults_are_named(tmp_path, server, esc50, fault):
    clips = dict(esc50.clips)
    csv = None
    name = "1-101-A-3.wav"
    if fault == "short_clip":
        clips[name] = _wav_bytes(dl.ESC50_FRAMES - 1, dl.ESC50_RATE, 9)
    elif fault == "wrong_rate":
        clips[name] = _wav_bytes(5 * 22050, 22050, 9)
    elif fault == "stereo":
        buf = io.BytesIO()
        sf.write(buf, np.zeros((dl.ESC50_FRAMES, 2), np.float32), dl.ESC50_RATE, format="WAV")
        clips[name] = buf.getvalue()
    elif fault == "missing":
        del clips[name]
    elif fault == "extra":
        name = "3-999-A-0.wav"
        clips[name] = _wav_bytes(dl.ESC50_FRAMES, dl.ESC50_RATE, 9)
    server.files[ESC50_PATH] = esc50.archive(clips, csv)
    with pytest.raises(dl.VerificationError) as info:
        _get(tmp_path, server, sources=["esc50"])
    assert name in str(info.value)
    assert not (tmp_path / "noise_recordings").exists()
    _assert_nothing_half_done(tmp_path)


def test_esc50_count_defaults_to_the_real_2000(tmp_path, esc50):
    folder = tmp_path / "noise_recordings"
    (folder / "audio").mkdir(parents=True)
    (folder / "meta").mkdir()
    (folder / "meta" / "esc50.csv").write_bytes(esc50.csv())
    for n, b in esc50.clips.items():
        (folder / "audio" / n).write_bytes(b)
    dl.verify_esc50(folder, expected_count=FakeESC50.N)
    with pytest.raises(dl.VerificationError, match="4 rows, expected 2000"):
        dl.verify_esc50(folder)


def test_missing_file_404_names_url_and_manual_path(tmp_path, server):
    with pytest.raises(dl.DownloadError) as info:
        _get(tmp_path, server, sources=["fsdd"])
    msg = str(info.value)
    assert f"{server.url}{FSDD_PATH}: HTTP 404" in msg
    assert dl.FSDD_URL in msg  # the original URL, to fetch by hand
    assert str(tmp_path.resolve() / ".downloads" / FSDD_ARCHIVE) in msg
    assert str(tmp_path.resolve() / "recordings") in msg
    assert not (tmp_path / "recordings").exists()


def test_mnist_falls_back_to_second_mirror(tmp_path, server, mnist):
    for split, paths in MNIST_PATHS.items():
        server.files[paths[1]] = _mnist_gz(mnist[split])  # only on the yann.lecun.com path
    _get(tmp_path, server, sources=["mnist"])
    for split, paths in MNIST_PATHS.items():
        assert server.requests(paths[0]) == [None] and server.requests(paths[1]) == [None]
        np.testing.assert_array_equal(np.load(tmp_path / "avmnist" / f"{split}_labels.npy"),
                                      mnist[split])


def test_mnist_wrong_labels_rejected_and_named(tmp_path, server, mnist):
    bad = mnist["train"].copy()
    bad[5] = (bad[5] + 1) % 10
    server.files[MNIST_PATHS["train"][0]] = _mnist_gz(bad)
    server.files[MNIST_PATHS["test"][0]] = _mnist_gz(mnist["test"])
    with pytest.raises(dl.DownloadError) as info:
        _get(tmp_path, server, sources=["mnist"])
    msg = str(info.value)
    assert "train-labels-idx1-ubyte.gz" in msg and "md5 matches neither" in msg
    assert not (tmp_path / "avmnist" / "train_labels.npy").exists()
    assert (tmp_path / "avmnist" / "test_labels.npy").is_file()  # the good split is kept
    assert (tmp_path / ".downloads" / "train-labels-idx1-ubyte.gz.rejected").is_file()


def test_existing_wrong_labels_are_not_overwritten(tmp_path, server, mnist):
    out = tmp_path / "avmnist"
    out.mkdir()
    np.save(out / "train_labels.npy", np.zeros(mnist["train"].size, np.int64))
    with pytest.raises(dl.VerificationError, match="not MNIST's train labels"):
        _get(tmp_path, server, sources=["mnist"])
    assert not np.load(out / "train_labels.npy").any()


def test_unreachable_host_names_every_url(tmp_path, closed_port):
    mirror = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(dl.DownloadError) as info:
        dl.download(tmp_path, mirror=mirror, progress=False, timeout=5)
    msg = str(info.value)
    urls = [FSDD_PATH, ESC50_PATH] + MNIST_PATHS["train"] + MNIST_PATHS["test"]
    for path in urls:
        assert f"{mirror}{path}: unreachable" in msg, path
    for name in (FSDD_ARCHIVE, ESC50_ARCHIVE, "train-labels-idx1-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        assert str(tmp_path.resolve() / ".downloads" / name) in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == [".downloads"]


def test_mirror_from_environment(tmp_path, server, fsdd, monkeypatch):
    server.files[FSDD_PATH] = fsdd.archive()
    monkeypatch.setenv(dl.MIRROR_ENV, server.url)
    dl.download(tmp_path, sources=["fsdd"], progress=False, fsdd_manifest=fsdd.manifest)
    assert server.requests(FSDD_PATH) == [None]


def test_manual_copies_need_no_network(tmp_path, closed_port, fsdd, esc50, mnist):
    dls = tmp_path / ".downloads"
    dls.mkdir()
    (dls / FSDD_ARCHIVE).write_bytes(fsdd.archive())
    (dls / ESC50_ARCHIVE).write_bytes(esc50.archive())
    (dls / "train-labels-idx1-ubyte.gz").write_bytes(_mnist_gz(mnist["train"]))
    (dls / "t10k-labels-idx1-ubyte").write_bytes(idx1_label_bytes(mnist["test"]))  # decompressed
    dl.download(tmp_path, mirror=f"http://127.0.0.1:{closed_port}", progress=False,
                fsdd_manifest=fsdd.manifest, esc50_expected=FakeESC50.N)
    assert (tmp_path / "recordings" / "0_alice_0.wav").is_file()
    assert (tmp_path / "noise_recordings" / "meta" / "esc50.csv").is_file()
    np.testing.assert_array_equal(np.load(tmp_path / "avmnist" / "test_labels.npy"), mnist["test"])


def test_existing_tree_is_verified_in_place(tmp_path, closed_port, fsdd):
    rec = tmp_path / "recordings"
    rec.mkdir()
    for n, b in fsdd.recordings.items():
        (rec / n).write_bytes(b)
    mirror = f"http://127.0.0.1:{closed_port}"
    dl.download(tmp_path, sources=["fsdd"], mirror=mirror, progress=False,
                fsdd_manifest=fsdd.manifest)
    assert (tmp_path / ".downloads" / "fsdd.verified").is_file()
    # A damaged tree is reported, never replaced or deleted.
    (tmp_path / ".downloads" / "fsdd.verified").unlink()
    (rec / "5_bob_2.wav").write_bytes(b"oops")
    with pytest.raises(dl.VerificationError, match=r"(?s)exists but does not verify.*5_bob_2\.wav"):
        dl.download(tmp_path, sources=["fsdd"], mirror=mirror, progress=False,
                    fsdd_manifest=fsdd.manifest)
    assert (rec / "5_bob_2.wav").read_bytes() == b"oops"


def test_stale_marker_does_not_hide_a_deleted_tree(tmp_path, server, fsdd):
    server.files[FSDD_PATH] = fsdd.archive()
    _get(tmp_path, server, sources=["fsdd"], manifest=fsdd.manifest)
    next(iter((tmp_path / "recordings").glob("*.wav"))).unlink()
    with pytest.raises(dl.VerificationError, match="1 recordings missing"):
        _get(tmp_path, server, sources=["fsdd"], manifest=fsdd.manifest)


def test_unknown_source_and_bad_mirror(tmp_path):
    with pytest.raises(ValueError, match="unknown source"):
        dl.download(tmp_path, sources=["cifar"], progress=False)
    with pytest.raises(ValueError, match="scheme://host"):
        dl.download(tmp_path, mirror="localhost:80", progress=False)


# ------------------------------------------------------------------------------------------
# Real data


def _shared(sub: str) -> Path:
    path = SHARED / sub
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data is absent in a user's clone)")
    return path


@pytest.mark.realdata
def test_shipped_manifest_matches_real_recordings():
    manifest = dl.load_fsdd_manifest()
    assert len(manifest) == dl.FSDD_COUNT
    speakers = {n.split("_")[1] for n in manifest}
    assert len(speakers) == 6
    assert {int(n.split("_")[0]) for n in manifest} == set(range(10))
    dl.verify_fsdd(_shared("fsdd/recordings"))


@pytest.mark.realdata
def test_real_esc50_subset_verifies():
    dl.verify_esc50(_shared("esc50"), expected_count=100)


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    # The console script's entry point (avmnist_torch.cli:main), whether cli is a module or a package.
    cmd = [sys.executable, "-c",
           "import sys; from avmnist_torch.cli import main; sys.exit(main(sys.argv[1:]))", *args]
    env = {k: v for k, v in os.environ.items() if k != dl.MIRROR_ENV}
    env["PYTHONPATH"] = str(PROJECT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=PROJECT)


@pytest.mark.realdata
@pytest.mark.slow
def test_cli_end_to_end_with_real_fsdd_and_mnist(tmp_path, server):
    """The real defaults (shipped manifest, published md5s) through the command line."""
    rec_dir = _shared("fsdd/recordings")
    mnist_dir = _shared("mnist")
    top = f"free-spoken-digit-dataset-{dl.FSDD_TAG.lstrip('v')}/recordings/"
    server.files[FSDD_PATH] = _tar_gz({top + p.name: p.read_bytes()
                                       for p in sorted(rec_dir.glob("*.wav"))})
    for split, paths in MNIST_PATHS.items():
        server.files[paths[0]] = _mnist_gz(np.load(mnist_dir / f"{split}_labels.npy"))
    root = tmp_path / "DATA"
    res = _cli(["download", "--root", str(root), "--mirror", server.url,
                "--only", "fsdd", "--only", "mnist", "--quiet"])
    assert res.returncode == 0, res.stderr
    assert len(list((root / "recordings").glob("*.wav"))) == 3000
    assert np.load(root / "avmnist" / "train_labels.npy").shape == (60_000,)
    assert not (root / "noise_recordings").exists()


def test_cli_failure_exit_code_and_message(tmp_path, closed_port, capsys, monkeypatch):
    # main() in this process (the entry point itself runs in a subprocess in the real-data test above)
    from avmnist_torch.cli import main

    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    assert main(["download", "--root", str(tmp_path), "--mirror", f"http://127.0.0.1:{closed_port}",
                 "--only", "mnist", "--quiet"]) == 1
    assert f"http://127.0.0.1:{closed_port}/mnist/train-labels-idx1-ubyte.gz: unreachable" in capsys.readouterr().err
    assert main(["download", "--root", str(tmp_path), "--mirror", "nohost", "--quiet"]) == 2
    assert "scheme://host" in capsys.readouterr().err


def test_installed_label_files_follow_the_umask(tmp_path, server, mnist):
    """Like every other installed file (mkstemp would have made them readable by their writer only)."""
    for split, paths in MNIST_PATHS.items():
        server.files[paths[0]] = _mnist_gz(mnist[split])
    old = os.umask(0o022)
    try:
        _get(tmp_path, server, sources=["mnist"])
    finally:
        os.umask(old)
    for split in MNIST_PATHS:
        assert (tmp_path / "avmnist" / f"{split}_labels.npy").stat().st_mode & 0o777 == 0o644
