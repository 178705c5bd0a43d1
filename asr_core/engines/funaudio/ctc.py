"""The CTC head (`ctc_decoder.*` + `ctc.ctc_lo`) and its greedy text: the cheap first pass
whose hypothesis retrieves hot-words, as the Fun-ASR report describes and the release omits.

Units are SenseVoice's multilingual tiktoken BPE pieces (`multilingual.tiktoken`: one
`base64-bytes rank` line per piece); ids past the pieces are SenseVoice's special tokens
(language, event, emotion, <|nospeech|> ...), which carry no text and are dropped.
"""

import base64
import binascii
from pathlib import Path

import torch
from torch import nn

from asr_core.engines.funaudio.adaptor import TransformerAdaptor
from asr_core.engines.funaudio.checkpoint import CheckpointError
from asr_core.engines.funaudio.config import CtcConfig

TOKENIZER_FILE = "multilingual.tiktoken"


class CtcProjection(nn.Module):
    """FunASR's `CTC` module: only `ctc_lo` holds weights."""

    def __init__(self, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.ctc_lo = nn.Linear(dim, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ctc_lo(x)


class PieceVocabulary:
    """Byte pieces by id, read from a tiktoken rank file without the tiktoken package."""

    def __init__(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError as exc:
            raise CheckpointError("ctc", f"{path} is missing (the CTC tokenizer)") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointError("ctc", f"{path} is not a tiktoken file: {exc}") from exc
        self.pieces: dict[int, bytes] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                token, rank = line.split()
                self.pieces[int(rank)] = base64.b64decode(token, validate=True)
            except (ValueError, binascii.Error) as exc:
                raise CheckpointError(
                    "ctc", f"{path} line {number} is not `base64-piece rank`"
                ) from exc

    def __len__(self) -> int:
        return len(self.pieces)

    def decode(self, ids: list[int]) -> str:
        return b"".join(self.pieces.get(i, b"") for i in ids).decode("utf-8", errors="replace")


class CtcHead(nn.Module):
    def __init__(self, config: CtcConfig) -> None:
        super().__init__()
        self.blank_id = config.blank_id
        self.ctc_decoder = TransformerAdaptor(config.decoder)
        self.ctc = CtcProjection(config.decoder.llm_dim, config.vocab_size)

    def best_path(
        self, encoder_out: torch.Tensor, lengths: torch.Tensor
    ) -> list[tuple[list[int], list[float]]]:
        """Per row: the best unit of each frame and its posterior (the frames' real length)."""
        decoded, lengths = self.ctc_decoder(encoder_out, lengths)
        posterior, best = self.ctc(decoded).float().softmax(dim=-1).max(dim=-1)
        return [
            (units[:length].tolist(), probability[:length].tolist())
            for units, probability, length in zip(best, posterior, lengths.tolist(), strict=True)
        ]

    def greedy_ids(self, encoder_out: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """Best unit per frame, repeats merged, blanks dropped (FunASR's `inference_llm`)."""
        return [self.collapse(units) for units, _ in self.best_path(encoder_out, lengths)]

    def collapse(self, units: list[int]) -> list[int]:
        merged = [u for i, u in enumerate(units) if i == 0 or u != units[i - 1]]
        return [u for u in merged if u != self.blank_id]
