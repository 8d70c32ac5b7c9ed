"""verify's row choice: only rows that exist, named by whole numbers; a wrong row names the file and its size.

Before: ``verify --rows 70000`` on a 10,000-row file checked row ``70000 % 10000``
and said "all regenerated rows match" about a row nobody asked for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avmnist_torch import ParameterError, export, verify

N_TEST = 14


@pytest.fixture(scope="module")
def exported(synthetic_tree) -> Path:
    root = synthetic_tree(n_train=4, n_test=N_TEST, noise_seconds=0.5)
    [path] = export(root, split="test", scheme="clean", progress=False)
    return path


@pytest.mark.parametrize("row", [N_TEST, 70_000, -1, -N_TEST])
def test_rows_outside_the_file_are_refused_naming_file_and_size(exported, row):
    with pytest.raises(ParameterError) as caught:
        verify(exported, rows=[0, row])
    message = str(caught.value)
    assert str(exported) in message and f"has {N_TEST} rows (0 to {N_TEST - 1})" in message
    assert f"row {row} is out of range" in message


@pytest.mark.parametrize("rows", [[1.5], ["3"], [True], "3", 7, []])
def test_rows_that_are_not_row_numbers_are_refused(exported, rows):
    with pytest.raises(ParameterError, match=str(exported).replace("\\", "\\\\")):
        verify(exported, rows=rows)


@pytest.mark.parametrize("kwargs", [{"sample": 0}, {"sample": -3}, {"workers": 0}])
def test_counts_below_one_are_refused(exported, kwargs):
    with pytest.raises(ParameterError, match="at least 1"):
        verify(exported, **kwargs)


def test_rows_inside_the_file_are_checked_as_given(exported):
    report = verify(exported, rows=[N_TEST - 1, np.int64(0), 5, 5])
    assert report.ok and report.checked == [0, 5, N_TEST - 1]


def test_a_file_made_from_parts_without_a_root_is_checked_against_those_parts(synthetic_tree, tmp_path):
    root = synthetic_tree(n_train=4, n_test=N_TEST, noise_seconds=0.5)
    parts = {"recordings": root / "recordings", "noises": root / "noise_recordings",
             "labels": root / "avmnist" / "test_labels.npy"}
    [path] = export(None, split="test", scheme="distorted", out=tmp_path, progress=False, **parts)
    report = verify(path, sample=None)  # the sidecar's made_from names the parts: no root needed
    assert report.ok and report.checked == list(range(N_TEST))
