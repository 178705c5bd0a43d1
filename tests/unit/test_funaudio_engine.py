"""The FunAudio engine end to end on a tiny random checkpoint: encoder -> adaptor -> LLM, the
CTC first pass, hot-word retrieval into the prompt, batched partials, and engine selection."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the FunAudio engine needs torch (extra: funaudio)")
pytest.importorskip("transformers", reason="the FunAudio engine needs transformers")
pytest.importorskip("peft", reason="the FunAudio engine needs peft")

from asr_core.engines import load_engine  # noqa: E402
from asr_core.engines.base import DecodeOptions, PartialRequest  # noqa: E402
from asr_core.engines.funaudio.engine import FunAudioEngine  # noqa: E402
from asr_core.engines.funaudio.options import FunAudioOptions  # noqa: E402
from asr_core.engines.funaudio.prompts import chat_prefix, chat_suffix  # noqa: E402
from asr_core.errors import ModelNotFoundError, UnsupportedLanguageError  # noqa: E402
from asr_core.hotwords import Hotword, HotwordIndex, HotwordList  # noqa: E402
from asr_core.hotwords.guard import GuardOptions  # noqa: E402
from asr_core.transcribe import TranscribeOptions, decode_window  # noqa: E402
from tests.tiny_funaudio import TinySpec, write_tiny_checkpoint  # noqa: E402

torch.set_num_threads(1)
OPTIONS = FunAudioOptions(max_new_tokens=6)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    spec = TinySpec(ctc_piece="张三", seed=3)
    return write_tiny_checkpoint(tmp_path_factory.mktemp("funaudio") / "tiny", spec)


@pytest.fixture(scope="module")
def engine(folder):
    return FunAudioEngine(folder, OPTIONS)


def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(16000 * seconds))).astype(
        np.float32
    )


def test_encode_keeps_ceil_t_over_8_audio_embeddings(engine):
    encoded = engine.encode(_audio(2.0))
    frames = math.ceil((1 + (32000 - 400) // 160) / 6)
    assert encoded.encoder_out.shape == (frames, 16)
    assert encoded.audio_embeds.shape == (math.ceil(frames / 8), 32)
    assert encoded.duration == 2.0
    assert engine.encode(np.zeros(100, np.float32)).audio_embeds.shape[0] == 0


def test_decode_equals_a_hand_built_llm_call(engine):
    """encoder -> adaptor -> first ⌈T/8⌉ frames spliced into the chat prompt -> greedy LLM."""
    audio = _audio(1.5, seed=1)
    encoded = engine.encode(audio)
    tokenizer, llm = engine.model.tokenizer, engine.model.llm
    before = tokenizer.encode(chat_prefix("语音转写成中文："), add_special_tokens=False)
    after = tokenizer.encode(chat_suffix(), add_special_tokens=False)
    with torch.no_grad():
        embed = llm.get_input_embeddings()
        inputs = torch.cat(
            [embed(torch.tensor(before)), encoded.audio_embeds, embed(torch.tensor(after))]
        )
        expected = llm.generate(
            inputs_embeds=inputs[None], max_new_tokens=6, do_sample=False, eos_token_id=[2, 0]
        )[0].tolist()
    expected = expected[: next((i for i, t in enumerate(expected) if t in (0, 2)), None)]
    [segment] = engine.decode(encoded, DecodeOptions(language="zh"))
    assert segment.tokens == expected and len(expected) == 6
    assert segment.start == 0.0 and segment.end == 1.5 and segment.language == "zh"
    assert segment.text == engine.detokenize(tuple(expected), "zh")


def test_ctc_first_pass_and_language(engine):
    encoded = engine.encode(_audio(1.0))
    assert engine.first_pass(encoded, "zh") == "张三"
    assert engine.detect_language(encoded, ("en", "zh")) == ("zh", 1.0)
    assert engine.detect_language(encoded, ("en",)) == ("en", 0.0)


def _answers(engine, monkeypatch, *texts: str) -> list:
    """Make the backend answer each decode with the next text; returns the requests seen."""
    answers = [engine.model.tokenizer.encode(t, add_special_tokens=False) for t in texts]
    seen = []
    monkeypatch.setattr(
        engine.backend, "generate", lambda requests: seen.extend(requests) or [answers.pop(0)]
    )
    return seen


@pytest.fixture
def tenant_index():
    entries = [Hotword("张三")] + [Hotword(f"会议室{i}号") for i in range(12)]
    return HotwordIndex(HotwordList(entries, version=7))


def test_hotwords_retrieved_from_the_first_pass_go_into_the_second_prompt(
    engine, tenant_index, monkeypatch
):
    """The plain decode first (the released prompt), then the context prompt with the CTC
    pass and the phrases retrieved from the plain decode; the guard takes 张三 from it."""
    prompts = []
    original = engine.prompt
    monkeypatch.setattr(
        engine, "prompt", lambda e, o: prompts.append(original(e, o)) or prompts[-1]
    )
    _answers(engine, monkeypatch, "张山你好", "张三你好")
    options = TranscribeOptions(
        language="zh",
        hotword_index=tenant_index,
        hotword_top_k=3,
        hotword_guard=GuardOptions(max_logprob_drop=math.inf),
    )
    result = decode_window(engine, engine.encode(_audio(1.0)), options, prompt="上一句")
    assert prompts[0] == "语音转写成中文："
    assert "一遍解码结果：张三\n热词列表：[张三]\n语音转写成中文：" in prompts[1]
    assert "历史转写结果：上一句\n" in prompts[1]
    [segment] = result.segments
    assert segment.text == "张三你好"
    assert segment.hotwords == ["张三"] and segment.hotword_version == 7


def test_the_guard_keeps_the_plain_decode_when_the_second_pass_derails(
    engine, tenant_index, monkeypatch
):
    _answers(engine, monkeypatch, "张山你好", "张 三 你 好 张三")
    options = TranscribeOptions(
        language="zh",
        hotword_index=tenant_index,
        hotword_guard=GuardOptions(max_logprob_drop=math.inf),
    )
    [segment] = decode_window(engine, engine.encode(_audio(1.0)), options, None).segments
    assert segment.text == "张山你好"


def test_both_passes_are_scored_by_the_llm(engine, tenant_index):
    """Each answer's average log-probability under its own prompt: the greedy answer scores
    at least as well as the same answer with its last token changed."""
    encoded = engine.encode(_audio(1.2, seed=2))
    [first] = engine.decode(encoded, DecodeOptions(language="zh"))
    candidates = tenant_index.retrieve("张三")
    options = DecodeOptions(language="zh", hotwords=("张三",))
    second = engine.hotword_pass(encoded, options, [first], candidates)
    assert second.avg_logprob is not None and second.first_avg_logprob is not None
    assert second.avg_logprob <= 0 and second.first_avg_logprob <= 0
    plain = engine.prompt(encoded, DecodeOptions(language="zh"))
    assert engine._avg_logprob(encoded, plain, first.tokens) == second.first_avg_logprob
    changed = [*first.tokens[:-1], (first.tokens[-1] + 1) % 100]
    assert engine._avg_logprob(encoded, plain, changed) <= second.first_avg_logprob


def test_unknown_language_is_refused(engine):
    with pytest.raises(UnsupportedLanguageError):
        engine.decode(engine.encode(_audio(0.5)), DecodeOptions(language="fr"))


def test_partials_batch_and_continue_after_the_prefix(engine):
    requests = [
        PartialRequest(audio=_audio(1.2, seed=4), language="zh"),
        PartialRequest(audio=_audio(0.8, seed=5), language="en", prefix=(100, 101)),
        PartialRequest(audio=np.zeros(50, np.float32), language="zh", prefix=(99,)),
    ]
    batched = engine.decode_partials(requests)
    alone = [engine.decode_partials([r])[0] for r in requests]
    assert [r.tokens for r in batched] == [r.tokens for r in alone]
    assert batched[1].tokens[:2] == (100, 101)
    assert batched[2].tokens == (99,)
    for result, request in zip(batched, requests, strict=True):
        assert len(result.tokens) - len(request.prefix) <= 8 + 12 * 1.2
    assert [r.language for r in batched] == ["zh", "en", "zh"]


def test_final_words_are_timed_by_the_ctc_path(engine, monkeypatch):
    """The tiny CTC head spells 张三 over the whole clip: an LLM text of 张三 gets its two
    characters timed in order with the CTC posterior; any other text still gets words that
    put together give the text, in order, within the audio."""
    encoded = engine.encode(_audio(1.5, seed=1))
    [segment] = engine.decode(encoded, DecodeOptions(language="zh", word_timestamps=True))
    assert "".join(w.word for w in segment.words) == segment.text
    assert all(0.0 <= w.start <= w.end <= 1.5 for w in segment.words)
    spoken = engine.model.tokenizer.encode("张三", add_special_tokens=False)
    monkeypatch.setattr(engine.backend, "generate", lambda requests: [spoken])
    [segment] = engine.decode(encoded, DecodeOptions(language="zh", word_timestamps=True))
    assert [w.word for w in segment.words] == ["张", "三"]
    first, second = segment.words
    assert first.start == 0.0 and first.end == second.start and second.end == 1.5
    assert min(first.probability, second.probability) > 0.5
    assert engine.decode(encoded, DecodeOptions(language="zh"))[0].words is None


def test_same_interface_and_capabilities_as_whisper(engine):
    caps = engine.capabilities
    assert caps.languages >= {"zh", "en"}
    assert caps.prompt and caps.reusable_encoding and caps.streaming and caps.batch
    assert caps.word_timestamps  # from the CTC head
    assert caps.max_window_s == 30.0
    assert engine.name == "funaudio"


def test_load_engine_selects_funaudio_by_folder(folder, tmp_path):
    engine = load_engine(str(folder), funaudio=OPTIONS)
    assert isinstance(engine, FunAudioEngine) and engine.model_name == str(folder)
    with pytest.raises(ModelNotFoundError, match="Fun-ASR-Nano"):
        load_engine(str(tmp_path), engine="funaudio")
