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

MNIST's train images are needed for the image-only and fusion rows. Where they are absent
(../shared/data has only the test images), those rows use what exists and say so: a split of
the test split alone (train on test items 0-6,999, validate on 7,000-7,999, test on
8,000-9,999; with ``--quick`` the first 2,000 / 500 / 1,000 of those), so their figures are
not comparable with the thesis protocol.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

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


def train(kind: str, data: Dict[str, Subset], epochs: int, device: str, seed: int) -> Tuple[float, float, float]:
    """Train a fresh model; (best validation accuracy, test accuracy after the last epoch, seconds)."""
    torch.manual_seed(seed)
    model = {"audio": lambda: Classifier(AUDIO_CHANNELS), "image": lambda: Classifier(IMAGE_CHANNELS),
             "fusion": LateFusion}[kind]()
    model = kaiming_uniform(model).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    best_val = 0.0
    start = time.perf_counter()
    for _ in range(epochs):
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
        return dict(root=root, images=root, labels=None)
    data = REPO.parent / "shared" / "data"
    if not data.is_dir():
        sys.exit(f"no data: {data} is absent; pass --root DATA (see 'avmnist download')")
    return dict(root=None, images=data / "mnist", recordings=data / "fsdd" / "recordings", noises=data / "esc50",
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
            options = dict(seed=args.seed, noise_cache="auto")
            for key in ("recordings", "noises"):
                if key in src:
                    options[key] = src[key]
            if src["labels"] is not None:
                options["labels"] = src["labels"]
            if paired:
                datasets[split] = AVMNISTDataset(src["root"], split, scheme, images=src["images"], image="pca25",
                                                 **options)
            else:
                datasets[split] = AVMNISTAudioDataset(src["root"], split, scheme, **options)
        out[part] = read_subset(datasets[split], indices, args.workers, paired)
    return out


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
    args = parser.parse_args(argv)
    epochs = args.epochs or (1 if args.quick else 10)
    sizes = tuple(args.sizes) if args.sizes else ((2_000, 500, 1_000) if args.quick else (55_000, 5_000, 10_000))
    if args.device == "cpu":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    src = sources(args)
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
            row["audio"] = train("audio", std, epochs, args.device, args.seed)
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
