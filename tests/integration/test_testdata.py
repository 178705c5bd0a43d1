"""Real recordings from the shared speech set, scored under fixed ceilings.

The ceilings sit a little above what the bundled Whisper base scores here (WER 12.0 % en,
CER 19.2 % zh; see docs/benchmarks.md), so a regression in decoding, VAD or normalisation fails.
"""

import pytest

from asr_core.evaluation import Scorer, read_manifest, read_terms
from asr_core.transcribe import TranscribeOptions

CEILINGS = {"en": ("wer", 0.15), "zh": ("cer", 0.23)}


@pytest.fixture(scope="module")
def scores(testdata, transcriber):
    scorer = Scorer()
    terms = read_terms(testdata / "hotwords.tsv")
    for utterance in read_manifest(testdata / "manifest.tsv"):
        transcript = transcriber.transcribe(
            utterance.path, TranscribeOptions(language=utterance.language)
        )
        scorer.add(utterance, transcript.text, terms.get(utterance.id, []), transcript.duration, 0)
    return scorer.summary()["languages"]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_error_rate_under_ceiling(scores, language):
    metric, ceiling = CEILINGS[language]
    assert scores[language]["utterances"] >= 20
    assert scores[language][metric] <= ceiling, scores[language]


def test_telephone_mulaw_recording(testdata, transcriber):
    transcript = transcriber.transcribe(testdata / "en_azure_whatstheweatherlike_mulaw.wav")
    assert transcript.language == "en"
    assert "weather" in transcript.text.lower()
