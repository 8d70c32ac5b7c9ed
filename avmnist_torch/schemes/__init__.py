"""The five degradation schemes of the notebook, as data and pure functions on arrays.

:mod:`.steps` (the functions and the step dataclasses), :mod:`.streams` (the items' random streams) and
:mod:`.registry` (:class:`Scheme`, the five, running them), re-exported here. A scheme of your own::

    from avmnist_torch.schemes import Scheme, AddNoise, TimeMasks
    mine = Scheme("soft_burst", (AddNoise(snr_db=10), TimeMasks(ratio=0.05, count=3)))
    ds = AVMNISTAudioDataset(root, scheme=mine)
"""

from .registry import (
    SCHEME_NAMES, SCHEMES, Scheme, apply_scheme, apply_scheme_many, get_scheme, prepare_recording,
    recording_prefix, with_snr_range,
)
from .steps import (
    MAX_DISTORTION, MAX_MASKS, MIN_LENGTH, SNR_LIMIT_DB, AddNoise, BandKeep, Distortion, DownUpResample,
    FrequencyMasks, ItemContext, Step, TimeMasks, _band_response, _rms, add_noise, apply_frequency_masks,
    apply_frequency_masks_many, apply_time_masks, distort, down_up_resample, down_up_resample_many,
    draw_frequency_masks, draw_time_masks, fit_noise_length, keep_bands, keep_bands_many, pad_to_min_length,
)
from .streams import SOURCES_STREAM, SPLIT_IDS, STEPS_STREAM, ItemRandom, epoch_rng, epoch_rngs, item_rng

__all__ = [
    # the steps and their limits
    "MIN_LENGTH", "SNR_LIMIT_DB", "MAX_MASKS", "MAX_DISTORTION",
    "AddNoise", "TimeMasks", "FrequencyMasks", "BandKeep", "DownUpResample", "Distortion",
    # schemes
    "Scheme", "SCHEMES", "SCHEME_NAMES", "get_scheme", "with_snr_range",
    # random streams
    "ItemRandom", "item_rng", "epoch_rng", "epoch_rngs", "STEPS_STREAM", "SOURCES_STREAM",
    # the pure functions
    "pad_to_min_length", "fit_noise_length", "add_noise", "draw_time_masks", "apply_time_masks",
    "draw_frequency_masks", "apply_frequency_masks", "apply_frequency_masks_many", "keep_bands",
    "keep_bands_many", "down_up_resample", "down_up_resample_many", "distort",
    # running a scheme
    "apply_scheme", "apply_scheme_many", "recording_prefix", "prepare_recording",
]
