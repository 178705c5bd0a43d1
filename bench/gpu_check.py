"""The GPU check: live Whisper streams on CTranslate2 CUDA float16, and the FunAudio engine
through a real SGLang server. Run it as `bench/gpu_check.sh` (at most 8 minutes; one JSON
document on stdout, progress on stderr).

Where: a CUDA machine with the project installed with its GPU extras, as in the
`callscribe:gpu` image (docker/gpu.Dockerfile: CUDA 12, cuDNN 9, `.[funaudio,gpu]`), run
from a checkout with `../shared/testdata` beside it (or CALLSCRIBE_TESTDATA). Nothing is
downloaded. What is missing (no GPU, CTranslate2 without CUDA, no sglang, no test data) is
reported in the JSON with the reason, that part is skipped, and the exit status is 1.

1. `whisper_streams`: `callscribe serve` on the bundled Whisper base, CUDA float16, two
   decode workers; K concurrent real-time native streams (bench.live's clients, latency from
   the clips' energy onset/offset), K rising until p95 end of speech -> final passes 0.3 s
   or a clip gets no final. Two servers, alternated at each K: finals batched across streams
   (`CALLSCRIBE_STREAM_FINAL_BATCH=8`) and one at a time (=1, the same run's baseline).
   Reports the most streams each holds within 0.3 s, and the streamed finals' accuracy
   against the batched server's offline path on the same clips.
2. `funaudio_sglang`: the FunAudio engine on a tiny random Fun-ASR-Nano checkpoint
   (`asr_core.engines.funaudio.testing`, head size 64 so SGLang's kernels take it) with a
   managed SGLang server: files and a batch of 8 partials, compared token for token with
   the in-process transformers backend on the same GPU, and timed.
"""

import argparse
import asyncio
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

