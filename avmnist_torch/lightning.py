"""``AVMNISTDataModule``: AV-MNIST for Lightning, generated on the fly, with the thesis' protocol.

Needs Lightning (``pip install "avmnist-torch[lightning]"``); the rest of the package does not. The protocol
restates the ``AVMNISTDataModule`` of the thesis repository (``AVMNIST_Experiments/utils/get_data.py``), which
reads exported files: train and validation from the train split (:func:`train_validation_split`), test the whole
test split (the thesis' ``random_split(test, [10000, 0])`` only reorders it), batches of 128, training shuffled,
persistent workers, image and audio as ``x / 255`` floats, labels as int64.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from .common import ParameterError, PathLike, check_seed, check_split
from .dataset import AVMNISTAudioDataset
from .paired import AVMNISTDataset, AVMNISTImageDataset
from .sampling import EpochSampler, epoch_target
from .transforms import DivideBy255

try:
    import lightning.pytorch as pl
except ImportError as err:  # lightning is an optional extra
    raise ImportError(
        "avmnist_torch.lightning needs Lightning, which is not installed: "
        "pip install 'avmnist-torch[lightning]' (or pip install lightning)"
    ) from err


#: What a batch holds, per modality.
MODALITIES = ("both", "audio", "image")
#: How validation is taken from the train split.
VALIDATION_SPLITS = ("random", "last")

_THESIS_SCALING = DivideBy255()


def train_validation_split(n: int, val_size: int = 5000, *, seed: int = 0,
                           how: str = "random") -> Tuple[np.ndarray, np.ndarray]:
    """The indices of the training and validation items among the `n` items of the train split.

    Parameters
    ----------
    n, val_size : int
        Items in the train split (60,000 for AV-MNIST), and how many of them validate (the thesis: 5,000).
    seed : int
        Seeds the permutation for ``how="random"``.
    how : {"random", "last"}
        ``"random"``: the thesis' ``random_split``, a ``torch.randperm(n)`` whose first ``n - val_size`` entries
        are train, the rest validation; drawn from a generator seeded by `seed`, it is what the thesis gets when
        ``torch.manual_seed(seed)`` is the last thing to touch torch's global generator before its ``setup``.
        ``"last"``: MultiBench's, the first ``n - val_size`` items train, the last `val_size` validation.

    Returns
    -------
    train, validation : numpy.ndarray
        int64 indices, in the order the split lists them.
    """
    if how not in VALIDATION_SPLITS:
        raise ParameterError(f"unknown validation split {how!r}: choose one of {', '.join(VALIDATION_SPLITS)}")
    if not isinstance(val_size, (int, np.integer)) or not 0 < val_size < n:
        raise ParameterError(f"val_size must be an integer from 1 to {n - 1} (the train split has {n:,} items), "
                             f"got {val_size!r}")
    seed = check_seed(seed)
    if how == "last":
        order = np.arange(n, dtype=np.int64)
    else:
        generator = torch.Generator()
        generator.manual_seed(seed)
        order = torch.randperm(n, generator=generator).numpy().astype(np.int64)
    cut = n - int(val_size)
    return order[:cut], order[cut:]


def _keywords(cls: type) -> set:
    return {name for name, p in inspect.signature(cls).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


#: The keyword arguments each modality's dataset takes (the paired one passes the audio's on).
_TAKES = {
    "audio": _keywords(AVMNISTAudioDataset),
    "both": _keywords(AVMNISTDataset) | _keywords(AVMNISTAudioDataset),
    "image": _keywords(AVMNISTImageDataset),
}
#: Set by the DataModule itself, so not accepted in ``dataset_options``.
_OWN = {"root", "split", "scheme", "seed", "image", "image_file", "transform", "transform_image",
        "transform_audio", "target_transform", "draws", "from_export"}


class AVMNISTDataModule(pl.LightningDataModule):
    """AV-MNIST as a ``LightningDataModule``: train/validation/test with the thesis' protocol.

    Parameters
    ----------
    root, scheme, seed, image, image_file
        As for :class:`~avmnist_torch.paired.AVMNISTDataset`.
    modality : {"both", "audio", "image"}
        What a batch holds: ``(image, audio, label)`` (MultiBench's and the thesis' order), ``(audio, label)``
        or ``(image, label)``.
    batch_size, num_workers : int
        Per loader; the thesis' 128 and 6.
    val_size, split_seed, validation
        Passed to :func:`train_validation_split` (`split_seed` also seeds the training order).
    shuffle : bool
        Shuffle the training items each epoch (by ``(split_seed, epoch)``).
    draws : str, optional
        Passed to the TRAINING dataset only; validation and test keep fixed items. The training loader's
        :class:`~avmnist_torch.sampling.EpochSampler` sets its epoch to the trainer's.
    from_export : "auto" or mapping, optional
        As for the audio dataset, or ``{"train": path, "test": path}``.
    transform_image, transform_audio : callable, optional
        Default :class:`~avmnist_torch.transforms.DivideBy255`, the thesis' ``x / 255``; None: the datasets' values.
    persistent_workers, pin_memory, multiprocessing_context
        As for ``DataLoader``, in every loader (a generating worker is costly to start).
    dataset_options : mapping, optional
        More keyword arguments (``renderer``, ``recordings``, ...); each dataset gets those it takes.
    """

    def __init__(
        self,
        root: PathLike,
        scheme: Any = "burst_noise",
        *,
        modality: str = "both",
        seed: int = 0,
        image: str = "pca25",
        image_file: Optional[PathLike] = None,
        batch_size: int = 128,
        num_workers: int = 6,
        val_size: int = 5000,
        split_seed: int = 0,
        validation: str = "random",
        shuffle: bool = True,
        draws: Optional[str] = None,
        from_export: Union[str, Mapping[str, PathLike], None] = None,
        transform_image: Optional[Callable] = _THESIS_SCALING,
        transform_audio: Optional[Callable] = _THESIS_SCALING,
        persistent_workers: bool = True,
        pin_memory: bool = False,
        multiprocessing_context: Optional[str] = None,
        dataset_options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__()
        if modality not in MODALITIES:
            raise ParameterError(f"unknown modality {modality!r}: choose one of {', '.join(MODALITIES)}")
        if validation not in VALIDATION_SPLITS:
            raise ParameterError(f"unknown validation split {validation!r}: choose one of {', '.join(VALIDATION_SPLITS)}")
        for name, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0)):
            if not isinstance(value, (int, np.integer)) or value < low:
                raise ParameterError(f"{name} must be a {'positive' if low else 'non-negative'} integer, got {value!r}")
        if draws is not None and modality == "image":
            raise ParameterError("draws= sets the audio's random draws; modality='image' has none")
        if from_export is not None:
            if modality == "image":
                raise ParameterError("from_export= serves the audio from exports; modality='image' has no audio "
                                     "(give image_file= to serve an exported image half)")
            if isinstance(from_export, str) and from_export != "auto" or not isinstance(from_export, (str, Mapping)):
                raise ParameterError("from_export must be 'auto' or a mapping {'train': path, 'test': path} "
                                     f"(one export per split), got {from_export!r}")
            if isinstance(from_export, Mapping):
                for split in from_export:
                    check_split(split)
        options = dict(dataset_options or {})
        taken = set().union(*_TAKES.values()) - _OWN
        unknown = sorted(set(options) - taken)
        if unknown:
            raise ParameterError(f"dataset_options: no dataset takes {', '.join(unknown)}; "
                                 f"the options are {', '.join(sorted(taken))}")
        self.root = root
        self.scheme = scheme
        self.modality = modality
        self.seed = seed
        self.image = image
        self.image_file = image_file
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.val_size = val_size
        self.split_seed = check_seed(split_seed)
        self.validation = validation
        self.shuffle = bool(shuffle)
        self.draws = draws
        self.from_export = from_export
        self.transform_image = transform_image
        self.transform_audio = transform_audio
        self.persistent_workers = bool(persistent_workers)
        self.pin_memory = bool(pin_memory)
        self.multiprocessing_context = multiprocessing_context
        self.dataset_options: Dict[str, Any] = options
        self.train_dataset: Optional[torch.utils.data.Subset] = None
        self.val_dataset: Optional[torch.utils.data.Subset] = None
        self.test_dataset: Optional[torch.utils.data.Dataset] = None

    def build_dataset(self, split: str, *, draws: Optional[str] = None) -> torch.utils.data.Dataset:
        """The whole of `split` ("train" or "test") as this module serves it: items per `modality`, scaled.

        `draws` is passed to the dataset (only the training dataset gets one).
        """
        check_split(split)
        options = {k: v for k, v in self.dataset_options.items() if k in _TAKES[self.modality]}
        if draws is not None:
            options["draws"] = draws
        if self.from_export is not None:  # never with modality="image" (refused at construction)
            export = self.from_export if isinstance(self.from_export, str) else self.from_export.get(split)
            if export is not None:
                options["from_export"] = export
        if self.modality == "audio":
            return AVMNISTAudioDataset(self.root, split, self.scheme, seed=self.seed, transform=self.transform_audio,
                                       **options)
        options.update(image=self.image, image_file=self.image_file)
        if self.modality == "both":
            return AVMNISTDataset(self.root, split, self.scheme, seed=self.seed, transform_image=self.transform_image,
                                  transform_audio=self.transform_audio, **options)
        return AVMNISTImageDataset(self.root, split, transform=self.transform_image, **options)

    def setup(self, stage: Optional[str] = None) -> None:
        """Build the datasets `stage` needs (``"fit"``, ``"validate"``, ``"test"``, ``"predict"`` or None for all)."""
        if stage in (None, "fit", "validate") and self.val_dataset is None:
            train_full = self.build_dataset("train", draws=self.draws)
            if self.draws is not None and epoch_target(train_full) is None:
                raise ParameterError(f"draws={self.draws!r}: the training dataset ({type(train_full).__name__}) has "
                                     "no set_epoch, so its epoch cannot be set; leave draws unset")
            # Validation keeps fixed items: with per-epoch draws it is a dataset of its own.
            val_full = self.build_dataset("train") if self.draws is not None else train_full
            train_idx, val_idx = train_validation_split(len(train_full), self.val_size, seed=self.split_seed,
                                                        how=self.validation)
            self.train_dataset = torch.utils.data.Subset(train_full, train_idx.tolist())
            self.val_dataset = torch.utils.data.Subset(val_full, val_idx.tolist())
        if stage in (None, "test", "predict") and self.test_dataset is None:
            self.test_dataset = self.build_dataset("test")

    def _trainer_epoch(self) -> Optional[int]:
        return None if self.trainer is None else int(self.trainer.current_epoch)

    def _loader(self, dataset: Optional[torch.utils.data.Dataset], name: str, **kwargs: Any) -> torch.utils.data.DataLoader:
        if dataset is None:
            raise RuntimeError(f"{name} is not set up yet: call setup() first (the trainer does)")
        return torch.utils.data.DataLoader(
            dataset, batch_size=self.batch_size, num_workers=self.num_workers, pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            multiprocessing_context=self.multiprocessing_context if self.num_workers > 0 else None, **kwargs,
        )

    def train_sampler(self) -> EpochSampler:
        """The training loader's sampler: per-epoch order by ``(split_seed, epoch)``, setting the dataset's epoch."""
        if self.train_dataset is None:
            raise RuntimeError("train_dataset is not set up yet: call setup('fit') first (the trainer does)")
        return EpochSampler(self.train_dataset, seed=self.split_seed, shuffle=self.shuffle, epoch=self._trainer_epoch)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.train_dataset, "train_dataset", sampler=self.train_sampler())

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.val_dataset, "val_dataset", shuffle=False)

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        return self._loader(self.test_dataset, "test_dataset", shuffle=False)

    predict_dataloader = test_dataloader

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(scheme={self.scheme!r}, modality={self.modality!r}, seed={self.seed}, "
                f"batch_size={self.batch_size}, val_size={self.val_size}, validation={self.validation!r}, "
                f"draws={self.draws!r})")
