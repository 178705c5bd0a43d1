"""SenseVoiceEncoderSmall (SAN-M) as the release uses it: attention plus an FSMN memory block
per layer, full context, no downsampling. Module and parameter names match the checkpoint's
`audio_encoder.*` tensors (`encoders0.0`, `encoders.N`, `tp_encoders.N`, `after_norm`,
`tp_norm`)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from asr_core.engines.funaudio.config import EncoderConfig


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype (as SenseVoice does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.layer_norm(
            x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps
        )
        return out.type_as(x)


class SanmAttention(nn.Module):
    """Multi-head self-attention whose values also pass a depthwise FSMN convolution."""

    def __init__(self, heads: int, in_dim: int, dim: int, kernel_size: int, shift: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.linear_q_k_v = nn.Linear(in_dim, dim * 3)
        self.linear_out = nn.Linear(dim, dim)
        self.fsmn_block = nn.Conv1d(dim, dim, kernel_size, groups=dim, bias=False)
        left = (kernel_size - 1) // 2 + shift
        self.padding = (left, kernel_size - 1 - left)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, in_dim); mask (B, T) true on real frames."""
        batch, frames, _ = x.shape
        q, k, v = self.linear_q_k_v(x).chunk(3, dim=-1)
        keep = mask[:, :, None].to(x.dtype)
        memory = v * keep
        memory = self.fsmn_block(F.pad(memory.transpose(1, 2), self.padding)).transpose(1, 2)
        memory = (memory + v * keep) * keep

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, frames, self.heads, self.head_dim).transpose(1, 2)

        scores = heads(q) @ heads(k).transpose(-2, -1) / math.sqrt(self.head_dim)
        blocked = ~mask[:, None, None, :]
        weights = scores.masked_fill(blocked, -math.inf).softmax(dim=-1).masked_fill(blocked, 0)
        context = (weights @ heads(v)).transpose(1, 2).reshape(batch, frames, -1)
        return self.linear_out(context) + memory


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(dim, hidden)
        self.w_2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(torch.relu(self.w_1(x)))


class SanmLayer(nn.Module):
    """Pre-norm layer; the first one maps the 560-dim features to the model width, so its
    attention has no residual."""

    def __init__(self, in_dim: int, dim: int, config: EncoderConfig) -> None:
        super().__init__()
        self.self_attn = SanmAttention(
            config.attention_heads, in_dim, dim, config.kernel_size, config.sanm_shift
        )
        self.feed_forward = FeedForward(dim, config.linear_units)
        self.norm1 = LayerNorm(in_dim)
        self.norm2 = LayerNorm(dim)
        self.residual = in_dim == dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attended = self.self_attn(self.norm1(x), mask)
        x = x + attended if self.residual else attended
        return x + self.feed_forward(self.norm2(x))


class SenseVoiceEncoder(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        width = config.output_size
        self.width = width
        self.encoders0 = nn.ModuleList([SanmLayer(config.input_size, width, config)])
        self.encoders = nn.ModuleList(
            SanmLayer(width, width, config) for _ in range(config.num_blocks - 1)
        )
        self.tp_encoders = nn.ModuleList(
            SanmLayer(width, width, config) for _ in range(config.tp_blocks)
        )
        self.after_norm = LayerNorm(width)
        self.tp_norm = LayerNorm(width)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """feats (B, T, input_size) -> (B, T, output_size); frames past `lengths` are padding."""
        mask = torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]
        x = feats * math.sqrt(self.width) + sinusoidal_positions(feats.shape[1], feats.shape[2])
        for layer in [*self.encoders0, *self.encoders]:
            x = layer(x, mask)
        x = self.after_norm(x)
        for layer in self.tp_encoders:
            x = layer(x, mask)
        return self.tp_norm(x)


def sinusoidal_positions(frames: int, depth: int) -> torch.Tensor:
    """SenseVoice's position code: positions from 1, sin then cos halves, timescale step
    ln(10000)/(depth/2 - 1)."""
    positions = torch.arange(1, frames + 1, dtype=torch.float32)[:, None]
    step = math.log(10000.0) / (depth / 2 - 1)
    scales = torch.exp(torch.arange(depth // 2, dtype=torch.float32) * -step)[None, :]
    return torch.cat([torch.sin(positions * scales), torch.cos(positions * scales)], dim=1)
