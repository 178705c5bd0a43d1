"""Deepgram's `listen` v1 JSON, built from the recognizer's events and transcripts.

Times are seconds (Deepgram's unit); a word's `word` is lower case without punctuation and
its `punctuated_word` as the recognizer wrote it.
"""

import datetime
import hashlib
import string
import uuid
from dataclasses import dataclass, field

from asr_core.streaming import Final, Partial, WordTiming
from asr_core.transcript import Transcript, join_text

_PUNCTUATION = string.punctuation + "，。！？、；：“”‘’（）《》…"


@dataclass
class ModelInfo:
    """What `Metadata` and every `Results` say about the model (the served engine)."""

    name: str
    version: str = "callscribe"
    arch: str = "whisper"
    uuid: str = field(default="")

    def __post_init__(self) -> None:
        if not self.uuid:
            self.uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"callscribe:{self.name}"))

    def as_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "arch": self.arch}


def word(timing: WordTiming) -> dict:
    punctuated = timing.word.strip()
    return {
        "word": punctuated.strip(_PUNCTUATION).lower() or punctuated,
        "start": timing.start_ms / 1000,
        "end": timing.end_ms / 1000,
        "confidence": timing.confidence,
        "punctuated_word": punctuated,
    }


def confidence(words: list[WordTiming]) -> float:
    """A transcript's confidence: its words' mean (1.0 for a partial, which has none)."""
    return round(sum(w.confidence for w in words) / len(words), 3) if words else 1.0


def alternative(text: str, words: list[WordTiming], language: str) -> dict:
    return {
        "transcript": text.strip(),
        "confidence": confidence(words),
        "words": [word(w) for w in words],
        "languages": [language] if language else [],
    }


@dataclass
class LiveMessages:
    """One live v1 socket's messages (`channels` legs, `channel_index` [leg, channels])."""

    request_id: str
    model: ModelInfo
    channels: int
    speech_final: bool = True
    """False with `endpointing=false`: no result is marked `speech_final`."""
    created: str = field(default_factory=lambda: _now())

    def results(self, event: Partial | Final, channel: int) -> dict:
        final = isinstance(event, Final)
        words = event.words if final else []
        return {
            "type": "Results",
            "channel_index": [channel, self.channels],
            "start": event.start_ms / 1000,
            "duration": max(0, event.end_ms - event.start_ms) / 1000,
            "is_final": final,
            "speech_final": final and self.speech_final and event.reason in ("silence", "end"),
            "from_finalize": final and event.reason == "commit",
            "channel": {"alternatives": [alternative(event.text, words, event.language)]},
            "metadata": {
                "request_id": self.request_id,
                "model_info": self.model.as_dict(),
                "model_uuid": self.model.uuid,
            },
        }

    def metadata(self, duration_s: float) -> dict:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": hashlib.sha256(self.request_id.encode()).hexdigest(),
            "created": self.created,
            "duration": round(duration_s, 3),
            "channels": self.channels,
            "models": [self.model.uuid],
            "model_info": {self.model.uuid: self.model.as_dict()},
        }

    def speech_started(self, start_ms: int, channel: int) -> dict:
        return {
            "type": "SpeechStarted",
            "channel": [channel, self.channels],
            "timestamp": start_ms / 1000,
        }

    def utterance_end(self, last_word_end_ms: int, channel: int) -> dict:
        return {
            "type": "UtteranceEnd",
            "channel": [channel, self.channels],
            "last_word_end": last_word_end_ms / 1000,
        }


def prerecorded(
    transcript: Transcript, request_id: str, model: ModelInfo, utterances: bool, sha256: str
) -> dict:
    """`POST /v1/listen`'s answer: one channel (the recording's channels mixed), its words,
    and each segment as an utterance when asked."""
    by_segment = [
        [
            WordTiming(w.word.strip(), round(w.start * 1000), round(w.end * 1000), w.probability)
            for w in segment.words or []
            if w.word.strip()
        ]
        for segment in transcript.segments
    ]
    words = [w for segment in by_segment for w in segment]
    language = transcript.language or ""
    text = join_text([s.text for s in transcript.segments])
    channel = {"alternatives": [alternative(text, words, language)]}
    if language:
        channel["detected_language"] = language
    results: dict = {"channels": [channel]}
    if utterances:
        results["utterances"] = [
            {
                "start": segment.start,
                "end": segment.end,
                "confidence": confidence(timed),
                "channel": 0,
                "transcript": segment.text.strip(),
                "words": [word(w) for w in timed],
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{request_id}/{index}")),
            }
            for index, (segment, timed) in enumerate(
                zip(transcript.segments, by_segment, strict=True)
            )
            if segment.text.strip()
        ]
    return {
        "metadata": {
            "transaction_key": "deprecated",
            "request_id": request_id,
            "sha256": sha256,
            "created": _now(),
            "duration": round(transcript.duration, 3),
            "channels": 1,
            "models": [model.uuid],
            "model_info": {model.uuid: model.as_dict()},
        },
        "results": results,
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
