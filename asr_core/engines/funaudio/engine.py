"""The FunAudio engine behind the common `Engine` interface, so file transcription, live
streams, SIP, WebRTC and the worker run on it unchanged.

- `encode`: frontend -> encoder (float32) -> adaptor; keeps the first ⌈T/8⌉ adaptor frames.
- `first_pass`: the CTC head's greedy text (an unprompted LLM decode where the checkpoint has
  no CTC head): the script detects the language, and hot-word prompts carry it as 一遍解码结果.
- `decode`: the released prompt, plus 历史转写结果 / 一遍解码结果 / 热词列表 lines when
  hot-words are prompted; one greedy LLM decode per window (no beam search, as released);
  word times from the CTC head's path (`timing`), where the checkpoint has one.
- `hotword_pass`: the decode with hot-words prompted, after the pipeline's plain decode
  retrieved them; both answers scored by the LLM so `asr_core.hotwords.guard` can compare.
- `decode_partials`: every stream's open segment in one batch, each continuing after its
  stable tokens as the assistant's text: Fun-ASR's realtime re-decode with rollback, the
  rollback itself being the streaming recogniser's (`rollback_tokens`).
"""

import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr_core import SAMPLE_RATE
from asr_core.engines.base import (
    DecodeOptions,
    EncodedAudio,
    Engine,
    EngineCapabilities,
    PartialRequest,
    PartialResult,
)
from asr_core.engines.funaudio.backends.base import DecodeBackend, GenerationRequest
from asr_core.engines.funaudio.backends.sglang import ManagedServer, SglangBackend
from asr_core.engines.funaudio.backends.transformers import TransformersBackend
from asr_core.engines.funaudio.frontend import features
from asr_core.engines.funaudio.llm import stop_token_ids
from asr_core.engines.funaudio.model import FunAudioModel, load_model
from asr_core.engines.funaudio.options import FunAudioOptions
from asr_core.engines.funaudio.prompts import (
    LANGUAGE_NAMES,
    PromptContext,
    audio_token_count,
    chat_prefix,
    chat_suffix,
    transcription_prompt,
)
from asr_core.engines.funaudio.timing import align_words, spikes, timed_chars
from asr_core.engines.guards import cut_repetition_loops
from asr_core.errors import UnsupportedLanguageError
from asr_core.hotwords.guard import SecondPass
from asr_core.hotwords.index import Candidate
from asr_core.hotwords.model import script_language
from asr_core.transcript import Segment, Word, join_text

logger = logging.getLogger(__name__)

_KANA = re.compile(r"[\u3040-\u30ff]")
_LETTER = re.compile(r"[^\W\d_]")
_SILENCE_MARK = "/sil"
_PARTIAL_SLACK_TOKENS = 8


@dataclass
class FunAudioEncoded(EncodedAudio):
    encoder_out: torch.Tensor
    """(T, encoder width), float32: what the CTC head reads."""
    audio_embeds: torch.Tensor
    """(⌈T/8⌉, LLM width) in the LLM's dtype: what goes into the prompt."""
    duration: float
    hypothesis: str | None = None
    """The first-pass text, once made."""
    ctc_path: tuple[list[int], list[float]] | None = None
    """The CTC head's best unit and posterior per frame, once read (text and word times)."""


