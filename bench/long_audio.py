"""Peak memory and speed on one long recording, callscribe vs plain faster-whisper.

    python -m bench.long_audio [--minutes 60] [--skip-baseline]

Builds a recording of the requested length from the shared speech clips (English and Mandarin,
with pauses), then transcribes it in separate processes under `/usr/bin/time -v`, once with
`callscribe transcribe` and once with plain faster-whisper (beam 5), and prints JSON with each
one's peak RSS, wall time and RTF.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

from asr_core.audio import decode_audio
from asr_core.evaluation import read_manifest
from asr_core.model_registry import resolve_model
from bench.common import REPO, testdata_dir, threads

SR = 16_000


def build_recording(path: Path, minutes: float) -> float:
    """Write a FLAC of `minutes` made of the speech clips separated by 0.5-4 s pauses."""
    clips = [decode_audio(u.path) for u in read_manifest(testdata_dir() / "manifest.tsv")]
    rng = np.random.default_rng(0)
    target = int(minutes * 60 * SR)
    written = 0
    with av.open(str(path), "w", format="flac") as output:
        stream = output.add_stream("flac", rate=SR, layout="mono")
        while written < target:
            clip = clips[int(rng.integers(len(clips)))]
            pause = np.zeros(int(rng.uniform(0.5, 4.0) * SR), dtype=np.float32)
            piece = np.concatenate([clip, pause])[: target - written]
            pcm = (np.clip(piece, -1, 1) * 32767).astype(np.int16)[None, :]
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = SR
            for packet in stream.encode(frame):
                output.mux(packet)
            written += len(piece)
        for packet in stream.encode(None):
            output.mux(packet)
    return written / SR


def measure(command: list[str]) -> dict:
    result = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, cwd=REPO
    )
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{result.stderr[-3000:]}")
    peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)[1])
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    return {
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "wall_s": round(hours * 3600 + minutes * 60 + seconds, 1),
        "words_out": len(result.stdout.split()),
    }


BASELINE = """
import sys
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=int(sys.argv[3]))
segments, _ = model.transcribe(sys.argv[2], beam_size=5)
print(" ".join(s.text.strip() for s in segments))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / "long.flac"
        duration = build_recording(recording, args.minutes)
        report = {"benchmark": "long_audio", "audio_s": round(duration, 1), "threads": threads()}
        ours = measure(
            [sys.executable, "-m", "callscribe", "transcribe", str(recording), "-f", "txt"]
        )
        report["callscribe"] = {**ours, "rtf": round(ours["wall_s"] / duration, 4)}
        if not args.skip_baseline:
            model_dir = str(resolve_model("whisper-base"))
            plain = measure(
                [sys.executable, "-c", BASELINE, model_dir, str(recording), str(threads())]
            )
            report["faster_whisper"] = {**plain, "rtf": round(plain["wall_s"] / duration, 4)}
            report["ratios_callscribe_over_faster_whisper"] = {
                "peak_rss": round(ours["peak_rss_mib"] / plain["peak_rss_mib"], 3),
                "wall": round(ours["wall_s"] / plain["wall_s"], 3),
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
