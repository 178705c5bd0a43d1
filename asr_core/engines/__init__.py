"""Speech recognition engines behind one interface (`Engine`) with declared capabilities."""

from asr_core.engines.base import (
    DecodeOptions,
    EncodedAudio,
    Engine,
    EngineCapabilities,
)

__all__ = ["DecodeOptions", "EncodedAudio", "Engine", "EngineCapabilities", "load_engine"]


def load_engine(
    model: str,
    cache_dir=None,
    engine: str = "auto",
    funaudio=None,
    **whisper_options,
) -> Engine:
    """Build the engine for a registry model name or a model folder path.

    `engine` "auto" picks FunAudio for a Fun-ASR-Nano folder and Whisper otherwise; the
    FunAudio package (torch, transformers) is imported only then. `funaudio` is its
    `FunAudioOptions`; `whisper_options` are `WhisperConfig` fields.
    """
    from asr_core.errors import ModelNotFoundError
    from asr_core.model_registry import is_funaudio_folder, resolve_model

    if engine == "auto":
        engine = "funaudio" if is_funaudio_folder(model) else "whisper"
    if engine == "funaudio":
        if not is_funaudio_folder(model):
            raise ModelNotFoundError(
                f"{model!r} is not a Fun-ASR-Nano folder (model.pt and config.yaml): the "
                "funaudio engine needs --model PATH to one"
            )
        from asr_core.engines.funaudio.engine import FunAudioEngine

        return FunAudioEngine(model, funaudio, model_name=str(model))
    if engine != "whisper":
        raise ModelNotFoundError(f"unknown engine {engine!r}: use auto, whisper or funaudio")
    from asr_core.engines.whisper import WhisperConfig, WhisperEngine

    return WhisperEngine(
        resolve_model(model, cache_dir), WhisperConfig(**whisper_options), model_name=str(model)
    )
