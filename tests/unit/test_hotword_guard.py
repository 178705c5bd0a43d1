"""The hot-word guard on the second passes the Hot-words issue saw derail (no model needed)."""

import math

from prometheus_client import generate_latest

from asr_core.hotwords import Hotword, HotwordIndex, HotwordList
from asr_core.hotwords.guard import SECOND_PASSES, GuardOptions, SecondPass, judge
from asr_core.hotwords.prompt import hotword_prompt
from asr_core.transcribe import TranscribeOptions, merge_hotword_pass
from asr_core.transcript import Segment, Word
from service.metrics import ServiceMetrics

NO_LOG_PROB_CHECK = GuardOptions(max_logprob_drop=math.inf)


def guarded(first: str, second: str, *phrases: str, options=NO_LOG_PROB_CHECK, **scores) -> str:
    """The first pass after the guard took what it allows of the second."""
    index = HotwordIndex(HotwordList([Hotword(p) for p in phrases]))
    candidates = index.retrieve(first)
    segments = [Segment(0.0, 1.0, first)]
    options = TranscribeOptions(hotword_guard=options, hotword_correction=False)
    merge_hotword_pass(segments, candidates, SecondPass(second, **scores), options)
    return segments[0].text


def outcomes() -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for metric in SECOND_PASSES.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def test_a_phrase_written_where_it_was_heard_is_taken_and_nothing_else():
    # The second pass also drops the clause comma and writes digits: neither is taken.
    assert guarded("左小雷进一步表示，三百亿", "左小蕾进一步表示300亿", "左小蕾") == (
        "左小蕾进一步表示，三百亿"
    )
    assert guarded(
        " The meeting with Rama Nathan Subramanyam is at noon.",
        " The meeting with Ramanathan Subramaniam is at noon!",
        "Ramanathan Subramaniam",
    ) == (" The meeting with Ramanathan Subramaniam is at noon.")


def test_spaced_syllables_fall_back_to_the_first_pass():
    """The issue's examples: the list split the sentence into spaced single syllables."""
    before = outcomes().get("cjk_spacing", 0)
    assert guarded("将严格落石楼室调控政策", "江 严 葛 罗 石 楼 市 调控政策", "楼市", "罗") == (
        "将严格落石楼室调控政策"
    )
    assert guarded("越高越安全 第二个指标", "岳 高 岳 安全 第二个指标", "岳高") == (
        "越高越安全 第二个指标"
    )
    assert outcomes()["cjk_spacing"] == before + 2


def test_retrieved_names_appended_or_repeated_phrases_are_not_taken():
    first = "进一步推动政策措施落实"
    assert guarded(first, "进一步推动政策措施罗丽郑伟", "罗丽", "郑伟", "落实") == first
    # A single character is never written: 罗 sounds like 落 in every other sentence.
    assert guarded(first, "进一步推动政策措施罗实", "罗") == first
    before = outcomes().get("outside_changes", 0)
    first = "比如创业版退市制度"
    second = "比如创业板退市制度创业板叶杜创业板退市制度"
    assert guarded(first, second, "创业板") == first
    assert outcomes()["outside_changes"] == before + 1
    # The same phrase, without the runaway repetition, is taken.
    assert guarded(first, "比如创业板退市制度", "创业板") == "比如创业板退市制度"


def test_a_less_confident_second_pass_is_refused():
    first, second = "左小雷进一步表示", "左小蕾进一步表示"
    options = GuardOptions(max_logprob_drop=0.3)
    sure = guarded(
        first, second, "左小蕾", options=options, avg_logprob=-0.2, first_avg_logprob=-0.3
    )
    unsure = guarded(
        first, second, "左小蕾", options=options, avg_logprob=-0.7, first_avg_logprob=-0.3
    )
    assert (sure, unsure) == ("左小蕾进一步表示", first)


def test_a_phrase_far_from_its_span_is_not_taken():
    # 左小蕾 was heard at the start; a second pass writing it at the end adds a name.
    first = "左小雷进一步表示市场会好"
    assert guarded(first, "左小雷进一步表示市场左小蕾", "左小蕾") == first


def test_words_of_a_replaced_stretch_merge():
    segment = Segment(
        0.0,
        1.0,
        "洋城与转移",
        [Word(0, 0.4, "洋城", 0.9), Word(0.4, 0.7, "与转", 0.8), Word(0.7, 1.0, "移", 0.9)],
    )
    candidates = HotwordIndex(HotwordList([Hotword("杨澄宇")])).retrieve(segment.text)
    options = TranscribeOptions(hotword_guard=NO_LOG_PROB_CHECK, hotword_correction=False)
    merge_hotword_pass([segment], candidates, SecondPass("杨澄宇转移"), options)
    assert segment.text == "杨澄宇转移"
    assert "".join(w.word for w in segment.words) == "杨澄宇转移"
    assert segment.hotwords == ["杨澄宇"]


