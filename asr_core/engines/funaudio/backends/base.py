"""What a decoding backend does: greedy continuations of whole prompts given as embeddings
(text embeddings with the audio embeddings spliced in), several streams in one call."""

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GenerationRequest:
    embeds: torch.Tensor
    """(prompt length, hidden) in the LLM's dtype."""
    max_new_tokens: int


class DecodeBackend(ABC):
    def __init__(self, stop_ids: tuple[int, ...]) -> None:
        self.stop_ids = stop_ids

    @abstractmethod
    def generate(self, requests: list[GenerationRequest]) -> list[list[int]]:
        """New token ids per request, greedy, without the stop token."""

    @abstractmethod
    def close(self) -> None:
        """Release what the backend started (a managed server)."""

    def trim(self, ids: list[int], budget: int) -> list[int]:
        """Ids up to the first stop token, at most `budget` of them."""
        for position, token in enumerate(ids):
            if token in self.stop_ids:
                ids = ids[:position]
                break
        return ids[:budget]
