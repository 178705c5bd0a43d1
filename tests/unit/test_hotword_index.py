import time

import pytest
from faker import Faker

from asr_core.hotwords import Hotword, HotwordIndex, HotwordList


def index_of(*phrases, distractors=()):
    return HotwordIndex(HotwordList([*map(Hotword, phrases), *map(Hotword, distractors)]))


def phrases(candidates):
    return [c.phrase for c in candidates]


@pytest.fixture(scope="module")
def distractors():
    english, chinese = Faker("en_US"), Faker("zh_CN")
    english.seed_instance(7)
    chinese.seed_instance(7)
    names = {english.name() for _ in range(3000)} | {chinese.name() for _ in range(2000)}
    names |= {english.company() for _ in range(300)} | {chinese.company() for _ in range(300)}
    return sorted(names)[:4990]


def test_homophone_retrieves_the_listed_spelling():
    [candidate] = index_of("张叁").retrieve("我找张三先生")
    assert candidate.phrase == "张叁"
    assert candidate.matched == "张三"
    assert candidate.score == 100


def test_misspelled_names_are_retrieved_by_sound():
    index = index_of("Peter Schoeffer", "Maintz", "Sweynheim", "Pannartz")
    text = "printed at Mainz by Peter Schoffer; Suéneheim and Panerks began printing"
    assert set(phrases(index.retrieve(text))) == {
        "Peter Schoeffer",
        "Maintz",
        "Sweynheim",
        "Pannartz",
    }


def test_case_does_not_matter():
    assert phrases(index_of("BIRKET FOSTER").retrieve("mr birket foster's landscapes")) == [
        "BIRKET FOSTER"
    ]


def test_code_switched_phrases():
    index = index_of("小米SU7", "iPhone 15 Pro")
    assert phrases(index.retrieve("我昨天买了小米 SU7")) == ["小米SU7"]
    assert phrases(index.retrieve("他用的是iphone 15 pro")) == ["iPhone 15 Pro"]


def test_alias_retrieves_the_canonical_phrase():
    index = HotwordIndex(HotwordList([Hotword("ZhangSan", aliases=("张叁",))]))
    [candidate] = index.retrieve("请转接张三")
    assert candidate.phrase == "ZhangSan"


def test_ranking_prefers_the_closer_match_and_weight_breaks_ties():
    index = index_of("Katherine Johnson", "Catherine Jonson", "Karen Johnston")
    ranked = phrases(index.retrieve("we spoke to katherine johnson yesterday"))
    assert ranked[0] == "Katherine Johnson"
    weighted = HotwordIndex(HotwordList([Hotword("万科"), Hotword("玩客", weight=20)]))
    assert phrases(weighted.retrieve("万科得出结论")) == ["玩客", "万科"]


def test_unrelated_text_retrieves_nothing(distractors):
    index = index_of("Peter Schoeffer", "左小蕾", distractors=distractors)
    found = phrases(index.retrieve("The weather is nice today, let us go for a walk."))
    assert "Peter Schoeffer" not in found and "左小蕾" not in found


def test_short_words_need_an_exact_match():
    index = index_of("Rye", "Tom")
    assert phrases(index.retrieve("I saw Tim by the river")) == []
    assert phrases(index.retrieve("I saw Tom by the river")) == ["Tom"]


def test_top_k_bounds_the_prompt(distractors):
    index = index_of(distractors=distractors)
    assert (
        len(index.retrieve("陈勇 徐华 尤坤 王芳 李娜 张伟 刘洋 陈静 杨帆 赵磊 黄敏 周杰", top_k=5))
        <= 5
    )


def test_terms_among_5000_phrases(distractors):
    index = index_of("Peter Schoeffer", "左小蕾", "杨澄宇", "凤凰网", distractors=distractors)
    assert len(index) == 4994
    assert "Peter Schoeffer" in phrases(index.retrieve("printed at Mainz by Peter Schoffer"))
    assert "左小蕾" in phrases(index.retrieve("在中国银河证券首席总裁顾问左小雷看来"))
    assert "杨澄宇" in phrases(index.retrieve("洋城与转移支付的方式有很多种"))
    assert "凤凰网" in phrases(index.retrieve("奉皇王推出奉皇资本论"))


def test_build_and_retrieval_latency_at_5000_phrases(distractors):
    """Reported, not asserted on wall-clock (bench/hotwords records the numbers)."""
    started = time.perf_counter()
    index = index_of(*distractors[:5000])
    build = time.perf_counter() - started
    started = time.perf_counter()
    index.retrieve("秋天总是那么富有诗意，树叶渐渐变红，街道旁的银杏树开始落叶。" * 3)
    retrieve = time.perf_counter() - started
    print(f"build {build * 1000:.0f} ms, retrieve {retrieve * 1000:.2f} ms")
    assert len(index) == len(distractors[:5000])


def test_a_weight_below_one_disfavours_a_phrase():
    """FunASR's `phrase weight` below 1: a near miss no longer counts, and an equal match
    ranks below the unweighted phrase (so a small top-K leaves it out)."""
    heard = "他说左小来进一步表示"
    assert phrases(index_of("左小蕾").retrieve(heard)) == ["左小蕾"]
    weak = HotwordIndex(HotwordList([Hotword("左小蕾", weight=0.5)]))
    assert weak.retrieve(heard) == []
    tied = HotwordIndex(HotwordList([Hotword("万科", weight=0.5), Hotword("玩客")]))
    assert phrases(tied.retrieve("万科得出结论", top_k=1)) == ["玩客"]


def test_a_listed_phrase_that_says_a_number_is_retrieved_from_its_digits(distractors):
    """The first pass writes numbers in digits; a tenant lists them as they are said."""
    index = index_of("一点五倍", "九零后", "私家车", distractors=distractors)
    [candidate] = index.retrieve("要走到1.5倍的可能性")
    assert (candidate.phrase, candidate.matched) == ("一点五倍", "1.5倍")
    assert phrases(index.retrieve("90后购房人口"))[0] == "九零后"
    assert phrases(index.retrieve("买了一辆4架车"))[0] == "私家车"
    assert "九零后" not in phrases(index.retrieve("about 90 days later"))