def test_verdicts_are_counted_where_the_service_exposes_metrics():
    candidates = HotwordIndex(HotwordList([Hotword("左小蕾")])).retrieve("左小雷说")
    verdict = judge("左小雷说", SecondPass("左小蕾说"), candidates, NO_LOG_PROB_CHECK)
    assert verdict.outcome == "accepted"
    [replacement] = verdict.replacements
    assert (replacement.start, replacement.end, replacement.phrase) == (0, 3, "左小蕾")
    exposed = generate_latest(ServiceMetrics().registry).decode()
    assert 'callscribe_hotword_second_passes_total{outcome="accepted"}' in exposed


def test_mandarin_prompts_read_like_chinese_in_the_first_pass_style():
    phrases = ["万科", "中原地产集团"]
    assert hotword_prompt(phrases, "zh", "万客说，中原集团。", form="styled") == (
        "万科，中原地产集团。"
    )
    assert hotword_prompt(phrases, "zh", "万客说 中原集团", form="styled") == ("万科、中原地产集团")
    assert hotword_prompt(phrases, "zh", form="enumerated") == "万科、中原地产集团。"
    assert hotword_prompt(phrases, "zh", form="spaced") == "万科 中原地产集团"
    assert hotword_prompt(["万科"], "zh", "万客说", [(0, 2, "万科")], form="hinted") == "万科说"
    for form in ("styled", "enumerated", "hinted"):
        assert " " not in hotword_prompt(phrases, "zh", "万客说", [(0, 2, "万科")], form=form)
    assert hotword_prompt(["Gutenberg", "Mainz"], "en", form="enumerated") == "Gutenberg, Mainz."


def test_aliases_still_map_to_the_listed_spelling():
    entry = Hotword("ZhangSan", aliases=("张叁",))
    segments = [Segment(0.0, 1.0, "请转接张三")]
    candidates = HotwordIndex(HotwordList([entry])).retrieve(segments[0].text)
    assert [c.phrase for c in candidates] == ["ZhangSan"]
    # Written by the second pass where the alias was heard, or corrected from the alias.
    options = TranscribeOptions(hotword_guard=NO_LOG_PROB_CHECK)
    merge_hotword_pass(segments, candidates, SecondPass("请转接ZhangSan"), options)
    assert segments[0].text == "请转接ZhangSan"
    segments = [Segment(0.0, 1.0, "请转接张三")]
    merge_hotword_pass(segments, candidates, SecondPass("请转接张三"), options)
    assert segments[0].text == "请转接ZhangSan"


def test_a_short_lists_unretrieved_phrase_may_replace_one_changed_stretch():
    """A caller's few words are prompted whole: a name the first pass did not hear alike
    ("my own man") is taken where the second pass wrote it instead, nowhere else."""
    segments = [Segment(0.0, 1.0, " Please call my own man about the crisper assay.")]
    unplaced = [Hotword("Xiaomeng Zhao")]
    index = HotwordIndex(HotwordList([Hotword("CRISPR"), *unplaced]))
    candidates = index.retrieve(segments[0].text)
    assert [c.phrase for c in candidates] == ["CRISPR"]
    second = SecondPass(" Please call Xiaomeng Zhao about the CRISPR assay.")
    options = TranscribeOptions(hotword_guard=NO_LOG_PROB_CHECK, hotword_correction=False)
    merge_hotword_pass(segments, candidates, second, options, unplaced)
    assert segments[0].text == " Please call Xiaomeng Zhao about the CRISPR assay."
    assert segments[0].hotwords == ["CRISPR", "Xiaomeng Zhao"]
    # Written on top of words the first pass had right, it is refused.
    segments = [Segment(0.0, 1.0, " Please call me about the assay.")]
    second = SecondPass(" Please call me about the Xiaomeng Zhao assay.")
    merge_hotword_pass(segments, [], second, options, unplaced)
    assert segments[0].text == " Please call me about the assay."


def test_a_written_phrase_holding_a_shorter_retrieved_one_is_taken_whole():
    """丽江 (a listed city) matches 立将 better than 丽江古城 matches 立将股场; the second pass
    wrote the whole 丽江古城, so the longer phrase is what it meant."""
    assert guarded(
        "针对有媒体报道立将股场部分酒吧", "针对有媒体报道丽江古城部分酒吧", "丽江", "丽江古城"
    ) == ("针对有媒体报道丽江古城部分酒吧")
