"""The loopback HTTP server and fake sources the download tests share.

The server serves archives the tests build in the real archives' shapes (GitHub's top folder
names, FSDD's recordings/, ESC-50's audio/ and meta/esc50.csv, MNIST's .gz files) at the real
URLs' paths; the downloader is pointed at it with a mirror. ``_loopback_only`` (autouse where
imported) makes any connection to a non-loopback address fail the test.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import multiprocessing
import struct
import socket
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import soundfile as sf

from avmnist_torch.sources import download as dl
from avmnist_torch.sources.download import http as dl_http
from avmnist_torch.sources.download import workspace
from avmnist_torch.sources import mnist_idx
from avmnist_torch.sources.mnist_idx import (
    MNIST_IMAGE_FILES,
    MNIST_LABEL_FILES,
    idx1_label_bytes,
    labels_md5,
)

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT / ".." / "shared" / "data"

FSDD_PATH = urlsplit(dl.FSDD_URL).path
ESC50_PATH = urlsplit(dl.ESC50_URL).path
MNIST_PATHS = {
    split: [urlsplit(base).path + name + ".gz" for base in dl.MNIST_BASE_URLS]
    for split, name in MNIST_LABEL_FILES.items()
}
MNIST_IMAGE_PATHS = {
    split: [urlsplit(base).path + name + ".gz" for base in dl.MNIST_BASE_URLS]
    for split, name in MNIST_IMAGE_FILES.items()
}
FSDD_ARCHIVE = f"free-spoken-digit-dataset-{dl.FSDD_TAG.lstrip('v')}.tar.gz"
ESC50_ARCHIVE = f"ESC-50-{dl.ESC50_COMMIT}.tar.gz"


# ------------------------------------------------------------------------------------------
# No test may reach past loopback.


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"test tried to connect to {address!r}; only loopback is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    monkeypatch.setattr(dl_http, "_RETRY_BASE_S", 0.0)


# ------------------------------------------------------------------------------------------
# Local HTTP server


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        with srv.lock:
            srv.log.append((self.path, rng))
            data = srv.files.get(self.path)
            drop = srv.drops.get(self.path)
            if drop is not None and drop[1] > 0:
                srv.drops[self.path] = (drop[0], drop[1] - 1)
            else:
                drop = None
            fail = srv.fails.get(self.path)
            if fail is not None and fail[1] > 0:
                srv.fails[self.path] = (fail[0], fail[1] - 1)
            else:
                fail = None
        if srv.delay:
            time.sleep(srv.delay)  # a slow link: concurrent downloaders overlap for certain
        if fail is not None:
            self.send_error(fail[0])
            return
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        if rng and srv.ranges and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if drop is not None:
            # Promise the whole body, send part of it, then cut the connection.
            self.wfile.write(body[: drop[0]])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)
        with srv.lock:
            srv.sent[self.path] = srv.sent.get(self.path, 0) + len(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.drops: dict[str, tuple[int, int]] = {}  # path -> (bytes before the cut, times)
        self.fails: dict[str, tuple[int, int]] = {}  # path -> (HTTP status, times)
        self.ranges = True
        self.delay = 0.0
        self.log: list[tuple[str, str | None]] = []
        self.sent: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def requests(self, path: str) -> list[str | None]:
        return [r for p, r in self.log if p == path]


@pytest.fixture
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    return port


# ------------------------------------------------------------------------------------------
# Archives in the real archives' shapes


def _wav_bytes(n: int, sr: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    x = (rng.standard_normal(n) * 0.1).astype(np.float32)
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


class FakeFSDD:
    """A small FSDD: 2 speakers x 10 digits x 3 takes, packed like GitHub's tag archive."""

    def __init__(self):
        self.recordings = {
            f"{d}_{spk}_{t}.wav": _wav_bytes(400 + 37 * d + t, 8000, hash((d, spk, t)) % 2**32)
            for d in range(10) for spk in ("alice", "bob") for t in range(3)
        }
        self.manifest = {n: hashlib.sha256(b).hexdigest() for n, b in self.recordings.items()}
        self.top = f"free-spoken-digit-dataset-{dl.FSDD_TAG.lstrip('v')}/"

    def members(self, recordings=None) -> dict[str, bytes]:
        recs = self.recordings if recordings is None else recordings
        out = {self.top + "README.md": b"# FSDD\n", self.top + "utils/fsdd.py": b"pass\n"}
        out.update({self.top + "recordings/" + n: b for n, b in recs.items()})
        return out

    def archive(self, recordings=None) -> bytes:
        return _tar_gz(self.members(recordings))


