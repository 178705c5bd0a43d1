"""Settings come from CALLSCRIBE_* variables written the way the README shows them."""

import pytest

from callscribe.config import Settings


@pytest.mark.parametrize(
    ("value", "languages"),
    [("en,zh", ("en", "zh")), ("zh", ("zh",)), (" en , zh ", ("en", "zh"))],
)
def test_languages_are_a_comma_separated_list(monkeypatch, value, languages):
    monkeypatch.setenv("CALLSCRIBE_LANGUAGES", value)
    assert Settings(_env_file=None).languages == languages
