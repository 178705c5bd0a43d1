"""Hot-word list formats, each error naming its line.

- FunAudio-ASR TSV: `phrase<TAB>alias[<TAB>alias...]` (`ZhangSan<TAB>张叁`).
- FunASR runtime lines: `phrase weight` (`阿里巴巴 20`).
- FunASR JSON: `{"phrase": weight, ...}` (what the FunASR websocket client sends).
- Plain: one phrase per line.

Blank lines and lines starting with `#` are skipped; duplicate phrases keep the first.
"""

import json
import re
from pathlib import Path
from typing import Literal

from asr_core.errors import AsrError
from asr_core.hotwords.model import Hotword, HotwordLimits, HotwordList, estimate_tokens

HotwordFormat = Literal["auto", "tsv", "weighted", "json", "lines"]
FORMATS: tuple[str, ...] = ("auto", "tsv", "weighted", "json", "lines")
_WEIGHTED_LINE = re.compile(r"^(?P<phrase>.+?)\s+(?P<weight>[-+]?\d+(?:\.\d+)?)$")


class HotwordListError(AsrError):
    code = "hotword_list_error"


def parse_hotwords(
    text: str,
    fmt: HotwordFormat = "auto",
    limits: HotwordLimits | None = None,
    source: str = "hot-word list",
) -> HotwordList:
    """Parse a hot-word list; `auto` picks the format from its shape."""
    limits = limits or HotwordLimits()
    if len(text) > limits.max_text_chars:
        raise HotwordListError(
            f"{source}: {len(text)} characters, more than the limit of {limits.max_text_chars} "
            "for a list's text (CALLSCRIBE_HOTWORDS_MAX_LIST_CHARS)"
        )
    if fmt == "auto":
        fmt = detect_format(text)
    if fmt == "json":
        items = _json_items(text, source)
    elif fmt in ("tsv", "weighted", "lines"):
        items = _line_items(text, fmt, source)
    else:
        raise HotwordListError(f"unknown hot-word format {fmt!r}; use one of {', '.join(FORMATS)}")
    entries: list[Hotword] = []
    seen: set[str] = set()
    budget = _Budget(limits, source)
    for line, phrase, weight, aliases in items:
        budget.spend(f"line {line}", phrase, aliases)
        _check_phrase(phrase, f"line {line}", limits, source)
        for alias in aliases:
            _check_phrase(alias, f"line {line}", limits, source)
        if phrase in seen:
            continue
        if len(entries) >= limits.max_phrases:
            raise HotwordListError(
                f"{source}, line {line}: more than {limits.max_phrases} phrases (the limit)"
            )
        seen.add(phrase)
        entries.append(Hotword(phrase, weight, tuple(a for a in aliases if a != phrase)))
    return HotwordList(entries)


def read_hotwords(
    path: str | Path, fmt: HotwordFormat = "auto", limits: HotwordLimits | None = None
) -> HotwordList:
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
    return parse_hotwords(text, fmt, limits, str(path))


def detect_format(text: str) -> HotwordFormat:
    stripped = text.strip()
    if stripped.startswith("{"):
        return "json"
    lines = [line for line in _content_lines(text)]
    if any("\t" in line for _, line in lines):
        return "tsv"
    if lines and all(_WEIGHTED_LINE.match(line.strip()) for _, line in lines):
        return "weighted"
    return "lines"


def _content_lines(text: str):
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line


def _line_items(text: str, fmt: str, source: str):
    for number, line in _content_lines(text):
        if fmt == "tsv":
            cells = [cell.strip() for cell in line.split("\t")]
            yield number, cells[0], 1.0, tuple(c for c in cells[1:] if c)
        elif fmt == "weighted":
            match = _WEIGHTED_LINE.match(line.strip())
            if match is None:
                raise HotwordListError(
                    f"{source}, line {number}: expected `phrase weight`, got {line.strip()!r}"
                )
            yield number, match["phrase"].strip(), _weight(match["weight"], number, source), ()
        else:
            yield number, line.strip(), 1.0, ()


