"""The pieces of a live run: variants (servers), clips, K concurrent streams, the offline
path, and the figures of a run (used by `python -m bench.live` and `bench/gpu_check.py`)."""

import asyncio
import json
import random
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr_core.audio import decode_audio
from asr_core.evaluation import Scorer, Utterance, read_manifest
from bench.common import REPO, percentiles, testdata_dir
from bench.live.clients import CLIENTS, SR, ClipResult
from tests.services import CallscribeServer

DATA_SETS = {"speech": "speech", "speech-zh": "speech-zh"}
COMMITTED = "callscribe_stream_committed_audio_seconds_total"
"""Audio the server committed at pauses (tail-only finals skip it): read from /metrics."""


@dataclass
class Clip:
    utterance: Utterance
    audio: np.ndarray
    data_set: str
    part: str
    """`tune` or `held_out`."""


@dataclass
class Variant:
    name: str
    checkout: Path
    settings: dict[str, str]
    server: CallscribeServer | None = None

    @classmethod
    def parse(cls, spec: str) -> "Variant":
        """`NAME` or `NAME:key=value,...`; the key `checkout` names another source tree."""
        name, _, rest = spec.partition(":")
        settings = dict(item.split("=", 1) for item in rest.split(",") if item)
        checkout = Path(settings.pop("checkout", REPO)).resolve()
        if not (checkout / "callscribe").is_dir():
            sys.exit(f"variant {name}: {checkout} is not a callscribe checkout")
        bad = [key for key in settings if not key.startswith("CALLSCRIBE_")]
        if bad:
            sys.exit(f"variant {name}: settings must be CALLSCRIBE_* variables, not {bad}")
        return cls(name or "head", checkout, settings)

    def start(self) -> None:
        self.server = CallscribeServer(
            {
                "PYTHONPATH": str(self.checkout),  # ahead of the editable install
                "CALLSCRIBE_LOG_LEVEL": "warning",
                "CALLSCRIBE_TENANT_MAX_STREAMS": "64",
                **self.settings,
            }
        )
        self.server.start()

    def counter(self, name: str) -> float | None:
        """A counter from the server's /metrics (0 where it has none; None when the server
        does not answer within 30 s, which the run then reports)."""
        try:
            with urllib.request.urlopen(f"{self.server.url}/metrics", timeout=30) as response:
                lines = response.read().decode().splitlines()
        except OSError:
            return None
        for line in lines:
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def ws_url(self, path: str) -> str:
        return self.server.url.replace("http", "ws", 1) + path


def load_clips(names: list[str], per_set: int) -> list[Clip]:
    """The first `per_set` clips of each data set in a fixed shuffled order, interleaved."""
    root = testdata_dir().parent
    sets = []
    for name in names:
        folder = Path(name) if "/" in name else root / DATA_SETS.get(name, name)
        if not (folder / "manifest.tsv").is_file():
            sys.exit(f"data set {name}: no manifest.tsv in {folder}")
        utterances = read_manifest(folder / "manifest.tsv")
        positions = {u.id: i for i, u in enumerate(utterances)}
        random.Random(16).shuffle(utterances)
        chosen = utterances[:per_set] if per_set else utterances
        sets.append(
            [
                Clip(
                    u,
                    decode_audio(u.path),
                    folder.name,
                    "tune" if positions[u.id] % 2 == 0 else "held_out",
                )
                for u in chosen
            ]
        )
    return [clip for group in _interleave(sets) for clip in group]


def _interleave(sets: list[list[Clip]]):
    for index in range(max(len(s) for s in sets)):
        yield [s[index] for s in sets if index < len(s)]


async def run_streams(
    variant: Variant, protocol: str, clips: list[Clip], streams: int, silence_s: float
) -> list[tuple[Clip, ClipResult]]:
    client, path = CLIENTS[protocol]
    url = variant.ws_url(path)
    results: list[tuple[Clip, ClipResult]] = []

    async def one_stream(index: int) -> None:
        await asyncio.sleep(0.37 * index % 1.0)  # callers do not start in lockstep
        for clip in clips[index::streams]:
            try:
                result = await client(url, clip.utterance.id, clip.audio, silence_s)
            except Exception as exc:  # a refused or broken connection is a result too
                result = ClipResult(clip.utterance.id, protocol, errors=[repr(exc)])
            results.append((clip, result))

    await asyncio.gather(*(one_stream(i) for i in range(streams)))
    return results


