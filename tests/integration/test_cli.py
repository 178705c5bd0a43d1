"""The `callscribe` command as users run it (a real process, the bundled model)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import MANDARIN_PINYIN
from tests.helpers import espeak_wav


def callscribe(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "callscribe", *args], capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def two_clips(speech_dir):
    return (
        espeak_wav("Please call me tomorrow morning.", speech_dir / "first.wav"),
        espeak_wav("The meeting starts at nine o'clock.", speech_dir / "second.wav"),
    )


def test_txt_to_stdout(english_wav):
    result = callscribe("transcribe", str(english_wav), "--language", "en")
    assert "lazy dog" in result.stdout.lower()


def test_every_format_to_an_output_dir(two_clips, tmp_path):
    first, second = two_clips
    for fmt in ("json", "txt", "srt", "vtt"):
        callscribe("transcribe", str(first), str(second), "-f", fmt, "-o", str(tmp_path), "--words")
    body = json.loads((tmp_path / "first.json").read_text())
    assert "tomorrow" in body["text"].lower()
    assert body["language"] == "en"
    assert body["model"] == "whisper-base"
    assert body["segments"][0]["words"][0]["start"] >= 0
    assert "tomorrow" in (tmp_path / "first.txt").read_text().lower()
    srt = (tmp_path / "second.srt").read_text()
    assert srt.startswith("1\n00:00:0") and " --> " in srt and "meeting" in srt.lower()
    vtt = (tmp_path / "second.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n00:00:0") and "meeting" in vtt.lower()


def test_several_files_as_json_lines(two_clips):
    result = callscribe("transcribe", *map(str, two_clips), "-f", "json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(p) for p in two_clips]
    assert "meeting" in records[1]["text"].lower()


def test_mandarin_with_forced_language(speech_dir):
    path = espeak_wav(MANDARIN_PINYIN, speech_dir / "zh.wav", voice="cmn-latn-pinyin", speed=120)
    result = callscribe("transcribe", str(path), "--language", "zh", "-f", "json")
    assert "明天" in json.loads(result.stdout)["text"]


def test_a_bad_file_is_reported_and_the_rest_still_run(two_clips, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt garbage" * 10)
    result = callscribe(
        "transcribe", str(broken), str(two_clips[0]), "-o", str(tmp_path), check=False
    )
    assert result.returncode == 1
    assert "broken.wav" in result.stderr and "not a readable audio file" in result.stderr
    assert "tomorrow" in (tmp_path / "first.txt").read_text().lower()


def test_hotwords_file_reaches_the_decoder(speech_dir, tmp_path):
    clip = espeak_wav("Please call Xiaomeng Zhao about the CRISPR assay.", speech_dir / "hw.wav")
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("Xiaomeng Zhao\nCRISPR\n")
    plain = callscribe("transcribe", str(clip), "-l", "en").stdout
    biased = callscribe("transcribe", str(clip), "-l", "en", "--hotwords", str(phrases)).stdout
    assert "Xiaomeng" not in plain
    assert "Xiaomeng" in biased


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--language", "fr"], "use one of en, zh"),
        (["--model", "no-such-model"], "unknown model"),
        (["--raw", "mulaw"], "ENCODING:RATE"),
    ],
)
def test_bad_options_exit_2_with_a_reason(english_wav, args, message):
    result = callscribe("transcribe", str(english_wav), *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr


def test_eval_prints_scores_and_writes_hypotheses(two_clips, tmp_path):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text(
        "id\tfile\tlanguage\treference\n"
        f"one\t{two_clips[0]}\ten\tPlease call me tomorrow morning.\n"
        f"two\t{two_clips[1]}\ten\tThe meeting starts at nine o'clock.\n"
    )
    (tmp_path / "hotwords.tsv").write_text("id\tlanguage\thotwords\none\ten\ttomorrow\n")
    hyps = tmp_path / "hyps.jsonl"
    result = callscribe("eval", str(manifest), "--out", str(hyps))
    summary = json.loads(result.stdout)
    english = summary["languages"]["en"]
    assert summary["utterances"] == 2
    assert english["wer"] < 0.3
    assert english["hotword_recall"] == 1.0
    assert english["rtf"] > 0
    lines = [json.loads(line) for line in hyps.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["one", "two"]


def test_eval_with_a_hotword_list(two_clips, tmp_path):
    manifest = tmp_path / "manifest.tsv"
    row = f"one\t{two_clips[0]}\ten\tPlease call me tomorrow morning.\n"
    manifest.write_text("id\tfile\tlanguage\treference\n" + row)
    listed = tmp_path / "list.json"
    listed.write_text('{"tomorrow morning": 5, "Xiaomeng Zhao": 1}')
    summary = json.loads(callscribe("eval", str(manifest), "--hotwords-list", str(listed)).stdout)
    assert summary["hotwords_listed"] == 2
    assert summary["languages"]["en"]["hotword_false_alarms"] == 0
    assert summary["languages"]["en"]["hotword_false_alarm_rate"] == 0.0  # 1 absent phrase


def test_eval_names_the_bad_manifest_line(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("id\tfile\tlanguage\treference\nx\ta.wav\n")
    result = callscribe("eval", str(manifest), check=False)
    assert result.returncode == 2
    assert "line 2" in result.stderr


def test_models_list_and_prepare():
    assert "whisper-base" in callscribe("models", "list").stdout
    assert callscribe("models", "prepare", "whisper-base").stdout.strip().endswith("whisper-base")