def _json_items(text: str, source: str):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HotwordListError(f"{source}, line {exc.lineno}: invalid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise HotwordListError(f'{source}, line 1: expected a JSON object {{"phrase": weight}}')
    lines = _key_lines(text)
    for phrase, weight in data.items():
        line = lines.get(phrase, 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float | str):
            raise HotwordListError(f"{source}, line {line}: weight of {phrase!r} is not a number")
        yield line, str(phrase).strip(), _weight(str(weight), line, source), ()


def _key_lines(text: str) -> dict[str, int]:
    """Line of each JSON key, for error messages."""
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        for match in re.finditer(r'"((?:[^"\\]|\\.)*)"\s*:', line):
            try:
                lines.setdefault(json.loads(f'"{match[1]}"'), number)
            except json.JSONDecodeError:
                continue
    return lines


def _weight(value: str, line: int, source: str) -> float:
    try:
        weight = float(value)
    except ValueError:
        raise HotwordListError(f"{source}, line {line}: weight {value!r} is not a number") from None
    if not 0 < weight <= 1000:
        raise HotwordListError(f"{source}, line {line}: weight {weight:g} is outside (0, 1000]")
    return weight


class _Budget:
    """What a list may cost in all: aliases and characters (phrases are counted apart)."""

    def __init__(self, limits: HotwordLimits, source: str) -> None:
        self.limits = limits
        self.source = source
        self.aliases = 0
        self.chars = 0

    def spend(self, where: str, phrase: str, aliases) -> None:
        self.aliases += len(aliases)
        self.chars += len(phrase) + sum(len(alias) for alias in aliases)
        if self.aliases > self.limits.max_aliases:
            raise HotwordListError(
                f"{self.source}, {where}: more than {self.limits.max_aliases} aliases in all "
                "(the limit, CALLSCRIBE_HOTWORDS_MAX_ALIASES)"
            )
        if self.chars > self.limits.max_list_chars:
            raise HotwordListError(
                f"{self.source}, {where}: more than {self.limits.max_list_chars} characters of "
                "phrases and aliases in all (the limit, CALLSCRIBE_HOTWORDS_MAX_LIST_CHARS)"
            )


def _check_phrase(phrase: str, where: str, limits: HotwordLimits, source: str) -> None:
    if not phrase:
        raise HotwordListError(f"{source}, {where}: empty phrase")
    if len(phrase) > limits.max_chars:
        raise HotwordListError(
            f"{source}, {where}: phrase is {len(phrase)} characters, the limit is "
            f"{limits.max_chars}"
        )
    if any(ord(c) < 32 for c in phrase):
        raise HotwordListError(f"{source}, {where}: control character in phrase")
    tokens = estimate_tokens(phrase)
    if tokens > limits.max_phrase_tokens:
        raise HotwordListError(
            f"{source}, {where}: phrase takes about {tokens} prompt tokens; with "
            f"{limits.top_k} phrases prompted at once each may take {limits.max_phrase_tokens}"
        )


def check_entries(
    entries: list[Hotword], limits: HotwordLimits | None = None, source: str = "hot-word list"
) -> HotwordList:
    """Apply the limits to structured entries; errors name the entry number."""
    limits = limits or HotwordLimits()
    if len(entries) > limits.max_phrases:
        raise HotwordListError(
            f"{source}, entry {limits.max_phrases + 1}: more than {limits.max_phrases} phrases "
            "(the limit)"
        )
    seen: set[str] = set()
    kept = []
    budget = _Budget(limits, source)
    for number, entry in enumerate(entries, start=1):
        budget.spend(f"entry {number}", entry.phrase, entry.aliases)
        for text in (entry.phrase, *entry.aliases):
            _check_phrase(text.strip(), f"entry {number}", limits, source)
        if entry.phrase not in seen:
            seen.add(entry.phrase)
            kept.append(entry)
    return HotwordList(kept)


def render_hotwords(hotwords: HotwordList, fmt: HotwordFormat = "tsv") -> str:
    """A list in one of the formats `parse_hotwords` reads (export; round-trips)."""
    entries = hotwords.entries
    if fmt == "json":
        return (
            json.dumps({h.phrase: h.weight for h in entries}, ensure_ascii=False, indent=2) + "\n"
        )
    if fmt == "weighted":
        return "".join(f"{h.phrase} {h.weight:g}\n" for h in entries)
    if fmt == "lines":
        return "".join(f"{h.phrase}\n" for h in entries)
    if fmt == "tsv":
        return "".join("\t".join((h.phrase, *h.aliases)) + "\n" for h in entries)
    raise HotwordListError(f"cannot export as {fmt!r}; use tsv, weighted, json or lines")
