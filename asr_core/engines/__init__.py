"""Speech recognition engines behind one interface (`Engine`) with declared capabilities."""

from asr_core.engines.base import (
    DecodeOptions,
    EncodedAudio,
    Engine,
    EngineCapabilities,
)

__all__ = ["DecodeOptions", "EncodedAudio", "Engine", "EngineCapabilities", "load_engine"]


def load_engine(model: str, cache_dir=None, **whisper_options) -> Engine:
    """Build the engine for a registry model name or a model folder path."""
    from asr_core.engines.whisper import WhisperConfig, WhisperEngine
    from asr_core.models import resolve_model

    return WhisperEngine(
        resolve_model(model, cache_dir), WhisperConfig(**whisper_options), model_name=str(model)
    )
