"""Shared fixtures: the real data in ../shared/data when present, and small synthetic trees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from _helpers import SHARED_DATA
from avmnist_torch.sources.synthetic import make_synthetic_tree


@pytest.fixture(scope="session", autouse=True)
def _private_noise_cache(tmp_path_factory):
    """Tests never write to the user's ~/.cache: the noise table goes to a session folder."""
    import os

    previous = os.environ.get("AVMNIST_CACHE")
    os.environ["AVMNIST_CACHE"] = str(tmp_path_factory.mktemp("noise-cache"))
    yield
    if previous is None:
        os.environ.pop("AVMNIST_CACHE", None)
    else:
        os.environ["AVMNIST_CACHE"] = previous


def _real_data_or_skip() -> dict:
    paths = {
        "recordings": SHARED_DATA / "fsdd" / "recordings",
        "esc50": SHARED_DATA / "esc50",
        "train_labels": SHARED_DATA / "mnist" / "train_labels.npy",
        "test_labels": SHARED_DATA / "mnist" / "test_labels.npy",
    }
    absent = [str(p) for p in paths.values() if not p.exists()]
    if absent:
        pytest.skip(f"real data not found ({', '.join(absent)}): these tests need ../shared/data beside the checkout")
    return paths


@pytest.fixture(scope="session")
def real_data() -> dict:
    return _real_data_or_skip()


@pytest.fixture(scope="session")
def synthetic_tree(tmp_path_factory):
    """``make(folder=None, **options)``: a synthetic data tree of the caller's own.

    Each distinct set of :func:`make_synthetic_tree` options is made once per session and
    copied for every caller, so tests may write into their tree (exports, caches) without
    touching another's.
    """
    made = {}

    def make(folder=None, **options) -> Path:
        key = tuple(sorted(options.items()))
        if key not in made:
            made[key] = make_synthetic_tree(tmp_path_factory.mktemp("pristine"), **options)
        target = Path(folder) if folder is not None else tmp_path_factory.mktemp("tree")
        shutil.copytree(made[key], target, dirs_exist_ok=True)
        return target

    return make


@pytest.fixture(scope="session")
def synthetic_root(synthetic_tree) -> Path:
    return synthetic_tree(n_train=120, n_test=40)


#: Fixtures that read ../shared/data (and skip, saying so, without it).
REAL_DATA_FIXTURES = frozenset({"real_data", "real", "t10k"})


def pytest_collection_modifyitems(config, items):
    # A test that asks for the real data is a real-data test, whether or not it says so:
    # '-m "not realdata"' then runs exactly what a clone without ../shared/data can run.
    for item in items:
        if REAL_DATA_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realdata)
        if item.nodeid.split("[")[0] in SLOW_ELSEWHERE:
            item.add_marker(pytest.mark.slow)
            _MATCHED_ELSEWHERE.add(item.nodeid.split("[")[0])
        _COLLECTED_FILES.add(item.nodeid.split("::")[0])
        if item.get_closest_marker("slow") is not None:
            _MARKED_SLOW.add(item.nodeid)


#: Tests to mark slow from here rather than in their own files (none now: mark a slow test where it is).
SLOW_ELSEWHERE = frozenset()


# ----------------------------------------------------------------------------
# 'slow' means what it says: a test that takes longer than SLOW_SECONDS (setup, call and
# teardown) is marked slow or made faster. The end of a run lists the unmarked ones that took
# longer (on a loaded machine, or paying for a first import, a fast test can cross the line:
# the list is a prompt to look, not a verdict).

SLOW_SECONDS = 5.0
_MARKED_SLOW: set = set()
_SECONDS: dict = {}
_MATCHED_ELSEWHERE: set = set()
_COLLECTED_FILES: set = set()


def pytest_runtest_logreport(report):
    _SECONDS[report.nodeid] = _SECONDS.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    over = sorted(((seconds, nodeid) for nodeid, seconds in _SECONDS.items()
                   if seconds > SLOW_SECONDS and nodeid not in _MARKED_SLOW), reverse=True)
    if over:
        terminalreporter.section(f"tests over {SLOW_SECONDS:g} s not marked slow")
        for seconds, nodeid in over:
            terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}")
    stale = sorted(name for name in SLOW_ELSEWHERE
                   if name.split("::")[0] in _COLLECTED_FILES and name not in _MATCHED_ELSEWHERE)
    if stale:
        terminalreporter.section("conftest.SLOW_ELSEWHERE names tests that are gone")
        for name in stale:
            terminalreporter.write_line(name)
