from asr_core.hotwords import Hotword, apply_corrections, find_replacements
from asr_core.transcript import Segment, Word


def corrected(text: str, *phrases: str, weights: dict | None = None, aliases=None) -> str:
    hotwords = [
        Hotword(p, (weights or {}).get(p, 1.0), tuple((aliases or {}).get(p, ()))) for p in phrases
    ]
    return apply_corrections(Segment(0, 1, text), hotwords).text


def test_chinese_aliases_are_corrected_to_the_phrase_by_sound():
    assert corrected("请转接张三", "ZhangSan", aliases={"ZhangSan": ("张叁",)}) == (
        "请转接ZhangSan"
    )
    assert corrected("左小雷进一步表示", "左小蕾", aliases={"左小蕾": ("左小雷",)}) == (
        "左小蕾进一步表示"
    )
    assert corrected("而深圳下门房价", "厦门", aliases={"厦门": ("夏门",)}) == "而深圳厦门房价"


def test_an_alias_never_replaces_a_real_word():
    assert corrected("转移支付的方式", "芳市", aliases={"芳市": ("芳氏",)}) == "转移支付的方式"
    assert corrected("新工厂位于首尔", "魏瑜", aliases={"魏瑜": ("卫宇",)}) == "新工厂位于首尔"


def test_chinese_phrases_are_not_forced_by_pinyin_alone():
    """The guarded second pass writes them where they were heard; pinyin alone rewrote
    stretches across words with distractors (issue: 发放现金 -> 发芳县金)."""
    assert corrected("那么直接发放现金会是最有效的方式", "芳县", "慧市") == (
        "那么直接发放现金会是最有效的方式"
    )
    assert corrected("左小雷进一步表示", "左小蕾") == "左小雷进一步表示"


def test_near_spellings_that_sound_the_same_are_corrected():
    assert corrected("printed by Peter Schoffer in", "Peter Schoeffer") == (
        "printed by Peter Schoeffer in"
    )
    assert corrected("printers in Strasbourg,", "Strasburg") == "printers in Strasburg,"
    assert corrected("the middle ages", "Middle Ages") == "the Middle Ages"


def test_weak_matches_never_fire():
    assert corrected("printers in Basel", "Basle") == "printers in Basel"  # sounds different
    assert corrected("apologized Whitmore", "Whittemore") == "apologized Whitmore"
    assert corrected("went to Rome", "Roman") == "went to Rome"
    assert corrected("the romantic era", "Roman") == "the romantic era"  # not a whole word


def test_replacements_do_not_overlap():
    replacements = find_replacements(
        "左小雷", [Hotword("左小蕾", aliases=("左晓雷",)), Hotword("左小磊", aliases=("佐小雷",))]
    )
    assert len(replacements) == 1


def test_words_covering_a_replacement_are_merged():
    segment = Segment(
        0.0,
        2.0,
        " by Peter Schoffer in",
        [
            Word(0.0, 0.4, " by", 0.9),
            Word(0.5, 0.9, " Peter", 0.9),
            Word(1.0, 1.5, " Schoffer", 0.6),
            Word(1.5, 2.0, " in", 0.9),
        ],
    )
    apply_corrections(segment, [Hotword("Peter Schoeffer")])
    assert [(w.word, w.start, w.end, w.probability) for w in segment.words] == [
        (" by", 0.0, 0.4, 0.9),
        (" Peter Schoeffer", 0.5, 1.5, 0.6),
        (" in", 1.5, 2.0, 0.9),
    ]


def test_chinese_words_keep_their_other_characters():
    segment = Segment(
        0.0,
        1.0,
        "洋城与转移",
        [Word(0, 0.4, "洋城", 0.9), Word(0.4, 0.7, "与转", 0.8), Word(0.7, 1.0, "移", 0.9)],
    )
    apply_corrections(segment, [Hotword("杨澄宇", aliases=("洋城与",))])
    assert segment.text == "杨澄宇转移"
    assert "".join(w.word for w in segment.words) == "杨澄宇转移"
