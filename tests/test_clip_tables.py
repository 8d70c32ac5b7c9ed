"""Clip tables on real-world disks: full folders, package upgrades, threads, and listing/removing them."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

from avmnist_torch import AVMNISTAudioDataset
from avmnist_torch.sources import clip_tables as clips
from avmnist_torch.sources.clip_tables import ClipBank
from _helpers import REPO, digest, mount_tmpfs_command

SCHEME = "burst_noise"  # reads a recording and a resampled noise: both tables
INDICES = (0, 3, 17, 42, 77, 119)


def _items(root, cache, indices=INDICES):
    ds = AVMNISTAudioDataset(root, split="train", scheme=SCHEME, clip_tables=cache)
    return [digest(ds[i][0].numpy()) for i in indices]


def _clip_warnings(record):
    return [w for w in record if issubclass(w.category, RuntimeWarning) and "clip cache" in str(w.message)]


# ----------------------------------------------------------------------------
# full disks


def test_no_space_at_reservation_gives_one_warning_and_the_same_items(synthetic_root, tmp_path, monkeypatch):
    """ENOSPC from the reservation (as on a full disk or quota) -> memory, one warning, same bytes."""
    roomy = _items(synthetic_root, tmp_path / "roomy")

    def no_space(fd, size):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(clips, "reserve_space", no_space, raising=False)
    full = tmp_path / "full"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert _items(synthetic_root, full) == roomy
    found = _clip_warnings(record)
    assert len(found) == 1, [str(w.message) for w in found]
    message = str(found[0].message)
    assert str(full) in message and "no space left on device" in message
    assert " MB " in message or " kB " in message  # the size needed
    assert "AVMNIST_CACHE" in message and "clip_tables" in message
    # nothing half-made is left behind to be mapped later
    assert not list(full.glob("*.f32")) and not list(full.glob("*.json"))


def test_a_whole_table_is_not_reserved_again_and_a_sparse_one_is(tmp_path, monkeypatch):
    """Reserving runs only where blocks are missing: where posix_fallocate is emulated by writing
    (NFSv3), reserving a table that others are filling could write over their rows."""
    paths = _clip_files(tmp_path)
    bank = _build(paths, tmp_path / "cache")
    table = bank.table_path()
    calls = []
    real_reserve = clips.reserve_space

    def counting(fd, size):
        calls.append(size)
        return real_reserve(fd, size)

    monkeypatch.setattr(clips, "reserve_space", counting)
    _build(paths, tmp_path / "cache")
    assert calls == []

    if getattr(os.stat(table), "st_blocks", None) is None:
        pytest.skip("this platform reports no allocated blocks")
    size = table.stat().st_size
    table.unlink()
    with open(table, "wb") as f:  # full length, no blocks: what ftruncate alone used to leave
        f.truncate(size)
    assert os.stat(table).st_blocks * 512 < size
    _build(paths, tmp_path / "cache")
    assert calls == [size]
    assert os.stat(table).st_blocks * 512 >= size


_WORKER_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys, warnings
    import torch
    from avmnist_torch import AVMNISTAudioDataset

    root, cache = sys.argv[1], sys.argv[2]
    warnings.simplefilter("always")
    ds = AVMNISTAudioDataset(root, split="train", scheme=%(scheme)r, clip_tables=cache)
    loader = torch.utils.data.DataLoader(ds, batch_size=10, num_workers=2)
    digests = []
    for images, _ in loader:
        digests += [hashlib.sha256(image.numpy().tobytes()).hexdigest() for image in images]
    print(json.dumps(digests))
    """
) % {"scheme": SCHEME}


