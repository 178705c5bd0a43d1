"""The ASR service over HTTP (file transcription) and, later, WebSocket streaming."""

from service.app import ServiceConfig, create_app

__all__ = ["ServiceConfig", "create_app"]
