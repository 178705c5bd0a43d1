"""Prometheus metrics of the ASR service (exposed at /metrics)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from asr_core.hotwords.guard import SECOND_PASSES
from asr_core.streaming import StreamObserver

_LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2, 3, 5, 10)


class ServiceMetrics:
    """One registry per app, so several apps in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "callscribe_transcription_requests",
            "File transcription requests by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "callscribe_transcribed_audio_seconds",
            "Seconds of audio transcribed from files",
            registry=self.registry,
        )
        self.processing_seconds = Histogram(
            "callscribe_transcription_processing_seconds",
            "Wall time spent transcribing one file",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
            registry=self.registry,
        )
        self.rtf = Histogram(
            "callscribe_transcription_rtf",
            "Real-time factor of file transcription (processing time / audio time)",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2),
            registry=self.registry,
        )
        self.streams = StreamMetrics(self.registry)
        self.registry.register(SECOND_PASSES)  # process-wide: how hot-word passes ended


class StreamMetrics(StreamObserver):
    """Live-stream latencies and load, recorded by every recognizer of the app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.active_streams = Gauge(
            "callscribe_active_streams", "Live streams open now", ["protocol"], registry=registry
        )
        self.first_partial_seconds = Histogram(
            "callscribe_first_partial_seconds",
            "Speech onset to the segment's first partial",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.final_latency_seconds = Histogram(
            "callscribe_end_of_speech_to_final_seconds",
            "End of speech to the final being sent",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.partial_lag_seconds = Histogram(
            "callscribe_partial_lag_seconds",
            "How far behind real time a partial is when sent",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.final_rtf = Histogram(
            "callscribe_final_rtf",
            "Real-time factor of final decodes",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2),
            registry=registry,
        )
        self.queue_wait_seconds = Histogram(
            "callscribe_decode_queue_wait_seconds",
            "Time a decode job waited for the scheduler",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
            registry=registry,
        )
        self.errors = Counter(
            "callscribe_stream_errors", "Errors sent to stream clients", ["code"], registry=registry
        )
        self.committed_seconds = Counter(
            "callscribe_stream_committed_audio_seconds",
            "Audio of open segments committed at pauses (later decodes skip it)",
            registry=registry,
        )

    def first_partial(self, seconds: float) -> None:
        self.first_partial_seconds.observe(seconds)

    def partial_lag(self, seconds: float) -> None:
        self.partial_lag_seconds.observe(seconds)

    def final_latency(self, seconds: float) -> None:
        self.final_latency_seconds.observe(seconds)

    def final_decoded(self, audio_s: float, compute_s: float) -> None:
        if audio_s > 0:
            self.final_rtf.observe(compute_s / audio_s)

    def error(self, code: str) -> None:
        self.errors.labels(code=code).inc()

    def committed(self, audio_s: float) -> None:
        self.committed_seconds.inc(audio_s)

    def queue_wait(self, kind: str, seconds: float) -> None:
        self.queue_wait_seconds.labels(kind=kind).observe(seconds)
