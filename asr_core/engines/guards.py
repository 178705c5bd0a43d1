"""Guards against decoder failure modes that thresholds alone miss.

Whisper-style decoders can fall into repetition loops ("thank you thank you ...", "啊啊啊...")
on noise or hard audio. The compression-ratio fallback catches most; whatever survives it is
cut here so one bad window cannot flood a transcript.
"""

import re

from asr_core.transcript import Segment

_UNIT = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")
_PUNCTUATION = re.compile(r"[^\w]+")


def repetition_loop_cut(text: str, max_repeats: int = 4, max_unit: int = 8) -> int | None:
    """Character offset at which a repetition loop starts being excessive, or None.

    A loop is an n-gram of 1..`max_unit` words (or CJK characters) repeated back to back more
    than `max_repeats` times; the text is kept up to the end of its second occurrence.
    """
    matches = list(_UNIT.finditer(text))
    units = [_PUNCTUATION.sub("", m.group()).lower() for m in matches]
    count = len(units)
    for size in range(1, max_unit + 1):
        start = 0
        while start + size * (max_repeats + 1) <= count:
            pattern = units[start : start + size]
            if not any(pattern):
                start += 1
                continue
            repeats = 1
            while units[start + repeats * size : start + (repeats + 1) * size] == pattern:
                repeats += 1
            if repeats > max_repeats:
                return matches[start + 2 * size - 1].end()
            start += 1
    return None


def cut_repetition_loops(segment: Segment) -> Segment:
    """Trim a segment's text (and words) at a repetition loop, if it has one."""
    cut = repetition_loop_cut(segment.text)
    if cut is None:
        return segment
    segment.text = segment.text[:cut]
    if segment.words is not None:
        kept, length = [], 0
        for word in segment.words:
            length += len(word.word)
            if length > cut:
                break
            kept.append(word)
        segment.words = kept
        if kept:
            segment.end = kept[-1].end
    return segment
