"""avmnist-torch: the audio modality of AV-MNIST, generated on the fly as a PyTorch Dataset."""

from .dataset import AVMNISTAudioDataset
from .rendering import render_batch, render_spectrogram
from .schemes import SCHEME_NAMES, SCHEMES, Scheme, get_scheme
from .sources.audio import AudioFileError
from .sources.fsdd import SourceError

__version__ = "0.1.0"

__all__ = [
    "AVMNISTAudioDataset",
    "AudioFileError",
    "SCHEMES",
    "SCHEME_NAMES",
    "Scheme",
    "SourceError",
    "__version__",
    "get_scheme",
    "render_batch",
    "render_spectrogram",
]
