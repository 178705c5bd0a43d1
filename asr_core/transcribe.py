"""File transcription, top-down: decode -> VAD regions -> windows -> encode once -> decode.

The audio is read as a stream of blocks and cut into speech regions by the VAD; regions are
packed (silence between them dropped) into windows of at most the engine's window length, and
each window is encoded once and decoded with the previous window's text as context. Only one
window of audio is held at a time, so an hour-long call needs no more memory than a minute.
"""

import bisect
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from asr_core import SAMPLE_RATE
from asr_core.audio import AudioSource, RawFormat, iter_audio
from asr_core.chinese import to_simplified, to_traditional
from asr_core.engines.base import DecodeOptions, EncodedAudio, Engine
from asr_core.errors import UnsupportedLanguageError
from asr_core.hotwords import Hotword, HotwordIndex, apply_corrections
from asr_core.hotwords.correct import Replacement, apply_replacements
from asr_core.hotwords.guard import GuardOptions, SecondPass, judge
from asr_core.hotwords.index import Candidate
from asr_core.transcript import Segment, Transcript
from asr_core.vad import SpeechRegion, VadOptions, segment_speech

logger = logging.getLogger(__name__)

_PROMPT_CHARS = 200
"""Previous text carried into the next window's prompt (Whisper caps prompts at 223 tokens)."""
_JOIN_SLACK_S = 0.8
"""How far a decoded segment may cross a join between packed regions and still be snapped."""
_LANGUAGE_SWITCH_CONFIDENCE = 0.5
"""Detection below this keeps the previous window's language (short windows misdetect)."""


@dataclass
class TranscribeOptions(DecodeOptions):
    """Decoding options for every window, plus what applies across a whole recording.

    `language` None detects per window among `allowed_languages`; `prompt` is context for the
    first window only, later windows get the previous window's text instead.
    """

    condition_on_previous_text: bool = True
    chinese_script: Literal["simplified", "traditional", "as-decoded"] = "simplified"
    """Script of Mandarin output (Whisper mixes both)."""
    hotword_index: HotwordIndex | None = None
    """A hot-word list to retrieve from per window."""
    hotword_top_k: int = 10
    """Phrases retrieved per window into the second pass's prompt."""
    hotword_guard: GuardOptions = field(default_factory=GuardOptions)
    """What of the second pass is kept (`asr_core.hotwords.guard`)."""
    hotword_correction: bool = True
    vad: VadOptions = field(default_factory=VadOptions)


@dataclass
class SpeechWindow:
    """Speech regions packed back to back; maps window time back to source time."""

    audio: np.ndarray
    offsets: list[int]
    """Window sample index where each region starts."""
    starts: list[int]
    """Source sample index of each region's start."""
    lengths: list[int]

    def to_source(self, seconds: float, is_end: bool = False) -> float:
        """Source time of a window time; a time on a join belongs to the next region unless
        it is an end."""
        index, within = self._locate(seconds, is_end)
        return round((self.starts[index] + within) / SAMPLE_RATE, 3)

    def span_to_source(self, start: float, end: float) -> tuple[float, float]:
        """Source times of a decoded span, snapping ends that barely cross a join.

        Decoder timestamps are rough (half a second either way), so a segment that starts in
        the last moments of one region but lies in the next is moved to the next, and the
        same for an end that spills a little past a join.
        """
        first, _ = self._locate(start, False)
        last, _ = self._locate(end, True)
        if first < last and self._region_end(first) - start < _JOIN_SLACK_S:
            start = self.offsets[first + 1] / SAMPLE_RATE
            first += 1
        if first < last and end - self.offsets[last] / SAMPLE_RATE < _JOIN_SLACK_S:
            end = self._region_end(last - 1)
        return self.to_source(start), self.to_source(end, is_end=True)

    def _region_end(self, index: int) -> float:
        return (self.offsets[index] + self.lengths[index]) / SAMPLE_RATE

    def _locate(self, seconds: float, is_end: bool) -> tuple[int, int]:
        sample = round(seconds * SAMPLE_RATE)
        bisect_at = bisect.bisect_left if is_end else bisect.bisect_right
        index = max(bisect_at(self.offsets, sample) - 1, 0)
        return index, min(max(sample - self.offsets[index], 0), self.lengths[index])


def pack_windows(regions: Iterable[SpeechRegion], max_seconds: float) -> Iterator[SpeechWindow]:
    """Group consecutive regions into windows no longer than `max_seconds`."""
    limit = int(max_seconds * SAMPLE_RATE)
    pieces: list[SpeechRegion] = []
    size = 0
    for region in regions:
        length = len(region.audio)
        if pieces and size + length > limit:
            yield _window(pieces)
            pieces, size = [], 0
        if length > limit:  # only if the VAD's max region length exceeds the engine's window
            for start in range(0, length, limit):
                chunk = region.audio[start : start + limit]
                begin = region.start + start
                yield _window([SpeechRegion(begin, begin + len(chunk), chunk)])
            continue
        pieces.append(region)
        size += length
    if pieces:
        yield _window(pieces)


