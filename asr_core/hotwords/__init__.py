"""Per-tenant hot-words: list formats, a phonetic index, retrieval and correction.

The FunAudio-ASR approach, implemented where the released code stops: a first-pass hypothesis
retrieves the few listed phrases that sound present (`HotwordIndex.retrieve`), only those go
into the final pass's prompt, and near-miss spellings are then corrected conservatively
(`apply_corrections`).
"""

from asr_core.hotwords.correct import apply_corrections, find_replacements
from asr_core.hotwords.index import Candidate, HotwordIndex
from asr_core.hotwords.model import Hotword, HotwordLimits, HotwordList
from asr_core.hotwords.parse import (
    FORMATS,
    HotwordFormat,
    HotwordListError,
    check_entries,
    parse_hotwords,
    read_hotwords,
    render_hotwords,
)

__all__ = [
    "FORMATS",
    "Candidate",
    "Hotword",
    "HotwordFormat",
    "HotwordIndex",
    "HotwordLimits",
    "HotwordList",
    "HotwordListError",
    "apply_corrections",
    "check_entries",
    "find_replacements",
    "parse_hotwords",
    "read_hotwords",
    "render_hotwords",
]
