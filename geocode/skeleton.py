"""Consonant skeletons: where an Arabic mention meets a place GeoNames names only in Latin letters.

GeoNames romanizes Arabic place names (``Al Khafjī``, ``As Sulayyil``, ``Ḩafar al Bāţin``) and gives many
of them no Arabic spelling, so ``الخفجي`` finds no name. Both spellings keep the same consonants in the
same order; :func:`arabic_skeleton` and :func:`latin_skeleton` write each as that sequence, in classes
wide enough for the usual romanizations:

* the article (``ال``; ``al``, ``el`` and the assimilated ``as``, ``ash``, ``ad``, ``ar`` ... before
  another word) is ``l``;
* long vowels and weak letters (``ا و ي ى ء ع``, a final ``ة``/``ه``; ``a e i o u w y``, a final ``-ah``)
  are dropped;
* letters romanized alike share a class: ``س ص`` s, ``ت ط ث`` t, ``د ض ذ`` d, ``ز ظ`` z, ``ح ه`` h,
  ``ق ك`` k, ``ج غ`` j (Egyptian ``g`` for ``ج``), ``خ`` x (``kh``), ``ش`` c (``sh``);
* a doubled letter is written once (``yy`` in ``Sulayyil``, ``ll`` in ``Hawalli``).

A skeleton is a weak key: the gazetteer indexes it only for places in Arabic-speaking countries
(:data:`ARABIC_COUNTRIES`) and the offline geocoder asks for it only when no name matched
(:meth:`geocode.gazetteer.Gazetteer.fuzzy`), at the fuzzy match quality.
"""

from __future__ import annotations

import re

from lmr.names import norm

#: Countries whose places GeoNames names in romanized Arabic (the Arab League's members).
ARABIC_COUNTRIES = frozenset(
    (
        "AE", "BH", "DJ", "DZ", "EG", "EH", "IQ", "JO", "KM", "KW", "LB", "LY",
        "MA", "MR", "OM", "PS", "QA", "SA", "SD", "SO", "SY", "TN", "YE",
    )
)  # fmt: skip
#: The fewest consonants a skeleton keeps, the article's ``l`` included (three name too many places:
#: ``المنيل`` without its article would be ``Immanu'el``, ``درعون`` ``Darnah``).
MIN_CONSONANTS = 4
PREFIX = "~"  # keeps skeleton keys apart from the ASCII one-typo keys sharing their table

_ARABIC_CLASS = str.maketrans(
    {
        "ب": "b", "ت": "t", "ث": "t", "ج": "j", "ح": "h", "خ": "x", "د": "d", "ذ": "d", "ر": "r",
        "ز": "z", "س": "s", "ش": "c", "ص": "s", "ض": "d", "ط": "t", "ظ": "z", "غ": "j", "ف": "f",
        "ق": "k", "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "h",
        "ا": None, "و": None, "ي": None, "ى": None, "ء": None, "ئ": None, "ؤ": None, "ع": None,
    }
)  # fmt: skip
_LATIN_DIGRAPHS = (("kh", "x"), ("gh", "j"), ("sh", "c"), ("th", "t"), ("dh", "d"))
_LATIN_CLASS = str.maketrans({"q": "k", "g": "j", "c": "k", "p": "b", "v": "f", **dict.fromkeys("aeiouwy", None)})
_LATIN_ARTICLES = frozenset(
    ["al", "el", "as", "ash", "es", "at", "ath", "et", "ad", "adh", "ed", "ar", "er", "az", "ez", "an"]
)
_DOUBLE = re.compile(r"(.)\1+")


def _finish(consonants: str) -> str | None:
    letters = _DOUBLE.sub(r"\1", consonants)
    return PREFIX + letters if len(letters) >= MIN_CONSONANTS and letters.isascii() and letters.isalpha() else None


def arabic_skeleton(text: str) -> str | None:
    """``الخفجي`` -> ``~lxfj``; None when fewer than :data:`MIN_CONSONANTS` consonants remain."""
    out = []
    for word in norm(text).split():
        word = _DOUBLE.sub(r"\1", word)
        if word.startswith("ال") and len(word) > 3:
            out.append("l")
            word = word[2:]
        if word.endswith("ه"):
            word = word[:-1]  # teh marbuta, written as heh in the matching form
        out.append(word.translate(_ARABIC_CLASS))
    return _finish("".join(out))


def latin_skeleton(name: str) -> str | None:
    """``Al Khafjī`` -> ``~lxfj``, ``As Sulayyil`` -> ``~lsl``; None when too short or not in Latin letters."""
    words = re.sub(r"[^a-z ]", " ", norm(name)).split()
    out = []
    for i, word in enumerate(words):
        if word in _LATIN_ARTICLES and i + 1 < len(words):
            out.append("l")
            continue
        word = _DOUBLE.sub(r"\1", word)
        if len(word) > 3 and word[-1] == "h" and word[-2] in "aei":
            word = word[:-1]  # a teh marbuta romanized -ah, -eh: Nu‘ayrīyah
        for pair, cls in _LATIN_DIGRAPHS:
            word = word.replace(pair, cls)
        out.append(word.translate(_LATIN_CLASS))
    return _finish("".join(out))
