"""Whisper windows of several streams decoded together: one CTranslate2 call for all.

faster-whisper decodes one window per call. A live server often has finals of several
streams waiting at once, and on a CPU a beam-search step costs about the same for one
sequence as for a few (the weights are read once per step either way), so the finals are
decoded as one batch: one encoder call per window length, one `generate` call for all
(plus one per fallback temperature, for the items that need it), then per item what
faster-whisper does after decoding: the no-speech check, segments split at timestamp tokens,
word alignment. A window whose decode stopped before the end of its speech (faster-whisper
would decode again from there) is decoded once more alone, so every result is what
`WhisperEngine.decode` gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import ctranslate2
import numpy as np
from faster_whisper.transcribe import (
    TranscriptionOptions,
    get_compression_ratio,
    get_ctranslate2_storage,
)
from faster_whisper.utils import get_end

from asr_core import SAMPLE_RATE
from asr_core.engines.base import DecodeOptions
from asr_core.transcript import Segment

if TYPE_CHECKING:
    from faster_whisper.tokenizer import Tokenizer

    from asr_core.engines.whisper import WhisperEncoded, WhisperEngine


def encode_batch(
    engine: WhisperEngine, audios: list[np.ndarray], min_window_s: float | None
) -> list[WhisperEncoded]:
    """Encode several windows: on a GPU one encoder call per window length; on a CPU one call
    per window, which measured faster there (a batch's activations outgrow the caches:
    docs/benchmarks.md, cross-stream batching)."""
    from asr_core.engines.whisper import WhisperEncoded, is_silent

    extractor = engine._model.feature_extractor
    features = [extractor(np.asarray(a, dtype=np.float32)) for a in audios]
    windows = [engine._window(f, min_window_s) for f in features]
    encoded: list[WhisperEncoded | None] = [None] * len(audios)
    if engine.config.device == "cpu":
        groups = [[i] for i in range(len(windows))]
    else:
        lengths = sorted({w.shape[-1] for w in windows})
        groups = [[i for i, w in enumerate(windows) if w.shape[-1] == n] for n in lengths]
    for group in groups:
        output = engine._model.model.encode(
            get_ctranslate2_storage(np.stack([windows[i] for i in group])),
            to_cpu=True,  # split into one view per window (numpy reads host memory only)
        )
        array = np.asarray(output)
        for position, i in enumerate(group):
            encoded[i] = WhisperEncoded(
                features=features[i],
                output=_storage(array[position : position + 1]),
                duration=len(audios[i]) / SAMPLE_RATE,
                silent=is_silent(audios[i]),
            )
    return encoded  # type: ignore[return-value]


def _storage(array: np.ndarray) -> ctranslate2.StorageView:
    """A StorageView on a numpy array (it keeps a reference to the array's buffer)."""
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array))


@dataclass
class _Item:
    encoded: WhisperEncoded
    options: DecodeOptions
    language: str
    tokenizer: Tokenizer
    transcription: TranscriptionOptions
    prompt: list[int]
    content_frames: int
    tried: list[tuple] = field(default_factory=list)
    """(result, avg_logprob, temperature, compression_ratio) per temperature tried."""
    chosen: tuple | None = None


def decode_batch(
    engine: WhisperEngine, encoded: list[WhisperEncoded], options: list[DecodeOptions]
) -> list[list[Segment]]:
    """`engine.decode(encoded[i], options[i])` for every i, with shared model calls."""
    items = [engine._batch_item(e, o) for e, o in zip(encoded, options, strict=True)]
    pending = list(range(len(items)))
    temperatures = sorted({t for item in items for t in item.transcription.temperatures})
    for temperature in temperatures:
        trying = [i for i in pending if temperature in items[i].transcription.temperatures]
        for group in _batchable(items, trying):
            _generate(engine, [items[i] for i in group], temperature)
        pending = [i for i in pending if items[i].chosen is None]
    for i in pending:  # every temperature failed: faster-whisper's choice among them
        item = items[i]
        kept = [r for r in item.tried if not _too_repetitive(item, r)] or item.tried
        best = max(kept, key=lambda r: r[1])
        item.chosen = (best[0], best[1], item.tried[-1][2], best[3])
    results = []
    for item in items:
        segments = _segments(engine, item)
        if segments is None:  # needs a second pass: the single-window path does it
            segments = engine.decode(item.encoded, item.options)
        results.append(segments)
    return results


