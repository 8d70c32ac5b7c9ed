"""avmnist-torch: AV-MNIST from public sources, generated on the fly as PyTorch Datasets (the audio half exactly as the reference notebook makes it)."""

from .common import (  # noqa: E402
    AudioFileError,
    AVMNISTError,
    CacheError,
    DownloadError,
    ParameterError,
    SourceError,
    StorageError,
    VerificationError,
    WorkerError,
    __version__,
)
from .dataset import AVMNISTAudioDataset  # noqa: E402
from .generator import AudioItemGenerator  # noqa: E402
from .image_half import ImageHalf  # noqa: E402
from .paired import AVMNISTDataset, AVMNISTImageDataset  # noqa: E402
from .export import export  # noqa: E402
from .rendering import render_batch, render_spectrogram  # noqa: E402
from .sampling import EpochSampler  # noqa: E402
from .schemes import SCHEME_NAMES, SCHEMES, Scheme, get_scheme  # noqa: E402
from .sources.download import download  # noqa: E402
from .transforms import DivideBy255, Standardize  # noqa: E402
from .verify import verify  # noqa: E402

__all__ = [
    "AVMNISTAudioDataset",
    "AVMNISTDataset",
    "AVMNISTImageDataset",
    "AudioItemGenerator",
    "ImageHalf",
    "AVMNISTError",
    "AudioFileError",
    "CacheError",
    "DownloadError",
    "ParameterError",
    "StorageError",
    "VerificationError",
    "WorkerError",
    "SCHEMES",
    "SCHEME_NAMES",
    "Scheme",
    "EpochSampler",
    "DivideBy255",
    "Standardize",
    "SourceError",
    "__version__",
    "download",
    "export",
    "get_scheme",
    "render_batch",
    "render_spectrogram",
    "verify",
]


def __getattr__(name: str):
    # The DataModule needs Lightning, an optional extra: imported on first use (and left out of
    # __all__), so the package imports without it and only its users get the error naming the extra.
    if name == "AVMNISTDataModule":
        from .lightning import AVMNISTDataModule

        return AVMNISTDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
