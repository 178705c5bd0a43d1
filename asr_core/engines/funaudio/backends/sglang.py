"""Decoding on an SGLang server (GPU): POST /generate with `input_embeds`.

SGLang takes a prompt as embeddings only as plain nested float lists (it tells a batch from
one request by `isinstance(input_embeds[0][0], float)`), and only on a server launched with
`--disable-radix-cache`: its prefix cache is keyed by token ids, which embeddings lack. Every
stream's request in one call goes as one batch; concurrent calls are batched by the server.

A managed server is `python -m sglang.launch_server` in a child process on the LLM exported
(LoRA merged) to a temporary folder; sglang is never imported into this process, so the
`gpu` extra is needed only where a managed server runs.
"""

import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import torch

from asr_core.engines.funaudio.backends.base import DecodeBackend, GenerationRequest
from asr_core.engines.funaudio.options import SglangOptions
from asr_core.errors import ModelError

logger = logging.getLogger(__name__)

_POLL_S = 1.0


class SglangError(ModelError):
    code = "sglang_error"


def launch_command(model_path: Path, options: SglangOptions) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sglang.launch_server",
        "--model-path",
        str(model_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(options.port),
        "--dtype",
        "bfloat16",
        "--disable-radix-cache",
        *options.extra_args,
    ]


class ManagedServer:
    """An SGLang server this engine started, and the exported model folder it serves."""

    def __init__(self, llm: torch.nn.Module, tokenizer, options: SglangOptions) -> None:
        if importlib.util.find_spec("sglang") is None:
            raise SglangError(
                "sglang is not installed: pip install -c constraints.txt 'callscribe[gpu]' on "
                "the GPU machine, or point at a running server (CALLSCRIBE_SGLANG_URL)"
            )
        self.url = f"http://127.0.0.1:{options.port}"
        self.folder = Path(tempfile.mkdtemp(prefix="callscribe-sglang-"))
        llm.save_pretrained(self.folder, safe_serialization=True)
        tokenizer.save_pretrained(self.folder)
        command = launch_command(self.folder, options)
        logger.info("starting SGLang: %s", " ".join(command))
        self.process = subprocess.Popen(command)
        try:
            self._wait_ready(options.launch_timeout_s)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SglangError(f"SGLang exited with code {self.process.returncode} at start")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=_POLL_S):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(_POLL_S)
        raise SglangError(f"SGLang did not answer on {self.url} within {timeout_s:.0f} s")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class SglangBackend(DecodeBackend):
    def __init__(
        self,
        url: str,
        stop_ids: tuple[int, ...],
        timeout_s: float = 120.0,
        server: ManagedServer | None = None,
    ) -> None:
        super().__init__(stop_ids)
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.server = server

    def generate(self, requests: list[GenerationRequest]) -> list[list[int]]:
        if not requests:
            return []
        payload = {
            "input_embeds": [r.embeds.float().cpu().tolist() for r in requests],
            "sampling_params": [
                {
                    "temperature": 0.0,
                    "max_new_tokens": r.max_new_tokens,
                    "stop_token_ids": list(self.stop_ids),
                    "skip_special_tokens": True,
                }
                for r in requests
            ],
        }
        answers = self._post("/generate", payload)
        if isinstance(answers, dict):
            answers = [answers]
        if not isinstance(answers, list) or len(answers) != len(requests):
            raise SglangError(f"SGLang answered {len(requests)} prompts with {answers!r:.200}")
        results = []
        for answer, request in zip(answers, requests, strict=True):
            ids = answer.get("output_ids") if isinstance(answer, dict) else None
            if not isinstance(ids, list):
                raise SglangError(f"SGLang answer without output_ids: {answer!r:.200}")
            results.append(self.trim([int(i) for i in ids], request.max_new_tokens))
        return results

    def _post(self, path: str, payload: dict) -> object:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")[:500]
            hint = " (launch it with --disable-radix-cache)" if "radix" in detail else ""
            raise SglangError(f"SGLang {path} failed with HTTP {exc.code}: {detail}{hint}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise SglangError(f"cannot reach SGLang at {self.url}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise SglangError(f"SGLang {path} answered with something other than JSON") from exc

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
