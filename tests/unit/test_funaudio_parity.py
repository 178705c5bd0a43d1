"""Frontend, encoder, adaptor and CTC head against hand-derived shapes and masks, and against
the reference implementation in the `funasr` package (random weights) where it is installed."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the FunAudio engine needs torch (extra: funaudio)")

from asr_core.engines.funaudio.adaptor import TransformerAdaptor  # noqa: E402
from asr_core.engines.funaudio.config import (  # noqa: E402
    AdaptorConfig,
    CtcConfig,
    EncoderConfig,
    FrontendConfig,
)
from asr_core.engines.funaudio.ctc import CtcHead  # noqa: E402
from asr_core.engines.funaudio.encoder import SenseVoiceEncoder, sinusoidal_positions  # noqa: E402
from asr_core.engines.funaudio.frontend import fbank, features, stack_low_frame_rate  # noqa: E402

torch.set_num_threads(1)
ENCODER = EncoderConfig(
    input_size=560, output_size=16, attention_heads=2, linear_units=32, num_blocks=3, tp_blocks=2
)
ADAPTOR = AdaptorConfig(
    encoder_dim=16, llm_dim=32, ffn_dim=48, downsample_rate=1, n_layer=2, attention_heads=4
)


def _audio(seconds: float = 1.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )


def _funasr():
    pytest.importorskip(
        "funasr", reason="funasr (the reference) is not installed (extra: funaudio-parity)"
    )
    from funasr.frontends.wav_frontend import WavFrontend
    from funasr.models.fun_asr_nano.ctc import CTC
    from funasr.models.llm_asr.adaptor import Transformer
    from funasr.models.sense_voice.model import SenseVoiceEncoderSmall

    return WavFrontend, SenseVoiceEncoderSmall, Transformer, CTC


# -- hand-derived ---------------------------------------------------------------------------


def test_fbank_and_lfr_shapes():
    config = FrontendConfig()
    audio = _audio(1.0)
    mel = fbank(audio, config)
    assert mel.shape == (1 + (16000 - 400) // 160, 80)  # snip_edges framing
    feats = features(audio, config)
    assert feats.shape == (math.ceil(mel.shape[0] / 6), 560)
    assert fbank(audio[:399], config).shape == (0, 80)


def test_lfr_repeats_the_edges():
    feats = torch.arange(10, dtype=torch.float32)[:, None]
    stacked = stack_low_frame_rate(feats, 7, 6)
    assert stacked.tolist() == [[0, 0, 0, 0, 1, 2, 3], [3, 4, 5, 6, 7, 8, 9]]


def test_positions_start_at_one():
    codes = sinusoidal_positions(3, 8)
    step = math.log(10000) / 3
    assert codes[0, 0].item() == pytest.approx(math.sin(1.0))
    assert codes[2, 1].item() == pytest.approx(math.sin(3 * math.exp(-step)))
    assert codes[1, 4].item() == pytest.approx(math.cos(2.0))


def test_encoder_padding_does_not_leak():
    torch.manual_seed(0)
    encoder = SenseVoiceEncoder(ENCODER).eval()
    feats = torch.randn(1, 20, 560)
    padded = torch.cat([feats, torch.randn(1, 7, 560) * 50], dim=1)
    with torch.no_grad():
        alone = encoder(feats, torch.tensor([20]))
        batched = encoder(padded, torch.tensor([20]))
    assert alone.shape == (1, 20, 16)
    assert torch.allclose(alone, batched[:, :20], atol=1e-5)


def test_adaptor_shapes_and_masks():
    torch.manual_seed(0)
    adaptor = TransformerAdaptor(ADAPTOR).eval()
    x = torch.randn(2, 11, 16)
    with torch.no_grad():
        out, lengths = adaptor(x, torch.tensor([11, 6]))
        short, _ = adaptor(x[1:, :6], torch.tensor([6]))
    assert out.shape == (2, 11, 32) and lengths.tolist() == [11, 6]
    assert torch.allclose(out[1, :6], short[0], atol=1e-5)
    stacked = TransformerAdaptor(AdaptorConfig(16, 32, 48, downsample_rate=2, n_layer=1))
    with torch.no_grad():
        out, lengths = stacked(x, torch.tensor([11, 6]))
    assert out.shape == (2, 6, 32) and lengths.tolist() == [6, 3]


class _PassThrough(torch.nn.Module):
    def forward(self, x, lengths):
        return x, lengths


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    head = CtcHead(CtcConfig(AdaptorConfig(16, 16, 32, 1, 1, 2), vocab_size=5, blank_id=4))
    head.ctc_decoder = _PassThrough()  # logits = inputs
    head.ctc.ctc_lo = torch.nn.Identity()
    frames = [1, 1, 4, 1, 2, 2, 4, 4, 3, 0]
    logits = torch.nn.functional.one_hot(torch.tensor(frames), 5).float()[None]
    assert head.greedy_ids(logits, torch.tensor([10])) == [[1, 1, 2, 3, 0]]
    assert head.greedy_ids(logits, torch.tensor([4])) == [[1, 1]]


# -- parity with funasr -----------------------------------------------------------------------


def test_frontend_matches_funasr_wavfrontend():
    wav_frontend, *_ = _funasr()
    pytest.importorskip(
        "kaldi_native_fbank",
        reason="funasr's fbank needs kaldi-native-fbank (extra: funaudio-parity)",
    )
    reference = wav_frontend(
        fs=16000, window="hamming", n_mels=80, frame_length=25, frame_shift=10,
        lfr_m=7, lfr_n=6, dither=0.0, cmvn_file=None,
    )  # fmt: skip
    for seconds in (0.5, 1.3, 2.71):
        audio = _audio(seconds, seed=int(seconds * 10))
        expected, _ = reference(torch.from_numpy(audio)[None], torch.tensor([len(audio)]))
        ours = features(audio, FrontendConfig())
        assert ours.shape == expected[0].shape
        assert torch.allclose(ours, expected[0], atol=2e-3, rtol=1e-4)


def test_encoder_matches_funasr_sensevoice_encoder_small():
    _, reference_class, *_ = _funasr()
    torch.manual_seed(1)
    reference = reference_class(
        input_size=560, output_size=16, attention_heads=2, linear_units=32, num_blocks=3,
        tp_blocks=2, kernel_size=11, sanm_shfit=0,
    ).eval()  # fmt: skip
    ours = SenseVoiceEncoder(ENCODER).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)  # same tensor names
    feats = torch.randn(2, 25, 560)
    lengths = torch.tensor([25, 17])
    with torch.no_grad():
        expected, expected_lengths = reference(feats.clone(), lengths)
        got = ours(feats.clone(), lengths)
    assert expected_lengths.tolist() == [25, 17]
    assert torch.allclose(got[0], expected[0], atol=1e-4)
    assert torch.allclose(got[1, :17], expected[1, :17], atol=1e-4)


@pytest.mark.parametrize("downsample_rate", [1, 2])
def test_adaptor_matches_funasr_transformer(downsample_rate):
    _, _, reference_class, _ = _funasr()
    torch.manual_seed(2)
    reference = reference_class(
        downsample_rate=downsample_rate, encoder_dim=16, llm_dim=32, ffn_dim=48, n_layer=2,
        attention_heads=4,
    ).eval()  # fmt: skip
    ours = TransformerAdaptor(
        AdaptorConfig(16, 32, 48, downsample_rate, n_layer=2, attention_heads=4)
    ).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 13, 16)
    lengths = torch.tensor([13, 9])
    with torch.no_grad():
        expected, expected_lengths = reference(x, lengths)
        got, got_lengths = ours(x, lengths)
    assert got_lengths.tolist() == expected_lengths.tolist()
    real = expected_lengths.tolist()
    assert torch.allclose(got[0, : real[0]], expected[0, : real[0]], atol=1e-5)
    assert torch.allclose(got[1, : real[1]], expected[1, : real[1]], atol=1e-5)


def test_ctc_tensor_names_match_funasr():
    *_, reference_ctc = _funasr()
    reference = reference_ctc(odim=11, encoder_output_size=16, blank_id=10)
    head = CtcHead(CtcConfig(AdaptorConfig(16, 16, 32, 1, 1, 2), vocab_size=11, blank_id=10))
    head.ctc.load_state_dict(reference.state_dict(), strict=True)
