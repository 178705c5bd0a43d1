"""Prometheus metrics of the ASR service (exposed at /metrics)."""

from prometheus_client import CollectorRegistry, Counter, Histogram


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
