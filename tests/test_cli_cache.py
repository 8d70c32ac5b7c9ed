"""``avmnist-audio cache``: list the clip tables, clear them, prune those whose sources are gone.

Needs the clip-table API of ``avmnist_torch.sources.clips`` (``list_tables``,
``clear_tables``, ``prune_tables``, ``format_tables``) and the ``cache``
command registered in ``avmnist_torch.cli``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from avmnist_torch import AVMNISTAudioDataset
from avmnist_torch.cli import main
from avmnist_torch.sources.clips import format_tables, list_tables
from avmnist_torch.sources.synthetic import make_synthetic_tree


def fill_tables(root: Path, cache: Path) -> None:
    """One item of a noise scheme: a table of decoded recordings and one of resampled noises."""
    AVMNISTAudioDataset(root, split="test", scheme="burst_noise", noise_cache=cache).image(0)


@pytest.fixture
def tree(tmp_path) -> Path:
    return make_synthetic_tree(tmp_path / "data", n_train=4, n_test=6, noise_seconds=0.5)


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