def _window(pieces: list[SpeechRegion]) -> SpeechWindow:
    lengths = [len(p.audio) for p in pieces]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()
    return SpeechWindow(
        audio=np.concatenate([p.audio for p in pieces]),
        offsets=offsets,
        starts=[p.start for p in pieces],
        lengths=lengths,
    )


class Transcriber:
    """Transcribes whole recordings with one engine (thread-safe: keeps no per-call state)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def transcribe(
        self,
        source: AudioSource,
        options: TranscribeOptions | None = None,
        raw: RawFormat | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> Transcript:
        """Transcribe a file, bytes or file object; `progress(seconds_done)` after each window."""
        counter = _SampleCounter(iter_audio(source, raw=raw))
        segments: list[Segment] = []
        languages: list[tuple[str, float]] = []
        for segment, language in self._run(counter, options or TranscribeOptions(), progress):
            segments.append(segment)
            languages.append(language)
        duration = counter.samples / SAMPLE_RATE
        if progress:
            progress(duration)
        language, probability = _dominant(languages, options or TranscribeOptions())
        return Transcript(segments, duration, language, probability, self.engine.model_name)

    def _run(
        self,
        blocks: Iterable[np.ndarray],
        options: TranscribeOptions,
        progress: Callable[[float], None] | None,
    ) -> Iterator[tuple[Segment, tuple[str, float]]]:
        options = checked_options(self.engine, options)
        prompt = options.prompt
        previous_language: str | None = None
        regions = segment_speech(blocks, options.vad)
        for window in pack_windows(regions, self.engine.capabilities.max_window_s):
            encoded = self.engine.encode(window.audio)
            result = decode_window(self.engine, encoded, options, prompt, previous_language)
            previous_language = result.language
            for segment in result.segments:
                yield segment.shifted(window), (result.language, result.probability)
            prompt = next_prompt(prompt, result.segments, options)
            if progress:
                progress(window.starts[-1] / SAMPLE_RATE + window.lengths[-1] / SAMPLE_RATE)


@dataclass
class WindowResult:
    segments: list[Segment]
    """Times relative to the window start."""
    language: str
    probability: float


def checked_options(engine: Engine, options: TranscribeOptions) -> TranscribeOptions:
    """Options with `allowed_languages` narrowed to what the engine knows; a forced language
    it does not know is an error."""
    allowed = tuple(
        lang for lang in options.allowed_languages if lang in engine.capabilities.languages
    )
    if options.language is not None and options.language not in engine.capabilities.languages:
        raise UnsupportedLanguageError(
            f"language {options.language!r} is not supported by {engine.model_name}; "
            f"supported: {', '.join(allowed)}"
        )
    return replace(options, allowed_languages=allowed or ("en",))


def decode_window(
    engine: Engine,
    encoded: EncodedAudio,
    options: TranscribeOptions,
    prompt: str | None,
    previous_language: str | None = None,
) -> WindowResult:
    """Final text of one encoded window: language, decode, script, hot-words.

    Shared by file transcription and live finals. The window is decoded exactly as without
    hot-words; a list can then only replace stretches of that text with listed phrases
    (`apply_hotwords`).
    """
    return decode_windows(engine, [WindowJob(encoded, options, prompt, previous_language)])[0]


@dataclass
class WindowJob:
    """One window to decode, with what `decode_window` takes besides the engine."""

    encoded: EncodedAudio
    options: TranscribeOptions
    prompt: str | None = None
    previous_language: str | None = None


def decode_windows(engine: Engine, jobs: list[WindowJob]) -> list[WindowResult]:
    """`decode_window` for several windows, their plain decodes in one engine batch."""
    prepared = [_prepare(engine, job) for job in jobs]
    decoded = engine.decode_batch(
        [job.encoded for job in jobs], [options for _, _, options in prepared]
    )
    return [
        _finish(engine, job.encoded, segments, options, language, probability)
        for job, segments, (language, probability, options) in zip(
            jobs, decoded, prepared, strict=True
        )
    ]


def _prepare(engine: Engine, job: WindowJob) -> tuple[str, float, TranscribeOptions]:
    """The window's language (detected unless given; an unsure detection keeps the previous
    window's) and its decode options: as without hot-words."""
    options = job.options
    language, probability = options.language, 1.0
    if language is None:
        language, probability = engine.detect_language(job.encoded, options.allowed_languages)
        if job.previous_language and probability < _LANGUAGE_SWITCH_CONFIDENCE:
            language = job.previous_language
    return (
        language,
        probability,
        replace(options, language=language, prompt=job.prompt, hotwords=()),
    )


