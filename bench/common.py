"""Shared bench plumbing: the test data, the plain faster-whisper baseline, a bench tenant's
database, latency percentiles."""

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


def bench_database(url: str, with_key: bool = True):
    """A fresh admin database at `url` with the `bench` tenant. Returns the open engine and,
    with `with_key`, a tenant key for it (None otherwise)."""
    from sqlmodel import Session

    from admin_api import migrate
    from admin_api.auth import TENANT
    from admin_api.crud import keys
    from admin_api.db import make_engine
    from admin_api.models import Tenant

    migrate.upgrade(url)
    database = make_engine(url)
    key = None
    with Session(database) as session:
        session.add(Tenant(id="bench", name="Benchmark tenant"))
        session.flush()
        if with_key:
            _, key = keys.create(session, TENANT, "bench", "bench")
        session.commit()
    return database, key


def keyed_server(database_url: str, **settings: str):
    """`callscribe serve` on a bench database: keys required, room for many calls and streams;
    `settings` are more `CALLSCRIBE_*` variables."""
    from tests.services import CallscribeServer

    return CallscribeServer(
        {
            "CALLSCRIBE_DATABASE_URL": database_url,
            "CALLSCRIBE_AUTH": "keys",
            "CALLSCRIBE_LOG_LEVEL": "warning",
            "CALLSCRIBE_MAX_CALLS": "64",
            "CALLSCRIBE_TENANT_MAX_STREAMS": "64",
            **settings,
        }
    )
