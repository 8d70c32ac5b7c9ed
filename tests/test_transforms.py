"""The named scalings: what MultiBench's and the thesis' AV-MNIST loaders feed a model, and picklable.

The references are the loaders' own arithmetic, restated: MultiBench's ``get_dataloader``
(``datasets/avmnist/get_data.py``) divides numpy arrays by 255.0 (float64), the thesis'
``BaseAVMNISTDataset._process_image_audio`` (``AVMNIST_Experiments/utils/get_data.py``) computes
``image / 255.0`` and ``(audio / 255.0 - audio_mean) / audio_std`` in numpy, and both training
loops call ``.float()`` on the collated batch.
"""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest
import torch

import avmnist_torch
from avmnist_torch import AVMNISTAudioDataset, AVMNISTDataset, DivideBy255, ParameterError, Standardize


def _thesis_item(image64: np.ndarray, audio_u8: np.ndarray, mean: float = 0.0, std: float = 1.0):
    """The thesis' per-item numpy arithmetic, then default_collate (float64 tensors) and .float()."""
    image = image64.reshape(28, 28) / 255.0
    audio = (audio_u8 / 255.0 - mean) / std
    image, audio = np.expand_dims(image, 0), np.expand_dims(audio, 0)
    return torch.from_numpy(image).float(), torch.from_numpy(audio).float()


def _multibench_audio(audio_u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.expand_dims(audio_u8 / 255.0, 1)).float()


def test_every_uint8_value_scales_as_the_loaders_do():
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    ours = DivideBy255()(torch.from_numpy(values))
    assert ours.dtype == torch.float32
    assert torch.equal(ours, _multibench_audio(values)[:, 0])
    assert torch.equal(ours, torch.from_numpy(values / 255.0).float())
    assert ours[0, 0, 0] == 0 and ours[0, 15, 15] == 1


def test_float64_gives_the_loaders_own_arrays():
    values = np.arange(256, dtype=np.uint8)
    assert torch.equal(DivideBy255(torch.float64)(values), torch.from_numpy(values / 255.0))


def test_float32_division_equals_the_rounded_float64_quotient():
    """Why DivideBy255 may divide in float32: for float32 inputs it is float32(float64(x) / 255), bit for bit."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 100, 200_000), rng.uniform(-300, 300, 200_000),
                        rng.normal(0, 1e-30, 1000), [0.0, -0.0, 1e30]]).astype(np.float32)
    ours = DivideBy255()(torch.from_numpy(x)).numpy()
    assert np.array_equal(ours.view(np.uint32), (x.astype(np.float64) / 255.0).astype(np.float32).view(np.uint32))


def test_thesis_default_normalisation_reduces_to_divide_by_255(synthetic_tree, tmp_path):
    """On generated items: audio bit for bit; the pca25 image within one float32 ulp of the thesis' float64 route."""
    from avmnist_torch.image_pca import pca25
    from avmnist_torch.sources.mnist_idx import read_idx_images

    root = synthetic_tree(tmp_path / "t", n_train=40, n_test=20, mnist_images=True)
    # the tree's MNIST files are synthetic, under MNIST's names
    ds = AVMNISTDataset(root, "test", "burst_noise", image_cache=None, clip_tables=None, check_mnist=False)
    raw = AVMNISTDataset(root, "test", "burst_noise", image_cache=None, clip_tables=None, check_mnist=False,
                         transform_image=DivideBy255(), transform_audio=DivideBy255())
    # The thesis reads the published float64 image half; the recipe in float64, as the export writes it.
    pixels = read_idx_images(ds.image_half.file, check=False)
    image64 = pca25(pixels)
    for i in range(len(ds)):
        _, audio_u8, _ = ds[i]
        image, audio, label = raw[i]
        ref_image, ref_audio = _thesis_item(image64[i], audio_u8.numpy()[0])
        assert audio.dtype == image.dtype == torch.float32
        assert torch.equal(audio, ref_audio)
        assert torch.equal(Standardize()(audio_u8), ref_audio)
        ulps = np.abs(image.numpy().view(np.int32).astype(np.int64) - ref_image.numpy().view(np.int32).astype(np.int64))
        assert ulps.max() <= 1, (i, ulps.max())


def test_standardize_is_the_thesis_formula_with_stats():
    rng = np.random.default_rng(1)
    audio = rng.integers(0, 256, (1, 112, 112), dtype=np.uint8)
    mean, std = 0.4321, 0.1234
    _, ref = _thesis_item(np.zeros(784), audio[0], mean, std)
    assert torch.equal(Standardize(mean, std)(torch.from_numpy(audio)), ref)
    with pytest.raises(ParameterError, match="std"):
        Standardize(0.0, 0.0)
    with pytest.raises(ParameterError, match="dtype"):
        DivideBy255(torch.int64)
    with pytest.raises(TypeError, match="Tensor"):
        DivideBy255()([1, 2])


def test_transforms_pickle_and_compare_equal():
    for transform in (DivideBy255(), DivideBy255(torch.float64), Standardize(0.5, 0.25)):
        back = pickle.loads(pickle.dumps(transform))
        assert back == transform and hash(back) == hash(transform) and repr(back) == repr(transform)
    assert DivideBy255() != DivideBy255(torch.float64)
    assert avmnist_torch.DivideBy255 is DivideBy255 and avmnist_torch.Standardize is Standardize


@pytest.mark.parametrize("method", [m for m in ("spawn", "forkserver", "fork") if m in multiprocessing.get_all_start_methods()])
@pytest.mark.slow  # DataLoader workers under each start method
def test_dataloader_workers_under_every_start_method(synthetic_root, method):
    """A lambda fails here under spawn ("Can't pickle <function <lambda>>"); the named transform works."""
    ds = AVMNISTAudioDataset(synthetic_root, split="test", scheme="distorted", transform=DivideBy255())
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=1, multiprocessing_context=method)
    x, y = next(iter(loader))
    plain = AVMNISTAudioDataset(synthetic_root, split="test", scheme="distorted")
    expected = torch.stack([plain[i][0] for i in range(8)]).double() / 255.0
    assert x.dtype == torch.float32 and torch.equal(x, expected.float())
    assert y.dtype == torch.int64


@pytest.mark.filterwarnings("ignore:Got pickle error")
def test_a_lambda_fails_under_spawn(synthetic_root):
    """The failure the named transforms exist for, so the test above is not vacuous."""
    ds = AVMNISTAudioDataset(synthetic_root, split="test", scheme="distorted", transform=lambda x: x / 255)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=1, multiprocessing_context="spawn")
    with pytest.raises((pickle.PicklingError, AttributeError), match="lambda"):
        next(iter(loader))
