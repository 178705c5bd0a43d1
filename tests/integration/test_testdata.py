"""Real recordings from the shared speech set, scored under fixed ceilings.

The ceilings sit a little above what the bundled Whisper base scores here (WER 12.0 % en,
CER 19.2 % zh; see docs/benchmarks.md), so a regression in decoding, VAD or normalisation fails.
"""

import pytest

from asr_core.evaluation import Scorer

CEILINGS = {"en": ("wer", 0.15), "zh": ("cer", 0.23)}


@pytest.fixture(scope="module")
def scores(shared_speech_texts):
    """Each clip's text without a list, as `Transcriber.transcribe` makes it (the session's
    shared decode of the set, which the hot-word tests also use)."""
    scorer = Scorer()
    for clip, texts in shared_speech_texts.values():
        scorer.add(clip.utterance, texts["no_list"], list(clip.terms), 0, 0)
    return scorer.summary()["languages"]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_error_rate_under_ceiling(scores, language):
    metric, ceiling = CEILINGS[language]
    assert scores[language]["utterances"] >= 20
    assert scores[language][metric] <= ceiling, scores[language]


def test_telephone_mulaw_recording(testdata, transcriber, shared_speech_texts):
    transcript = transcriber.transcribe(testdata / "en_azure_whatstheweatherlike_mulaw.wav")
    assert transcript.language == "en"
    assert "weather" in transcript.text.lower()
    # The shared decode is the transcriber's own.
    _, texts = shared_speech_texts["en_azure_whatstheweatherlike_mulaw"]
    assert texts["no_list"] == transcript.text
