"""The language of a post by its script, and the form Arabic text is matched in.

:func:`script_of` is the cheap rule the worker stamps on every event: count the letters of each script
(links and @handles left out) and take the larger of Arabic and Latin; a post with more letters of other
scripts than of both is ``other``, and one without letters is ``none``. IDRISI's two languages are written
in two scripts, so the script is the language for the streams lmr serves.

:func:`match_form` is for matching only (gazetteer keys, name lexicons): the event keeps the post's
original text and offsets. It removes the tatweel and the diacritics (harakat, Quranic marks),
writes every alef with hamza or madda (``أ إ آ ٱ``) as a bare alef, the alef maqsura ``ى`` as yeh
``ي`` and the teh marbuta ``ة`` as heh ``ه``, and the Persian/Urdu letter forms GeoNames spellings
carry (``ی ک ہ``) as their Arabic ones. Text in other scripts passes through unchanged.
"""

from __future__ import annotations

import re
from typing import Literal

Script = Literal["arabic", "latin", "other", "none"]
SCRIPTS: tuple[Script, ...] = ("arabic", "latin", "other", "none")

LINKS = re.compile(r"https?://\S+|www\.\S+|@\w+")  # links and @handles are Latin whatever the post's language
_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u0640]")
_LETTERS = str.maketrans(
    {
        "\u0623": "\u0627",  # أ -> ا
        "\u0625": "\u0627",  # إ -> ا
        "\u0622": "\u0627",  # آ -> ا
        "\u0671": "\u0627",  # ٱ -> ا
        "\u0649": "\u064a",  # ى -> ي
        "\u0629": "\u0647",  # ة -> ه
        "\u06cc": "\u064a",  # ی (Persian yeh) -> ي
        "\u06a9": "\u0643",  # ک (keheh) -> ك
        "\u06c1": "\u0647",  # ہ (heh goal) -> ه
    }
)


def is_arabic_letter(ch: str) -> bool:
    """Whether ``ch`` is a letter of the Arabic script (its blocks and presentation forms)."""
    return ch.isalpha() and (
        "\u0600" <= ch <= "\u06ff"
        or "\u0750" <= ch <= "\u077f"
        or "\u08a0" <= ch <= "\u08ff"
        or "\ufb50" <= ch <= "\ufdff"
        or "\ufe70" <= ch <= "\ufeff"
    )


def match_form(text: str) -> str:
    """``"الكويـــت"``, ``"اَلْكُوَيْت"`` -> ``"الكويت"``; ``"أبوظبي"`` -> ``"ابوظبي"`` (see the module docstring)."""
    if not any("\u0600" <= ch <= "\u06ff" for ch in text):
        return text
    return _DIACRITICS.sub("", text).translate(_LETTERS)


def script_of(text: str) -> Script:
    """The script most of the post's letters are written in: ``arabic``, ``latin``, ``other`` or ``none``."""
    arabic = latin = other = 0
    for ch in LINKS.sub(" ", text):
        if not ch.isalpha():
            continue
        if is_arabic_letter(ch):
            arabic += 1
        elif ch < "\u0250" or "\u1e00" <= ch <= "\u1eff":
            latin += 1
        else:
            other += 1
    if not arabic and not latin and not other:
        return "none"
    if other > arabic + latin:
        return "other"
    return "arabic" if arabic >= latin else "latin"


#: The language a remote geocoder is asked to answer in, per script: only Arabic is asked for (an English
#: mention's request stays as it was, in the service's default language).
LANGUAGE_OF_SCRIPT: dict[Script, str] = {"arabic": "ar"}


def language_of(text: str) -> str | None:
    """The ISO 639-1 code to request answers in for ``text`` (``ar`` for Arabic), or ``None`` for the default."""
    return LANGUAGE_OF_SCRIPT.get(script_of(text))
