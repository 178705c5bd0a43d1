import numpy as np
import pytest

from asr_core.transcribe import pack_windows
from asr_core.vad import SpeechRegion

SR = 16_000


def region(start_s: float, end_s: float) -> SpeechRegion:
    start, end = int(start_s * SR), int(end_s * SR)
    return SpeechRegion(start, end, np.zeros(end - start, dtype=np.float32))


def test_regions_pack_up_to_the_window_length():
    regions = [region(0, 10), region(20, 30), region(40, 50), region(60, 65)]
    windows = list(pack_windows(regions, 30.0))
    assert [len(w.audio) / SR for w in windows] == [30.0, 5.0]


def test_window_times_map_back_across_removed_silence():
    window = next(pack_windows([region(1, 3), region(10, 12)], 30.0))
    assert window.to_source(0.0) == 1.0
    assert window.to_source(1.5) == 2.5
    assert window.to_source(2.5) == 10.5  # 0.5 s into the second region
    assert window.to_source(2.0, is_end=True) == 3.0  # an end at the join stays in region one
    assert window.to_source(2.0) == 10.0  # a start at the join belongs to region two
    assert window.to_source(9.0, is_end=True) == 12.0  # clamped to the last region


def test_overlong_region_is_split():
    windows = list(pack_windows([region(0, 70)], 30.0))
    assert [w.starts[0] / SR for w in windows] == [0, 30, 60]
    assert windows[1].to_source(1.0) == pytest.approx(31.0)


def test_segment_barely_starting_before_a_join_moves_to_the_next_region():
    window = next(pack_windows([region(10, 16), region(30, 36)], 30.0))
    # Decoder says 5.5-11.9 (window): it starts 0.5 s before the join but lies in region two.
    assert window.span_to_source(5.5, 11.9) == (30.0, 35.9)
    # An end spilling 0.3 s past the join stays in region one.
    assert window.span_to_source(1.0, 6.3) == (11.0, 16.0)
    # A segment really spanning both regions keeps both ends.
    assert window.span_to_source(3.0, 9.0) == (13.0, 33.0)
