"""Voice activity detection: Silero VAD v6 on ONNX Runtime, run as a stream.

faster-whisper bundles the ONNX model, so this path needs no torch. The model runs on 512-sample
windows (32 ms) and carries its recurrent state across calls, so audio can be pushed in blocks
of any size; `SpeechSegmenter` turns the per-window probabilities into padded speech regions and
keeps only the audio it still needs, which bounds memory on hour-long recordings.
"""

import functools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from asr_core import SAMPLE_RATE

WINDOW = 512
"""Samples per VAD decision (32 ms at 16 kHz)."""
_CONTEXT = 64


@dataclass
class VadOptions:
    """Segmentation settings (same meaning as Silero's `get_speech_timestamps`).

    Speech starts when the probability reaches `threshold` and ends after `min_silence_ms` below
    `neg_threshold` (default `threshold - 0.15`). Regions longer than `max_speech_s` are split at
    the last pause of at least 98 ms, or cut hard if there is none.
    """

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_ms: int = 250
    min_silence_ms: int = 1000
    speech_pad_ms: int = 400
    max_speech_s: float = 28.0


def silence_threshold(threshold: float, neg_threshold: float | None) -> float:
    """Below this probability a window is silence: by default 0.15 under the speech threshold,
    so a voice hovering around it does not flap between speech and silence (Silero's rule)."""
    return neg_threshold if neg_threshold is not None else max(threshold - 0.15, 0.01)


@dataclass
class SpeechRegion:
    """A padded stretch of speech: sample offsets from stream start and its audio."""

    start: int
    end: int
    audio: np.ndarray

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE


@functools.cache
def _silero_session():  # -> onnxruntime.InferenceSession
    import onnxruntime
    from faster_whisper.utils import get_assets_path

    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 4
    return onnxruntime.InferenceSession(
        os.path.join(get_assets_path(), "silero_vad_v6.onnx"),
        providers=["CPUExecutionProvider"],
        sess_options=options,
    )


