from lmr.words import char_to_word_bounds, split_words


def texts(s: str) -> list[str]:
    return [w.text for w in split_words(s)]


def test_spans_index_original_text() -> None:
    s = "  Flooding in   Houston,\tTX!! "
    for w in split_words(s):
        assert s[w.start : w.end] == w.text


def test_hashtags_and_camel_case_are_reachable() -> None:
    assert texts("#HoustonFlood") == ["#", "Houston", "Flood"]
    assert texts("#PRStrong") == ["#", "PR", "Strong"]
    assert texts("#houston") == ["#", "houston"]


def test_hyphen_possessive_and_abbreviations() -> None:
    assert texts("Manitoba-Ontario border") == ["Manitoba", "-", "Ontario", "border"]
    assert texts("Ecuador’s coast, NYC's") == ["Ecuador", "’", "s", "coast", ",", "NYC", "'", "s"]
    assert texts("Tx & NYC") == ["Tx", "&", "NYC"]


def test_unicode_letters_numbers_and_flags() -> None:
    assert texts("Québec São Paulo") == ["Québec", "São", "Paulo"]
    assert texts("M7.8 quake, 1,000 dead") == ["M", "7.8", "quake", ",", "1,000", "dead"]
    assert texts("❤🇺🇸🇪🇨") == ["❤", "🇺🇸", "🇪🇨"]


def test_empty_and_whitespace() -> None:
    assert split_words("") == []
    assert split_words(" \n\t ") == []


def test_char_to_word_bounds() -> None:
    words = split_words("in San Marcos River")
    starts, ends = char_to_word_bounds(words)
    assert starts[3] == 1 and ends[19] == 3
