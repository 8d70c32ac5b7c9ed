"""avmnist-torch: AV-MNIST from public sources, generated on the fly as PyTorch Datasets (the audio half exactly as the reference notebook makes it)."""

from .common import (AudioFileError, AVMNISTError, CacheError, DownloadError, ParameterError, SourceError,
                     StorageError, VerificationError, WorkerError, __version__)
from .dataset import AVMNISTAudioDataset
from .generator import AudioItemGenerator
from .image_half import ImageHalf
from .paired import AVMNISTDataset, AVMNISTImageDataset
from .export import export
from .rendering import render_batch, render_spectrogram
from .sampling import EpochSampler
from .schemes import SCHEME_NAMES, SCHEMES, Scheme, get_scheme
from .sources.download import download
from .transforms import DivideBy255, Standardize
from .verify import verify

__all__ = [
    "AVMNISTAudioDataset", "AVMNISTDataset", "AVMNISTImageDataset", "AudioItemGenerator", "ImageHalf",
    "AVMNISTError", "AudioFileError", "CacheError", "DownloadError", "ParameterError", "StorageError",
    "VerificationError", "WorkerError", "SCHEMES", "SCHEME_NAMES", "Scheme", "EpochSampler", "DivideBy255",
    "Standardize", "SourceError", "__version__", "download", "export", "get_scheme", "render_batch",
    "render_spectrogram", "verify",
]


def __getattr__(name: str):
    # Lightning is an optional extra: the DataModule is imported on first use (and left out of __all__),
    # so the package imports without it and only its users get the error naming the extra.
    if name == "AVMNISTDataModule":
        from .lightning import AVMNISTDataModule

        return AVMNISTDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