DEADLINE_S = 470.0
"""The whole check stays under 8 minutes, server starts included."""
FINAL_P95_LIMIT_S = 0.3
STREAM_STEPS = (8, 16, 32, 48, 64, 96)
CLIPS_PER_STREAM = 2


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prerequisites() -> dict:
    """What this machine has, and what each part lacks."""
    found: dict = {"python": sys.version.split()[0], "missing": {}}
    smi = shutil.which("nvidia-smi")
    if smi:
        query = [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        result = subprocess.run(query, capture_output=True, text=True, timeout=30)
        found["gpus"] = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    whisper, funaudio = [], []
    if not smi or not found.get("gpus"):
        whisper.append("no NVIDIA GPU (nvidia-smi missing or lists none)")
    try:
        import ctranslate2

        found["ctranslate2"] = ctranslate2.__version__
        if ctranslate2.get_cuda_device_count() < 1:
            whisper.append("CTranslate2 sees no CUDA device (a CPU-only build, or no CUDA 12)")
    except ImportError as exc:
        whisper.append(f"CTranslate2 is not installed ({exc})")
    try:
        import torch

        found["torch"] = torch.__version__
        if not torch.cuda.is_available():
            funaudio.append(f"torch {torch.__version__} has no CUDA device")
    except ImportError:
        funaudio.append("torch is not installed (pip install -c constraints.txt '.[funaudio]')")
    if importlib.util.find_spec("sglang") is None:
        funaudio.append("sglang is not installed (pip install -c constraints.txt '.[gpu]')")
    try:
        import callscribe  # noqa: F401  (the project and its dependencies)
        from bench.common import testdata_dir

        found["testdata"] = str(testdata_dir())
    except ImportError as exc:
        reason = (
            f"the project is not installed for {sys.executable} ({exc}): "
            "pip install -c constraints.txt -e '.[funaudio,gpu]'"
        )
        whisper.append(reason)
        funaudio.append(reason)
    except SystemExit as exc:
        whisper.append(str(exc))
        funaudio.append(str(exc))
    if whisper:
        found["missing"]["whisper_streams"] = whisper
    if funaudio:
        found["missing"]["funaudio_sglang"] = funaudio
    return found


def whisper_streams(deadline: float) -> dict:
    from bench.common import REPO
    from bench.live.runs import Variant, latency, load_clips, run_streams, transcribe_offline
    from bench.live.runs import accuracy as score

    settings = {
        "CALLSCRIBE_DEVICE": "cuda",
        "CALLSCRIBE_COMPUTE_TYPE": "float16",
        "CALLSCRIBE_DECODE_WORKERS": "2",
        "CALLSCRIBE_TENANT_MAX_STREAMS": "256",
        "CALLSCRIBE_MAX_CALLS": "256",
    }
    variants = [
        Variant("batched", REPO, {**settings, "CALLSCRIBE_STREAM_FINAL_BATCH": "8"}),
        Variant("one_at_a_time", REPO, {**settings, "CALLSCRIBE_STREAM_FINAL_BATCH": "1"}),
    ]
    pool = load_clips(["speech", "speech-zh"], 40)
    runs: list[dict] = []
    held = {v.name: 0 for v in variants}
    failing: set[str] = set()
    used: dict = {}
    rows_by_k: dict = {}
    try:
        for variant in variants:
            log(f"starting callscribe serve ({variant.name})")
            variant.start()
        for step, k in enumerate(STREAM_STEPS):
            clips = [pool[i % len(pool)] for i in range(k * CLIPS_PER_STREAM)]
            order = variants if step % 2 == 0 else variants[::-1]
            for variant in order:
                if variant.name in failing:
                    continue
                if time.monotonic() > deadline - 60:
                    log("out of time for more streams")
                    break
                log(f"{variant.name}: {k} streams")
                rows = asyncio.run(run_streams(variant, "native", clips, k, 1.5))
                report = latency(rows)
                p95 = report["end_of_speech_to_final_s"].get("p95")
                passed = report["no_final"] == 0 and p95 is not None and p95 <= FINAL_P95_LIMIT_S
                runs.append(
                    {"variant": variant.name, "streams": k, "within_limit": passed, **report}
                )
                if passed:
                    held[variant.name] = k
                    rows_by_k[variant.name] = rows
                    used.update((c.utterance.id, c) for c, _ in rows)
                else:
                    failing.add(variant.name)
            if len(failing) == len(variants):
                break
        offline = transcribe_offline(variants[0], list(used.values())) if used else {}
    finally:
        for variant in variants:
            if variant.server is not None:
                variant.server.close()
    return {
        "limit": f"p95 end of speech -> final <= {FINAL_P95_LIMIT_S} s, every clip a final",
        "streams_within_limit": held,
        "accuracy_at_most_streams": {
            name: score(rows, offline) for name, rows in rows_by_k.items() if offline
        },
        "runs": runs,
    }


def funaudio_sglang(deadline: float) -> dict:
    from asr_core.engines.funaudio.testing import TinySpec, write_tiny_checkpoint

    from asr_core.audio import decode_audio
    from asr_core.engines import load_engine
    from asr_core.engines.base import PartialRequest
    from asr_core.engines.funaudio.options import FunAudioOptions, SglangOptions
    from asr_core.transcribe import TranscribeOptions, Transcriber
    from bench.common import shared_clips
    from tests.services import free_port

    folder = Path(tempfile.mkdtemp(prefix="callscribe-gpu-check-"))
    engines = {}
    try:
        write_tiny_checkpoint(folder / "tiny", TinySpec(llm_hidden=256))
        utterances, _ = shared_clips()
        clips = [(u.path, decode_audio(u.path)) for u in utterances[:8]]
        started = time.monotonic()
        sglang = SglangOptions(
            port=free_port(),
            launch_timeout_s=max(60.0, min(300.0, deadline - time.monotonic() - 120)),
            extra_args=("--mem-fraction-static", "0.3"),
        )
        log("starting the FunAudio engine with a managed SGLang server")
        engines["sglang"] = load_engine(
            str(folder / "tiny"),
            engine="funaudio",
            funaudio=FunAudioOptions(device="cuda", backend="sglang", sglang=sglang),
        )
        launch_s = time.monotonic() - started
        engines["transformers"] = load_engine(
            str(folder / "tiny"),
            engine="funaudio",
            funaudio=FunAudioOptions(device="cuda", backend="transformers"),
        )
        texts: dict[str, list[str]] = {}
        seconds: dict[str, float] = {}
        partials: dict[str, list[str]] = {}
        partial_s: dict[str, float] = {}
        requests = [PartialRequest(audio[: 5 * 16000], "zh") for _, audio in clips]
        for name, engine in engines.items():
            transcriber = Transcriber(engine)
            began = time.perf_counter()
            texts[name] = [
                transcriber.transcribe(path, TranscribeOptions(language="zh")).text
                for path, _ in clips
            ]
            seconds[name] = round(time.perf_counter() - began, 3)
            began = time.perf_counter()
            partials[name] = [p.text for p in engine.decode_partials(requests)]
            partial_s[name] = round(time.perf_counter() - began, 3)
        same = sum(a == b for a, b in zip(texts["sglang"], texts["transformers"], strict=True))
        same_partials = sum(
            a == b for a, b in zip(partials["sglang"], partials["transformers"], strict=True)
        )
        return {
            "checkpoint": "tiny random Fun-ASR-Nano layout (LLM hidden 256, 2 layers)",
            "sglang_launch_s": round(launch_s, 1),
            "files": len(clips),
            "files_identical_to_transformers": same,
            "file_seconds": seconds,
            "partials_in_one_batch": len(requests),
            "partials_identical_to_transformers": same_partials,
            "partial_batch_seconds": partial_s,
            "example": {name: text[0][:80] for name, text in texts.items()},
        }
    finally:
        for engine in engines.values():
            engine.close()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="funaudio_sglang,whisper_streams")
    args = parser.parse_args()
    deadline = time.monotonic() + DEADLINE_S
    found = prerequisites()
    report: dict = {"benchmark": "gpu_check", "machine": found, "ok": True}
    for name in [p for p in args.parts.split(",") if p]:
        missing = found["missing"].get(name)
        if missing:
            report[name] = {"ok": False, "skipped": "; ".join(missing)}
            report["ok"] = False
            continue
        part = {"whisper_streams": whisper_streams, "funaudio_sglang": funaudio_sglang}[name]
        try:
            report[name] = {"ok": True, **part(deadline)}
        except Exception as exc:
            trace = traceback.format_exc()[-2000:]
            report[name] = {"ok": False, "error": repr(exc), "trace": trace}
            report["ok"] = False
    print(json.dumps(report, indent=2, ensure_ascii=False))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
