#!/usr/bin/env bash
# The GPU check, at most 8 minutes, one JSON document on stdout (progress on stderr):
# Whisper base on CTranslate2 CUDA float16 with batched streams (how many real-time streams
# keep p95 end of speech -> final <= 0.3 s) and the FunAudio engine through a real SGLang
# server on a tiny checkpoint. What each part measures and needs: bench/gpu_check.py.
#
#   bench/gpu_check.sh [--parts funaudio_sglang,whisper_streams]
#
# PYTHON: the interpreter with the project's GPU extras (default .venv/bin/python, else python3).
# Exit status 0: every part ran; 1: a part was skipped (what is missing is in the JSON) or failed.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "{\"benchmark\": \"gpu_check\", \"ok\": false, \"error\": \"no Python at $PYTHON\"}"
  exit 1
fi
export PYTHONUNBUFFERED=1
timeout --kill-after=10 480 "$PYTHON" -m bench.gpu_check "$@"
status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo '{"benchmark": "gpu_check", "ok": false, "error": "stopped at the 8-minute limit"}'
fi
exit "$status"
