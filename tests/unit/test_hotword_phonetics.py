from asr_core.hotwords.phonetics import to_units


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
