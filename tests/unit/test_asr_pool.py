"""The pool's pieces on their own: placement from the cores' reports, the audio kept for a
replay, and a new core's events on the leg's time line (the real hop: test_asr_pool in
tests/integration)."""

import asyncio

import pytest

from asr_core.hotwords import render_hotwords
from asr_core.streaming import Endpoint, Final, Partial
from common.rules import RequestRules
from telephony.asr_pool import AsrPool, AsrPoolConfig
from telephony.asr_pool.client import StreamRequest
from telephony.asr_pool.replay import Renumbering, ReplayBuffer

URLS = ("ws://asr-1:7860", "ws://asr-2:7860")


def pool_with(reports: dict[str, object]) -> AsrPool:
    """A pool whose cores answer `reports[host]` (an exception: unreachable)."""

    def read(url: str, _timeout: float) -> dict:
        report = reports[url.split("//")[1].split(":")[0]]
        if isinstance(report, Exception):
            raise report
        return {"status": "ok", "load": report}

    pool = AsrPool(AsrPoolConfig(URLS, "key"), read_health=read)
    asyncio.run(pool.check())
    return pool


def load(streams: int, limit: int = 4, waiting: int = 0) -> dict:
    return {"streams": streams, "max_streams": limit, "finals_waiting": waiting}


def test_new_streams_go_to_the_least_loaded_core_with_room():
    pool = pool_with({"asr-1": load(3), "asr-2": load(1)})
    assert [c.name for c in pool.candidates()] == ["asr-2:7860", "asr-1:7860"]
    first, second = pool.cores
    pool.placed(second)
    pool.placed(second)
    pool.placed(second)  # counted until the next report: now 4 of 4
    assert [c.name for c in pool.candidates()] == ["asr-1:7860"]
    pool.placed(first)
    assert pool.candidates() == []
    assert "no ASR core has room" in pool.busy()


def test_down_busy_and_backlogged_cores_are_skipped_until_they_report_room():
    pool = pool_with({"asr-1": OSError("refused"), "asr-2": load(0, waiting=8)})
    assert pool.busy() is not None and "asr-1:7860 down" in pool.busy()
    pool = pool_with({"asr-1": load(0), "asr-2": load(0, limit=0)})
    first, second = pool.cores
    pool.refused(first, "busy")
    pool.refused(second, "lost")
    assert pool.busy() is not None
    asyncio.run(pool.check())  # their next reports: room again (a restarted core)
    assert pool.busy() is None and len(pool.candidates()) == 2
    assert pool.candidates(avoid=pool.cores[0])[-1] is pool.cores[0]


def test_the_replay_keeps_audio_since_the_last_final_and_at_most_its_limit():
    buffer = ReplayBuffer(max_s=1.0)
    buffer.append(b"\x01\x00" * 8000)
    buffer.append(b"\x02\x00" * 8000)
    assert (buffer.start, buffer.end) == (0, 16000)
    buffer.release(4000)  # a final ended there
    assert buffer.start == 4000 and buffer.read(0, 4) == b"\x01\x00\x01\x00"
    buffer.append(b"\x03\x00" * 8000)  # 1.5 s kept would exceed 1 s: the oldest goes
    assert (buffer.start, buffer.end) == (8000, 24000)
    assert buffer.read(16000, 2) == b"\x03\x00"
    buffer.release(99_999)
    assert buffer.start == buffer.end == 24000 and buffer.seconds == 0


def test_a_new_cores_events_continue_the_legs_segments_and_times():
    after_move = Renumbering(origin=16_000 * 12, first_segment=3)
    final = after_move.event(
        {
            "type": "final",
            "segment": 0,
            "text": "The invoice was paid.",
            "start_ms": 600,
            "end_ms": 2100,
            "language": "en",
            "words": [{"word": "The", "start_ms": 600, "end_ms": 700, "confidence": 0.9}],
            "hotwords": ["CRISPR"],
            "hotword_version": 2,
            "reason": "silence",
        }
    )
    assert isinstance(final, Final)
    assert (final.segment, final.start_ms, final.end_ms) == (3, 12_600, 14_100)
    assert (final.words[0].start_ms, final.hotword_version) == (12_600, 2)
    partial = after_move.event({"type": "partial", "segment": 1, "text": "a", "end_ms": 10})
    assert isinstance(partial, Partial) and (partial.segment, partial.end_ms) == (4, 12_010)
    endpoint = after_move.event({"type": "endpoint", "segment": 0, "end_ms": 2600})
    assert endpoint == Endpoint(3, 14_600, "silence")
    assert after_move.event({"type": "pong"}) is None


@pytest.mark.parametrize("url", ["http://asr:7860", "ws://", "ws://asr:7860/v1/stream"])
def test_asr_urls_must_be_core_addresses(url):
    from callscribe.config import Settings

    with pytest.raises(ValueError, match="ASR core"):
        Settings(_env_file=None, asr_urls=url, asr_service_key="k")
    with pytest.raises(ValueError, match="CALLSCRIBE_ASR_SERVICE_KEY"):
        Settings(_env_file=None, asr_urls="ws://asr:7860")


def test_a_calls_own_phrases_reach_the_core_as_a_list_it_reads():
    rules = RequestRules(languages=("en",))
    phrases = rules.hotwords('{"Siobhan Nakamura": 4, "Zyntrax": 1}')
    text = render_hotwords(phrases.hotwords, "json")
    config = StreamRequest("acme", "call-1", "agent", None, text).config()
    assert config["language"] == "auto" and config["sample_rate"] == 16000
    again = rules.hotwords(config["hotwords"])
    assert [(h.phrase, h.weight) for h in again.hotwords.entries] == [
        ("Siobhan Nakamura", 4.0),
        ("Zyntrax", 1.0),
    ]
