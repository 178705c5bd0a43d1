"""Chinese script conversion. Whisper often writes Mandarin in traditional characters; callers
in mainland call centers expect simplified, so transcripts are converted unless asked not to."""

import functools


@functools.cache
def _converter(config: str):
    import opencc

    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    return _converter("t2s").convert(text)


def to_traditional(text: str) -> str:
    return _converter("s2t").convert(text)
