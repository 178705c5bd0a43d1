import os
from pathlib import Path

import pytest

from asr_core.transcribe import Transcriber
from tests.helpers import espeak_wav, padded_wav
from tests.services import PostgresServer, RedisServer, ServiceUnavailable

REPO = Path(__file__).resolve().parent.parent
TESTDATA = Path(
    os.environ.get("CALLSCRIBE_TESTDATA", REPO.parent / "shared" / "testdata" / "speech")
)

ENGLISH_SENTENCE = "The quick brown fox jumps over the lazy dog. Please call me tomorrow morning."
MEETING_SENTENCE = "Please call me tomorrow morning about the meeting."
ENGLISH_WORDS = ["quick", "brown", "fox", "lazy", "dog", "call", "tomorrow", "morning"]
# 我想预约明天下午三点的会议室 ("I'd like to book the meeting room for 3 pm tomorrow").
MANDARIN_PINYIN = "wo3 xiang3 yu4 yue1 ming2 tian1 xia4 wu3 san1 dian3 de5 hui4 yi4 shi4"
MANDARIN_WORDS = ["明天", "下午"]


@pytest.fixture(scope="session")
def shared_speech() -> Path | None:
    """The shared recordings' folder, or None where it is absent (for espeak fallbacks)."""
    return TESTDATA if (TESTDATA / "manifest.tsv").is_file() else None


@pytest.fixture(scope="session")
def testdata(shared_speech) -> Path:
    if shared_speech is None:
        pytest.skip(f"shared speech test data not found at {TESTDATA} (set CALLSCRIBE_TESTDATA)")
    return shared_speech


@pytest.fixture(scope="session")
def speech_lists(testdata):
    """The speech sets' clips and the tenant lists `bench.hotwords` scores them with."""
    from bench.hotwords import speech_clips, tenant_lists

    clips = speech_clips()
    return clips, tenant_lists(clips)


@pytest.fixture(scope="session")
def shared_speech_texts(testdata, speech_lists, engine) -> dict:
    """Every clip of the shared speech set (not speech-zh), by id: (clip, texts) with texts
    without a list, with the list of its language's terms among 1,000 distractors, and with
    the distractors only. One encoder run and first pass serve the three
    (`bench.hotwords.decode_with_lists`), and every test of the set shares them."""
    from asr_core.evaluation import read_manifest
    from bench.hotwords import decode_with_lists

    clips, lists = speech_lists
    indexes = {
        "list": lists.indexes("with_terms"),
        "distractors_only": lists.indexes("distractors"),
    }
    ours = {u.id for u in read_manifest(testdata / "manifest.tsv")}
    return {
        c.utterance.id: (c, decode_with_lists(engine, c, indexes))
        for c in clips
        if c.utterance.id in ours
    }


@pytest.fixture(scope="session")
def engine():
    from asr_core.engines import load_engine

    return load_engine("whisper-base")


@pytest.fixture(scope="session")
def transcriber(engine) -> Transcriber:
    return Transcriber(engine)


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def english_wav(speech_dir) -> Path:
    return espeak_wav(ENGLISH_SENTENCE, speech_dir / "english.wav")


@pytest.fixture(scope="session")
def mandarin_wav(speech_dir) -> Path:
    # Slow: Whisper base copes badly with espeak-ng Mandarin at normal speed.
    return espeak_wav(
        MANDARIN_PINYIN, speech_dir / "mandarin.wav", voice="cmn-latn-pinyin", speed=120
    )


def _server(factory, request):
    """Start a server for the session; missing binaries skip, except in CI (`CI=true`) where
    they fail: CI installs them (scripts/install-system-deps.sh) and must not skip silently."""
    try:
        server = factory()
    except ServiceUnavailable as missing:
        reason = str(missing)
    else:
        request.addfinalizer(server.close)  # also when start() fails half-way
        server.start()
        return server
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_server(request) -> RedisServer:
    """A real redis-server for the session; tests may `stop()` and `start()` it (same port)."""
    return _server(RedisServer, request)


@pytest.fixture
def redis_url(redis_server) -> str:
    """The session's Redis, started again if a test left it stopped, and emptied."""
    redis_server.start()
    assert redis_server.command("FLUSHALL").startswith(b"+OK")
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server(request) -> PostgresServer:
    """A real PostgreSQL cluster for the session (trust auth, `callscribe` database)."""
    return _server(PostgresServer, request)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """An empty database of each kind the admin backend supports (SQLite, real PostgreSQL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'callscribe.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def meeting_wav(speech_dir) -> Path:
    """A sentence, then 2 s of silence (so its segment ends), as 16-bit mono 16 kHz: what the
    browser tests' fake microphone and WebRTC player send."""
    espeak = espeak_wav(MEETING_SENTENCE, speech_dir / "meeting-espeak.wav")
    return padded_wav(espeak, speech_dir / "meeting.wav")
