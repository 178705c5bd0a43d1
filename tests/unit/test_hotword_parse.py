import pytest

from asr_core.hotwords import HotwordLimits, HotwordListError, parse_hotwords, read_hotwords
from asr_core.hotwords.parse import detect_format


def entries(text: str, fmt: str = "auto"):
    return [(h.phrase, h.weight, h.aliases) for h in parse_hotwords(text, fmt).entries]


def test_funaudio_tsv_with_aliases():
    text = "ZhangSan\t张叁\nCRISPR\t基因编辑\tgene editing\n# comment\n\nOzempic\n"
    assert entries(text) == [
        ("ZhangSan", 1.0, ("张叁",)),
        ("CRISPR", 1.0, ("基因编辑", "gene editing")),
        ("Ozempic", 1.0, ()),
    ]


def test_funasr_weighted_lines():
    assert entries("阿里巴巴 20\n通义实验室 30\nNew York City 2.5\n") == [
        ("阿里巴巴", 20.0, ()),
        ("通义实验室", 30.0, ()),
        ("New York City", 2.5, ()),
    ]


def test_funasr_json():
    assert entries('{"阿里巴巴": 20, "通义实验室": 30}') == [
        ("阿里巴巴", 20.0, ()),
        ("通义实验室", 30.0, ()),
    ]


def test_one_phrase_per_line_keeps_trailing_numbers_unless_all_lines_have_them():
    assert entries("iPhone 15\nGalaxy S24\nPixel\n") == [
        ("iPhone 15", 1.0, ()),
        ("Galaxy S24", 1.0, ()),
        ("Pixel", 1.0, ()),
    ]
    assert entries("iPhone 15\n", fmt="lines") == [("iPhone 15", 1.0, ())]


def test_format_detection():
    assert detect_format('{"a": 1}') == "json"
    assert detect_format("a\tb\n") == "tsv"
    assert detect_format("a 1\nb 2\n") == "weighted"
    assert detect_format("a\nb 2\n") == "lines"


def test_duplicates_keep_the_first():
    assert entries("Bible\nBible\nMaintz\n") == [("Bible", 1.0, ()), ("Maintz", 1.0, ())]


def test_language_follows_the_script():
    hotwords = parse_hotwords("左小蕾\nPeter Schoeffer\n小米SU7\n").entries
    assert [h.language for h in hotwords] == ["zh", "en", "zh"]


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("good\n" + "x" * 65 + "\n", "lines", "line 2: phrase is 65 characters, the limit is 64"),
        ("a 1\nb x\n", "weighted", "line 2: expected `phrase weight`"),
        ("a 1\nb 0\n", "weighted", "line 2: weight 0 is outside"),
        ('{\n  "a": 1,\n  "b": "lots"\n}', "json", "line 3: weight 'lots' is not a number"),
        ('{\n  "a": 1,\n  "b": true\n}', "json", "line 3: weight of 'b' is not a number"),
        ('{\n  "a": 1\n  "b": 2\n}', "json", "line 3: invalid JSON"),
        ('["a", "b"]', "json", "line 1: expected a JSON object"),
        ("ok\t\nbad\x07phrase\n", "tsv", "line 2: control character"),
        ("\tonly alias\n", "tsv", "line 1: empty phrase"),
    ],
)
def test_errors_name_the_line(text, fmt, message):
    with pytest.raises(HotwordListError) as error:
        parse_hotwords(text, fmt)
    assert message in error.value.reason


def test_phrase_count_limit_names_the_line():
    text = "\n".join(f"phrase {i}" for i in range(6)) + "\n"
    with pytest.raises(HotwordListError, match="line 6: more than 5 phrases"):
        parse_hotwords(text, "lines", HotwordLimits(max_phrases=5))


def test_limits_are_configurable():
    assert len(parse_hotwords("x" * 100, "lines", HotwordLimits(max_chars=100, top_k=5))) == 1


def test_a_phrase_too_long_for_its_share_of_the_prompt_names_the_line():
    with pytest.raises(HotwordListError, match="line 2: phrase takes about 25 prompt tokens"):
        parse_hotwords("ok\n惠派国际公司科技有限公司惠派国际\n", "lines")


def test_structured_entries_get_the_same_checks():
    from asr_core.hotwords import Hotword
    from asr_core.hotwords.parse import check_entries

    assert check_entries([Hotword("A"), Hotword("A"), Hotword("B")]).phrases == ["A", "B"]
    with pytest.raises(HotwordListError, match="entry 2: phrase is 70 characters"):
        check_entries([Hotword("ok"), Hotword("y" * 70)])


def test_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"ok\nfine\n\xff\xfe bad\n")
    with pytest.raises(HotwordListError, match="line 3: not UTF-8"):
        read_hotwords(path)


def test_missing_file(tmp_path):
    with pytest.raises(HotwordListError, match="cannot read"):
        read_hotwords(tmp_path / "none.txt")


@pytest.mark.parametrize("fmt", ["tsv", "weighted", "json", "lines"])
def test_export_round_trips(fmt):
    from asr_core.hotwords import render_hotwords

    source = parse_hotwords("阿里巴巴 20\nPeter Schoeffer 2.5\n")
    if fmt == "tsv":
        source = parse_hotwords("ZhangSan\t张叁\nCRISPR\t基因编辑\n")
    again = parse_hotwords(render_hotwords(source, fmt), fmt)
    assert again.phrases == source.phrases
    if fmt in ("weighted", "json"):
        assert [h.weight for h in again.entries] == [h.weight for h in source.entries]
    if fmt == "tsv":
        assert [h.aliases for h in again.entries] == [h.aliases for h in source.entries]
