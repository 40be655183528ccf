"""Word splitting that keeps each word's character span.

The same splitter runs at training and inference time, so a predicted span of
words maps back to exact character offsets in the original post. Rules:

* runs of letters form a word, split at camel-case boundaries
  (``HoustonFlood`` -> ``Houston`` ``Flood``; ``PRStrong`` -> ``PR`` ``Strong``),
  so locations inside hashtags are reachable;
* Arabic has no case: its hashtags join words with ``_``, which is a word of its own
  (``#سيول_الكويت`` -> ``#`` ``سيول`` ``_`` ``الكويت``); diacritics (harakat) and the
  tatweel stay inside their word; a run of letters also breaks where the script changes
  between Arabic and another script (``#Kuwaitالكويت`` -> ``#`` ``Kuwait`` ``الكويت``);
  clitics (``بالكويت``, "in Kuwait") stay attached, as IDRISI's Arabic gold marks them;
* runs of digits form a word (``7.8``, ``1,000`` and Arabic-Indic ``٢٠١٨`` / ``٧٫٨`` stay whole);
* a pair of regional-indicator symbols (a flag emoji) is one word;
* every other non-space character is a word of its own (``#``, ``-``, ``'``,
  ``@``), so ``#Houston``, ``Manitoba-Ontario`` and ``Texas's`` are reachable.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

from lmr.language import is_arabic_letter

VERSION = "lmr-words-2"


class Word(NamedTuple):
    """A word and its character span ``[start, end)`` in the original text."""

    text: str
    start: int
    end: int


def _is_letter(ch: str) -> bool:
    return ch.isalpha() or unicodedata.category(ch) in ("Mn", "Mc")


def _script_break(prev: str, cur: str) -> bool:
    """Arabic next to another script's letter (combining marks belong to the letter before them)."""
    if unicodedata.category(cur) in ("Mn", "Mc") or unicodedata.category(prev) in ("Mn", "Mc"):
        return False
    return is_arabic_letter(prev) != is_arabic_letter(cur)


def _is_flag(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def split_words(text: str) -> list[Word]:
    """Split ``text`` into words with their character spans."""
    words: list[Word] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        start = i
        if _is_letter(ch):
            i += 1
            while i < n and _is_letter(text[i]):
                prev, cur = text[i - 1], text[i]
                if cur.isupper() and prev.islower():
                    break  # fooBar -> foo | Bar
                if _script_break(prev, cur):
                    break  # Kuwaitالكويت -> Kuwait | الكويت
                if cur.isupper() and prev.isupper() and i + 1 < n and text[i + 1].islower() and i - start >= 1:
                    break  # PRStrong -> PR | Strong
                i += 1
        elif ch.isdigit():
            i += 1
            while i < n and (
                text[i].isdigit()
                or (text[i] in ".,:٫٬" and i + 1 < n and text[i + 1].isdigit() and text[i - 1].isdigit())
            ):
                i += 1
        elif _is_flag(ch) and i + 1 < n and _is_flag(text[i + 1]):
            i += 2
        else:
            i += 1
        words.append(Word(text[start:i], start, i))
    return words


def char_to_word_bounds(words: list[Word]) -> tuple[dict[int, int], dict[int, int]]:
    """Map character start/end offsets to word indices."""
    return ({w.start: k for k, w in enumerate(words)}, {w.end: k for k, w in enumerate(words)})
