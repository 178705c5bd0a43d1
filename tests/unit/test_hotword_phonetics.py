from asr_core.hotwords.phonetics import read_number, to_units


def keys(text: str, kind: str = "exact") -> list[str]:
    return [getattr(u, kind) for u in to_units(text)]


def test_homophones_share_pinyin():
    assert keys("张叁") == keys("张三") == ["zhang", "san"]


def test_polyphones_follow_the_word():
    assert keys("银行行长") == ["yin", "hang", "hang", "zhang"]


def test_fuzzy_pinyin_merges_common_confusions():
    assert keys("张", "sound") == keys("脏", "sound") == ["zan"]
    assert keys("南", "sound") == keys("兰", "sound")


def test_latin_words_fold_case_accents_and_possessives():
    assert keys("Suéneheim's PANNARTZ") == ["sueneheim", "pannartz"]


def test_sound_skeleton_hears_spelling_variants():
    for a, b in [
        ("Schoffer", "Schoeffer"),
        ("Lubach", "Lubeck"),
        ("Mainz", "Maintz"),
        ("Phillip", "Philip"),
        ("Smyth", "Smith"),
    ]:
        assert keys(a, "sound") == keys(b, "sound"), (a, b)
    assert keys("Paris", "sound") != keys("Peter", "sound")


def test_code_switched_text_keeps_both_scripts_and_spans():
    units = to_units("打开iPhone 15的蓝牙")
    assert [u.exact for u in units] == ["da", "kai", "iphone", "15", "de", "lan", "ya"]
    assert [u.is_cjk for u in units] == [True, True, False, False, True, True, True]
    assert [(u.start, u.end) for u in units][2:4] == [(2, 8), (9, 11)]


def test_numbers_in_digits_read_as_mandarin_says_them():
    for number, spoken in [
        ("5", "五"),
        ("12", "十二"),
        ("105", "一百零五"),
        ("144", "一百四十四"),
        ("10500", "一万零五百"),
        ("1200000", "一百二十万"),
        ("1.5", "一点五"),
    ]:
        assert read_number(number, "number") == spoken, number
    assert read_number("90", "digits") == "九零"
    assert read_number("2015", "digits") == "二零一五"
    units = to_units("要1.5倍", numbers="number")
    assert [u.exact for u in units] == ["yao", "yi", "dian", "wu", "bei"]
    assert [(u.start, u.end) for u in units][1:4] == [(1, 4)] * 3  # the digits' own span
    assert [u.exact for u in to_units("要1.5倍")] == ["yao", "1", "5", "bei"]
