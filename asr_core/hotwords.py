"""Hot-word phrase lists as the transcription entry points take them.

Reads one phrase per line; a FunAudio-style `phrase<TAB>alias` line contributes its phrase.
Retrieval over large lists builds on this (see the Hot-words issue).
"""

from pathlib import Path

from asr_core.errors import AsrError


class HotwordListError(AsrError):
    code = "hotword_list_error"


def parse_phrases(text: str, source: str = "hot-word list") -> list[str]:
    """Phrases from text, in order, without duplicates, blank lines or `#` comments."""
    phrases: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        phrase = line.split("\t", 1)[0].strip()
        if not phrase or phrase.startswith("#"):
            continue
        if any(ord(c) < 32 for c in phrase):
            raise HotwordListError(f"{source}, line {number}: control character in phrase")
        if phrase not in phrases:
            phrases.append(phrase)
    return phrases


def read_phrases(path: str | Path) -> list[str]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HotwordListError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise HotwordListError(f"{path}, line {line}: not UTF-8 text") from exc
    return parse_phrases(text, str(path))
