"""The FunAudio LLM-ASR engine: Fun-ASR-Nano checkpoints on torch + transformers (+ SGLang).

Audio -> fbank/LFR frontend -> SenseVoice SAN-M encoder -> adaptor -> Qwen3 LLM, with the CTC
head's greedy text driving hot-word retrieval. Nothing here is imported by the embedded default:
`asr_core.engines.load_engine` imports `engine` only when a Fun-ASR-Nano folder is selected, so
torch, transformers and peft stay out of Whisper-only processes. This file imports nothing.
"""
