"""A call's recordings: one 16 kHz WAV per leg in the call's folder (`<leg>.wav`, written by
the call session), complete once the call has ended."""

import re
import wave
from dataclasses import dataclass
from pathlib import Path

from admin_api.models import Call

LEG = re.compile(r"[\w-]{1,32}")
"""Leg names, as the call session allows them (also what keeps a path inside the folder)."""


@dataclass(frozen=True)
class Recording:
    leg: str
    path: Path
    bytes: int
    duration_s: float


def path_of(call: Call, leg: str) -> Path | None:
    """The leg's WAV, if the call was recorded and the leg has one."""
    if not call.recording_path or not LEG.fullmatch(leg):
        return None
    path = Path(call.recording_path) / f"{leg}.wav"
    return path if path.is_file() else None


def of_call(call: Call) -> list[Recording]:
    """The legs' recordings, by leg name; none while the call is in progress (the WAV headers
    are written when it ends)."""
    if call.status == "active" or not call.recording_path:
        return []
    folder = Path(call.recording_path)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.wav")):
        if not LEG.fullmatch(path.stem):
            continue
        try:
            with wave.open(str(path)) as audio:
                duration = audio.getnframes() / audio.getframerate()
        except (OSError, EOFError, wave.Error):
            continue  # unreadable: not offered for playback
        found.append(Recording(path.stem, path, path.stat().st_size, round(duration, 3)))
    return found