def transcribe_offline(variant: Variant, clips: list[Clip]) -> dict[str, str]:
    """Each clip through the server's file endpoint, one at a time, language detected. A
    clip that fails is reported and left out of the scores (a long run is not lost)."""
    texts = {}
    for clip in clips:
        try:
            texts[clip.utterance.id] = _transcribe(variant, clip)
        except (OSError, ValueError, KeyError) as exc:
            print(f"offline path failed on {clip.utterance.id}: {exc!r}", file=sys.stderr)
    return texts


def _transcribe(variant: Variant, clip: Clip) -> str:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{clip.utterance.path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + clip.utterance.path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{variant.server.url}/v1/audio/transcriptions",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())["text"]


def latency(rows: list[tuple[Clip, ClipResult]]) -> dict:
    return {
        "clips": len(rows),
        "first_partial_s": percentiles(
            [r.first_partial_s for _, r in rows if r.first_partial_s is not None]
        ),
        "end_of_speech_to_final_s": percentiles(
            [r.final_s for _, r in rows if r.final_s is not None]
        ),
        "no_partial": sum(r.first_partial_s is None for _, r in rows),
        "no_final": sum(r.final_s is None for _, r in rows),
        "finals_by_endpointing": sum(r.final_before_end for _, r in rows),
    }


def accuracy(rows: list[tuple[Clip, ClipResult]], offline: dict[str, str]) -> dict:
    """WER en / CER zh of the streamed finals and of the offline path on the same clips."""
    streamed, reference = Scorer(), Scorer()
    for clip, result in rows:
        if clip.utterance.id not in offline:
            continue  # its offline decode failed: no comparison
        duration = len(clip.audio) / SR
        streamed.add(clip.utterance, result.text, [], duration, 0)
        reference.add(clip.utterance, offline.get(clip.utterance.id, ""), [], duration, 0)
    report = {}
    for language, key in (("en", "wer"), ("zh", "cer")):
        s = streamed.summary()["languages"].get(language)
        o = reference.summary()["languages"].get(language)
        if s is None:
            continue
        report[f"{key}_{language}"] = {
            "clips": s["utterances"],
            "streamed": s[key],
            "offline": o[key],
            "points_over_offline": round(100 * (s[key] - o[key]), 2),
        }
    return report


def summarize(rows: list[tuple[Clip, ClipResult]], offline: dict[str, str]) -> dict:
    def part(selected):
        return {**latency(selected), "accuracy": accuracy(selected, offline)}

    errors = [f"{r.clip}: {e}" for _, r in rows for e in r.errors]
    return {
        **part(rows),
        "errors": len(errors),
        "error_examples": errors[:5],
        "by_data_set": {
            name: latency([row for row in rows if row[0].data_set == name])
            for name in sorted({clip.data_set for clip, _ in rows})
        },
        "by_part": {
            name: part([row for row in rows if row[0].part == name])
            for name in ("tune", "held_out")
        },
    }


def table(runs: list[dict]) -> list[str]:
    """One line per run, for reading at a glance (the JSON above has everything)."""
    lines = []
    for run in runs:
        fp, fin = run["first_partial_s"], run["end_of_speech_to_final_s"]
        acc = " ".join(
            f"{k} {v['streamed']:.4f}/{v['offline']:.4f} ({v['points_over_offline']:+.2f})"
            for k, v in run["accuracy"].items()
        )
        lines.append(
            f"{run['variant']:>10} K={run['streams']:<2} {run['protocol']:<6} "
            f"first partial p50/p95 {fp.get('p50')}/{fp.get('p95')} s  "
            f"final p50/p95/max {fin.get('p50')}/{fin.get('p95')}/{fin.get('max')} s  "
            f"no final {run['no_final']}  errors {run['errors']}  {acc}  "
            f"other cores busy {run['machine']['other_cores_busy']}"
        )
    return lines
