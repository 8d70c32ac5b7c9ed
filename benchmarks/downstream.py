"""Downstream accuracy on the generated data: audio-only, image-only and late fusion, per scheme.

Run from the repository root, with the real data beside it (../shared/data) or a data root
made by ``avmnist download`` (recordings, noise_recordings, avmnist/*_labels.npy and
MNIST's image files in mnist/)::

    python benchmarks/downstream.py --quick                     # CPU, a few minutes
    python benchmarks/downstream.py --root DATA --device cuda   # the thesis' protocol, in full

Items are read through the on-the-fly datasets (``AVMNISTDataset`` / ``AVMNISTAudioDataset``)
with a DataLoader, once per subset, then the models train on those tensors for every epoch.

Models (all trained with Adam, lr 1e-3, batch 128, cross-entropy; inputs divided by 255 as
MultiBench's loader does):

- audio-only: the thesis' network, ``GP_LeNet`` deepened (MFAS's ``GP_LeNet_Deeper``): five
  blocks of 16, 32, 64, 128, 256 channels, a 5x5 then 3x3 convolutions without bias, batch
  norm, ReLU, 2x2 max-pool between blocks; global average pooling of the last block's
  activations; one linear layer; Kaiming-uniform initial weights;
- image-only: LeNet-style, MFAS's ``GP_LeNet``: the same blocks, three of them (16, 32, 64);
- late fusion: both encoders' pooled features concatenated (256 + 64) and one linear layer,
  trained end to end (MFAS's ``SimpleAVNet_Deeper``).

Protocol (the thesis', MultiBench's): train items 0-54,999 of the train split, validation
55,000-59,999, test on the 10,000 test items, 10 epochs; the test accuracy after the last
epoch is reported, beside the thesis' audio-only figures. ``--quick`` takes the first 2,000
train, 500 validation and 1,000 test items and one epoch.

``--model thesis`` trains instead the thesis' own audio-only baseline as its repository
(wardvdnb/Multimodal-SSL-AVMNIST, ``AVMNIST_Experiments``) does: ``CentralUnimodalAudio`` (four
5x5 convolution blocks of 8, 16, 32, 64 channels, a 1,024-unit layer, dropout 0.5), Adam 1e-3,
batch 128, the train split cut 55,000 / 5,000 at random (torch's ``random_split`` after
``set_seed(1)``), the best-validation checkpoint kept. It prints every epoch's training loss,
validation and test accuracy, writes them to ``--json`` and each epoch's test predictions to
``--predictions``; ``--report`` turns such files into tables (per noise category, and against the
thesis' own logged test predictions) and ``--plot`` into a figure::

    python benchmarks/downstream.py --model thesis --schemes burst_noise --noises ../shared/data/esc50_512 \
        --items-dir /tmp/items --threads 1 --json runs/burst.json --predictions runs/pred
    python benchmarks/downstream.py --report runs/burst.json --report-predictions runs/pred \
        --noises ../shared/data/esc50_512 --plot docs/downstream_thesis.png

``--draws per_epoch`` reads the train items anew every epoch (``AVMNISTAudioDataset(...,
draws="per_epoch")`` after ``set_epoch(epoch)``), where the installed package has that option.

MNIST's train images are needed for the image-only and fusion rows. Where they are absent
(../shared/data has only the test images), those rows use what exists and say so: a split of
the test split alone (train on test items 0-6,999, validate on 7,000-7,999, test on
8,000-9,999; with ``--quick`` the first 2,000 / 500 / 1,000 of those), so their figures are
not comparable with the thesis protocol.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avmnist_torch import AVMNISTAudioDataset, SourceError  # noqa: E402
from avmnist_torch.paired import AVMNISTDataset  # noqa: E402
from avmnist_torch.sources.mnist_idx import find_mnist_images  # noqa: E402

SCHEMES = ["aliased", "burst_noise", "extreme_noise", "multi_band", "distorted"]
#: Audio-only test accuracy (%) after 10 epochs in the thesis, on the notebook's data.
THESIS = {"aliased": "83.8", "burst_noise": "88.8-91.1", "extreme_noise": "93.3", "multi_band": "91.2",
          "distorted": "97.9"}


# ----------------------------------------------------------------------------
# models


class ConvBlocks(nn.Module):
    """Conv (5x5 first, then 3x3; no bias) + batch norm + ReLU per block, 2x2 max-pool between blocks.

    The features are the global average of the last block's activations (before its pool, which
    feeds nothing), as in MFAS's GP_LeNet models.
    """

    def __init__(self, channels: List[int]) -> None:
        super().__init__()
        layers = []
        previous = 1
        for i, width in enumerate(channels):
            size = 5 if i == 0 else 3
            layers.append(nn.ModuleDict({"conv": nn.Conv2d(previous, width, size, padding=size // 2, bias=False),
                                         "norm": nn.BatchNorm2d(width)}))
            previous = width
        self.blocks = nn.ModuleList(layers)
        self.features = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            if i:
                x = F.max_pool2d(x, 2)
            x = F.relu(block["norm"](block["conv"](x)))
        return x.mean(dim=(2, 3))


class Classifier(nn.Module):
    def __init__(self, channels: List[int]) -> None:
        super().__init__()
        self.encoder = ConvBlocks(channels)
        self.linear = nn.Linear(self.encoder.features, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.encoder(x))


class LateFusion(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image = ConvBlocks(IMAGE_CHANNELS)
        self.audio = ConvBlocks(AUDIO_CHANNELS)
        self.head = nn.Linear(self.image.features + self.audio.features, 10)

    def forward(self, image: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.image(image), self.audio(audio)], dim=1))


AUDIO_CHANNELS = [16, 32, 64, 128, 256]
IMAGE_CHANNELS = [16, 32, 64]


def kaiming_uniform(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight)
    return model


class ThesisAudioNet(nn.Module):
    """The thesis' own audio baseline: ``CentralUnimodalAudio`` with its head, restated.

    Source: wardvdnb/Multimodal-SSL-AVMNIST, ``AVMNIST_Experiments/models/unimodal.py``, which its
    ``benchmarks.ipynb`` trains as the audio-only baseline. Four blocks of a 5x5 convolution
    (padding 2, with bias), batch norm, ReLU and a 2x2 max-pool: 1 -> 8 -> 16 -> 32 -> 64 channels,
    112 -> 56 -> 28 -> 14 -> 7 pixels; the 64 x 7 x 7 activations flattened into a 1,024-unit
    layer with ReLU, dropout 0.5, and a 10-way linear layer. PyTorch's default initial weights.
    """

    def __init__(self, dropout: float = 0.5) -> None:
        super().__init__()
        blocks = []
        previous = 1
        for width in THESIS_AUDIO_CHANNELS:
            blocks.append(nn.Sequential(nn.Conv2d(previous, width, 5, padding=2), nn.BatchNorm2d(width),
                                        nn.ReLU(), nn.MaxPool2d(2)))
            previous = width
        self.blocks = nn.Sequential(*blocks)
        self.hidden = nn.Linear(previous * 7 * 7, 1024)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(1024, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(x).flatten(1)
        return self.out(self.dropout(F.relu(self.hidden(x))))


THESIS_AUDIO_CHANNELS = [8, 16, 32, 64]


# ----------------------------------------------------------------------------
# data


class Subset:
    """Tensors of one subset, read once through a dataset and a DataLoader."""

    def __init__(self, images: Optional[torch.Tensor], audio: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.audio, self.labels = images, audio, labels

    def __len__(self) -> int:
        return len(self.labels)


def read_subset(dataset, indices, workers: int, paired: bool) -> Subset:
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, list(indices)), batch_size=256,
                                         num_workers=workers)
    images, audio, labels = [], [], []
    for batch in loader:
        if paired:
            x, a, y = batch
            images.append(x.float() / 255)
        else:
            a, y = batch
        audio.append(a)  # kept uint8 until a batch is used: a quarter of the memory
        labels.append(y)
    return Subset(torch.cat(images) if paired else None, torch.cat(audio), torch.cat(labels))


def batches(n: int, size: int, generator: Optional[torch.Generator]):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, size):
        yield order[start:start + size]


def inputs(subset: Subset, idx: torch.Tensor, kind: str, device: str) -> Tuple[torch.Tensor, ...]:
    audio = lambda: (subset.audio[idx].to(device).float() / 255,)  # noqa: E731
    image = lambda: (subset.images[idx].to(device),)  # noqa: E731
    return {"audio": audio, "image": image, "fusion": lambda: image() + audio()}[kind]()


def accuracy(model: nn.Module, subset: Subset, kind: str, device: str) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for idx in batches(len(subset), 512, None):
            logits = model(*inputs(subset, idx, kind, device))
            correct += int((logits.argmax(1).cpu() == subset.labels[idx]).sum())
    return 100.0 * correct / len(subset)


def train(kind: str, data: Dict[str, Subset], epochs: int, device: str, seed: int,
          reader=None) -> Tuple[float, float, float]:
    """Train a fresh model; (best validation accuracy, test accuracy after the last epoch, seconds).

    ``reader(epoch)``, when given (``--draws per_epoch``, audio-only), supplies that epoch's train audio.
    """
    torch.manual_seed(seed)
    model = {"audio": lambda: Classifier(AUDIO_CHANNELS), "image": lambda: Classifier(IMAGE_CHANNELS),
             "fusion": LateFusion}[kind]()
    model = kaiming_uniform(model).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    best_val = 0.0
    start = time.perf_counter()
    for epoch in range(epochs):
        if reader is not None:
            data = dict(data, train=Subset(None, reader(epoch).unsqueeze(1), data["train"].labels))
        model.train()
        for idx in batches(len(data["train"]), 128, generator):
            optimiser.zero_grad()
            loss = F.cross_entropy(model(*inputs(data["train"], idx, kind, device)), data["train"].labels[idx].to(device))
            loss.backward()
            optimiser.step()
        best_val = max(best_val, accuracy(model, data["val"], kind, device))
    return best_val, accuracy(model, data["test"], kind, device), time.perf_counter() - start


# ----------------------------------------------------------------------------
# protocols


def sources(args) -> dict:
    if args.root:
        root = Path(args.root)
        return dict(root=root, images=root, labels=None, **({"noises": Path(args.noises)} if args.noises else {}))
    data = REPO.parent / "shared" / "data"
    if not data.is_dir():
        sys.exit(f"no data: {data} is absent; pass --root DATA (see 'avmnist download')")
    noises = Path(args.noises) if args.noises else data / "esc50"
    return dict(root=None, images=data / "mnist", recordings=data / "fsdd" / "recordings", noises=noises,
                labels=data / "mnist")


def has_images(src: dict, split: str) -> bool:
    try:
        find_mnist_images(src["images"], split)
        return True
    except SourceError:
        return False


def protocol(name: str, sizes: Tuple[int, int, int]) -> Dict[str, Tuple[str, range]]:
    n_train, n_val, n_test = sizes
    if name == "standard":
        return {"train": ("train", range(0, 55_000)[:n_train]), "val": ("train", range(55_000, 60_000)[:n_val]),
                "test": ("test", range(0, 10_000)[:n_test])}
    return {"train": ("test", range(0, 7_000)[:n_train]), "val": ("test", range(7_000, 8_000)[:n_val]),
            "test": ("test", range(8_000, 10_000)[:n_test])}


def load(src: dict, scheme: str, plan: Dict[str, Tuple[str, range]], paired: bool, args) -> Dict[str, Subset]:
    out, datasets = {}, {}
    for part, (split, indices) in plan.items():
        if split not in datasets:
            options = dataset_options(src, args)
            if paired:
                datasets[split] = AVMNISTDataset(src["root"], split, scheme, images=src["images"], image="pca25",
                                                 **options)
            else:
                datasets[split] = AVMNISTAudioDataset(src["root"], split, scheme, **options)
        out[part] = read_subset(datasets[split], indices, args.workers, paired)
    return out


# ----------------------------------------------------------------------------
# the thesis' protocol (--model thesis)
#
# Restated from wardvdnb/Multimodal-SSL-AVMNIST, AVMNIST_Experiments: utils/get_data.py
# (AVMNISTDataModule: train items split 55,000 / 5,000 by torch's random_split after
# utils/reproducibility.set_seed(1); audio divided by 255, with mean 0 and std 1 as compute_stats
# is off; batch 128; train order shuffled every epoch) and training_structures/unimodal.py
# (Adam, lr 1e-3, no scheduler; per epoch the mean of the batches' training losses, then the
# validation loss (mean over batches) and accuracy; the model is saved whenever the validation
# accuracy beats the best so far).

#: The seed under which the thesis' data module drew its train/validation split, once for all runs.
THESIS_SPLIT_SEED = 1

#: The thesis' audio-only training logs, validation accuracy (%) per epoch: wardvdnb/Multimodal-SSL-AVMNIST,
#: AVMNIST_Experiments/archive/training_logs/audio/training_log_audio_{scheme}_{date}.csv, column
#: val_accuracy. One 10-epoch run per scheme on 2025-02-10 (13-57-32 aliased, 14-05-42 burst_noise,
#: 14-13-32 distorted, 14-21-45 extreme_noise, 14-29-55 multi_band); for burst_noise also the first 10
#: epochs of the 100-epoch run of the same day (16-42-43) and the 10-epoch run of 2025-03-22 18-26-47.
THESIS_VAL = {
    "aliased": [77.48, 80.9, 86.42, 88.98, 90.16, 88.28, 85.02, 87.96, 90.2, 90.88],
    "burst_noise": [80.04, 87.24, 88.08, 87.36, 91.14, 90.32, 86.84, 92.36, 93.44, 93.22],
    "burst_noise (2025-02-10, 100-epoch run)": [79.72, 85.42, 87.1, 88.7, 88.96, 89.96, 90.9, 90.28, 92.56, 90.48],
    "burst_noise (2025-03-22)": [10.4, 84.16, 88.8, 88.88, 88.8, 89.38, 90.76, 89.68, 91.7, 91.34],
    "distorted": [96.6, 96.94, 96.58, 98.8, 98.66, 98.64, 94.5, 98.84, 98.02, 99.4],
    "extreme_noise": [87.28, 93.3, 93.8, 95.26, 95.56, 96.44, 96.66, 95.56, 96.82, 97.06],
    "multi_band": [56.06, 84.08, 84.88, 87.36, 89.76, 88.14, 95.52, 95.02, 86.1, 95.88],
}
#: The same logs' train_loss column (mean cross-entropy over the epoch's batches), 4 decimals.
THESIS_TRAIN_LOSS = {
    "aliased": [1.3035, 0.6201, 0.4871, 0.4157, 0.3654, 0.3347, 0.3103, 0.2863, 0.2536, 0.2338],
    "burst_noise": [1.1433, 0.5692, 0.4400, 0.3597, 0.3071, 0.2671, 0.2358, 0.2083, 0.1869, 0.1701],
    "burst_noise (2025-02-10, 100-epoch run)": [1.2370, 0.5911, 0.4562, 0.3792, 0.3252, 0.2848, 0.2516, 0.2265,
                                                0.2042, 0.1848],
    "burst_noise (2025-03-22)": [1.1983, 0.4739, 0.3312, 0.2611, 0.2073, 0.1774, 0.1528, 0.1303, 0.1151, 0.0973],
    "distorted": [0.4783, 0.0942, 0.0506, 0.0377, 0.0321, 0.0280, 0.0213, 0.0158, 0.0193, 0.0165],
    "extreme_noise": [0.9943, 0.3325, 0.2266, 0.1738, 0.1416, 0.1154, 0.0968, 0.0875, 0.0714, 0.0648],
    "multi_band": [1.1120, 0.5199, 0.3711, 0.2850, 0.2377, 0.2009, 0.1732, 0.1497, 0.1354, 0.1198],
}

#: The 5 held-out ESC-50 categories in the order the notebook's ``random.Random(0).sample`` returns them:
#: the test noise list is their clips, category after category (40 each in the full ESC-50).
TEST_CATEGORIES = ["footsteps", "water_drops", "glass_breaking", "brushing_teeth", "crow"]

#: Rank (0-39) within its category, in ESC-50's ``meta/esc50.csv`` row order, of every test-category clip
#: in ../shared/data/esc50_512. Source: the ESC-50 metadata (karolpiczak/ESC-50 meta/esc50.csv, read from
#: a public copy): rows are sorted by file name and every category has 8 clips in each of the 5 folds, so
#: a fold-4 clip's rank is 24 + its rank among its category's fold-4 clips; 1-17092-B-27 follows
#: 1-17092-A-27 as the category's second row, and 5-238938-A-27 is brushing_teeth's last row.
#: In the full list, clip ``name`` of category ``c`` sits at ``40 * TEST_CATEGORIES.index(c) + rank``.
ESC50_TEST_RANK = {
    **{name: 24 + k for k, name in enumerate([
        "4-117627-A-25.wav", "4-117630-A-25.wav", "4-194979-A-25.wav", "4-194981-A-25.wav", "4-198962-A-25.wav",
        "4-198962-B-25.wav", "4-218304-A-25.wav", "4-218304-B-25.wav"])},
    **{name: 24 + k for k, name in enumerate([
        "4-168155-A-15.wav", "4-174797-A-15.wav", "4-188293-A-15.wav", "4-188293-B-15.wav", "4-197871-A-15.wav",
        "4-212604-A-15.wav", "4-212604-B-15.wav", "4-212604-C-15.wav"])},
    **{name: 24 + k for k, name in enumerate([
        "4-204115-A-39.wav", "4-204119-A-39.wav", "4-204121-A-39.wav", "4-204123-A-39.wav", "4-204777-A-39.wav",
        "4-204777-B-39.wav", "4-204777-C-39.wav", "4-212698-A-39.wav"])},
    "1-17092-B-27.wav": 1,
    **{name: 24 + k for k, name in enumerate([
        "4-144468-A-27.wav", "4-144468-B-27.wav", "4-154405-A-27.wav", "4-154405-B-27.wav", "4-172500-A-27.wav",
        "4-172500-B-27.wav", "4-172500-C-27.wav", "4-172500-D-27.wav"])},
    "5-238938-A-27.wav": 39,
    **{name: 24 + k for k, name in enumerate([
        "4-136381-A-9.wav", "4-138344-A-9.wav", "4-145081-A-9.wav", "4-156227-A-9.wav", "4-159426-A-9.wav",
        "4-173865-A-9.wav", "4-173865-B-9.wav", "4-188287-A-9.wav"])},
}

#: Rows of the thesis' burst_noise audio-only test log (wardvdnb/Multimodal-SSL-AVMNIST,
#: AVMNIST_Experiments/archive/test_logs/audio/test_results_audio_burst_noise_2025-02-10 14-13-12.csv,
#: written after the 10-epoch run of 14-05-42; one row per test item, in item order): first row ->
#: (true_label column, predicted_label column), one digit per row. Only these stretches were read: they
#: hold the 64 items whose noise clip is also at hand in esc50_512 (items 2704-2711, 2864-2871, ...), and
#: the rows around them.
THESIS_TEST_ROWS = {
    2688: ("153891979552746011104476300430619613812562736019766892958310076621693",
           "153891971553746011102456300130619613812862736019064892958240076621893"),
    2849: ("85783958998628923611893407964141349314774729308884044152834952815379",
           "85783958998628923614893407964141349314774729338884044152834952315379"),
    3008: ("973780130461025844115466069262717940038223160577926797868846841281394",
           "171730130461025844615466069262717940038233100577926797868846845281394"),
    3169: ("405464123002665708647907342188592718882760127108360536287014211444471",
           "425474123000666708344907343588552718882730127108330536287014211444471"),
    6890: ("41060968856119892355942194913920604060123456789012345678901234567893",
           "41060968653919892395942194913928604060923056749012355679101234567893"),
    7050: ("66012345678901234567890123456789740401795142894378244336995867068263",
           "66012345678901234567890123456789770401795142898378244336999877068263"),
    7210: ("63263301478031901912701382927655998291323431909368701058277012345678",
           "63263309418031901912701382927655958291323431909368705058277012345678"),
    7370: ("88513749889098902656747541353123456123460124567817241414968453784335",
           "88513749889098992656747541353123456123462124567817241414968453784335"),
}


def thesis_split(n_train: int, n_val: int) -> Tuple[np.ndarray, np.ndarray]:
    """Train and validation item indices of the train split, as torch's ``random_split`` draws them.

    ``random_split(dataset, [55_000, 5_000])`` takes a permutation of the 60,000 indices from the
    global generator (seeded by ``set_seed(1)``) and cuts it into the two lengths, in order.
    """
    order = torch.randperm(60_000, generator=torch.Generator().manual_seed(THESIS_SPLIT_SEED)).numpy()
    return order[:55_000][:n_train], order[55_000:][:n_val]


def dataset_options(src: dict, args) -> dict:
    options = dict(seed=args.seed, clip_tables="auto")
    for key in ("recordings", "noises"):
        if key in src:
            options[key] = src[key]
    if src["labels"] is not None:
        options["labels"] = src["labels"]
    return options


def split_items(src: dict, scheme: str, split: str, args) -> Tuple[np.ndarray, np.ndarray]:
    """All items of a split as an (N, 112, 112) uint8 array and their labels, read once.

    With ``--items-dir`` the array is kept there as ``.npy`` (written under a temporary name and
    renamed when complete) and mapped on later runs instead of being generated again.
    """
    dataset = AVMNISTAudioDataset(src["root"], split, scheme, **dataset_options(src, args))
    labels = np.asarray(dataset.labels, dtype=np.int64)
    path = None
    if args.items_dir:
        noises = Path(src.get("noises") or Path(src["root"]) / "noise_recordings")
        tag = f"{scheme}_{split}_seed{args.seed}_{noises.name}-{len(dataset.index.noises)}clips.npy"
        path = Path(args.items_dir) / tag
        if path.is_file():
            items = np.load(path, mmap_mode="r")
            if items.shape == (len(dataset), 112, 112) and items.dtype == np.uint8:
                return items, labels
            sys.exit(f"{path}: holds {items.shape} {items.dtype}, not the {len(dataset)} items of {split}; remove it")
        path.parent.mkdir(parents=True, exist_ok=True)
    return read_items(dataset, range(len(dataset)), args.workers, path), labels


def read_items(dataset, indices, workers: int, path: Optional[Path] = None) -> np.ndarray:
    """Items ``indices`` of ``dataset`` through a DataLoader, into memory or into ``path`` (.npy)."""
    indices = list(indices)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=256,
                                         num_workers=workers)
    if path is None:
        out = np.empty((len(indices), 112, 112), dtype=np.uint8)
    else:
        partial = path.with_name(path.name + ".partial")
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(indices), 112, 112))
    start = 0
    for audio, _ in loader:
        out[start:start + len(audio)] = audio.reshape(len(audio), 112, 112).numpy()
        start += len(audio)
    if path is not None:
        out.flush()
        del out
        os.replace(partial, path)
        return np.load(path, mmap_mode="r")
    return out


def per_epoch_reader(src: dict, scheme: str, indices: np.ndarray, args):
    """For ``--draws per_epoch``: a function of the epoch giving the train items drawn for that epoch."""
    if "draws" not in inspect.signature(AVMNISTAudioDataset.__init__).parameters:
        sys.exit("--draws per_epoch needs AVMNISTAudioDataset(..., draws='per_epoch'), which the installed "
                 "avmnist_torch does not have (no 'draws' parameter); use --draws fixed")
    dataset = AVMNISTAudioDataset(src["root"], "train", scheme, draws="per_epoch", **dataset_options(src, args))

    def read(epoch: int) -> torch.Tensor:
        dataset.set_epoch(epoch)
        return torch.from_numpy(read_items(dataset, indices, args.workers))

    return read


def evaluate(model: nn.Module, items: torch.Tensor, labels: torch.Tensor, device: str) -> Tuple[float, float, np.ndarray]:
    """(mean of the batches' losses, accuracy %, predicted labels), batches of 128 in order."""
    model.eval()
    losses, predictions = [], []
    with torch.no_grad():
        for start in range(0, len(labels), 128):
            x = items[start:start + 128].to(device).float().div_(255).unsqueeze(1)
            out = model(x)
            losses.append(float(F.cross_entropy(out, labels[start:start + 128].to(device))))
            predictions.append(out.argmax(1).cpu())
    predicted = torch.cat(predictions)
    return float(np.mean(losses)), 100.0 * float((predicted == labels).float().mean()), predicted.numpy()


def thesis_train(data: Dict[str, Tuple[torch.Tensor, torch.Tensor]], epochs: int, seed: int, device: str,
                 reader=None, report=None, checkpoint: Optional[Path] = None) -> dict:
    """Train a fresh ``ThesisAudioNet`` as the thesis' ``training_structures/unimodal.py`` does.

    The test items are scored after every epoch (the thesis scores them once, at the end): the
    test accuracy of the best-validation checkpoint is the test row of the epoch that set it.
    ``reader(epoch)``, when given, supplies that epoch's train items (``--draws per_epoch``).
    ``checkpoint``, when given, is rewritten after every epoch with everything the next epoch
    depends on (weights, optimiser, both random generators, history), and a run that finds it
    continues from it: a resumed run gives the figures the uninterrupted run would have.
    """
    torch.manual_seed(seed)
    model = ThesisAudioNet().to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    shuffle = torch.Generator().manual_seed(seed)
    train_x, train_y = data["train"]
    history = []
    best = {"val_acc": 0.0}
    predicted = None
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        shuffle.set_state(state["shuffle"])
        torch.set_rng_state(state["torch_rng"])
        history, best, predicted = state["history"], state["best"], state["predicted"]
        print(f"  resumed from {checkpoint} after epoch {len(history)}", flush=True)
    for epoch in range(len(history), epochs):
        t0 = time.perf_counter()
        if reader is not None:
            train_x = reader(epoch)
        model.train()
        losses = []
        for idx in batches(len(train_y), 128, shuffle):
            x = train_x[idx].to(device).float().div_(255).unsqueeze(1)
            loss = F.cross_entropy(model(x), train_y[idx].to(device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        val_loss, val_acc, _ = evaluate(model, *data["val"], device)
        test_loss, test_acc, predicted = evaluate(model, *data["test"], device)
        row = dict(epoch=epoch + 1, train_loss=float(np.mean(losses)), val_loss=val_loss, val_acc=val_acc,
                   test_loss=test_loss, test_acc=test_acc, seconds=time.perf_counter() - t0)
        history.append(row)
        if val_acc > best["val_acc"]:  # the thesis saves the model on a strictly better validation accuracy
            best = dict(epoch=epoch + 1, val_acc=val_acc, test_acc=test_acc, predicted=predicted)
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            partial = checkpoint.with_name(checkpoint.name + ".partial")
            torch.save(dict(model=model.state_dict(), optimiser=optimiser.state_dict(), shuffle=shuffle.get_state(),
                            torch_rng=torch.get_rng_state(), history=history, best=best, predicted=predicted), partial)
            os.replace(partial, checkpoint)
        if report is not None:
            report(history, best, predicted)
    return dict(history=history, best=best, last_predicted=predicted)


def test_noises(src: dict, scheme: str, args) -> Tuple[List[str], np.ndarray, np.ndarray, np.ndarray]:
    """For the test split: each item's noise category and clip, and whether its clip is the one the thesis' item had.

    Returns (the categories' names; a bool array: True where the notebook run on the full ESC-50 gave
    item ``i`` the same clip, ``full[i mod 200]``, as this data's ``ours[i mod n]``; the category of
    each item's noise; the file name of each item's noise). Clips absent from ``ESC50_TEST_RANK``
    never count as the same.
    """
    import pandas as pd

    dataset = AVMNISTAudioDataset(src["root"], "test", scheme, **dataset_options(src, args))
    index = dataset.index
    n = len(index)
    if not index.noises:
        return [], np.zeros(n, dtype=bool), np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    noises_dir = Path(index.noises[0]).parent.parent
    table = pd.read_csv(noises_dir / "meta" / "esc50.csv")
    category_of = dict(zip(table["filename"], table["category"]))
    names = [Path(path).name for path in index.noises]
    categories = np.array([category_of[name] for name in names], dtype=object)
    clips = np.array(names, dtype=object)[index.noise_ids]
    if list(index.test_categories) != TEST_CATEGORIES:
        return list(index.test_categories), np.zeros(n, dtype=bool), categories[index.noise_ids], clips
    full_position = np.array([40 * TEST_CATEGORIES.index(category_of[name]) + ESC50_TEST_RANK[name]
                              if name in ESC50_TEST_RANK else -1 for name in names])
    same = full_position[index.noise_ids] == np.arange(n) % 200
    return list(index.test_categories), same, categories[index.noise_ids], clips


def per_clip(predicted: np.ndarray, labels: np.ndarray, clips: np.ndarray) -> Dict[str, float]:
    """Test accuracy (%) of the items that carry each noise clip, lowest first."""
    n = len(predicted)
    right = predicted == labels[:n]
    accuracy = {str(c): 100.0 * float(right[clips[:n] == c].mean()) for c in np.unique(clips[:n].astype(str))}
    return dict(sorted(accuracy.items(), key=lambda item: item[1]))


def per_category(predicted: np.ndarray, labels: np.ndarray, categories: np.ndarray, order: List[str]) -> Dict[str, float]:
    n = len(predicted)
    return {c: 100.0 * float((predicted[categories[:n] == c] == labels[:n][categories[:n] == c]).mean())
            for c in order if (categories[:n] == c).any()}


def thesis_agreement(predicted: np.ndarray, labels: np.ndarray, same: np.ndarray) -> Optional[dict]:
    """Our predictions against the thesis' logged ones, on the logged rows read (``THESIS_TEST_ROWS``).

    Split by whether the item's noise clip is the thesis' one; the masks' positions are drawn anew
    (per item here, in sequence in the notebook), so even a same-clip item is not the same spectrogram.
    """
    rows, theirs, true = [], [], []
    for first, (true_digits, predicted_digits) in THESIS_TEST_ROWS.items():
        for k, (t, p) in enumerate(zip(true_digits, predicted_digits)):
            if first + k < len(predicted):
                rows.append(first + k)
                true.append(int(t))
                theirs.append(int(p))
    if not rows:
        return None
    rows, theirs, true = np.array(rows), np.array(theirs), np.array(true)
    if not (labels[rows] == true).all():
        sys.exit("THESIS_TEST_ROWS' true labels differ from this data's test labels: the rows are not aligned")
    ours = predicted[rows]
    out = {}
    for name, mask in (("same clip", same[rows]), ("other clip", ~same[rows])):
        if mask.any():
            out[name] = dict(items=int(mask.sum()), agree=100.0 * float((ours[mask] == theirs[mask]).mean()),
                             ours=100.0 * float((ours[mask] == true[mask]).mean()),
                             thesis=100.0 * float((theirs[mask] == true[mask]).mean()),
                             both_wrong=int(((ours[mask] != true[mask]) & (theirs[mask] != true[mask])).sum()),
                             both_wrong_same_label=int(((ours[mask] != true[mask]) & (ours[mask] == theirs[mask])).sum()))
    # the thesis' item i had noise clip i mod 200 of the full list, 40 clips per category
    theirs_category = np.array(TEST_CATEGORIES)[(rows % 200) // 40]
    out["thesis by category"] = {c: dict(items=int((theirs_category == c).sum()),
                                         thesis=100.0 * float((theirs[theirs_category == c] == true[theirs_category == c]).mean()))
                                 for c in TEST_CATEGORIES if (theirs_category == c).any()}
    return out


def run_thesis(src: dict, args, epochs: int, sizes: Tuple[int, int, int]) -> None:
    n_train, n_val, n_test = sizes
    train_idx, val_idx = thesis_split(n_train, n_val)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    results = {}
    for scheme in args.schemes:
        t0 = time.perf_counter()
        train_items, train_labels = split_items(src, scheme, "train", args)
        test_items, test_labels = split_items(src, scheme, "test", args)
        read_s = time.perf_counter() - t0
        as_tensor = lambda items, labels, idx: (torch.from_numpy(np.ascontiguousarray(items[idx])),  # noqa: E731
                                                torch.from_numpy(labels[idx]))
        data = {"train": as_tensor(train_items, train_labels, train_idx),
                "val": as_tensor(train_items, train_labels, val_idx),
                "test": as_tensor(test_items, test_labels, np.arange(n_test))}
        del train_items, test_items
        reader = per_epoch_reader(src, scheme, train_idx, args) if args.draws == "per_epoch" else None
        order, same, categories, _ = test_noises(src, scheme, args)
        results[scheme] = {}
        for seed in args.seeds:
            print(f"{scheme}, seed {seed}: items read in {read_s:.0f} s; train {n_train:,} / val {n_val:,} / "
                  f"test {n_test:,}, {epochs} epochs", flush=True)

            def report(history, best, predicted, scheme=scheme, seed=seed):
                row = history[-1]
                print(f"  epoch {row['epoch']}: train loss {row['train_loss']:.3f}, val loss {row['val_loss']:.3f}, "
                      f"val {row['val_acc']:.2f}%, test {row['test_acc']:.2f}% ({row['seconds']:.0f} s)",
                      flush=True)
                results[scheme][str(seed)] = dict(history=history, best_epoch=best.get("epoch"),
                                                  best_val_acc=best["val_acc"], best_test_acc=best.get("test_acc"))
                save_results(args, results, epochs, sizes)
                if args.predictions:
                    folder = Path(args.predictions)
                    folder.mkdir(parents=True, exist_ok=True)
                    np.savez(folder / f"{scheme}_seed{seed}_epoch{row['epoch']}.npz", predicted=predicted.astype(np.int8),
                             labels=data["test"][1].numpy().astype(np.int8))

            checkpoint = (Path(args.checkpoints) / f"{scheme}_seed{seed}_draws-{args.draws}.pt"
                          if args.checkpoints else None)
            run = thesis_train(data, epochs, seed, args.device, reader=reader, report=report, checkpoint=checkpoint)
            labels = data["test"][1].numpy()
            record = results[scheme][str(seed)]
            for tag, predicted in (("best", run["best"].get("predicted")), ("last", run["last_predicted"])):
                if predicted is None:
                    continue
                record[f"test_by_category_{tag}"] = per_category(predicted, labels, categories, order)
                if scheme == "burst_noise":
                    record[f"thesis_agreement_{tag}"] = thesis_agreement(predicted, labels, same)
            record["same_clip_items"] = int(same[:n_test].sum())
            save_results(args, results, epochs, sizes)
            print("  by noise category (best-val checkpoint): " + ", ".join(
                f"{c} {a:.1f}%" for c, a in record.get("test_by_category_best", {}).items()), flush=True)
            for tag in ("best", "last"):
                agreement = record.get(f"thesis_agreement_{tag}")
                if agreement:
                    print(f"  against the thesis' logged predictions ({tag}): " + "; ".join(
                        f"{k}: {v['items']} items, agree {v['agree']:.1f}%, ours {v['ours']:.1f}%, "
                        f"thesis {v['thesis']:.1f}%" for k, v in agreement.items() if "agree" in v), flush=True)
    print()
    print(f"command: python benchmarks/downstream.py {' '.join(sys.argv[1:])}")
    print(f"device: {args.device} ({device_description(args)}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; epochs {epochs}; items train {n_train:,} / val {n_val:,} / "
          f"test {n_test:,}; item seed {args.seed}; noises {src.get('noises', 'root')}")
    print()
    print("| scheme | seed | val % per epoch | best epoch | test % (best-val checkpoint) | test % (last epoch) |")
    print("|---|---|---|---|---|---|")
    for scheme, runs in results.items():
        for seed, run in runs.items():
            vals = ", ".join(f"{r['val_acc']:.1f}" for r in run["history"])
            print(f"| {scheme} | {seed} | {vals} | {run['best_epoch']} | {run['best_test_acc']:.1f} | "
                  f"{run['history'][-1]['test_acc']:.1f} |")


def best_row(history: List[dict]) -> dict:
    """The epoch row of the best-validation checkpoint: the highest validation accuracy, the earliest on a
    tie (the thesis saves on a strictly better accuracy)."""
    return max(history, key=lambda r: (r["val_acc"], -r["epoch"]))


def report(src: dict, args) -> None:
    """Tables and a plot from finished (or stopped) ``--model thesis`` runs: their ``--json`` files and
    the per-epoch test predictions under ``--report-predictions``."""
    if args.report_predictions and len(args.report_predictions) not in (1, len(args.report)):
        sys.exit("--report-predictions: give one folder, or one per --report file in the same order")
    runs = []
    for k, path in enumerate(args.report):
        record = json.loads(Path(path).read_text())
        if args.report_predictions:
            record["predictions"] = args.report_predictions[k if len(args.report_predictions) > 1 else 0]
        for scheme, seeds in record["results"].items():
            for seed, run in seeds.items():
                runs.append((scheme, int(seed), run, record))
    noise_info = {}
    print("| scheme | run | train items | epochs | val % per epoch (ours) | val % per epoch (thesis log) | best epoch "
          "| test % best-val checkpoint | test % last epoch | thesis test % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for scheme, seed, run, record in runs:
        history = run["history"]
        ours = ", ".join(f"{r['val_acc']:.1f}" for r in history)
        theirs = ", ".join(f"{v:.1f}" for v in THESIS_VAL[scheme][:max(len(history), 3)])
        best = best_row(history)
        run_name = f"seed {seed}" + (", per-epoch draws" if record.get("draws") == "per_epoch" else "")
        print(f"| {scheme} | {run_name} | {record['sizes'][0]:,} | {len(history)} | {ours} | {theirs} | {best['epoch']} | "
              f"{best['test_acc']:.1f} | {history[-1]['test_acc']:.1f} | {THESIS[scheme]} |")
    draws_table(runs)
    epoch_tables(runs)
    print()
    print("Training loss per epoch (ours / thesis log):")
    for scheme, seed, run, record in runs:
        ours = ", ".join(f"{r['train_loss']:.3f}" for r in run["history"])
        theirs = ", ".join(f"{v:.3f}" for v in THESIS_TRAIN_LOSS[scheme][:len(run["history"])])
        print(f"- {scheme}, seed {seed}: {ours} / {theirs}")
    print()
    for scheme, seed, run, record in runs:
        history = run["history"]
        best = best_row(history)
        if scheme not in noise_info:
            noise_info[scheme] = test_noises(src, scheme, args)
        order, same, categories, clips = noise_info[scheme]
        for tag, epoch in (("best-val checkpoint", best["epoch"]), ("last epoch", history[-1]["epoch"])):
            if tag == "last epoch" and epoch == best["epoch"]:
                continue
            found = Path(record.get("predictions", "")) / f"{scheme}_seed{seed}_epoch{epoch}.npz"
            if not found.is_file():
                continue
            saved = np.load(found)
            predicted, labels = saved["predicted"].astype(np.int64), saved["labels"].astype(np.int64)
            by_category = per_category(predicted, labels, categories, order)
            head = min(2_000, len(predicted))
            print(f"{scheme}, seed {seed}, {tag} (epoch {epoch}): test {100.0 * float((predicted == labels).mean()):.1f}% "
                  f"on {len(predicted):,} items, {100.0 * float((predicted[:head] == labels[:head]).mean()):.1f}% on "
                  f"items 0-{head - 1:,}")
            if by_category:
                print(f"{scheme}, seed {seed}, {tag} (epoch {epoch}), test accuracy by noise category: "
                      + ", ".join(f"{c} {a:.1f}%" for c, a in by_category.items()))
                by_clip = per_clip(predicted, labels, clips)
                accuracies = np.array(list(by_clip.values()))
                print(f"  by noise clip ({len(by_clip)} clips): median {np.median(accuracies):.1f}%, quartiles "
                      f"{np.percentile(accuracies, 25):.1f}-{np.percentile(accuracies, 75):.1f}%; lowest "
                      + ", ".join(f"{c} {a:.1f}%" for c, a in list(by_clip.items())[:3]))
            if scheme == "burst_noise" and len(predicted) == 10_000:
                agreement = thesis_agreement(predicted, labels, same)
                by_category = agreement.pop("thesis by category")
                print("  against the thesis' logged predictions: " + "; ".join(
                    f"{k}: {v['items']} items, same label {v['agree']:.1f}%, ours right {v['ours']:.1f}%, "
                    f"thesis right {v['thesis']:.1f}%, both wrong {v['both_wrong']} (of which the same wrong label "
                    f"{v['both_wrong_same_label']})" for k, v in agreement.items()))
                print("  the thesis on the logged rows read, by its items' noise category: " + ", ".join(
                    f"{c} {v['thesis']:.1f}% ({v['items']} items)" for c, v in by_category.items()))
                print(f"  items whose noise is the thesis' clip: {int(same.sum())} of {len(same):,}")
    if args.plot:
        plot(runs, Path(args.plot))
        print(f"\nplot: {args.plot}")


def epoch_tables(runs) -> None:
    """Per scheme and seed (fixed draws, the full 55,000-item cut): each epoch's validation and test accuracy
    and training loss beside the thesis' log, as docs/downstream.md shows them."""
    for scheme, seed, run, record in sorted(runs, key=lambda r: (SCHEMES.index(r[0]), r[1])):
        if record.get("draws", "fixed") != "fixed" or record["sizes"][0] != 55_000:
            continue
        print(f"\n{scheme}, seed {seed} (thesis' test accuracy after 10 epochs: {THESIS[scheme]}%)\n")
        print("| epoch | val %, ours | val %, thesis log | test %, ours | train loss, ours / thesis |")
        print("|---|---|---|---|---|")
        for row in run["history"]:
            k = row["epoch"] - 1
            print(f"| {row['epoch']} | {row['val_acc']:.1f} | {THESIS_VAL[scheme][k]:.1f} | {row['test_acc']:.1f} | "
                  f"{row['train_loss']:.3f} / {THESIS_TRAIN_LOSS[scheme][k]:.3f} |")


def draws_table(runs) -> None:
    """Fixed items against per-epoch draws: one row per scheme and seed run both ways at the same sizes
    and length (``--draws fixed`` and ``--draws per_epoch``), test accuracy of the best-validation checkpoint."""
    by_key = {}
    for scheme, seed, run, record in runs:
        key = (scheme, seed, tuple(record["sizes"]), len(run["history"]))
        by_key.setdefault(key, {})[record.get("draws", "fixed")] = run["history"]
    pairs = sorted(((key, found) for key, found in by_key.items() if {"fixed", "per_epoch"} <= set(found)),
                   key=lambda pair: (SCHEMES.index(pair[0][0]), pair[0][1:]))
    if not pairs:
        return
    print()
    print("| scheme | seed | train / val / test items | epochs | val % per epoch, fixed | val % per epoch, per-epoch draws "
          "| test %, fixed | test %, per-epoch draws | difference |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (scheme, seed, sizes, epochs), found in pairs:
        tests = {draws: best_row(history)["test_acc"] for draws, history in found.items()}
        vals = {d: ", ".join(f"{r['val_acc']:.1f}" for r in h) for d, h in found.items()}
        print(f"| {scheme} | {seed} | {' / '.join(f'{n:,}' for n in sizes)} | {epochs} | {vals['fixed']} | "
              f"{vals['per_epoch']} | {tests['fixed']:.1f} | {tests['per_epoch']:.1f} | "
              f"{tests['per_epoch'] - tests['fixed']:+.1f} |")


def plot(runs, path: Path) -> None:
    """Validation accuracy per epoch, ours (solid) and our test accuracy (dashed) against the thesis' logs.

    The x axis counts training items seen in units of the thesis' epoch (55,000 items), so that runs on a
    train subset sit where their number of updates puts them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schemes = sorted({r[0] for r in runs}, key=lambda s: (s != "burst_noise", SCHEMES.index(s)))
    columns = min(3, len(schemes))
    rows = -(-len(schemes) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(schemes):]:
        ax.set_visible(False)
    for ax, scheme in zip(axes.flat, schemes):
        for name, values in THESIS_VAL.items():
            if name.split(" ")[0] == scheme:
                style = dict(color="black", lw=2) if name == scheme else dict(color="grey", lw=1, alpha=0.7)
                ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=f"thesis log: {name.replace(scheme, '').strip() or '10-epoch run'}",
                        **style)
        for k, (s, seed, run, record) in enumerate(r for r in runs if r[0] == scheme):
            # x: training items seen, in thesis epochs (55,000 items), so that a subset run sits where its updates do
            epochs = [r["epoch"] * record["sizes"][0] / 55_000 for r in run["history"]]
            colour = f"C{k}"
            size = f"{record['sizes'][0] // 1000}k train"
            ax.plot(epochs, [r["val_acc"] for r in run["history"]], marker="s", ms=4, color=colour,
                    label=f"ours, seed {seed}, {size}: val")
            ax.plot(epochs, [r["test_acc"] for r in run["history"]], marker="^", ms=4, ls="--", color=colour,
                    label=f"ours, seed {seed}: test")
        low, _, high = THESIS[scheme].partition("-")
        low, high = float(low), float(high or low)
        ax.errorbar([10.35], [(low + high) / 2], yerr=[[(high - low) / 2]], fmt="D", ms=4, color="red", capsize=3,
                    label=f"thesis test, 10 epochs: {THESIS[scheme]}")
        ax.set_title(scheme)
        ax.set_xlabel("training items seen / 55,000 (thesis epochs)")
        ax.set_xticks(range(1, 11))
        shown = THESIS_VAL[scheme] + [r[key] for s, _, run, _ in runs if s == scheme for r in run["history"]
                                      for key in ("val_acc", "test_acc")]
        ax.set_ylim(max(0, 10 * (min(shown) // 10) - 5), 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    for row in axes:
        row[0].set_ylabel("accuracy %")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_results(args, results: dict, epochs: int, sizes: Tuple[int, int, int]) -> None:
    """Write the results so far to ``--json`` (whole file replaced, so a stopped run leaves what it had)."""
    if not args.json:
        return
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = dict(command=" ".join(sys.argv), epochs=epochs, sizes=list(sizes), item_seed=args.seed,
                  predictions=args.predictions,
                  device=f"{args.device} ({device_description(args)})", torch=torch.__version__,
                  threads=torch.get_num_threads(), draws=args.draws, results=results)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(record, indent=1))
    os.replace(partial, path)


def device_description(args) -> str:
    if args.device.startswith("cuda"):
        return torch.cuda.get_device_name()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="data root (default ../shared/data)")
    parser.add_argument("--schemes", nargs="+", default=SCHEMES, choices=SCHEMES)
    parser.add_argument("--quick", action="store_true", help="1 epoch, 2,000/500/1,000 items")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--sizes", type=int, nargs=3, metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=["audio", "image", "fusion"], choices=["audio", "image", "fusion"])
    parser.add_argument("--model", choices=["gp_lenet", "thesis"], default="gp_lenet",
                        help="gp_lenet: the MFAS networks above (audio, image, fusion); thesis: the thesis' own "
                             "audio-only network and protocol (random 55,000/5,000 split, best-validation "
                             "checkpoint, per-epoch figures)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1],
                        help="--model thesis: training seeds, one run each (the thesis ran 1, 2 and 3)")
    parser.add_argument("--noises", help="ESC-50 folder to draw noises from (default ../shared/data/esc50, or "
                                         "ROOT/noise_recordings with --root)")
    parser.add_argument("--items-dir", help="--model thesis: keep each split's items here as .npy, reused later")
    parser.add_argument("--json", help="--model thesis: write per-epoch results here")
    parser.add_argument("--checkpoints", help="--model thesis: keep each run's state here after every epoch, and "
                                              "resume a run from it (the same command continues a stopped run)")
    parser.add_argument("--predictions", help="--model thesis: write each epoch's test predictions here (.npz)")
    parser.add_argument("--threads", type=int, help="torch threads (default: at most 2 on CPU)")
    parser.add_argument("--report", nargs="+", metavar="JSON",
                        help="print tables (and --plot) from finished --model thesis runs' --json files")
    parser.add_argument("--report-predictions", nargs="+", default=[], metavar="DIR",
                        help="with --report: the runs' --predictions folders, one for all or one per --report file")
    parser.add_argument("--plot", help="with --report: draw the validation curves against the thesis' here (PNG)")
    parser.add_argument("--draws", choices=["fixed", "per_epoch"], default="fixed",
                        help="per_epoch: read the train items anew every epoch, the dataset's draws for that epoch "
                             "(audio-only rows; image and fusion rows keep fixed items)")
    args = parser.parse_args(argv)
    epochs = args.epochs or (1 if args.quick else 10)
    sizes = tuple(args.sizes) if args.sizes else ((2_000, 500, 1_000) if args.quick else (55_000, 5_000, 10_000))
    if args.device == "cpu":
        torch.set_num_threads(args.threads or min(2, torch.get_num_threads()))
    src = sources(args)
    if args.draws == "per_epoch" and "draws" not in inspect.signature(AVMNISTAudioDataset.__init__).parameters:
        sys.exit("--draws per_epoch needs AVMNISTAudioDataset(..., draws='per_epoch'), which the installed "
                 "avmnist_torch does not have (no 'draws' parameter); use --draws fixed")
    if args.report:
        report(src, args)
        return
    if args.model == "thesis":
        run_thesis(src, args, epochs, sizes)
        return
    train_images = has_images(src, "train")
    image_protocol = "standard" if train_images else "test-only"
    if not train_images and any(m in args.models for m in ("image", "fusion")):
        print("MNIST's train images are not there: the image-only and fusion rows train and test on parts of the "
              "test split (train 0-6,999, val 7,000-7,999, test 8,000-9,999), not comparable with the thesis.",
              flush=True)
    device_name = (torch.cuda.get_device_name() if args.device.startswith("cuda")
                   else f"{platform.machine()}, {os.cpu_count()} CPUs")
    rows = []
    image_result = None
    for scheme in args.schemes:
        t0 = time.perf_counter()
        row = {"scheme": scheme}
        need_pair = any(m in args.models for m in ("image", "fusion"))
        std = None
        if "audio" in args.models or train_images:
            std = load(src, scheme, protocol("standard", sizes), train_images and need_pair, args)
        side = std
        if need_pair and not train_images:
            side = load(src, scheme, protocol("test-only", sizes), True, args)
        read_s = time.perf_counter() - t0
        if "audio" in args.models:
            reader = (per_epoch_reader(src, scheme, np.asarray(protocol("standard", sizes)["train"][1]), args)
                      if args.draws == "per_epoch" else None)
            row["audio"] = train("audio", std, epochs, args.device, args.seed, reader=reader)
        if "image" in args.models and image_result is None:
            image_result = train("image", side, epochs, args.device, args.seed)
        if "fusion" in args.models:
            row["fusion"] = train("fusion", side, epochs, args.device, args.seed)
        row["read_s"] = read_s
        rows.append(row)
        print(f"{scheme}: " + ", ".join(f"{k} test {v[1]:.1f}% (val {v[0]:.1f}%, {v[2]:.0f} s)"
                                        for k, v in row.items() if isinstance(v, tuple))
              + f"; items read in {read_s:.0f} s", flush=True)

    n_train, n_val, n_test = sizes
    print()
    print(f"command: python benchmarks/downstream.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"device: {args.device} ({device_name}), torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"epochs {epochs}; items train {n_train:,} / val {n_val:,} / test {n_test:,}; seed {args.seed}")
    print(f"audio-only: standard protocol (train split 0-54,999, val 55,000-59,999, test split); "
          f"image-only and fusion: {image_protocol} protocol")
    print()
    print("| scheme | audio-only test % (ours) | audio-only test % (thesis, 10 epochs, full) | late fusion test % |")
    print("|---|---|---|---|")
    for row in rows:
        audio = f"{row['audio'][1]:.1f}" if "audio" in row else "-"
        fusion = f"{row['fusion'][1]:.1f}" if "fusion" in row else "-"
        print(f"| {row['scheme']} | {audio} | {THESIS[row['scheme']]} | {fusion} |")
    if image_result is not None:
        print(f"\nimage-only (pca25, GP_LeNet; the same for every scheme): test {image_result[1]:.1f}% "
              f"(val {image_result[0]:.1f}%)")


if __name__ == "__main__":
    main()
