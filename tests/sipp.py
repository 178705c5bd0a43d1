"""sipp, the SIP peer the gateway tests call with: its scenarios and command lines."""

import importlib.util
import shutil
from pathlib import Path

from tests.services import free_port

SCENARIOS = Path(__file__).resolve().parent / "data" / "sipp"
SPEECH = SCENARIOS / "uac_speech.xml"
"""Streams speech.wav as μ-law, waits, hangs up."""


def sip_missing() -> str | None:
    """Why SIP calls cannot be tested here, or None."""
    if shutil.which("sipp") is None:
        return "sipp not found (apt-get install sip-tester, or scripts/install-system-deps.sh)"
    if importlib.util.find_spec("pjsua2") is None:
        return "pjsua2 not installed (pip install pjsua2-python; wheels stop at Python 3.12)"
    return None


def sipp_argv(sip_port: int, scenario: Path, tenant: str, key: str = "", *args: str) -> list[str]:
    """A sipp command line calling the gateway on 127.0.0.1:`sip_port` as `tenant`, with
    `key` for X-Callscribe-Key (run it where the scenario's speech.wav is)."""
    return [
        "sipp",
        f"127.0.0.1:{sip_port}",
        "-sf",
        str(scenario),
        "-s",
        tenant,
        "-key",
        "key",
        key or "none",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mp",
        str(free_port()),
        "-nostdin",
        "-trace_err",
        "-timeout",
        "60s",
        *args,
    ]


def speech_keys(pause_ms: int, leg: str = "mixed", call_id: str = "") -> list[str]:
    """The `SPEECH` scenario's settings: stream as `leg` of `call_id` (empty: a new call),
    then stay `pause_ms` in the call before hanging up."""
    return [
        "-key",
        "leg",
        leg,
        "-key",
        "callscribe_call",
        call_id,
        "-d",
        str(pause_ms),
    ]
