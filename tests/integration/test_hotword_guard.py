"""Hot-words never hurt, on real recordings (the shared speech set, Whisper base).

Each clip is decoded once without a list; the hot-word stage then runs on that same first pass
with two tenant lists per language (`bench.hotwords.tenant_lists`): the clips' terms among
1,000 Faker distractors, and the 1,000 distractors alone. This is exactly what
`decode_window` does per window, with the encoder run and the first pass shared, so the test
costs one transcription plus the second passes. Also the Mandarin clips on which the list
derailed the second pass before the guard (issue: "Hot-words that never hurt").
"""

import pytest

from asr_core.evaluation import Scorer
from asr_core.hotwords.guard import cjk_gaps
from bench.hotwords import RUNS, Clip, decode_with_lists

DERAILED = (
    "zh_aishell_BAC009S0150W0127",  # 越高越安全第二个指标 -> 岳 高 岳 安全 第二个指标
    "zh_aishell_BAC009S0150W0227",  # 比如创业板退市制度 -> ... 创业板 叶 杜 创业板 退市制度
    "zh_aishell_BAC009S0150W0234",  # 进一步推动政策措施落实 -> ... 政策措施 罗 郑
    "zh_aishell_BAC009S0150W0251",  # 将严格落实楼市调控政策 -> 江 严 葛 罗 石 楼 市 调控政策
)


@pytest.fixture(scope="module")
def lists(speech_lists):
    return speech_lists[1]


@pytest.fixture(scope="module")
def shared(shared_speech_texts) -> dict[str, tuple[Clip, dict[str, str]]]:
    return shared_speech_texts


def scores(runs, lists, language: str) -> dict[str, dict]:
    out = {}
    for name in RUNS:
        vocabulary = lists.distractors if name == "distractors_only" else lists.with_terms
        scorer = Scorer(vocabulary=vocabulary)
        for clip, texts in runs:
            if clip.language == language:
                scorer.add(clip.utterance, texts[name], list(clip.terms), 0, 0)
        out[name] = scorer.summary()["languages"][language]
    return out


@pytest.mark.parametrize("language", ["en", "zh"])
def test_distractors_change_next_to_nothing(shared, lists, language):
    runs = [(c, t) for c, t in shared.values() if c.language == language]
    same = sum(texts["distractors_only"] == texts["no_list"] for _, texts in runs)
    assert len(runs) >= 20 and same / len(runs) >= 0.95, [
        (c.utterance.id, t["no_list"], t["distractors_only"])
        for c, t in runs
        if t["distractors_only"] != t["no_list"]
    ]
    rate = "wer" if language == "en" else "cer"
    scored = scores(runs, lists, language)
    assert scored["distractors_only"][rate] <= scored["no_list"][rate] + 0.002


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_list_finds_terms_and_never_raises_the_error_rate(shared, lists, language):
    scored = scores(list(shared.values()), lists, language)
    rate = "wer" if language == "en" else "cer"
    assert scored["list"][rate] <= scored["no_list"][rate], scored
    assert scored["list"]["hotword_recall"] >= scored["no_list"]["hotword_recall"] + 0.1, scored
    assert scored["list"]["hotword_false_alarm_rate"] <= 0.001, scored


def test_no_clip_gains_spaces_between_chinese_characters(shared):
    spaced = [
        (clip.utterance.id, texts[name])
        for clip, texts in shared.values()
        for name in ("list", "distractors_only")
        if cjk_gaps(texts[name]) > cjk_gaps(texts["no_list"])
    ]
    assert spaced == []


def test_clips_the_list_used_to_derail(testdata, speech_lists, engine):
    clips, lists = speech_lists
    derailed = [c for c in clips if c.utterance.id in DERAILED]
    if len(derailed) < len(DERAILED):
        pytest.skip(f"speech-zh not found beside {testdata}")
    indexes = {
        "list": lists.indexes("with_terms"),
        "distractors_only": lists.indexes("distractors"),
    }
    for clip in derailed:
        texts = decode_with_lists(engine, clip, indexes)
        assert cjk_gaps(texts["list"]) <= cjk_gaps(texts["no_list"]), texts
        assert texts["distractors_only"] == texts["no_list"], texts
        no_list, listed = (
            Scorer().add(clip.utterance, texts[name], [], 0, 0)["errors"]
            for name in ("no_list", "list")
        )
        assert listed <= no_list, texts
