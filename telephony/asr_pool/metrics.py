"""Prometheus metrics of the gateway -> ASR core hop (on the gateway's `/metrics`)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2, 3, 5, 10, 30)


class HopMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.streams = Gauge(
            "callscribe_asr_pool_streams",
            "Call legs this gateway streams to each ASR core now",
            ["core"],
            registry=registry,
        )
        self.healthy = Gauge(
            "callscribe_asr_pool_core_up",
            "1 while an ASR core answers its health check",
            ["core"],
            registry=registry,
        )
        self.refusals = Counter(
            "callscribe_asr_pool_refusals",
            "Streams an ASR core refused or could not take (busy, unreachable)",
            ["core", "reason"],
            registry=registry,
        )
        self.reconnects = Counter(
            "callscribe_asr_pool_reconnects",
            "Legs moved to another core after their core's socket dropped",
            registry=registry,
        )
        self.replayed_seconds = Counter(
            "callscribe_asr_pool_replayed_audio_seconds",
            "Audio since the last final sent again to the new core after a move",
            registry=registry,
        )
        self.failover_seconds = Histogram(
            "callscribe_asr_pool_failover_seconds",
            "From a core's socket dropping to the leg's audio replayed on another core",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.final_latency_seconds = Histogram(
            "callscribe_asr_pool_end_of_speech_to_final_seconds",
            "End of speech (as the gateway sent it) to the final back at the gateway: the "
            "core's own callscribe_end_of_speech_to_final_seconds plus the hop",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
