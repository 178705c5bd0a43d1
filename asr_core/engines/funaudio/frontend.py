"""FunASR's `WavFrontend` without torchaudio: Kaldi fbank (80 mels, Hamming, 25/10 ms) and
low-frame-rate stacking (7 frames every 6, 60 ms per encoder frame).

Dither is off: FunASR dithers by default, which makes two runs on the same audio differ.
"""

import math
from functools import lru_cache

import numpy as np
import torch

from asr_core.engines.funaudio.config import FrontendConfig

_PREEMPHASIS = 0.97
_LOW_FREQ = 20.0
_EPSILON = float(np.finfo(np.float32).eps)


def features(audio: np.ndarray, config: FrontendConfig) -> torch.Tensor:
    """(T, n_mels * lfr_m) encoder input for 16 kHz mono float32 audio in [-1, 1]."""
    return stack_low_frame_rate(fbank(audio, config), config.lfr_m, config.lfr_n)


def fbank(audio: np.ndarray, config: FrontendConfig) -> torch.Tensor:
    """Kaldi-compatible log mel filterbank (snip_edges, DC removal, pre-emphasis, power)."""
    length = int(config.sample_rate * config.frame_length_ms / 1000)
    shift = int(config.sample_rate * config.frame_shift_ms / 1000)
    samples = torch.as_tensor(np.asarray(audio, dtype=np.float32)) * 32768.0
    if len(samples) < length:
        return torch.zeros(0, config.n_mels)
    frames = samples.unfold(0, length, shift).double()
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - _PREEMPHASIS * previous
    frames = frames * torch.hamming_window(length, periodic=False, dtype=torch.float64)
    n_fft = 1 << math.ceil(math.log2(length))
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2)
    banks = torch.as_tensor(_mel_banks(config.n_mels, n_fft, config.sample_rate))
    energies = power[:, : n_fft // 2] @ banks.T
    return energies.clamp_min(_EPSILON).log().float()


def stack_low_frame_rate(feats: torch.Tensor, lfr_m: int, lfr_n: int) -> torch.Tensor:
    """Frame i stacks frames i*n-(m-1)/2 .. +m-1, edges repeating the first/last frame."""
    frames = feats.shape[0]
    if frames == 0:
        return feats.new_zeros(0, feats.shape[1] * lfr_m)
    count = math.ceil(frames / lfr_n)
    left = (lfr_m - 1) // 2
    index = torch.arange(count)[:, None] * lfr_n + torch.arange(lfr_m)[None, :] - left
    return feats[index.clamp(0, frames - 1)].reshape(count, -1)


@lru_cache(maxsize=4)
def _mel_banks(n_mels: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """Kaldi's triangular filters on the 1127·ln(1 + f/700) mel scale, (n_mels, n_fft/2)."""

    def mel(freq):
        return 1127.0 * np.log(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)

    low, high = mel(_LOW_FREQ), mel(sample_rate / 2)
    delta = (high - low) / (n_mels + 1)
    left = low + np.arange(n_mels)[:, None] * delta
    center, right = left + delta, left + 2 * delta
    bins = mel(np.arange(n_fft // 2) * sample_rate / n_fft)[None, :]
    up = (bins - left) / (center - left)
    down = (right - bins) / (right - center)
    return np.maximum(0.0, np.minimum(up, down))
