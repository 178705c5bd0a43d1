"""Live streaming recognition: endpointing, partials and finals, one scheduler per process."""

from asr_core.streaming.endpointer import ClosedSegment, Endpointer, EndpointOptions
from asr_core.streaming.events import (
    EagerFinal,
    Endpoint,
    Error,
    Event,
    Final,
    Partial,
    SpeechStarted,
    TurnResumed,
    UtteranceEnd,
    WordTiming,
    to_dict,
)
from asr_core.streaming.finals import FinalRequest, decode_finals
from asr_core.streaming.recognizer import StreamingOptions, StreamingRecognizer, StreamObserver
from asr_core.streaming.scheduler import DecodeScheduler, SchedulerOverloaded

__all__ = [
    "ClosedSegment",
    "DecodeScheduler",
    "EagerFinal",
    "Endpoint",
    "EndpointOptions",
    "Endpointer",
    "Error",
    "Event",
    "Final",
    "FinalRequest",
    "Partial",
    "SchedulerOverloaded",
    "SpeechStarted",
    "StreamObserver",
    "StreamingOptions",
    "StreamingRecognizer",
    "TurnResumed",
    "UtteranceEnd",
    "WordTiming",
    "decode_finals",
    "to_dict",
]
