"""Shared fixtures: the real data in ../shared/data when present, and small synthetic trees."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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
def synthetic_root(tmp_path_factory) -> Path:
    from avmnist_torch.sources.synthetic import make_synthetic_tree

    return make_synthetic_tree(tmp_path_factory.mktemp("synthetic"), n_train=120, n_test=40)


def digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(array)).tobytes()).hexdigest()
