"""Transcript renderers: json, verbose_json (OpenAI), text, SRT and WebVTT."""

import json
from collections.abc import Callable

from asr_core.transcript import Segment, Transcript

LANGUAGE_NAMES = {"en": "english", "zh": "chinese"}


def to_json(transcript: Transcript) -> dict:
    """callscribe's own JSON: text, language, duration, segments (with words when computed)."""
    return {
        "text": transcript.text,
        "language": transcript.language,
        "language_probability": round(transcript.language_probability, 4),
        "duration": round(transcript.duration, 3),
        "model": transcript.model,
        "segments": [_segment_json(i, s) for i, s in enumerate(transcript.segments)],
    }


def to_openai_json(transcript: Transcript) -> dict:
    return {"text": transcript.text}


def to_verbose_json(transcript: Transcript, words: bool = False) -> dict:
    """OpenAI `verbose_json`: language by name, segments, and words when asked for."""
    body = {
        "task": "transcribe",
        "language": LANGUAGE_NAMES.get(transcript.language or "", transcript.language),
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
        "segments": [
            {
                "id": i,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": s.tokens,
                "temperature": s.temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
            }
            for i, s in enumerate(transcript.segments)
        ],
    }
    if words:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end}
            for s in transcript.segments
            for w in s.words or []
        ]
    return body


def to_text(transcript: Transcript) -> str:
    return transcript.text + "\n" if transcript.text else ""


def to_srt(transcript: Transcript) -> str:
    blocks = [
        f"{i}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(_captions(transcript), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    blocks = [
        f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{s.text.strip()}\n"
        for s in _captions(transcript)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


RENDERERS: dict[str, Callable[[Transcript], str]] = {
    "json": lambda t: json.dumps(to_json(t), ensure_ascii=False, indent=2) + "\n",
    "txt": to_text,
    "srt": to_srt,
    "vtt": to_vtt,
}
"""Renderers for file outputs (CLI, post-call transcript API)."""


def render(transcript: Transcript, fmt: str) -> str:
    try:
        return RENDERERS[fmt](transcript)
    except KeyError:
        raise ValueError(
            f"unknown format {fmt!r}; expected one of {', '.join(RENDERERS)}"
        ) from None


def _captions(transcript: Transcript) -> list[Segment]:
    return [s for s in transcript.segments if s.text.strip()]


def _segment_json(index: int, segment: Segment) -> dict:
    body = {
        "id": index,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text.strip(),
        "language": segment.language,
        "avg_logprob": round(segment.avg_logprob, 4),
        "no_speech_prob": round(segment.no_speech_prob, 4),
    }
    if segment.words is not None:
        body["words"] = [
            {
                "word": w.word.strip(),
                "start": w.start,
                "end": w.end,
                "probability": round(w.probability, 4),
            }
            for w in segment.words
        ]
    return body


def _timestamp(seconds: float, decimal_marker: str) -> str:
    milliseconds = max(0, round(seconds * 1000))
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    secs, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{milliseconds:03d}"
