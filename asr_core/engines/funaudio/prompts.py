"""The exact text around the audio, as Fun-ASR-Nano was trained and released.

`transcription_prompt` reproduces the release's `get_prompt` byte for byte when there is no
context; with hot-words it adds the training code's context lines (`MultiContextPrompt`):
历史转写结果 (previous text), 一遍解码结果 (the CTC first pass), 热词列表 (retrieved phrases).
The chat frame is the release's ChatML with the speech marker span replaced by audio embeddings.
"""

from dataclasses import dataclass

SYSTEM_PROMPT = "You are a helpful assistant."
CONTEXT_HEADER = (
    "请结合上下文信息，更加准确地完成语音转写任务。如果没有相关信息，我们会留空。"
    "\n\n\n**上下文信息：**\n\n\n"
)
HISTORY_LINE = "历史转写结果：{}\n"
ONE_PASS_LINE = "一遍解码结果：{}\n"
HOTWORDS_LINE = "热词列表：[{}]\n"
TASK = "语音转写"
TASK_IN_LANGUAGE = "语音转写成{}"
NO_ITN = "，不进行文本规整"
EMPTY_THINK = "<think>\n\n</think>\n\n"

LANGUAGE_NAMES = {"zh": "中文", "en": "英文", "ja": "日文"}
"""The language names Fun-ASR-Nano-2512 takes (demo1.py); it has no language detection."""


@dataclass(frozen=True)
class PromptContext:
    hotwords: tuple[str, ...] = ()
    one_pass: str = ""
    history: str = ""


def transcription_prompt(
    context: PromptContext, language: str | None = None, itn: bool = True
) -> str:
    """The user turn's text before the audio. Context lines appear only with hot-words, so
    an unprompted decode sees exactly what the released model saw."""
    prompt = ""
    if context.hotwords:
        prompt = CONTEXT_HEADER
        if context.history:
            prompt += HISTORY_LINE.format(context.history)
        if context.one_pass:
            prompt += ONE_PASS_LINE.format(context.one_pass)
        prompt += HOTWORDS_LINE.format(", ".join(context.hotwords))
    name = LANGUAGE_NAMES.get(language) if language else None
    prompt += TASK_IN_LANGUAGE.format(name) if name else TASK
    if not itn:
        prompt += NO_ITN
    return prompt + "："


def chat_prefix(prompt: str, system: bool = True) -> str:
    """ChatML up to the audio."""
    user = f"<|im_start|>user\n{prompt}"
    return f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n{user}" if system else user


def chat_suffix(think: bool = True) -> str:
    """ChatML after the audio, up to where the answer starts."""
    return "<|im_end|>\n<|im_start|>assistant\n" + ("" if think else EMPTY_THINK)


def audio_token_count(frames: int) -> int:
    """Audio embeddings the LLM gets for `frames` encoder frames: the release's two stride-2
    convolution lengths then a halving, ⌈T/8⌉ in effect (10 s: 167 frames -> 21 tokens).
    Feeding all frames is out of distribution and makes the LLM loop."""
    if frames <= 0:
        return 0
    length = 1 + (frames - 3 + 2) // 2
    length = 1 + (length - 3 + 2) // 2
    return (length - 1) // 2 + 1
