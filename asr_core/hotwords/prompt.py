"""How retrieved hot-words are written into a decoder's text prompt.

Whisper continues its prompt's style: phrases separated by spaces come back as Mandarin split
into spaced syllables, a list with `、` brings `、` into the sentence. So the prompt should read
like the language and like the first pass. The forms below were compared on the tuning part of
the speech sets (`python -m bench.hotwords --tune`, docs/hotwords.md); `PROMPT_FORMS` holds the
one chosen per language.
"""

import re
from collections.abc import Sequence
from typing import Literal

from asr_core.hotwords.model import script_language

PromptForm = Literal["spaced", "enumerated", "styled", "hinted"]
"""- `spaced`: phrases joined by spaces (faster-whisper's `hotwords`).
- `enumerated`: a list in the language's own punctuation (`A、B、C。`, `A, B, C.`).
- `styled`: Mandarin phrases separated as the first pass separates its clauses (`，` or `,`,
  none where it writes none: then `、`), ending as it ends; other languages as `enumerated`.
- `hinted`: the first pass itself with each retrieved phrase written where it was heard.
"""

PROMPT_FORMS: dict[str, PromptForm] = {"zh": "enumerated", "en": "enumerated"}
"""The form each language is prompted in, chosen on the tuning split (docs/hotwords.md).
English `hinted` found one term more there (47 against 46 of 50) but is not used: Whisper
echoes it, so the second pass can stop after a word or keep the first pass's words, and a
short list's phrases that the first pass did not place cannot be in it."""

_CLAUSE_MARK = re.compile(r"[，,]")
_STOPS = "。.！!？?"


def hotword_prompt(
    phrases: Sequence[str],
    language: str,
    first_pass: str = "",
    spans: Sequence[tuple[int, int, str]] = (),
    form: PromptForm | None = None,
) -> str:
    """The prompt text for `phrases` in `form` (by default the language's chosen form).

    `first_pass` is the window's text without hot-words; `spans` are (start, end, phrase) of
    retrieved phrases in it, for the `hinted` form.
    """
    if not phrases:
        return ""
    form = form or PROMPT_FORMS.get(language, "spaced")
    chinese = language == "zh" or all(script_language(p) == "zh" for p in phrases)
    if form == "spaced":
        return " ".join(phrases)
    if form == "hinted" and first_pass.strip():
        return _hinted(first_pass, spans).strip()
    if form == "styled" and chinese:
        comma = _CLAUSE_MARK.search(first_pass)
        separator = comma.group() if comma else "、"
        stripped = first_pass.rstrip()
        stop = stripped[-1] if stripped and stripped[-1] in _STOPS else ""
        return separator.join(phrases) + stop
    if chinese:
        return "、".join(phrases) + "。"
    return ", ".join(phrases) + "."


def _hinted(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """`text` with each span replaced by its phrase (spans that overlap a kept one are skipped)."""
    kept: list[tuple[int, int, str]] = []
    for span in sorted(spans):
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    for start, end, phrase in reversed(kept):
        text = text[:start] + phrase + text[end:]
    return text