class FakeESC50:
    """A small ESC-50: 4 clips of 5 s at 44.1 kHz, packed like GitHub's commit archive."""

    N = 4

    def __init__(self):
        self.clips = {
            f"{fold}-10{i}-A-{target}.wav": _wav_bytes(dl.ESC50_FRAMES, dl.ESC50_RATE, i)
            for i, (fold, target) in enumerate([(1, 0), (1, 3), (2, 0), (5, 3)])
        }
        self.top = f"ESC-50-{dl.ESC50_COMMIT}/"

    def csv(self, names=None) -> bytes:
        names = list(self.clips) if names is None else names
        lines = ["filename,fold,target,category,esc10,src_file,take"]
        for n in names:
            fold, src, take, target = n[:-4].split("-")
            cat = {"0": "dog", "3": "cow"}[target]
            lines.append(f"{n},{fold},{target},{cat},{target == '0'},{src},{take}")
        return ("\n".join(lines) + "\n").encode()

    def members(self, clips=None, csv=None) -> dict[str, bytes]:
        clips = self.clips if clips is None else clips
        out = {self.top + "README.md": b"# ESC-50\n",
               self.top + "meta/esc50-human.xlsx": b"PK-not-really",
               self.top + "meta/esc50.csv": self.csv() if csv is None else csv}
        out.update({self.top + "audio/" + n: b for n, b in clips.items()})
        return out

    def archive(self, clips=None, csv=None) -> bytes:
        return _tar_gz(self.members(clips, csv))


@pytest.fixture(scope="module")
def fsdd():
    return FakeFSDD()


@pytest.fixture(scope="module")
def esc50():
    return FakeESC50()


@pytest.fixture
def mnist(monkeypatch):
    """Small synthetic MNIST label arrays, with the expected checksums patched to match: the same
    test with or without ../shared/data (the real labels against the published checksums are
    test_download.py's real-data test)."""
    rng = np.random.default_rng(0)
    labels = {"train": rng.integers(0, 10, 600), "test": rng.integers(0, 10, 100)}
    for split, y in labels.items():
        monkeypatch.setitem(dl.MNIST_LABEL_COUNTS, split, y.size)
        monkeypatch.setitem(dl.MNIST_RAW_MD5, split, labels_md5(y))
        monkeypatch.setitem(dl.MNIST_GZ_MD5, split, "0" * 32)
    return labels


def _mnist_gz(labels: np.ndarray) -> bytes:
    # A re-compressed copy: its .gz md5 differs from the published one, its content does not.
    return gzip.compress(idx1_label_bytes(labels), mtime=0)


def _serve_all(server, fsdd, esc50, mnist):
    server.files[FSDD_PATH] = fsdd.archive()
    server.files[ESC50_PATH] = esc50.archive()
    for split, paths in MNIST_PATHS.items():
        server.files[paths[0]] = _mnist_gz(mnist[split])


def _get(root, server, **kw):
    kw.setdefault("mirror", server.url if server is not None else None)
    return dl.download(root, progress=False, fsdd_manifest=kw.pop("manifest", None),
                       esc50_expected=FakeESC50.N, **kw)


def _assert_nothing_half_done(root: Path):
    assert not list(root.glob(".avmnist-tmp-*")), "a temp extraction folder was left behind"


# ------------------------------------------------------------------------------------------
# MNIST image files


def idx3_image_bytes(images: np.ndarray) -> bytes:
    """The bytes of an uncompressed idx3 file (magic 2051, count, rows, cols, then pixels)."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    n, rows, cols = images.shape
    return struct.pack(">IIII", 2051, n, rows, cols) + images.tobytes()


def image_md5_patches(raw: dict[str, bytes]) -> dict[str, dict[str, str]]:
    """The published checksums to patch so that these synthetic image files verify.

    Maps a mnist_idx constant's name to {split: md5}. The ``.gz`` md5 is set to one no file
    has, so only the decompressed check can pass, as for a re-compressed mirror copy.
    """
    return {
        "MNIST_IMAGE_RAW_MD5": {s: hashlib.md5(b).hexdigest() for s, b in raw.items()},
        "MNIST_IMAGE_GZ_MD5": {s: "0" * 32 for s in raw},
    }


def apply_md5_patches(patches: dict[str, dict[str, str]], monkeypatch=None) -> None:
    """Set the published checksums in mnist_idx (through `monkeypatch` when given)."""
    for name, values in patches.items():
        table = getattr(mnist_idx, name)
        for split, value in values.items():
            if monkeypatch is None:
                table[split] = value
            else:
                monkeypatch.setitem(table, split, value)


def download_in_child(results, root, mirror, manifest, esc50_n, patches, barrier, sources):
    """Run download() in a fresh (spawned) process once every party reached `barrier`.

    Puts on the `results` queue what download() returned, or the error's type and message.
    """
    dl_http._RETRY_BASE_S = 0.0
    apply_md5_patches(patches)
    barrier.wait(timeout=120)
    try:
        out = str(dl.download(root, sources=sources, mirror=mirror, progress=False,
                              fsdd_manifest=manifest, esc50_expected=esc50_n))
    except Exception as exc:  # reported to the test, which fails with the message
        out = f"{type(exc).__name__}: {exc}"
    results.put(out)


def start_downloaders(n, barrier, *args):
    """Start `n` spawned processes running `download_in_child(queue, *args)`; return
    (processes, queue)."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=download_in_child, args=(results, *args[:5], barrier, *args[5:]))
             for _ in range(n)]
    for p in procs:
        p.start()
    return procs, results


def hold_root_lock_in_child(downloads, results, hold_s):
    """Take a root's download lock in a spawned process and hold it for `hold_s` seconds.

    Reports "waiting" (when it has to), "got" and "released" on `results`, a SimpleQueue:
    its put() writes before returning, so "released" is readable before the lock is free.
    """
    with workspace.root_lock(Path(downloads), lambda msg: results.put("waiting")):
        results.put("got")
        time.sleep(hold_s)
        results.put("released")
