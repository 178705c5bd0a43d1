"""Whisper on CTranslate2 (faster-whisper): the embedded default engine, CPU, no torch.

`encode` runs the encoder once per window; `decode` can then be called several times on that
output (a cheap first pass and a final pass with hot-words, say) without another encoder run.
Decoding reuses faster-whisper's segment loop, so timestamps, temperature fallback and the
no-speech/log-prob checks behave exactly as in faster-whisper.
"""

import logging
import os
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

from asr_core.chinese import to_simplified
from asr_core.engines.base import DecodeOptions, EncodedAudio, Engine, EngineCapabilities
from asr_core.engines.guards import cut_repetition_loops
from asr_core.errors import ModelError, UnsupportedLanguageError
from asr_core.transcript import Segment, Word

logger = logging.getLogger(__name__)

_FIRST_PASS_NO_SPEECH = 0.6


@dataclass
class WhisperEncoded(EncodedAudio):
    features: np.ndarray
    output: ctranslate2.StorageView
    duration: float


@dataclass
class WhisperConfig:
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 0
    """0: one per core."""
    num_workers: int = 1
    """Decodes that may run in parallel from different threads."""


class WhisperEngine(Engine):
    name = "whisper"

    def __init__(
        self,
        model_dir: str | os.PathLike,
        config: WhisperConfig | None = None,
        model_name: str | None = None,
    ) -> None:
        self.config = config or WhisperConfig()
        self.model_dir = Path(model_dir)
        self.model_name = model_name or self.model_dir.name
        threads = self.config.cpu_threads or os.cpu_count() or 1
        try:
            self._model = WhisperModel(
                str(self.model_dir),
                device=self.config.device,
                compute_type=self.config.compute_type,
                cpu_threads=threads,
                num_workers=self.config.num_workers,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load Whisper model from {self.model_dir}: {exc}") from exc
        multilingual = self._model.model.is_multilingual
        self.capabilities = EngineCapabilities(
            languages=frozenset(self._model.supported_languages)
            if multilingual
            else frozenset({"en"}),
            word_timestamps=True,
            prompt=True,
            reusable_encoding=True,
            streaming=True,
            batch=False,
            max_window_s=30.0,
        )
        self._tokenizer_lock = threading.Lock()
        self._tokenizers: dict[str, tuple[Tokenizer, list[int]]] = {}

    @property
    def multilingual(self) -> bool:
        return self._model.model.is_multilingual

    def encode(self, audio: np.ndarray) -> WhisperEncoded:
        extractor = self._model.feature_extractor
        features = extractor(np.asarray(audio, dtype=np.float32))
        content_frames = features.shape[-1] - 1
        window = pad_or_trim(features[:, : min(extractor.nb_max_frames, content_frames)])
        return WhisperEncoded(
            features=features,
            output=self._model.encode(window),
            duration=len(audio) / extractor.sampling_rate,
        )

    def detect_language(
        self, encoded: WhisperEncoded, allowed: Collection[str]
    ) -> tuple[str, float]:
        if not self.multilingual:
            return "en", 1.0
        probabilities = {
            token[2:-2]: probability
            for token, probability in self._model.model.detect_language(encoded.output)[0]
        }
        candidates = {lang: probabilities.get(lang, 0.0) for lang in allowed} or probabilities
        language = max(candidates, key=candidates.__getitem__)
        total = sum(candidates.values()) or 1.0
        return language, candidates[language] / total

    def decode(self, encoded: WhisperEncoded, options: DecodeOptions) -> list[Segment]:
        language = options.language
        if language is None:
            language, _ = self.detect_language(encoded, options.allowed_languages)
        elif language not in self.capabilities.languages:
            raise UnsupportedLanguageError(
                f"model {self.model_name} cannot transcribe language {language!r}"
            )
        tokenizer, suppressed_tokens = self._tokenizer(language)
        fw_options = TranscriptionOptions(
            beam_size=options.beam_size,
            best_of=5,
            patience=1.0,
            length_penalty=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            log_prob_threshold=options.log_prob_threshold,
            no_speech_threshold=options.no_speech_threshold,
            compression_ratio_threshold=options.compression_ratio_threshold,
            condition_on_previous_text=True,
            prompt_reset_on_temperature=0.5,
            temperatures=list(options.temperatures),
            initial_prompt=options.prompt or None,
            prefix=None,
            suppress_blank=True,
            suppress_tokens=suppressed_tokens,
            without_timestamps=False,
            max_initial_timestamp=1.0,
            word_timestamps=options.word_timestamps,
            prepend_punctuations="\"'“¿([{-",
            append_punctuations="\"'.。,，!！?？:：”)]}、",
            multilingual=False,
            max_new_tokens=None,
            clip_timestamps=[],
            hallucination_silence_threshold=None,
            hotwords=" ".join(options.hotwords) or None,
        )
        segments = self._model.generate_segments(
            encoded.features, tokenizer, fw_options, False, encoded.output
        )
        return [
            cut_repetition_loops(
                Segment(
                    start=s.start,
                    end=s.end,
                    text=s.text,
                    words=[Word(w.start, w.end, w.word, w.probability) for w in s.words]
                    if s.words is not None
                    else None,
                    language=language,
                    avg_logprob=s.avg_logprob,
                    no_speech_prob=s.no_speech_prob,
                    compression_ratio=s.compression_ratio,
                    temperature=s.temperature or 0.0,
                    tokens=list(s.tokens),
                )
            )
            for s in segments
        ]

    def first_pass(self, encoded: WhisperEncoded, language: str) -> str:
        """Greedy decode without timestamps or prompt: one short generate call on the encoder
        output that is already there (about a fifth of a beam-5 decode with timestamps)."""
        tokenizer, suppressed_tokens = self._tokenizer(language)
        prompt = self._model.get_prompt(tokenizer, [], without_timestamps=True)
        result = self._model.model.generate(
            encoded.output,
            [prompt],
            beam_size=1,
            max_length=self._model.max_length,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppressed_tokens,
        )[0]
        if result.no_speech_prob > _FIRST_PASS_NO_SPEECH:
            return ""
        text = tokenizer.decode(result.sequences_ids[0]).strip()
        return to_simplified(text) if language == "zh" else text

    def _tokenizer(self, language: str) -> tuple[Tokenizer, list[int]]:
        """Tokenizer for a language, with its suppressed tokens (built once per language)."""
        with self._tokenizer_lock:
            if language not in self._tokenizers:
                tokenizer = Tokenizer(
                    self._model.hf_tokenizer,
                    self.multilingual,
                    task="transcribe",
                    language=language,
                )
                self._tokenizers[language] = (tokenizer, get_suppressed_tokens(tokenizer, [-1]))
            return self._tokenizers[language]
