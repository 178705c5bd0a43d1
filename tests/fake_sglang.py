"""A stand-in SGLang server for tests: the `/generate` + `/health` protocol on loopback,
answering `input_embeds` requests with a real transformers greedy decode of an HF folder.

It mirrors what callscribe relies on in SGLang: input_embeds refused unless the server was
started with --disable-radix-cache, a batch told by `isinstance(input_embeds[0][0], float)`,
per-request sampling params, and answers carrying `output_ids`.
Run as `python -m tests.fake_sglang --model-path DIR --port N [--disable-radix-cache]`.
"""

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM


class FakeSglang(ThreadingHTTPServer):
    def __init__(self, model_path: Path, port: int = 0, disable_radix_cache: bool = True):
        super().__init__(("127.0.0.1", port), _Handler)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
        self.disable_radix_cache = disable_radix_cache
        self.batches: list[int] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def generate(self, embeds: list, params: dict) -> dict:
        with self.lock, torch.no_grad():
            output = self.model.generate(
                inputs_embeds=torch.tensor([embeds], dtype=torch.float32),
                max_new_tokens=params["max_new_tokens"],
                do_sample=params.get("temperature", 1.0) > 0,
                eos_token_id=params.get("stop_token_ids"),
                pad_token_id=0,
            )[0].tolist()
        return {"text": "", "output_ids": output, "meta_info": {"finish_reason": None}}


class _Handler(BaseHTTPRequestHandler):
    server: FakeSglang

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._reply(200 if self.path == "/health" else 404, {})

    def do_POST(self) -> None:
        if self.path != "/generate":
            return self._reply(404, {"error": {"message": "not found"}})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        embeds = body.get("input_embeds")
        if embeds is not None and not self.server.disable_radix_cache:
            message = "input_embeds is provided while disable_radix_cache is False."
            return self._reply(400, {"error": {"message": message}})
        single = isinstance(embeds[0][0], float)
        prompts = [embeds] if single else embeds
        params = body.get("sampling_params") or {}
        params = [params] * len(prompts) if isinstance(params, dict) else params
        self.server.batches.append(len(prompts))
        answers = [self.server.generate(e, p) for e, p in zip(prompts, params, strict=True)]
        self._reply(200, answers[0] if single else answers)

    def _reply(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=30000)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--disable-radix-cache", action="store_true")
    args, _ = parser.parse_known_args()
    torch.set_num_threads(1)
    FakeSglang(Path(args.model_path), args.port, args.disable_radix_cache).serve_forever()


if __name__ == "__main__":
    main()