def _finish(
    engine: Engine,
    encoded: EncodedAudio,
    segments: list[Segment],
    options: TranscribeOptions,
    language: str,
    probability: float,
) -> WindowResult:
    """Script conversion and the hot-word pass on a window's plain decode."""
    if language == "zh":
        for segment in segments:
            _convert_script(segment, options.chinese_script)
    if options.hotword_index is not None:
        apply_hotwords(engine, encoded, segments, options)
    return WindowResult(segments, language, probability)


def apply_hotwords(
    engine: Engine, encoded: EncodedAudio, segments: list[Segment], options: TranscribeOptions
) -> None:
    """Retrieve listed phrases from the first pass (`segments`) and decode again with them in
    the prompt; `merge_hotword_pass` keeps what of that second pass may only help."""
    index = options.hotword_index
    text = "".join(segment.text for segment in segments)
    if index is None or not text.strip():
        candidates, unplaced = [], []
    else:
        candidates = index.retrieve(text, options.hotword_top_k)
        retrieved = {c.phrase for c in candidates}
        short = len(index) <= options.hotword_top_k  # a caller's few words: prompted whole
        unplaced = [h for h in index.hotwords.entries if short and h.phrase not in retrieved]
    second = None
    if candidates or unplaced:
        phrases = tuple(c.phrase for c in candidates) + tuple(h.phrase for h in unplaced)
        second = engine.hotword_pass(
            encoded, replace(options, hotwords=phrases), segments, candidates
        )
        if options.language == "zh":
            second = replace(second, text=_script(second.text, options.chinese_script))
    merge_hotword_pass(segments, candidates, second, options, unplaced)


def merge_hotword_pass(
    segments: list[Segment],
    candidates: list[Candidate],
    second: SecondPass | None,
    options: TranscribeOptions,
    unplaced: list[Hotword] | None = None,
) -> None:
    """Write into the first pass the phrases `asr_core.hotwords.guard` takes from the second
    pass, correct near-miss spellings of the prompted phrases, and record what was prompted
    (`unplaced`: phrases of a short list prompted whole that retrieval did not place)."""
    unplaced = unplaced or []
    if second is not None:
        text = "".join(segment.text for segment in segments)
        verdict = judge(text, second, candidates, options.hotword_guard, unplaced)
        _replace_in_segments(segments, verdict.replacements)
    prompted = [c.hotword for c in candidates] + unplaced
    index = options.hotword_index
    for segment in segments:
        if prompted and options.hotword_correction:
            apply_corrections(segment, prompted)
        segment.hotwords = [h.phrase for h in prompted]
        segment.hotword_version = index.version if index is not None else None


def _replace_in_segments(segments: list[Segment], replacements: list[Replacement]) -> None:
    """Apply replacements given in the offsets of the segments' joined texts; one that
    crosses a segment boundary is dropped."""
    offset = 0
    for segment in segments:
        end = offset + len(segment.text)
        inside = [
            Replacement(r.start - offset, r.end - offset, r.phrase, r.score)
            for r in replacements
            if offset <= r.start and r.end <= end
        ]
        apply_replacements(segment, inside)
        offset = end


def _convert_script(segment: Segment, script: str) -> None:
    segment.text = _script(segment.text, script)
    for word in segment.words or []:
        word.word = _script(word.word, script)


def _script(text: str, script: str) -> str:
    convert = {"simplified": to_simplified, "traditional": to_traditional}.get(script)
    return convert(text) if convert else text


def next_prompt(
    prompt: str | None, segments: list[Segment], options: TranscribeOptions
) -> str | None:
    """Carry the last window's text forward, unless decoding had to fall back (unreliable)."""
    if not options.condition_on_previous_text:
        return None
    if not segments:
        return prompt
    if any(s.temperature > 0.5 for s in segments):
        return None
    text = "".join(s.text for s in segments).strip()
    return text[-_PROMPT_CHARS:] or prompt


def _dominant(
    languages: list[tuple[str, float]], options: TranscribeOptions
) -> tuple[str | None, float]:
    if not languages:
        return options.language, 1.0 if options.language else 0.0
    counts: dict[str, list[float]] = {}
    for language, probability in languages:
        counts.setdefault(language, []).append(probability)
    language = max(counts, key=lambda lang: len(counts[lang]))
    return language, max(counts[language])


class _SampleCounter:
    """Passes blocks through while counting samples (the duration is known only at the end)."""

    def __init__(self, blocks: Iterable[np.ndarray]) -> None:
        self._blocks = blocks
        self.samples = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self._blocks:
            self.samples += len(block)
            yield block