class SileroVad:
    """Speech probability per 512-sample window, computed incrementally (one per stream)."""

    _BATCH = 2048

    def __init__(self) -> None:
        self._session = _silero_session()
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._leftover = np.zeros(0, dtype=np.float32)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Push audio; return the probabilities of every window it completed."""
        audio = np.concatenate([self._leftover, np.asarray(audio, dtype=np.float32)])
        usable = len(audio) - len(audio) % WINDOW
        self._leftover = audio[usable:]
        if usable == 0:
            return np.zeros(0, dtype=np.float32)
        windows = audio[:usable].reshape(-1, WINDOW)
        contexts = np.concatenate([self._context[None, :], windows[:-1, -_CONTEXT:]])
        self._context = windows[-1, -_CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        probabilities = []
        for i in range(0, len(batch), self._BATCH):
            output, self._h, self._c = self._session.run(
                None, {"input": batch[i : i + self._BATCH], "h": self._h, "c": self._c}
            )
            probabilities.append(output.reshape(-1))
        return np.concatenate(probabilities)


class SpeechSegmenter:
    """Streaming speech-region finder: push audio blocks, get finished regions back.

    A region is emitted once the silence after it is long enough to be sure it ended, padded by
    `speech_pad_ms` on each side (less when the next region is closer than twice that).
    """

    def __init__(self, options: VadOptions | None = None, vad: SileroVad | None = None) -> None:
        self.options = options or VadOptions()
        self._vad = vad or SileroVad()
        opts = self.options
        self._pad = SAMPLE_RATE * opts.speech_pad_ms // 1000
        # Padding a region's end needs the audio after it: silence must outlast the padding.
        self._min_silence = max(SAMPLE_RATE * opts.min_silence_ms // 1000, self._pad)
        self._min_speech = SAMPLE_RATE * opts.min_speech_ms // 1000
        self._max_speech = int(SAMPLE_RATE * opts.max_speech_s) - WINDOW - 2 * self._pad
        self._pause_at_max = SAMPLE_RATE * 98 // 1000
        self._neg_threshold = silence_threshold(opts.threshold, opts.neg_threshold)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # stream sample index of _buffer[0]
        self._window_index = 0  # next VAD window's index
        self._triggered = False
        self._speech_start = 0
        self._temp_end = 0
        self._prev_end = 0
        self._next_start = 0
        self._last_region_end = 0  # padded end of the last emitted region
        self._pending: tuple[int, int] | None = None  # closed region awaiting end padding

    @property
    def buffered_samples(self) -> int:
        """Audio currently held (bounded by the longest region plus padding)."""
        return len(self._buffer)

    @property
    def in_speech(self) -> bool:
        return self._triggered

    def push(self, audio: np.ndarray) -> list[SpeechRegion]:
        """Feed 16 kHz mono float32 audio; return regions that are now complete."""
        self._buffer = np.concatenate([self._buffer, np.asarray(audio, dtype=np.float32)])
        regions: list[SpeechRegion] = []
        for probability in self._vad(audio):
            regions.extend(self._step(float(probability)))
            self._window_index += 1
        regions.extend(self._emit_pending(final=False))
        self._trim_buffer()
        return regions

    def flush(self) -> list[SpeechRegion]:
        """End of stream: close any open region and return what is left."""
        stream_end = self._buffer_start + len(self._buffer)
        if self._triggered and stream_end - self._speech_start > self._min_speech:
            self._close(self._speech_start, stream_end)
        self._triggered = False
        regions = self._emit_pending(final=True)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = stream_end
        return regions

    def _step(self, probability: float) -> list[SpeechRegion]:
        """Silero's hysteresis for one window (mirrors `get_speech_timestamps`)."""
        position = WINDOW * self._window_index
        regions: list[SpeechRegion] = []
        if probability >= self.options.threshold and self._temp_end:
            self._temp_end = 0
            if self._next_start < self._prev_end:
                self._next_start = position
        if probability >= self.options.threshold and not self._triggered:
            self._triggered = True
            regions.extend(self._emit_pending(final=False, next_start=position))
            self._speech_start = position
            return regions
        if self._triggered and position - self._speech_start > self._max_speech:
            if self._prev_end:
                self._close(self._speech_start, self._prev_end)
                if self._next_start < self._prev_end:
                    self._triggered = False
                else:
                    regions.extend(self._emit_pending(final=False, next_start=self._next_start))
                    self._speech_start = self._next_start
            else:
                self._close(self._speech_start, position)
                regions.extend(self._emit_pending(final=False, next_start=position))
                self._triggered = False
            self._prev_end = self._next_start = self._temp_end = 0
            return regions
        if probability < self._neg_threshold and self._triggered:
            if not self._temp_end:
                self._temp_end = position
            if position - self._temp_end > self._pause_at_max:
                self._prev_end = self._temp_end
            if position - self._temp_end >= self._min_silence:
                if self._temp_end - self._speech_start > self._min_speech:
                    self._close(self._speech_start, self._temp_end)
                self._prev_end = self._next_start = self._temp_end = 0
                self._triggered = False
        return regions

    def _close(self, start: int, end: int) -> None:
        self._pending = (start, end)

    def _emit_pending(self, final: bool, next_start: int | None = None) -> list[SpeechRegion]:
        """Pad and emit the closed region once the audio after it is known."""
        if self._pending is None:
            return []
        start, end = self._pending
        stream_end = self._buffer_start + len(self._buffer)
        if next_start is not None:
            end_pad = min(self._pad, (next_start - end) // 2)
        elif final or stream_end >= end + self._pad:
            end_pad = self._pad
        else:
            return []
        self._pending = None
        padded_start = max(start - self._pad, self._last_region_end, self._buffer_start)
        padded_end = min(end + max(end_pad, 0), stream_end)
        self._last_region_end = padded_end
        audio = self._buffer[padded_start - self._buffer_start : padded_end - self._buffer_start]
        return [SpeechRegion(padded_start, padded_end, audio.copy())]

    def _trim_buffer(self) -> None:
        """Drop audio no future region can include."""
        if self._pending is not None:
            keep_from = self._pending[0] - self._pad
        elif self._triggered:
            keep_from = self._speech_start - self._pad
        else:
            keep_from = self._buffer_start + len(self._buffer) - self._pad - WINDOW
        keep_from = max(keep_from, self._last_region_end)
        drop = keep_from - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop


def segment_speech(
    blocks: Iterable[np.ndarray], options: VadOptions | None = None
) -> Iterator[SpeechRegion]:
    """Speech regions of a stream of audio blocks, in order."""
    segmenter = SpeechSegmenter(options)
    for block in blocks:
        yield from segmenter.push(block)
    yield from segmenter.flush()
