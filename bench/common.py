"""Shared bench plumbing: where the test data is, and the plain faster-whisper baseline."""

import os
import statistics
import sys
from pathlib import Path

from asr_core.evaluation import read_manifest, read_terms

REPO = Path(__file__).resolve().parent.parent


def testdata_dir() -> Path:
    path = Path(
        os.environ.get("CALLSCRIBE_TESTDATA", REPO.parent / "shared" / "testdata" / "speech")
    )
    if not (path / "manifest.tsv").is_file():
        sys.exit(f"speech test data not found at {path}; set CALLSCRIBE_TESTDATA")
    return path


def shared_clips():
    """The shared set's utterances and the terms spoken in each (hotwords.tsv)."""
    data = testdata_dir()
    return read_manifest(data / "manifest.tsv"), read_terms(data / "hotwords.tsv")


def threads() -> int:
    return os.cpu_count() or 1


def plain_faster_whisper(model_dir: Path):
    """The baseline: faster-whisper as its README shows it, int8 on CPU."""
    from faster_whisper import WhisperModel

    return WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads())


def plain_transcribe(model, path: Path, language: str | None) -> tuple[str, float]:
    segments, info = model.transcribe(str(path), beam_size=5, language=language)
    return "".join(s.text for s in segments).strip(), info.duration


def percentiles(values: list[float]) -> dict:
    """n, p50, p95 and max of a sample (rounded to ms), as every bench reports latencies."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), 3),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }
