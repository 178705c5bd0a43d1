"""The SGLang backend's protocol, exercised for real against a loopback stand-in server that
decodes with transformers (no GPU here, so no real SGLang): requests, batching, errors, and
a managed server's export, launch flags, readiness and shutdown."""

import socket
import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the FunAudio engine needs torch (extra: funaudio)")
pytest.importorskip("transformers", reason="the FunAudio engine needs transformers")
pytest.importorskip("peft", reason="the FunAudio engine needs peft")

from asr_core.engines.base import DecodeOptions, PartialRequest  # noqa: E402
from asr_core.engines.funaudio.backends.base import GenerationRequest  # noqa: E402
from asr_core.engines.funaudio.backends.sglang import (  # noqa: E402
    ManagedServer,
    SglangBackend,
    SglangError,
    launch_command,
)
from asr_core.engines.funaudio.engine import FunAudioEngine  # noqa: E402
from asr_core.engines.funaudio.options import FunAudioOptions, SglangOptions  # noqa: E402
from tests.fake_sglang import FakeSglang  # noqa: E402
from tests.tiny_funaudio import TinySpec, write_tiny_checkpoint  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    folder = write_tiny_checkpoint(tmp_path_factory.mktemp("funaudio") / "tiny", TinySpec(seed=3))
    return FunAudioEngine(folder, FunAudioOptions(max_new_tokens=6))


@pytest.fixture(scope="module")
def server(local, tmp_path_factory):
    exported = tmp_path_factory.mktemp("exported")
    local.model.llm.save_pretrained(exported)
    fake = FakeSglang(exported)
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()


@pytest.fixture(scope="module")
def remote(local, server):
    options = FunAudioOptions(
        max_new_tokens=6, backend="sglang", sglang=SglangOptions(url=server.url)
    )
    return FunAudioEngine(local.folder, options)


def _audio(seconds: float, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(16000 * seconds))).astype(
        np.float32
    )


def test_decode_over_http_equals_local_decode(local, remote):
    assert isinstance(remote.backend, SglangBackend)
    audio = _audio(1.5, seed=1)
    expected = local.decode(local.encode(audio), DecodeOptions(language="zh"))
    got = remote.decode(remote.encode(audio), DecodeOptions(language="zh"))
    assert [s.tokens for s in got] == [s.tokens for s in expected] and got[0].tokens


def test_partials_of_many_streams_go_as_one_batch(local, remote, server):
    requests = [
        PartialRequest(audio=_audio(1.0, seed=s), language="zh", prefix=(70,) * (s % 2))
        for s in range(3)
    ]
    server.batches.clear()
    got = remote.decode_partials(requests)
    assert server.batches == [3]
    assert [r.tokens for r in got] == [r.tokens for r in local.decode_partials(requests)]


def test_requests_are_nested_float_lists(local, server):
    backend = SglangBackend(server.url, (2, 0))
    embeds = torch.randn(5, 32, dtype=torch.bfloat16)
    assert len(backend.generate([GenerationRequest(embeds, 3)])[0]) <= 3
    assert backend.generate([]) == []


def test_server_without_disable_radix_cache_is_explained(local, tmp_path):
    local.model.llm.save_pretrained(tmp_path)
    fake = FakeSglang(tmp_path, disable_radix_cache=False)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        backend = SglangBackend(fake.url, (2,))
        with pytest.raises(SglangError, match="--disable-radix-cache"):
            backend.generate([GenerationRequest(torch.zeros(2, 32), 2)])
    finally:
        fake.shutdown()
        fake.server_close()


def test_unreachable_server_and_bad_answers(server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = GenerationRequest(torch.zeros(2, 32), 2)
    with pytest.raises(SglangError, match="cannot reach"):
        SglangBackend(f"http://127.0.0.1:{port}", (2,), timeout_s=5).generate([request])
    with pytest.raises(SglangError, match="HTTP 404"):
        SglangBackend(server.url + "/nowhere", (2,)).generate([request])


def test_launch_command_disables_the_radix_cache(tmp_path):
    command = launch_command(tmp_path, SglangOptions(port=31000, extra_args=("--tp", "1")))
    assert command[1:3] == ["-m", "sglang.launch_server"]
    assert "--disable-radix-cache" in command
    assert command[command.index("--model-path") + 1] == str(tmp_path)
    assert command[command.index("--port") + 1] == "31000"
    assert command[-2:] == ["--tp", "1"]


def test_managed_server_needs_sglang(local, monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(SglangError, match="gpu"):
        ManagedServer(local.model.llm, local.model.tokenizer, SglangOptions())


def test_managed_server_exports_launches_and_stops(local, tmp_path, monkeypatch):
    """`python -m sglang.launch_server` resolved to the stand-in: export, flags, health, close."""
    package = tmp_path / "sglang"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "launch_server.py").write_text("from tests.fake_sglang import main\n\nmain()\n")
    repo = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{repo}")
    monkeypatch.syspath_prepend(str(tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    managed = ManagedServer(
        local.model.llm, local.model.tokenizer, SglangOptions(port=port, launch_timeout_s=120)
    )
    try:
        assert (managed.folder / "config.json").is_file()
        assert (managed.folder / "tokenizer.json").is_file()
        backend = SglangBackend(managed.url, (2, 0), server=managed)
        embeds = torch.randn(4, 32)
        assert backend.generate([GenerationRequest(embeds, 3)]) == local.backend.generate(
            [GenerationRequest(embeds, 3)]
        )
    finally:
        managed.close()
    assert managed.process.poll() is not None and not managed.folder.exists()
