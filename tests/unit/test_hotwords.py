import pytest

from asr_core.hotwords import HotwordListError, parse_phrases, read_phrases


def test_phrases_skip_blanks_comments_and_duplicates():
    text = "# products\nCRISPR\tgene editing\n\nZhangSan\t张叁\nCRISPR\n  Ozempic  \n"
    assert parse_phrases(text) == ["CRISPR", "ZhangSan", "Ozempic"]


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"ok\nfine\n\xff\xfe bad\n")
    with pytest.raises(HotwordListError, match="line 3: not UTF-8"):
        read_phrases(path)


def test_missing_file(tmp_path):
    with pytest.raises(HotwordListError, match="cannot read"):
        read_phrases(tmp_path / "none.txt")
