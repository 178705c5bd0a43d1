"""Media-stream adapters: thin translations of a wire format into a `CallSession`.

- `twilio`: Twilio Media Streams (`WS /v1/media-streams/twilio`, base64 μ-law in JSON).
- `audio_fork`: FreeSWITCH mod_audio_fork style (`WS /v1/media-streams/audio-fork`, L16).
- `audiosocket`: Asterisk AudioSocket over TCP, calls reserved by tenants beforehand
  (`POST /v1/media-streams/audiosocket/reservations`).
"""
