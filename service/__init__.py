"""The ASR service over HTTP and WebSockets: OpenAI-compatible file transcription, the native
`/v1/stream` and FunASR live protocols, the caller's hot-words, health, metrics and the demo
page. It translates protocols; recognition itself is `asr_core`'s."""

from service.app import create_app, install
from service.config import ServiceConfig
from service.state import ServiceState

__all__ = ["ServiceConfig", "ServiceState", "create_app", "install"]