def _batchable(items: list[_Item], indices: list[int]) -> list[list[int]]:
    """Groups that one `generate` call takes: encoder outputs of one shape, and prompts with
    `<|startoftranscript|>` at one position (CTranslate2 requires it), i.e. previous text
    and hot-words of the same length in tokens."""
    groups: dict[tuple, list[int]] = {}
    for i in indices:
        item = items[i]
        start = item.prompt.index(item.tokenizer.sot)
        groups.setdefault((tuple(item.encoded.output.shape), start), []).append(i)
    return list(groups.values())


def _generate(engine: WhisperEngine, items: list[_Item], temperature: float) -> None:
    model = engine._model
    options = items[0].transcription
    if temperature > 0:
        kwargs = {
            "beam_size": 1,
            "num_hypotheses": options.best_of,
            "sampling_topk": 0,
            "sampling_temperature": temperature,
        }
    else:
        kwargs = {"beam_size": options.beam_size, "patience": options.patience}
    if len(items) == 1:
        output = items[0].encoded.output
    else:
        output = _storage(np.concatenate([np.asarray(item.encoded.output) for item in items]))
    results = model.model.generate(
        output,
        [item.prompt for item in items],
        length_penalty=options.length_penalty,
        repetition_penalty=options.repetition_penalty,
        no_repeat_ngram_size=options.no_repeat_ngram_size,
        max_length=model.max_length,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=options.suppress_blank,
        suppress_tokens=options.suppress_tokens,
        max_initial_timestamp_index=round(options.max_initial_timestamp / model.time_precision),
        **kwargs,
    )
    for item, result in zip(items, results, strict=True):
        tokens = result.sequences_ids[0]
        cumulative = result.scores[0] * (len(tokens) ** options.length_penalty)
        avg_logprob = cumulative / (len(tokens) + 1)
        ratio = get_compression_ratio(item.tokenizer.decode(tokens).strip())
        attempt = (result, avg_logprob, temperature, ratio)
        item.tried.append(attempt)
        if not _needs_fallback(item, attempt):
            item.chosen = attempt


def _too_repetitive(item: _Item, attempt: tuple) -> bool:
    threshold = item.transcription.compression_ratio_threshold
    return threshold is not None and attempt[3] > threshold


def _needs_fallback(item: _Item, attempt: tuple) -> bool:
    """faster-whisper's rule: too repetitive or too unlikely, unless it is silence."""
    result, avg_logprob, _, _ = attempt
    options = item.transcription
    unlikely = options.log_prob_threshold is not None and avg_logprob < options.log_prob_threshold
    silence = (
        options.no_speech_threshold is not None
        and result.no_speech_prob > options.no_speech_threshold
        and unlikely
    )
    return (_too_repetitive(item, attempt) or unlikely) and not silence


def _segments(engine: WhisperEngine, item: _Item) -> list[Segment] | None:
    """The window's segments, as faster-whisper's loop yields them on its first pass; None
    when that loop would decode a second pass."""
    model = engine._model
    options = item.transcription
    result, avg_logprob, temperature, ratio = item.chosen
    likely = options.log_prob_threshold is not None and avg_logprob > options.log_prob_threshold
    no_speech = options.no_speech_threshold is not None and (
        result.no_speech_prob > options.no_speech_threshold
    )
    if no_speech and not likely:
        return []
    size = min(model.feature_extractor.nb_max_frames, item.content_frames)
    pieces, seek, single_ending = model._split_segments_by_timestamps(
        tokenizer=item.tokenizer,
        tokens=result.sequences_ids[0],
        time_offset=0.0,
        segment_size=size,
        segment_duration=size * model.feature_extractor.time_per_frame,
        seek=0,
    )
    if options.word_timestamps:
        model.add_word_timestamps(
            [pieces],
            item.tokenizer,
            item.encoded.output,
            size,
            options.prepend_punctuations,
            options.append_punctuations,
            last_speech_timestamp=0.0,
        )
        if not single_ending:
            last_word_end = get_end(pieces)
            if last_word_end is not None and last_word_end > 0:
                seek = round(last_word_end * model.frames_per_second)
    if seek < item.content_frames:
        return None
    segments = []
    for piece in pieces:
        text = item.tokenizer.decode(piece["tokens"])
        if piece["start"] == piece["end"] or not text.strip():
            continue
        segments.append(
            engine._segment(
                start=piece["start"],
                end=piece["end"],
                text=text,
                tokens=piece["tokens"],
                words=piece.get("words") if options.word_timestamps else None,
                language=item.language,
                avg_logprob=avg_logprob,
                no_speech_prob=result.no_speech_prob,
                compression_ratio=ratio,
                temperature=temperature,
            )
        )
    return segments
