"""``preview(images=...)`` / ``avmnist preview --images``: image and audio of AV-MNIST side by side."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from avmnist_torch.cli import main
from avmnist_torch.common import SourceError
from avmnist_torch.inspection import preview

PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path):
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def tree(synthetic_tree) -> Path:
    return synthetic_tree(n_train=20, n_test=16, noise_seconds=1.0,
                               mnist_images=True)


@pytest.mark.slow  # three figures drawn by matplotlib
def test_side_by_side_png_has_a_row_per_item_and_a_column_per_image_and_scheme(tree, tmp_path):
    out = preview(tree, tmp_path / "av.png", images=True, check_mnist=False, random_items=2,
                  schemes=("burst_noise", "clean"))
    wide, high = _png_size(out)
    # 3 rows of 4 tiles (MNIST image, pca25 image half, two schemes): wider than high
    more = preview(tree, tmp_path / "av5.png", images=True, check_mnist=False, random_items=4,
                   schemes=("burst_noise", "clean"))
    wide5, high5 = _png_size(more)
    assert wide5 == wide and high5 > high and wide > high
    audio_only = preview(tree, tmp_path / "audio.png", random_items=2, schemes=("burst_noise", "clean"))
    assert audio_only.read_bytes() != out.read_bytes()


@pytest.mark.slow  # four figures drawn by matplotlib
def test_images_path_is_where_the_images_come_from(tree, tmp_path):
    """With images=PATH the image files come from PATH: a root without them draws what a root with them draws."""
    root = tmp_path / "data"
    shutil.copytree(tree, root)
    elsewhere = tmp_path / "mnist-elsewhere"
    shutil.move(str(root / "mnist"), str(elsewhere))
    kwargs = dict(random_items=2, schemes=("burst_noise", "clean"))
    with pytest.raises(SourceError, match="no MNIST test image file"):
        preview(root, tmp_path / "none.png", images=True, check_mnist=False, **kwargs)
    want = preview(tree, tmp_path / "want.png", images=True, check_mnist=False, **kwargs).read_bytes()
    audio_only = preview(root, tmp_path / "audio.png", **kwargs).read_bytes()
    for images in (elsewhere / "t10k-images-idx3-ubyte.gz", elsewhere):  # the file, or a folder holding it
        got = preview(root, tmp_path / "got.png", images=images, check_mnist=False, **kwargs).read_bytes()
        assert got == want and got != audio_only, images


def test_missing_images_are_a_clear_error(synthetic_tree, tmp_path):
    root = synthetic_tree(tmp_path / "no-mnist", n_train=8, n_test=6, noise_seconds=0.5)
    with pytest.raises(SourceError, match=r"(?s)no MNIST test image file under .*--only mnist_images.*--images PATH"):
        preview(root, tmp_path / "av.png", images=True, check_mnist=False)
    assert not (tmp_path / "av.png").exists()


def test_images_that_show_other_digits_are_refused(tree, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tree, root)
    labels = np.load(root / "avmnist" / "test_labels.npy")
    np.save(root / "avmnist" / "test_labels.npy", (labels + 1) % 10)  # the audio now says other digits
    with pytest.raises(SourceError, match="differ from the AV-MNIST test labels"):
        preview(root, tmp_path / "av.png", images=True, check_mnist=False)


def test_cli_preview_images(synthetic_tree, tree, tmp_path, capsys):
    out = tmp_path / "av.png"
    # the tree's image files are synthetic under MNIST's names: refused, in one line naming the file
    assert main(["preview", "--root", str(tree), "--out", str(out), "--images", "--random", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("avmnist preview: error: ") and "t10k-images-idx3-ubyte.gz: not MNIST's test images" in err
    # under names of their own (labels named alike beside them) they are the user's files, taken as they are
    own = tmp_path / "own"
    own.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(tree / "mnist" / name, own / f"synthetic-{name}")
    assert main(["preview", "--root", str(tree), "--out", str(out), "--images",
                 str(own / "synthetic-t10k-images-idx3-ubyte.gz"), "--random", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(out) and _png_size(out)[0] > 0
    missing = synthetic_tree(tmp_path / "no-mnist", n_train=8, n_test=6, noise_seconds=0.5)
    assert main(["preview", "--root", str(missing), "--out", str(tmp_path / "x.png"), "--images"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("avmnist preview: error: preview with images: no MNIST test image file")
    assert "--only mnist_images" in err


def test_the_pca25_column_says_what_it_shows(tree, tmp_path, monkeypatch):
    # On the demo's few synthetic digits the recipe keeps one component, and every image looks alike:
    # the figure must say so rather than look broken.
    from matplotlib.figure import Figure

    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, out, **kwargs: drawn.append(fig.get_suptitle()))
    preview(tree, tmp_path / "av.png", images=True, random_items=1, schemes=("clean",), check_mnist=False)
    [title] = drawn
    assert title.endswith(
        "pca25 image half: each image projected on the first 1 principal component of the split's 16 images, "
        "centred (grey is 0):\nthe recipe keeps under 25% of their variance (MNIST's splits keep 3 components); "
        "with one, every image is one pattern times a number, so they all look alike")
