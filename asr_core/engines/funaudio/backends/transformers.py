"""Decoding with transformers `generate` in this process: correct everywhere, slow on CPU.

A batch is left-padded so every prompt ends where generation starts; the attention mask
keeps padding out of both attention and positions."""

import torch
from transformers import GenerationConfig

from asr_core.engines.funaudio.backends.base import DecodeBackend, GenerationRequest


class TransformersBackend(DecodeBackend):
    def __init__(self, llm: torch.nn.Module, stop_ids: tuple[int, ...]) -> None:
        super().__init__(stop_ids)
        self.llm = llm

    def close(self) -> None:
        """Nothing to release: the model belongs to the engine."""

    @torch.inference_mode()
    def generate(self, requests: list[GenerationRequest]) -> list[list[int]]:
        if not requests:
            return []
        longest = max(r.embeds.shape[0] for r in requests)
        hidden = requests[0].embeds.shape[1]
        first = requests[0].embeds
        embeds = first.new_zeros(len(requests), longest, hidden)
        mask = torch.zeros(len(requests), longest, dtype=torch.long, device=first.device)
        for row, request in enumerate(requests):
            length = request.embeds.shape[0]
            embeds[row, longest - length :] = request.embeds
            mask[row, longest - length :] = 1
        config = GenerationConfig(
            max_new_tokens=max(r.max_new_tokens for r in requests),
            do_sample=False,
            num_beams=1,
            repetition_penalty=1.0,
            eos_token_id=list(self.stop_ids),
            pad_token_id=self.stop_ids[0],
        )
        output = self.llm.generate(
            inputs_embeds=embeds, attention_mask=mask, generation_config=config
        )
        return [
            self.trim(row.tolist(), request.max_new_tokens)
            for row, request in zip(output, requests, strict=True)
        ]