def test_tables_on_a_small_tmpfs_fall_back_to_memory_in_dataloader_workers(synthetic_root, tmp_path):
    """The reported failure: a cache folder on a nearly full tmpfs killed DataLoader workers with SIGBUS."""
    mountpoint = tmp_path / "small-tmpfs"
    mountpoint.mkdir()
    # 256 kB: room for the lock file, not for the synthetic tables (each > 256 kB)
    prefix = mount_tmpfs_command(mountpoint, "256k")
    if prefix is None:
        pytest.skip("cannot mount a private tmpfs here (needs Linux, unshare and root or user namespaces)")
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS="always")
    run = subprocess.run(
        [*prefix, sys.executable, "-c", _WORKER_SCRIPT, str(synthetic_root), str(mountpoint)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stderr[-3000:]}"
    ds = AVMNISTAudioDataset(synthetic_root, split="train", scheme=SCHEME, clip_tables=tmp_path / "roomy")
    assert json.loads(run.stdout) == [digest(ds[i][0].numpy()) for i in range(len(ds))]
    assert run.stderr.count("cannot use the clip cache") == 1, run.stderr[-3000:]
    assert str(mountpoint) in run.stderr and "AVMNIST_CACHE" in run.stderr


# ----------------------------------------------------------------------------
# the key


def _clip_files(tmp_path, folder="clips", n=6):
    paths = []
    (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        p = tmp_path / folder / f"{i}.bin"
        p.write_bytes(bytes([i]) * (10 + i))
        paths.append(str(p))
    return paths


class CountingLoad:
    """``load`` for test banks: a pure function of the file, counting its calls."""

    def __init__(self, delay=0.0):
        self.calls = 0
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, path):
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        data = open(path, "rb").read()
        return np.arange(len(data) * 50, dtype=np.float32) * data[0], 8000


def test_a_new_package_version_gets_a_new_table(tmp_path, monkeypatch):
    paths = _clip_files(tmp_path)
    load = CountingLoad()
    old = ClipBank(paths, load, kind="recordings", keep=400, cache_dir=tmp_path / "cache")
    rows = [old.get(i)[0].copy() for i in range(len(paths))]
    assert load.calls == len(paths)
    again = ClipBank(paths, load, kind="recordings", keep=400, cache_dir=tmp_path / "cache")
    again.get(0)
    assert load.calls == len(paths), "same version: the table's rows are reused"

    monkeypatch.setattr(clips, "__version__", "999.0", raising=False)
    upgraded = ClipBank(paths, load, kind="recordings", keep=400, cache_dir=tmp_path / "cache")
    assert [upgraded.get(i)[0].tobytes() for i in range(len(paths))] == [r.tobytes() for r in rows]
    assert load.calls == 2 * len(paths), "another package version reused the old rows"
    assert len(list((tmp_path / "cache").glob("*.f32"))) == 2


# ----------------------------------------------------------------------------
# threads


@pytest.fixture
def busy_switching():
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    yield
    sys.setswitchinterval(previous)


def _hammer(bank, n_rows, n_threads=12, rounds=40):
    barrier = threading.Barrier(n_threads)
    errors, results = [], {}

    def work(t):
        order = [random.Random(t * 1000 + r).randrange(n_rows) for r in range(rounds)]
        try:
            barrier.wait()
            results[t] = [(i, bank.get(i)[0].tobytes(), bank.get(i)[1]) for i in order]
        except BaseException as err:  # noqa: BLE001 - reported below with the thread
            errors.append((t, repr(err)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors, results


def _check_against_serial(paths, results):
    serial = ClipBank(paths, CountingLoad(), kind="t", keep=300, cache_dir=None)
    expected = {i: (serial.get(i)[0].tobytes(), serial.get(i)[1]) for i in range(len(paths))}
    for got in results.values():
        for i, samples, rate in got:
            assert (samples, rate) == expected[i]


def test_many_threads_open_a_fresh_table_once(tmp_path, busy_switching):
    paths = _clip_files(tmp_path, n=32)
    for trial in range(4):
        cache = tmp_path / f"cache-{trial}"
        # a slow load keeps threads inside the first get() while the table is being opened
        bank = ClipBank(paths, CountingLoad(delay=0.001), kind="t", keep=300, cache_dir=cache)
        errors, results = _hammer(bank, len(paths))
        assert not errors, f"trial {trial}: {errors[:3]}"
        _check_against_serial(paths, results)
        # Every thread used the one table: none saw the bank "opened" before its table existed
        # and fell back to private rows.
        assert len(bank._memory) == 0, f"trial {trial}: {len(bank._memory)} rows kept outside the table"
        assert len(list(cache.glob("*.f32"))) == 1


def test_many_threads_share_the_in_memory_rows(tmp_path, busy_switching):
    """Without a table: a small LRU evicted by one thread while another moves the same row to the end."""
    paths = _clip_files(tmp_path, n=8)
    for trial in range(12):
        bank = ClipBank(paths, CountingLoad(), kind="t", keep=300, cache_dir=None, max_in_memory=3)
        errors, results = _hammer(bank, len(paths), n_threads=8, rounds=1000)
        assert not errors, f"trial {trial}: {errors[:3]}"
        _check_against_serial(paths, results)
        assert len(bank._memory) <= 3


# ----------------------------------------------------------------------------
# listing and removing


def _build(paths, cache, kind="recordings", keep=300):
    bank = ClipBank(paths, CountingLoad(), kind=kind, keep=keep, cache_dir=cache)
    bank.get(0)
    return bank


def test_each_table_has_a_description(tmp_path):
    paths = _clip_files(tmp_path / "tree")
    before = time.time()
    bank = _build(paths, tmp_path / "cache")
    table = bank.table_path()
    description = json.loads(table.with_suffix(".json").read_text())
    assert description["kind"] == "recordings"
    assert description["rows"] == len(paths)
    assert description["sources"] == [str(tmp_path / "tree" / "clips")]
    assert description["package_version"] == clips.__version__
    assert before - 1 <= description["created"] <= time.time() + 1
    # the index, row 0 (300 of its 500 samples) and at most one step of reserved growth
    assert clips.table_bytes(len(paths), 300, [500]) <= table.stat().st_size
    assert table.stat().st_size <= clips.table_bytes(len(paths), 300, [500]) + clips.GROW_BYTES


def test_list_prune_and_clear(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    a = _clip_files(tmp_path / "tree_a")
    b = _clip_files(tmp_path / "tree_b", n=4)
    bank_a = _build(a, cache)
    _build(b, cache)
    _build(b, cache, kind="noise-8000hz", keep=500)

    tables = clips.list_tables(cache)
    assert len(tables) == 3
    by_source = {(t.kind, t.sources[0]): t for t in tables}
    ta = by_source[("recordings", str(tmp_path / "tree_a" / "clips"))]
    assert ta.rows == 6 and ta.sources_present and ta.size_bytes == ta.path.stat().st_size
    assert time.time() - 60 < ta.last_used <= time.time() + 1
    assert all(t.sources_present for t in tables)

    shutil.rmtree(tmp_path / "tree_b")
    gone = [t for t in clips.list_tables(cache) if not t.sources_present]
    assert sorted(t.kind for t in gone) == ["noise-8000hz", "recordings"]
    text = clips.format_tables(clips.list_tables(cache))
    assert "noise-8000hz" in text and "(gone or changed)" in text and "3 tables" in text

    removed = clips.prune_tables(cache)
    assert sorted(t.path for t in removed) == sorted(t.path for t in gone)
    left = clips.list_tables(cache)
    assert [t.path for t in left] == [ta.path]
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == sorted(
        [ta.path.name, ta.path.with_suffix(".json").name]
    )

    # POSIX: a table removed while a bank has it mapped keeps serving that bank
    assert [t.path for t in clips.clear_tables(cache)] == [ta.path]
    assert clips.list_tables(cache) == []
    assert clips.format_tables([]) == "no clip tables"
    if os.name != "nt":
        assert bank_a.get(5)[0].tobytes() == CountingLoad()(a[5])[0][:300].tobytes()


def test_a_touched_tree_leaves_a_table_prune_removes(tmp_path):
    cache = tmp_path / "cache"
    paths = _clip_files(tmp_path / "tree")
    _build(paths, cache)
    stat = os.stat(paths[2])
    os.utime(paths[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _build(paths, cache)  # the touched tree makes a new table; the old one can never be used again
    tables = clips.list_tables(cache)
    assert sorted(t.sources_present for t in tables) == [False, True]
    (stale,) = clips.prune_tables(cache)
    assert not stale.sources_present and [t.sources_present for t in clips.list_tables(cache)] == [True]


def test_a_table_without_description_is_listed_and_pruned(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    legacy = cache / f"recordings-10x20-{'ab' * 12}.f32"
    legacy.write_bytes(bytes(clips.table_bytes(10, 20)))
    (info,) = clips.list_tables(cache)
    assert (info.kind, info.rows, info.sources, info.sources_present) == ("recordings", 10, [], False)
    assert "older version" in clips.format_tables([info])
    assert clips.prune_tables(cache) == [info] and not legacy.exists()


def test_last_use_is_touched_when_a_table_is_opened(tmp_path):
    cache = tmp_path / "cache"
    paths = _clip_files(tmp_path / "tree")
    table = _build(paths, cache).table_path()
    long_ago = time.time() - 30 * 86400
    for p in (table, table.with_suffix(".json")):
        os.utime(p, (long_ago, long_ago))
    (info,) = clips.list_tables(cache)
    assert info.last_used == pytest.approx(long_ago, abs=2)
    _build(paths, cache)
    (info,) = clips.list_tables(cache)
    assert info.last_used > time.time() - 60


def test_a_table_that_cannot_be_removed_is_reported(tmp_path, monkeypatch):
    """Windows refuses to remove a mapped file: clear reports it and removes the others."""
    cache = tmp_path / "cache"
    _build(_clip_files(tmp_path / "tree_a"), cache)
    _build(_clip_files(tmp_path / "tree_b"), cache)
    (busy, free) = clips.list_tables(cache)
    real_remove = clips._remove_file

    def refuse(path):
        if path == busy.path:
            raise PermissionError(errno.EACCES, "The process cannot access the file because it is being used")
        real_remove(path)

    monkeypatch.setattr(clips, "_remove_file", refuse)
    with pytest.warns(clips.ClipCacheWarning, match="not removed") as record:
        removed = clips.clear_tables(cache)
    assert str(busy.path) in str(record[0].message)
    assert [t.path for t in removed] == [free.path]
    assert [t.path for t in clips.list_tables(cache)] == [busy.path]


def test_listing_a_missing_folder_is_empty(tmp_path):
    assert clips.list_tables(tmp_path / "nowhere") == []
    assert clips.clear_tables(tmp_path / "nowhere") == []


# ----------------------------------------------------------------------------
# what a row's check covers, what a table's key covers, what a table costs


class RatePerRow(CountingLoad):
    """Rows whose sample rates differ (8001, 8002, ...), so each rate is found in the file by its bytes."""

    def __call__(self, path):
        samples, _ = super().__call__(path)
        return samples, 8001 + int(os.path.basename(path).split(".")[0])


def test_a_flipped_bit_in_a_rows_sample_rate_is_caught_by_the_row_check(tmp_path):
    """The rate is part of the row: one flipped bit there must cost a recomputation, not wrong items."""
    paths = _clip_files(tmp_path / "tree")
    cache = tmp_path / "cache"
    bank = ClipBank(paths, RatePerRow(), kind="recordings", keep=300, cache_dir=cache)
    expected = [(bank.get(i)[0].tobytes(), bank.get(i)[1]) for i in range(len(paths))]
    table = bank.table_path()
    raw = bytearray(table.read_bytes())
    stored = (8001 + 3).to_bytes(4, "little")
    assert raw.count(stored) == 1, "row 3's rate is stored once, as a little-endian uint32"
    raw[raw.index(stored)] ^= 0x01  # 8004 -> 8005
    table.write_bytes(bytes(raw))
    load = RatePerRow()
    fresh = ClipBank(paths, load, kind="recordings", keep=300, cache_dir=cache)
    assert [(fresh.get(i)[0].tobytes(), fresh.get(i)[1]) for i in range(len(paths))] == expected
    assert load.calls == 1, "only the damaged row is recomputed"


def test_a_recording_edited_in_place_with_size_and_mtime_kept_gets_a_new_table(synthetic_root, tmp_path):
    """-6 dB on a recording after its table was made, size unchanged, modification time set back
    (as ``cp -p`` or ``touch -d`` leave it): a bank opened afterwards serves the edited samples."""
    import soundfile as sf

    from avmnist_torch.sources.audio import load_wav

    paths = sorted(str(p) for p in (synthetic_root / "recordings").glob("*.wav"))[:4]
    cache = tmp_path / "cache"
    before = ClipBank(paths, load_wav, kind="recordings", keep=50000, cache_dir=cache)
    original = [before.get(i)[0].copy() for i in range(len(paths))]
    target = paths[2]
    st = os.stat(target)
    info = sf.info(target)
    data, rate = sf.read(target, dtype="int16")
    sf.write(target, (data // 2).astype(np.int16), rate, subtype=info.subtype, format=info.format)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    after_st = os.stat(target)
    assert (after_st.st_size, after_st.st_mtime_ns, after_st.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)

    edited = load_wav(target)[0]
    assert not np.array_equal(edited, original[2])
    # another process opens the table: each computes the key from its own look at the sources
    script = textwrap.dedent(
        """
        import sys
        from avmnist_torch.sources.audio import load_wav
        from avmnist_torch.sources.clip_tables import ClipBank
        bank = ClipBank(sys.argv[2:], load_wav, kind="recordings", keep=50000, cache_dir=sys.argv[1])
        sys.stdout.write(bank.get(2)[0].tobytes().hex())
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-c", script, str(cache), *paths], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert bytes.fromhex(run.stdout) == edited.tobytes()
    after = ClipBank(paths, load_wav, kind="recordings", keep=50000, cache_dir=cache)
    assert after.get(2)[0].tobytes() == edited.tobytes()
    assert after.get(1)[0].tobytes() == original[1].tobytes()
    # the old table's sources changed: prune sees it
    assert sorted(t.sources_present for t in clips.list_tables(cache)) == [False, True]


def test_one_long_clip_does_not_make_every_row_as_long(tmp_path):
    """A 60 s clip among 2 s ones: the table costs what its clips cost, not rows x the longest."""
    n, short, long = 40, 16000, 480000
    paths = _clip_files(tmp_path / "tree", n=n)

    def load(path):
        i = int(os.path.basename(path).split(".")[0])
        length = long if i == 7 else short
        return (np.sin(np.arange(length, dtype=np.float32) * (i + 1) / 100)).astype(np.float32), 8000

    cache = tmp_path / "cache"
    bank = ClipBank(paths, load, kind="recordings", keep=long, cache_dir=cache)
    rows = [bank.get(i)[0].tobytes() for i in range(n)]
    assert rows == [load(p)[0].tobytes() for p in paths]
    clips_bytes = 4 * ((n - 1) * short + long)
    size = bank.table_path().stat().st_size
    assert size <= clips.table_bytes(n, long, [long] + [short] * (n - 1)) + clips.GROW_BYTES + clips_bytes // 8
    assert size < 2 * clips_bytes, f"{size:,} bytes for {clips_bytes:,} bytes of clips (rows x longest: {n * long * 4:,})"
    reader = ClipBank(paths, load, kind="recordings", keep=long, cache_dir=cache)
    assert [reader.get(i)[0].tobytes() for i in range(n)] == rows
