"""avmnist-torch: the audio modality of AV-MNIST, generated on the fly as a PyTorch Dataset."""

from .common import (  # noqa: E402
    AudioFileError,
    AVMNISTError,
    DownloadError,
    ParameterError,
    SourceError,
    StorageError,
    VerificationError,
    __version__,
)
from .dataset import AVMNISTAudioDataset  # noqa: E402
from .paired import AVMNISTDataset  # noqa: E402
from .export import export  # noqa: E402
from .rendering import render_batch, render_spectrogram  # noqa: E402
from .schemes import SCHEME_NAMES, SCHEMES, Scheme, get_scheme  # noqa: E402
from .sources.download import download  # noqa: E402
from .verify import verify  # noqa: E402

__all__ = [
    "AVMNISTAudioDataset",
    "AVMNISTDataset",
    "AVMNISTError",
    "AudioFileError",
    "DownloadError",
    "ParameterError",
    "StorageError",
    "VerificationError",
    "SCHEMES",
    "SCHEME_NAMES",
    "Scheme",
    "SourceError",
    "__version__",
    "download",
    "export",
    "get_scheme",
    "render_batch",
    "render_spectrogram",
    "verify",
]
