"""The FunAudio prompt strings, byte for byte against the release (no torch needed)."""

import math

import pytest

from asr_core.engines.funaudio.prompts import (
    PromptContext,
    audio_token_count,
    chat_prefix,
    chat_suffix,
    transcription_prompt,
)

HEADER = (
    "请结合上下文信息，更加准确地完成语音转写任务。如果没有相关信息，我们会留空。"
    "\n\n\n**上下文信息：**\n\n\n"
)


@pytest.mark.parametrize(
    ("language", "itn", "expected"),
    [
        (None, True, "语音转写："),
        ("zh", True, "语音转写成中文："),
        ("en", True, "语音转写成英文："),
        ("ja", False, "语音转写成日文，不进行文本规整："),
        (None, False, "语音转写，不进行文本规整："),
    ],
)
def test_plain_prompts_match_the_release(language, itn, expected):
    assert transcription_prompt(PromptContext(), language, itn) == expected


def test_hotword_prompt_matches_the_release_get_prompt():
    prompt = transcription_prompt(PromptContext(hotwords=("开放时间", "ZhangSan")), "zh")
    assert prompt == HEADER + "热词列表：[开放时间, ZhangSan]\n语音转写成中文："
    assert prompt.encode() == (HEADER + "热词列表：[开放时间, ZhangSan]\n语音转写成中文：").encode()


def test_context_lines_use_the_training_format():
    context = PromptContext(hotwords=("张三",), one_pass="张叁来了", history="上一句")
    assert transcription_prompt(context, None, itn=False) == (
        HEADER + "历史转写结果：上一句\n一遍解码结果：张叁来了\n热词列表：[张三]\n"
        "语音转写，不进行文本规整："
    )


def test_context_lines_need_hotwords():
    """Without hot-words the prompt is the release's plain one, whatever context exists."""
    context = PromptContext(one_pass="张叁", history="上一句")
    assert transcription_prompt(context, "zh") == "语音转写成中文："


def test_chat_frame():
    assert chat_prefix("语音转写：") == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n语音转写："
    )
    assert chat_prefix("语音转写：", system=False) == "<|im_start|>user\n语音转写："
    assert chat_suffix() == "<|im_end|>\n<|im_start|>assistant\n"
    assert chat_suffix(think=False) == (
        "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )


def test_audio_token_count_is_ceil_t_over_8():
    assert audio_token_count(167) == 21  # 10 s of audio
    assert audio_token_count(0) == 0
    for frames in range(1, 2000):
        assert audio_token_count(frames) == math.ceil(frames / 8)


def test_prompts_match_funasr_get_prompt_when_installed():
    pytest.importorskip("torch", reason="the funasr reference needs torch")
    model = pytest.importorskip(
        "funasr.models.fun_asr_nano.model", reason="funasr (reference) is not installed"
    )
    get_prompt = model.FunASRNano.get_prompt
    for hotwords in ([], ["开放时间"], ["a", "张三", "CRISPR"]):
        for language in (None, "zh", "en", "ja"):
            for itn in (True, False):
                name = {"zh": "中文", "en": "英文", "ja": "日文"}.get(language)
                expected = get_prompt(None, hotwords, name, itn)
                context = PromptContext(hotwords=tuple(hotwords))
                assert transcription_prompt(context, language, itn) == expected


def test_whisper_processes_never_import_torch(tmp_path):
    """Settings, the CLI and engine selection stay torch-free; a Fun-ASR folder is told by its
    files alone."""
    import subprocess
    import sys

    (tmp_path / "model.pt").write_bytes(b"")
    (tmp_path / "config.yaml").write_text("model: FunASRNano\n")
    code = (
        "import sys\n"
        "import callscribe.cli, asr_core.engines\n"
        "from asr_core.model_registry import is_funaudio_folder\n"
        "from callscribe.config import Settings\n"
        "Settings().funaudio_options(cpu_threads=2)\n"
        f"assert is_funaudio_folder({str(tmp_path)!r})\n"
        "assert not is_funaudio_folder('whisper-base')\n"
        "assert not {'torch', 'transformers', 'peft'} & set(sys.modules), 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
