"""``avmnist cache``: list the clip tables, clear them, prune those whose sources are gone.

Needs the clip-table API of ``avmnist_torch.sources.clip_tables`` (``list_tables``,
``clear_tables``, ``prune_tables``, ``format_tables``) and the ``cache``
command registered in ``avmnist_torch.cli``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from avmnist_torch import AVMNISTAudioDataset
from avmnist_torch.cli import main
from avmnist_torch.sources.clip_tables import format_tables, list_tables


def fill_tables(root: Path, cache: Path) -> None:
    """One item of a noise scheme: a table of decoded recordings and one of resampled noises."""
    AVMNISTAudioDataset(root, split="test", scheme="burst_noise", clip_tables=cache).spectrogram(0)


@pytest.fixture
def tree(synthetic_tree, tmp_path) -> Path:
    return synthetic_tree(tmp_path / "data", n_train=4, n_test=6, noise_seconds=0.5)


def run(capsys, *argv: str):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_list_shows_every_table(capsys, tree, tmp_path):
    cache = tmp_path / "cache"
    fill_tables(tree, cache)
    tables = list_tables(cache)
    assert len(tables) == 2 and all(t.sources_present for t in tables)  # recordings and noises
    for argv in (["cache", "--dir", str(cache)], ["cache", "list", "--dir", str(cache)],
                 ["cache", "--dir", str(cache), "list"]):
        status, out, err = run(capsys, *argv)
        assert status == 0, err
        first, rest = out.split("\n", 1)
        assert first.startswith(f"clip tables in {cache}: {len(tables)} tables, ")
        assert rest.rstrip("\n") == format_tables(tables).rstrip("\n")


def test_list_defaults_to_the_cache_folder(capsys, monkeypatch, tree, tmp_path):
    cache = tmp_path / "env-cache"
    monkeypatch.setenv("AVMNIST_CACHE", str(cache))
    fill_tables(tree, cache)
    status, out, err = run(capsys, "cache")
    assert status == 0 and out.startswith(f"clip tables in {cache}: {len(list_tables(cache))} tables")


def test_prune_removes_only_tables_whose_sources_are_gone(capsys, tree, tmp_path):
    cache = tmp_path / "cache"
    fill_tables(tree, cache)
    before = list_tables(cache)
    status, out, err = run(capsys, "cache", "prune", "--dir", str(cache))
    assert status == 0 and out.startswith(f"removed from {cache}: 0 tables")
    assert [t.path for t in list_tables(cache)] == [t.path for t in before]

    shutil.rmtree(tree)  # the data tree moved away: its tables can never be used again
    status, out, err = run(capsys, "cache", "prune", "--dir", str(cache))
    assert status == 0 and out.startswith(f"removed from {cache}: {len(before)} tables")
    assert list_tables(cache) == [] and not any(Path(t.path).exists() for t in before)


def test_clear_removes_every_table(capsys, tree, tmp_path):
    cache = tmp_path / "cache"
    fill_tables(tree, cache)
    before = list_tables(cache)
    status, out, err = run(capsys, "cache", "clear", "--dir", str(cache))
    assert status == 0 and out.startswith(f"removed from {cache}: {len(before)} tables")
    assert list_tables(cache) == [] and not any(Path(t.path).exists() for t in before)
    status, out, err = run(capsys, "cache", "--dir", str(cache))
    assert status == 0 and out == f"clip tables in {cache}: 0 tables, 0.0 MB\n"


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_image_halves_and_leftover_temporaries_are_listed_pruned_and_cleared(capsys, tmp_path):
    """Every folder the package writes is seen: image-pca/ too, and what killed writers left behind."""
    import numpy as np

    from avmnist_torch.image_pca import image_half

    cache = tmp_path / "cache"
    rng = np.random.default_rng(0)
    good_images = rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)
    broken_images = rng.integers(0, 256, (150, 28, 28), dtype=np.uint8)
    image_half(good_images, cache_dir=cache)
    image_half(broken_images, cache_dir=cache)
    halves = sorted((cache / "image-pca").glob("*.npy"), key=lambda p: p.stat().st_size)
    broken, good = halves  # 150 rows, 200 rows
    broken.with_suffix(".json").write_text("{")  # torn
    dead = _dead_pid()
    left = [cache / "image-pca" / f".{good.name}.tmp-{dead}-140000", cache / f".recordings.json.tmp-{dead}"]
    for p in left:
        p.write_bytes(b"\0" * 5000)
    alive = cache / "image-pca" / f".{good.name}.tmp-{__import__('os').getpid()}-1"  # a live writer's
    alive.write_bytes(b"\0" * 10)

    status, out, err = run(capsys, "cache", "--dir", str(cache))
    assert status == 0, err
    assert f"image halves in {cache / 'image-pca'}: 2 image halves" in out
    assert good.name in out and broken.name in out and "200 images" in out
    assert "would be computed again" in out.split(broken.name)[1].split("\n")[0]
    assert "2 temporary files of processes no longer running" in out
    assert all(str(p) in out for p in left) and str(alive) not in out

    status, out, err = run(capsys, "cache", "prune", "--dir", str(cache))
    assert status == 0, err
    assert not broken.exists() and good.exists() and not any(p.exists() for p in left) and alive.exists()
    assert "1 image half" in out and broken.name in out and "2 temporary files" in out

    status, out, err = run(capsys, "cache", "clear", "--dir", str(cache))
    assert status == 0 and not good.exists() and not good.with_suffix(".json").exists()
    assert "1 image half" in out
    status, out, err = run(capsys, "cache", "--dir", str(cache))
    assert out == f"clip tables in {cache}: 0 tables, 0.0 MB\n"