class FunAudioEngine(Engine):
    name = "funaudio"

    def __init__(
        self,
        folder: str | Path,
        options: FunAudioOptions | None = None,
        model_name: str | None = None,
    ) -> None:
        self.options = options or FunAudioOptions()
        self.folder = Path(folder)
        self.model_name = model_name or self.folder.name
        if self.options.cpu_threads:
            torch.set_num_threads(self.options.cpu_threads)
        self.model: FunAudioModel = load_model(
            self.folder, self.options.device, self.options.dtype, self.options.lora
        )
        self.backend = self._backend()
        self.capabilities = EngineCapabilities(
            languages=frozenset(LANGUAGE_NAMES),
            word_timestamps=self.model.ctc is not None,
            prompt=True,
            reusable_encoding=True,
            streaming=True,
            batch=True,
            max_window_s=30.0,
        )

    def _backend(self) -> DecodeBackend:
        stops = stop_token_ids(self.model.tokenizer)
        if self.options.backend == "transformers":
            return TransformersBackend(self.model.llm, stops)
        sglang = self.options.sglang
        if sglang.url:
            return SglangBackend(sglang.url, stops, sglang.request_timeout_s)
        server = ManagedServer(self.model.llm, self.model.tokenizer, sglang)
        return SglangBackend(server.url, stops, sglang.request_timeout_s, server)

    def close(self) -> None:
        self.backend.close()

    # -- audio -------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, audio: np.ndarray, min_window_s: float | None = None) -> FunAudioEncoded:
        """`min_window_s` is ignored: the encoder attends over the real length, no padding."""
        model = self.model
        duration = len(audio) / SAMPLE_RATE
        feats = features(audio, model.config.frontend).to(model.device)
        frames = feats.shape[0]
        if frames == 0:
            empty = torch.zeros(0, model.adaptor.linear2.out_features, dtype=model.dtype)
            return FunAudioEncoded(feats, empty, duration)
        lengths = torch.tensor([frames], device=model.device)
        encoder_out = model.encoder(feats[None], lengths)
        adapted, _ = model.adaptor(encoder_out.to(model.dtype), lengths)
        count = audio_token_count(frames) if model.config.use_low_frame_rate else frames
        return FunAudioEncoded(encoder_out[0], adapted[0, :count], duration)

    def first_pass(self, encoded: FunAudioEncoded, language: str) -> str:
        return self._hypothesis(encoded)

    def _hypothesis(self, encoded: FunAudioEncoded) -> str:
        if encoded.hypothesis is None:
            encoded.hypothesis = (
                self._ctc_text(encoded) if self.model.ctc is not None else self._llm_text(encoded)
            )
        return encoded.hypothesis

    def _ctc_text(self, encoded: FunAudioEncoded) -> str:
        units, _ = self._ctc_path(encoded)
        return _clean(self.model.vocabulary.decode(self.model.ctc.collapse(units)))

    @torch.inference_mode()
    def _ctc_path(self, encoded: FunAudioEncoded) -> tuple[list[int], list[float]]:
        if encoded.ctc_path is None:
            frames = encoded.encoder_out.shape[0]
            lengths = torch.tensor([frames], device=self.model.device)
            encoded.ctc_path = (
                self.model.ctc.best_path(encoded.encoder_out[None], lengths)[0]
                if frames
                else ([], [])
            )
        return encoded.ctc_path

    def _words(self, encoded: FunAudioEncoded, text: str) -> list[Word]:
        """The words of `text`, timed by the CTC head (see `timing`)."""
        units, posterior = self._ctc_path(encoded)
        if not units:
            return align_words(text, [], encoded.duration)
        frame_s = encoded.duration / len(units)
        runs = spikes(units, posterior, self.model.ctc.blank_id, frame_s)
        return align_words(text, timed_chars(runs, self.model.vocabulary.pieces), encoded.duration)

    def _llm_text(self, encoded: FunAudioEncoded) -> str:
        if encoded.audio_embeds.shape[0] == 0:
            return ""
        prompt = transcription_prompt(PromptContext(), None, self.options.itn)
        request = self._request(encoded, prompt, (), self.options.max_new_tokens)
        return self.detokenize(tuple(self.backend.generate([request])[0]), "")

    def detect_language(
        self, encoded: FunAudioEncoded, allowed: Collection[str]
    ) -> tuple[str, float]:
        """The script of the first pass (the model itself has no language identification)."""
        candidates = [lang for lang in allowed if lang in self.capabilities.languages]
        candidates = candidates or sorted(self.capabilities.languages)
        language = _script(self._hypothesis(encoded))
        if language in candidates:
            return language, 1.0
        return candidates[0], 0.0

    # -- text --------------------------------------------------------------------------------

    def decode(self, encoded: FunAudioEncoded, options: DecodeOptions) -> list[Segment]:
        language = options.language
        if language is not None and language not in self.capabilities.languages:
            raise UnsupportedLanguageError(
                f"model {self.model_name} cannot transcribe language {language!r}"
            )
        if encoded.audio_embeds.shape[0] == 0:
            return []
        request = self._request(
            encoded, self.prompt(encoded, options), (), self.options.max_new_tokens
        )
        tokens = self.backend.generate([request])[0]
        text = self.detokenize(tuple(tokens), language or "")
        if not text:
            return []
        segment = Segment(
            start=0.0,
            end=round(encoded.duration, 3),
            text=text,
            words=self._words(encoded, text)
            if options.word_timestamps and self.model.ctc is not None
            else None,
            language=language or _script(text),
            tokens=list(tokens),
        )
        return [cut_repetition_loops(segment)]

    def prompt(self, encoded: FunAudioEncoded, options: DecodeOptions) -> str:
        """The user turn's text for a final decode: hot-words come with the first pass (CTC,
        or the LLM pass the pipeline made) and the previous text as context lines."""
        context = PromptContext()
        if options.hotwords:
            one_pass = self._hypothesis(encoded) if self.model.ctc else encoded.hypothesis
            history = options.prompt if self.options.history_context else None
            context = PromptContext(tuple(options.hotwords), one_pass or "", history or "")
        return transcription_prompt(context, options.language, self.options.itn)

    def hotword_pass(
        self,
        encoded: FunAudioEncoded,
        options: DecodeOptions,
        first: Sequence[Segment],
        candidates: Sequence[Candidate],
    ) -> SecondPass:
        """The context prompt's decode (`prompt`), with both passes' answers scored by the
        LLM itself: each its average log-probability under the prompt that produced it."""
        if self.model.ctc is None and encoded.hypothesis is None:
            encoded.hypothesis = join_text(segment.text for segment in first)
        prompt = self.prompt(encoded, options)
        request = self._request(encoded, prompt, (), self.options.max_new_tokens)
        tokens = self.backend.generate([request])[0]
        plain = transcription_prompt(PromptContext(), options.language, self.options.itn)
        first_tokens = [token for segment in first for token in segment.tokens]
        return SecondPass(
            self.detokenize(tuple(tokens), options.language or ""),
            self._avg_logprob(encoded, prompt, tokens),
            self._avg_logprob(encoded, plain, first_tokens),
        )

    @torch.inference_mode()
    def _avg_logprob(
        self, encoded: FunAudioEncoded, prompt: str, answer: list[int]
    ) -> float | None:
        """Average log-probability of the answer tokens after a prompt: one forward pass of
        the LLM in this process, whichever backend decoded them."""
        if not answer:
            return None
        embeds = self._request(encoded, prompt, tuple(answer), 0).embeds
        logits = self.model.llm(inputs_embeds=embeds[None]).logits[0, -len(answer) - 1 : -1]
        targets = torch.tensor(answer, device=logits.device)[:, None]
        return float(torch.log_softmax(logits.float(), -1).gather(1, targets).mean())

    def decode_partials(self, requests: list[PartialRequest]) -> list[PartialResult]:
        """One backend batch for all streams; a request's prefix tokens are the assistant's
        text so far, and the decode continues after them."""
        encodings = [self.encode(r.audio) for r in requests]
        pending = [
            (index, self._partial_request(request, encoded))
            for index, (request, encoded) in enumerate(zip(requests, encodings, strict=True))
            if encoded.audio_embeds.shape[0]
        ]
        outputs = dict(
            zip(
                (index for index, _ in pending),
                self.backend.generate([g for _, g in pending]),
                strict=True,
            )
        )
        results = []
        for index, request in enumerate(requests):
            tokens = tuple(request.prefix) + tuple(outputs.get(index, ()))
            text = self.detokenize(tokens, request.language or "")
            language = request.language or _script(text) or request.allowed_languages[0]
            results.append(PartialResult(tokens, text, language))
        return results

    def _partial_request(self, request: PartialRequest, encoded: FunAudioEncoded):
        prompt = transcription_prompt(PromptContext(), request.language, self.options.itn)
        budget = int(self.options.tokens_per_second * encoded.duration) + _PARTIAL_SLACK_TOKENS
        return self._request(encoded, prompt, request.prefix, budget)

    def detokenize(self, tokens: tuple[int, ...], language: str) -> str:
        return _clean(self.model.tokenizer.decode(list(tokens), skip_special_tokens=True))

    @torch.inference_mode()
    def _request(
        self,
        encoded: FunAudioEncoded,
        prompt: str,
        continuation: tuple[int, ...],
        budget: int,
    ) -> GenerationRequest:
        """The whole prompt as embeddings: chat prefix, audio, chat suffix, continuation."""
        config = self.model.config
        before = self._tokens(chat_prefix(prompt, config.sys_prompt))
        after = self._tokens(chat_suffix(config.do_think)) + list(continuation)
        embed = self.model.llm.get_input_embeddings()
        device = self.model.device
        embeds = torch.cat(
            [
                embed(torch.tensor(before, device=device)),
                encoded.audio_embeds.to(device),
                embed(torch.tensor(after, device=device, dtype=torch.long)),
            ]
        )
        return GenerationRequest(embeds, budget)

    def _tokens(self, text: str) -> list[int]:
        return self.model.tokenizer.encode(text, add_special_tokens=False)


def _clean(text: str) -> str:
    """FunASR's output clean-up: silence marks become spaces, whitespace collapses."""
    return re.sub(r"\s+", " ", text.replace(_SILENCE_MARK, " ")).strip()


def _script(text: str) -> str | None:
    """zh, ja or en by the characters a text is written in; None for no letters."""
    if _KANA.search(text):
        return "ja"
    if not _LETTER.search(text):
        return None
    return script_language(text)
