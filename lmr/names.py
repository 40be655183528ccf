"""The key of a place name, shared by the gazetteer (:mod:`geocode`) and the model's name lexicon.

One normaliser runs on gazetteer names at build time and on mentions at query
time, so both sides meet on the same key:

* accents are removed, case is folded, periods and apostrophes vanish
  (``N.C.`` -> ``nc``, ``Hawke's`` -> ``hawkes``), other punctuation is a space;
* ``saint``/``st``, ``mount``/``mt``, ``fort``/``ft`` and ``and``/``&`` meet on one form;
* a leading ``the`` is dropped;
* Arabic is written in its matching form (:func:`lmr.language.match_form`: no tatweel or
  diacritics, one alef, ``ى`` -> ``ي``, ``ة`` -> ``ه``).

It lives in :mod:`lmr` because both :mod:`geocode` and the recogniser's span prior
(:mod:`lmr.model.span_prior`) key names with it.
"""

from __future__ import annotations

import re
import unicodedata

from lmr.language import match_form

_CANON = {
    "saint": "st",
    "ste": "st",
    "mount": "mt",
    "mont": "mt",
    "fort": "ft",
    "and": "&",
    "port": "pt",
}
_APOSTROPHES = "'’`´ʻʼ"
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")


def fold(text: str) -> str:
    """Remove accents (``Kaikōura`` -> ``Kaikoura``) without changing case."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """Normalised tokens of ``text``."""
    s = fold(match_form(text)).casefold()
    s = re.sub(r"(?<=\w)\.(?=\w)", "", s)  # N.C. -> NC, U.S. -> US
    s = re.sub(f"[{_APOSTROPHES}]s\\b", "", s)  # possessive: Chico's -> chico
    for ch in _APOSTROPHES:
        s = s.replace(ch, "")
    s = s.replace(".", " ").replace("&", " & ")
    out = [_CANON.get(t, t) for t in re.split(r"[^\w&]+|_", s) if t]
    if len(out) > 1 and out[0] == "the":
        out = out[1:]
    return out


def norm(text: str) -> str:
    """The lookup key of a name: ``"St. Louis"`` -> ``"st louis"``."""
    return " ".join(tokens(text))


def split_camel(text: str) -> str:
    """``#HoustonFlood`` -> ``Houston Flood``; ``PRStrong`` -> ``PR Strong``."""
    return _CAMEL.sub(" ", text.lstrip("#@"))


def is_upper_code(text: str) -> bool:
    """Whether the mention is written like a code (``PR``, ``TX``, ``N.C.``)."""
    letters = [ch for ch in text if ch.isalpha()]
    return 1 < len(letters) <= 4 and all(ch.isupper() for ch in letters)
