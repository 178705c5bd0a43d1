"""Speech recognition core: audio, VAD, engines, transcription and the ASR service.

Knows nothing about SQL, tenants' storage or SIP: gateways and the admin backend feed it.
"""

SAMPLE_RATE = 16_000
"""Every engine and the VAD work on 16 kHz mono float32 audio in [-1, 1]."""
