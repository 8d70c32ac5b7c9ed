"""Real training code that reads AV-MNIST's files, restated from its source (named in each docstring)."""

from __future__ import annotations

import numpy as np


def thesis_items(data_dir: str, split: str, scheme: str):
    """What the thesis' ``AVMNISTDataModule(data_dir=..., type=scheme)`` feeds its models, item by item.

    Restates wardvdnb/Multimodal-SSL-AVMNIST, ``AVMNIST_Experiments/utils/get_data.py``:
    ``BaseAVMNISTDataModule`` builds the paths by string concatenation (``data_dir`` ends in ``/``):
    ``{data_dir}image/{split}_data.npy``, ``{data_dir}audio/{split}_data_augmented_{type}.npy``,
    ``{data_dir}{split}_labels.npy``. ``BaseAVMNISTDataset`` loads the labels with ``np.load`` and
    ``.astype(int)``, the images with ``np.load(..., mmap_mode='r')``, and the audio through its
    ``MemmapWrapper``: ``np.memmap(path, mode='r', dtype='uint8', shape=(len(labels), 112, 112))``,
    at offset 0, because the notebook wrote the audio headerless. ``_process_image_audio`` (default
    options) reshapes the image row to 28x28 and divides by 255, divides the audio by 255 (then
    subtracts mean 0.0 and divides by std 1.0), and adds a leading channel axis to both;
    ``AVMNISTDataset.__getitem__`` returns ``(image, audio, label)`` with the label a long tensor.
    """
    labels = np.load(f"{data_dir}{split}_labels.npy").astype(int)
    images = np.load(f"{data_dir}image/{split}_data.npy", mmap_mode="r")
    audio = np.memmap(f"{data_dir}audio/{split}_data_augmented_{scheme}.npy", mode="r", dtype="uint8",
                      shape=(len(labels), 112, 112))
    for i in range(len(labels)):
        image = np.array(images[i]).reshape(28, 28) / 255.0
        sound = (np.array(audio[i]) / 255.0 - 0.0) / 1.0
        yield np.expand_dims(image, 0), np.expand_dims(sound, 0), int(labels[i])


def multibench_items(data_dir: str, n_train: int, n_test: int, valid_start: int):
    """What MultiBench's ``get_dataloader(data_dir)`` yields with its default options: (trains, valids, tests).

    Restates pliang279/MultiBench, ``datasets/avmnist/get_data.py``, ``get_dataloader``: it reads
    ``{dir}/image/{split}_data.npy``, ``{dir}/audio/{split}_data.npy`` and ``{dir}/{split}_labels.npy``
    with ``np.load`` (so the audio must be a real .npy file); divides the images by 255 in place (so
    they must be floating point) and the audio by 255; reshapes the images to ``(N, 28, 28)``; adds a
    channel axis at 1 to both; casts the labels with ``astype(int)``; and serves ``[image, audio,
    label]`` per item, train rows ``[0, 55000)`` for training and ``[55000, 60000)`` for validation
    (here ``valid_start`` and the split sizes are parameters: a 60,000-row fixture would take minutes).
    """
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = np.load(f"{data_dir}/image/{split}_data.npy")
        audio = np.load(f"{data_dir}/audio/{split}_data.npy")
        labels = np.load(f"{data_dir}/{split}_labels.npy").astype(int)
        images /= 255.0
        audio = audio / 255.0
        images = np.expand_dims(images.reshape(n, 28, 28), 1)
        audio = np.expand_dims(audio, 1)
        out[split] = [[images[i], audio[i], labels[i]] for i in range(n)]
    return out["train"][:valid_start], out["train"][valid_start:], out["test"]
