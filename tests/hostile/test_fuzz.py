"""Property-based fuzzing (hypothesis) of what parses untrusted input: on any input each
parser raises only its declared error types, within a generous time bound per input (a
quadratic path would blow it by far; a busy machine would not). Socket protocols are fuzzed
through the app: any message gets an answer or a 4xxx close, never an internal error (1011),
and the socket still works afterwards."""

import contextlib
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from admin_api.auth import ADMIN
from asr_core.hotwords import FORMATS, HotwordLimits, HotwordListError, parse_hotwords
from common.rules import InvalidRequest, RequestRules, check_sample_rate
from telephony.adapters.audio_fork import ForkMetadata
from telephony.sip.message import BadMessage, Via, cseq_of, parse, uri_of, uri_target
from tests.combined_server import bearer, make_server, new_key

PURE = settings(
    max_examples=200,
    deadline=timedelta(seconds=5),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
SOCKETS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

SIP_LINES = st.sampled_from(
    [
        "INVITE sip:acme@127.0.0.1 SIP/2.0",
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport",
        "Route: <sip:127.0.0.1:5060;lr>, <sip:10.0.0.1;lr>",
        "CSeq: 1 INVITE",
        "Content-Length: 4",
        "Max-Forwards: 70",
        'From: "A, B" <sip:a@b>;tag=1',
        "l: 99999999999",
    ]
)
SIP_TEXT = st.lists(
    st.one_of(SIP_LINES, st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=80)),
    max_size=30,
).map(lambda lines: "\r\n".join(lines).encode("latin-1") + b"\r\n\r\nbody")


@PURE
@given(st.one_of(SIP_TEXT, st.binary(max_size=20_000)))
def test_sip_messages_fail_only_as_bad_messages(data):
    for lenient in (False, True):
        try:
            message = parse(data, lenient=lenient)
        except BadMessage:
            continue
        exercise_message(message)


def exercise_message(message) -> None:
    """What the front reads of a message it parsed: each raises BadMessage at worst."""
    for check in (
        lambda: Via.parse(message.get("via") or ""),
        lambda: cseq_of(message),
        lambda: uri_target(uri_of(message.get("route") or message.uri)),
        lambda: message.values("route"),
        lambda: message.pop("via"),
        lambda: message.encode(),
    ):
        with contextlib.suppress(BadMessage):
            check()


HOTWORD_TEXT = st.one_of(
    st.text(max_size=3000),
    st.lists(
        st.tuples(st.text(max_size=20), st.lists(st.text(max_size=10), max_size=5)),
        max_size=50,
    ).map(lambda rows: "\n".join("\t".join([p, *a]) for p, a in rows)),
    st.dictionaries(st.text(max_size=20), st.one_of(st.floats(), st.integers(), st.text())).map(
        json.dumps
    ),
)


@PURE
@given(HOTWORD_TEXT, st.sampled_from(FORMATS))
def test_hotword_lists_fail_only_as_list_errors(text, fmt):
    limits = HotwordLimits(max_phrases=100, max_aliases=100, max_list_chars=2000)
    with contextlib.suppress(HotwordListError):
        parse_hotwords(text, fmt, limits)  # type: ignore[arg-type]
    rules = RequestRules(hotword_limits=limits)
    for parse_request in (rules.hotwords, rules.funasr_hotwords):
        with contextlib.suppress(HotwordListError, InvalidRequest):
            parse_request(text)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@PURE
@given(JSON_VALUES)
def test_sample_rates_fail_only_as_rule_errors(value):
    with contextlib.suppress(InvalidRequest):
        check_sample_rate(value)


@PURE
@given(
    st.dictionaries(
        st.sampled_from(["callId", "sampleRate", "channels", "legs", "language", "token", "x"]),
        JSON_VALUES,
    )
)
def test_audio_fork_metadata_fails_only_as_validation_errors(fields):
    with contextlib.suppress(ValidationError):
        ForkMetadata.model_validate_json(json.dumps(fields))


@pytest.fixture(scope="module")
def server(transcriber, tmp_path_factory):
    app, database = make_server(transcriber, tmp_path_factory.mktemp("fuzz"))
    with TestClient(app) as client:
        admin = bearer(new_key(database, ADMIN))
        client.post("/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
        yield client, bearer(new_key(database, "tenant", "acme"))
    database.dispose()


FUNASR_CONFIG = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.one_of(st.sampled_from(["2pass", "online", "offline"]), JSON_VALUES),
        "audio_fs": st.one_of(st.sampled_from([8000, 16000, 1e400, -1, "16000"]), JSON_VALUES),
        "wav_format": st.one_of(st.sampled_from(["pcm", "others"]), JSON_VALUES),
        "hotwords": st.one_of(HOTWORD_TEXT, JSON_VALUES),
        "wav_name": JSON_VALUES,
        "is_speaking": JSON_VALUES,
    },
)


@SOCKETS
@given(FUNASR_CONFIG)
def test_funasr_configs_get_an_answer_never_an_internal_error(server, config):
    client, key = server
    text = json.dumps(config).replace("Infinity", "1e400")
    with client.websocket_connect("/v1/funasr", headers=key) as ws:
        ws.send_text(text)
        ws.send_bytes(bytes(640))
        ws.send_text(json.dumps({"is_speaking": False}))
        try:
            reply = ws.receive_json()
        except WebSocketDisconnect as closed:
            assert 4000 <= closed.code < 5000
            return
        assert isinstance(reply, dict)


TWILIO_EVENT = st.fixed_dictionaries(
    {
        "event": st.one_of(
            st.sampled_from(["connected", "start", "media", "dtmf", "mark"]), JSON_VALUES
        )
    },
    optional={
        "start": st.one_of(
            JSON_VALUES,
            st.fixed_dictionaries(
                {},
                optional={
                    "callSid": JSON_VALUES,
                    "tracks": JSON_VALUES,
                    "customParameters": JSON_VALUES,
                    "mediaFormat": JSON_VALUES,
                },
            ),
        ),
        "media": st.one_of(
            JSON_VALUES,
            st.fixed_dictionaries({}, optional={"track": JSON_VALUES, "payload": JSON_VALUES}),
        ),
        "dtmf": JSON_VALUES,
    },
)


@SOCKETS
@given(st.lists(TWILIO_EVENT, min_size=1, max_size=4))
def test_twilio_messages_get_an_answer_never_an_internal_error(server, events):
    client, key = server
    with client.websocket_connect("/v1/media-streams/twilio", headers=key) as ws:
        for event in events:
            ws.send_text(json.dumps(event))
        ws.send_text(json.dumps({"event": "stop"}))
        try:
            while True:
                assert isinstance(ws.receive_json(), dict)
        except WebSocketDisconnect as closed:
            assert closed.code == 1000 or 4000 <= closed.code < 5000, closed.code


@SOCKETS
@given(
    st.dictionaries(
        st.sampled_from(["callId", "sampleRate", "channels", "legs", "language", "type"]),
        JSON_VALUES,
    )
)
def test_audio_fork_messages_get_an_answer_never_an_internal_error(server, metadata):
    client, key = server
    with client.websocket_connect("/v1/media-streams/audio-fork", headers=key) as ws:
        ws.send_text(json.dumps(metadata))
        ws.send_text(json.dumps({"type": "end"}))
        try:
            while True:
                assert isinstance(ws.receive_json(), dict)
        except WebSocketDisconnect as closed:
            assert closed.code == 1000 or 4000 <= closed.code < 5000, closed.code
