"""The engine interface: what every speech recogniser offers, and what it declares it can do.

The transcription pipeline, the streaming recogniser and the service depend only on this, so an
engine can be swapped (Whisper on CPU, FunAudio LLM-ASR on GPU) without touching them.
"""

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from asr_core.hotwords.guard import SecondPass
from asr_core.hotwords.index import Candidate
from asr_core.transcript import Segment, join_text

DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class EngineCapabilities:
    languages: frozenset[str]
    word_timestamps: bool
    prompt: bool
    """Takes a text prompt and hot-words."""
    reusable_encoding: bool
    """One `encode` serves several `decode` calls (first pass + hot-word pass)."""
    streaming: bool
    """Fast enough on short windows to produce live partials."""
    batch: bool
    """Encodes or decodes several windows in one call."""
    max_window_s: float
    """Longest audio one `encode` accepts."""


@dataclass
class DecodeOptions:
    language: str | None = None
    """None: detect among the allowed languages."""
    allowed_languages: tuple[str, ...] = ("en", "zh")
    beam_size: int = 5
    prompt: str | None = None
    """Context text before this window (previous text, or a user prompt)."""
    hotwords: tuple[str, ...] = ()
    word_timestamps: bool = False
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    no_speech_threshold: float | None = 0.6
    log_prob_threshold: float | None = -1.0
    compression_ratio_threshold: float | None = 2.4


class EncodedAudio(ABC):
    """An engine's encoder output for one window, reusable across decode passes."""

    duration: float


@dataclass
class PartialRequest:
    """One stream's open segment, to be decoded quickly for a live partial."""

    audio: np.ndarray
    language: str | None
    """None: detect among `allowed_languages`."""
    prefix: tuple[int, ...] = ()
    """Tokens already shown as stable: decoding continues after them, so they never change."""
    allowed_languages: tuple[str, ...] = ("en", "zh")
    min_window_s: float | None = 10.0


@dataclass
class PartialResult:
    tokens: tuple[int, ...]
    """The prefix and what followed it, in the engine's own tokens."""
    text: str
    language: str
    language_probability: float = 1.0
    """Share of `language` among the allowed languages (1.0 where the request gave it)."""


class Engine(ABC):
    name: str
    """The engine family, e.g. "whisper"."""
    model_name: str
    """The model it serves, e.g. "whisper-base" or a folder name."""
    capabilities: EngineCapabilities

    @abstractmethod
    def encode(self, audio: np.ndarray, min_window_s: float | None = None) -> EncodedAudio:
        """Run the audio encoder once on up to `max_window_s` of 16 kHz mono float32.

        `min_window_s` lets a short input be encoded in a shorter window (at least that long)
        instead of the full one: much faster, a little less accurate; None means the full window.
        """

    @abstractmethod
    def detect_language(self, encoded: EncodedAudio, allowed: Collection[str]) -> tuple[str, float]:
        """Most likely language among `allowed`, with its probability renormalised to them."""

    @abstractmethod
    def decode(self, encoded: EncodedAudio, options: DecodeOptions) -> list[Segment]:
        """Decode text from an encoded window; times are relative to the window start."""

    def encode_batch(
        self, audios: list[np.ndarray], min_window_s: float | None = None
    ) -> list[EncodedAudio]:
        """`encode` for several windows; engines with batched encoders do it in one call."""
        return [self.encode(audio, min_window_s) for audio in audios]

    def decode_batch(
        self, encoded: list[EncodedAudio], options: list[DecodeOptions]
    ) -> list[list[Segment]]:
        """`decode` for several windows (of different streams); engines that can decode them
        in one batch override this."""
        return [self.decode(e, o) for e, o in zip(encoded, options, strict=True)]

    @abstractmethod
    def decode_partials(self, requests: list[PartialRequest]) -> list[PartialResult]:
        """Quick greedy decodes of several streams' open segments (batched where possible)."""

    @abstractmethod
    def detokenize(self, tokens: tuple[int, ...], language: str) -> str:
        """Text of engine tokens (as partial results and prefixes carry them)."""

    def hotword_pass(
        self,
        encoded: EncodedAudio,
        options: DecodeOptions,
        first: Sequence[Segment],
        candidates: Sequence[Candidate],
    ) -> SecondPass:
        """The window decoded again with `options.hotwords` (retrieved from the first pass,
        `first`, as `candidates`) in the prompt, as plain text for `asr_core.hotwords.guard`
        to weigh against the first pass.

        Engines that can decode without timestamps, or score both passes alike, override this.
        """
        segments = self.decode(encoded, options)
        return SecondPass(join_text(segment.text for segment in segments))
