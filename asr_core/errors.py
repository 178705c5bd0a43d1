"""Typed errors raised by asr_core; every one carries a human-readable reason."""


class AsrError(Exception):
    """Base class: `code` is a stable machine-readable identifier for APIs and logs."""

    code = "asr_error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AudioDecodeError(AsrError):
    """The input could not be decoded as audio (corrupt, truncated, wrong format...)."""

    code = "audio_decode_error"


class ModelError(AsrError):
    """A model could not be found, assembled or loaded."""

    code = "model_error"


class ModelNotFoundError(ModelError):
    code = "model_not_found"


class ModelChecksumError(ModelError):
    code = "model_checksum_mismatch"


class UnsupportedLanguageError(AsrError):
    code = "unsupported_language"
