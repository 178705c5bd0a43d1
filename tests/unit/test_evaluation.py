import pytest

from asr_core.evaluation import (
    ManifestError,
    Scorer,
    Utterance,
    contains_term,
    normalize,
    read_manifest,
    read_terms,
    vocabulary_by_language,
)


def test_english_normalisation_uses_whisper_rules():
    assert normalize("Mr. Smith paid twenty-one dollars!", "en") == "mister smith paid $21"


def test_mandarin_normalisation_simplifies_and_strips_punctuation():
    assert normalize("語音轉寫， 測試。OK", "zh") == "语音转写测试ok"


def test_terms_match_whole_words_in_english():
    text = normalize("the bible was printed at Maintz", "en")
    assert contains_term(text, "Bible", "en")
    assert not contains_term(text, "Bib", "en")
    assert contains_term(normalize("凤凰网推出凤凰资本论", "zh"), "鳳凰網", "zh")


def test_scorer_counts_errors_recall_and_false_alarms():
    scorer = Scorer(vocabulary=vocabulary_by_language(["Basle", "Paris", "张三"]))
    en = Utterance("a", None, "en", "He went from Basle to Rome.")
    result = scorer.add(en, "he went from basel to paris", ["Basle"], 2.0, 0.5)
    assert result["errors"] == 2  # basle->basel, rome->paris
    assert result["terms_missed"] == ["Basle"]
    assert result["false_alarms"] == ["Paris"]
    zh = Utterance("b", None, "zh", "张三来了")
    scorer.add(zh, "张三来啦", ["张三"], 1.0, 0.25)
    summary = scorer.summary()
    assert summary["languages"]["en"]["wer"] == pytest.approx(2 / 6, abs=1e-4)
    assert summary["languages"]["en"]["hotword_recall"] == 0.0
    # Basle is in the reference, so Paris is the one absent phrase, and it was inserted.
    assert summary["languages"]["en"]["hotword_false_alarm_rate"] == 1.0
    assert summary["languages"]["zh"]["cer"] == 0.25
    assert summary["languages"]["zh"]["hotword_recall"] == 1.0
    assert summary["rtf"] == pytest.approx(0.75 / 3.0, abs=1e-4)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_reads_relative_paths(tmp_path):
    body = 'id\tfile\tlanguage\treference\nx\ta.wav\ten\t"Hi", he said\n'
    manifest = write(tmp_path / "m.tsv", body)
    [utterance] = read_manifest(manifest)
    assert utterance.path == tmp_path / "a.wav"
    assert utterance.reference == '"Hi", he said'  # no quoting: quotes are text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("id\tfile\tlanguage\n", "line 1: missing column"),
        ("id\tfile\tlanguage\treference\nx\ta.wav\ten\n", "line 2: 3 fields, expected 4"),
        ("id\tfile\tlanguage\treference\nx\ta.wav\ten\tok\ny\tb.wav\tfr\tno\n", "line 3: language"),
        ("", "is empty"),
    ],
)
def test_malformed_manifests_name_the_line(tmp_path, body, message):
    with pytest.raises(ManifestError, match=message):
        read_manifest(write(tmp_path / "m.tsv", body))


def test_terms_file(tmp_path):
    terms = write(tmp_path / "t.tsv", "id\tlanguage\thotwords\na\ten\tBible; Peter Schoeffer\n")
    assert read_terms(terms) == {"a": ["Bible", "Peter Schoeffer"]}
