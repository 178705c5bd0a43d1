"""Redaction of card, phone and ID numbers, written as digits or spoken as words."""

import pytest

from asr_core.transcript import Word
from worker.redaction import Redactor, chinese_id, classify, luhn


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My card is 4111 1111 1111 1111, thanks", "My card is [CARD], thanks"),
        ("card four one one one one one one one one one one one one one one one.", "card [CARD]."),
        ("call me at (555) 123-4567 or +1 555 123 4567", "call me at [PHONE] or [PHONE]"),
        ("my number is 555-1234", "my number is [PHONE]"),
        ("我的手机号是一三八一二三四五六七八", "我的手机号是[PHONE]"),
        ("SSN 123-45-6789 please", "SSN [ID] please"),
        ("身份证号11010519491231002X", "身份证号[ID]"),
    ],
)
def test_numbers_are_masked(text, expected):
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "meeting on 2024-10-12 at 3 pm, costs 1,000 dollars",
        "one of two things, then three more",
        "card 4111 1111 1111 1112",  # fails the Luhn check
        "一个下午",
    ],
)
def test_other_numbers_stay(text):
    assert Redactor().text(text) == text


def test_only_the_chosen_kinds_are_masked():
    text = "call 617 555 0199 42, card 4111111111111111"
    assert Redactor(("card",)).text(text) == "call 617 555 0199 42, card [CARD]"


def test_checks():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert chinese_id("11010519491231002X") and not chinese_id("110105194912310021")
    assert classify("4 1 1 1") is None


def test_words_of_a_number_become_one_tagged_word():
    words = [
        Word(0.0, 0.4, " call", 0.9),
        Word(0.4, 0.8, " 555", 0.9),
        Word(0.8, 1.2, " 123", 0.9),
        Word(1.2, 1.6, " 4567", 0.9),
        Word(1.6, 2.0, " now", 0.9),
    ]
    masked = Redactor().words(words)
    assert [(w.word, w.start, w.end) for w in masked] == [
        (" call", 0.0, 0.4),
        (" [PHONE]", 0.4, 1.6),
        (" now", 1.6, 2.0),
    ]
