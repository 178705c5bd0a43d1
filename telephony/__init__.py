"""Telephony gateways: SIP (pjsua2), WebRTC (aiortc) and media-stream adapters.

They decode codecs, resample to 16 kHz mono and feed one stream per call leg to `asr_core`;
they never decode text themselves. Built by the SIP-gateway and WebRTC issues.
"""
