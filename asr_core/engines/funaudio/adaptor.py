"""FunASR's `Transformer` adaptor: frame stacking, a two-layer MLP into the LLM width, then
pre-norm Transformer layers. The same class serves as the CTC decoder (`ctc_decoder.*`), which
maps the encoder output to itself before the CTC projection."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from asr_core.engines.funaudio.config import AdaptorConfig
from asr_core.engines.funaudio.encoder import FeedForward

_LAYER_NORM_EPS = 1e-12
"""ESPnet's LayerNorm epsilon, which FunASR's Transformer layers inherit."""


class MultiHeadAttention(nn.Module):
    def __init__(self, heads: int, dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, frames, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, frames, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.linear_q(x)), heads(self.linear_k(x)), heads(self.linear_v(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        blocked = ~mask[:, None, None, :]
        weights = scores.masked_fill(blocked, -math.inf).softmax(dim=-1).masked_fill(blocked, 0)
        return self.linear_out((weights @ v).transpose(1, 2).reshape(batch, frames, -1))


class TransformerLayer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(heads, dim)
        self.feed_forward = FeedForward(dim, dim // 4)
        self.norm1 = nn.LayerNorm(dim, eps=_LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=_LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x), mask)
        return x + self.feed_forward(self.norm2(x))


class TransformerAdaptor(nn.Module):
    def __init__(self, config: AdaptorConfig) -> None:
        super().__init__()
        self.stack = config.downsample_rate
        self.linear1 = nn.Linear(config.encoder_dim * config.downsample_rate, config.ffn_dim)
        self.linear2 = nn.Linear(config.ffn_dim, config.llm_dim)
        self.blocks = nn.ModuleList(
            TransformerLayer(config.llm_dim, config.attention_heads) for _ in range(config.n_layer)
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, encoder_dim) -> (B, ⌈T/k⌉, llm_dim) and the output lengths."""
        batch, frames, _ = x.shape
        chunks = (frames - 1) // self.stack + 1
        x = F.pad(x, (0, 0, 0, chunks * self.stack - frames)).reshape(batch, chunks, -1)
        x = self.linear2(torch.relu(self.linear1(x)))
        lengths = (lengths - 1) // self.stack + 1
        mask = torch.arange(chunks, device=x.device)[None, :] < lengths[:, None]
        for block in self.blocks:
            x = block(x, mask)
        return x, lengths
