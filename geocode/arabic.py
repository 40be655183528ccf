"""The queries tried for an Arabic mention, and the kind of place its first word names.

Arabic mentions differ from English ones in three ways that matter for lookup:

* clitics are written onto the name: ``بالكويت`` ("in Kuwait"), ``والرياض`` ("and Riyadh"),
  ``للقاهرة`` ("to Cairo", where ``لل`` stands for ``ل`` + ``ال``); IDRISI's gold keeps them inside
  the mention, so the lookup strips them;
* the definite article ``ال`` is part of many names and dropped in others (``الكويت`` / ``كويت``);
* the word saying what kind of place it is comes *first*: ``محافظة الجيزة`` (Giza governorate),
  ``مدينة صباح الأحمد`` (Sabah Al-Ahmad city), ``مستشفى الفروانية`` (Farwaniya hospital).

:func:`arabic_variants` yields the queries in order, each keyed like the gazetteer's names
(:func:`lmr.names.norm`, which writes Arabic in its matching form), with the same
:class:`~geocode.text.Variant` weights the English queries use.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lmr.names import norm


def _keys(words: str) -> frozenset[str]:
    return frozenset(norm(w) for w in words.split())


#: Leading words naming a division or settlement, with the kind they hint at.
TYPE_WORDS: dict[str, str] = {
    **dict.fromkeys(_keys("محافظة ولاية إمارة مقاطعة إقليم منطقة"), "admin1"),
    **dict.fromkeys(_keys("قضاء لواء مديرية ناحية مركز"), "admin2"),
    **dict.fromkeys(_keys("مدينة بلدة قرية حي ضاحية"), "city"),
    **dict.fromkeys(_keys("دولة جمهورية مملكة"), "country"),
}
#: Leading words naming a street, building or natural feature (the name after them is often a town's).
POI_WORDS = _keys(
    """شارع طريق جسر ميدان كورنيش دوار الدائري مستشفى مستوصف جامعة معهد مدرسة كلية مطار ميناء مسجد جامع كنيسة
    مجمع سوق مقبرة فندق مبنى برج ملعب استاد نادي محطة وزارة سجن مصنع حديقة مخيم مول مركز بنك نهر وادي بحيرة جبل
    سد شاطئ بحر خليج جزيرة"""
)
#: Leading words that place the name in part of a region: ``شمال #حفر_الباطن`` (north of Hafr Al-Batin).
DIRECTION_WORDS = _keys("شمال جنوب شرق غرب وسط شمالي جنوبي شرقي غربي أطراف ضواحي")
#: Words of running text that also name a division (``الداخلية``, "interior", names Oman's Ad Dakhiliyah;
#: ``العاصمة``, "the capital"; directions): alone, they name no place of a post outside its mentions.
COMMON_WORDS = _keys(
    """الداخلية العاصمة عاصمة الجديدة الشمال الجنوب الشرق الغرب الوسط الشمالية الجنوبية الشرقية الغربية الوسطى
    البيض"""
)
_ARTICLE = "ال"
#: Ordinals, which name a division only with its type word (``الإقليم الخامس``, the Fifth District).
_ORDINALS = _keys(
    """الاول الاولى الثاني الثانية الثالث الثالثة الرابع الرابعة الخامس الخامسة السادس السادسة السابع السابعة
    الثامن الثامنة التاسع التاسعة العاشر العاشرة"""
)
#: Division words also read as type words with the article (``المنطقة الشرقية``, the Eastern Region); not
#: ``مدينة``, whose article form is Medina's name.
_ARTICLE_TYPE_WORDS = _keys("منطقة محافظة ولاية إمارة مقاطعة إقليم")
_CLITICS = "وفبلك"  # and, so, in/with, to/for, like


def _without_clitics(word: str) -> list[tuple[str, float]]:
    """``بالكويت`` -> ``الكويت``; ``للقاهرة`` -> ``القاهرة``; ``بصنعاء`` -> ``صنعاء`` (weaker: ``ب`` may be the name's).

    A clitic is only split off a word of five letters or more unless the article follows it (``كويت`` stays).
    """
    out: list[tuple[str, float]] = []
    rest = word
    for _ in range(2):  # at most two: وبالكويت
        if len(rest) < 4 or rest[0] not in _CLITICS:
            break
        if rest.startswith("لل") and len(rest) > 4:
            out.append((_ARTICLE + rest[2:], 0.98))
            break
        if not rest[1:].startswith(_ARTICLE) and len(rest) < 5:
            break  # كويت is not ك + ويت
        rest = rest[1:]
        out.append((rest, 0.98 if rest.startswith(_ARTICLE) else 0.9))
    return out


def _with_or_without_article(key: str) -> str:
    return key[len(_ARTICLE) :] if key.startswith(_ARTICLE) else _ARTICLE + key


def _type_of(word: str) -> str | None:
    """The kind a type word names, division words also with the article: ``منطقه``, ``المنطقه`` -> ``admin1``."""
    if word in TYPE_WORDS:
        return TYPE_WORDS[word]
    if word.startswith(_ARTICLE) and word[len(_ARTICLE) :] in _ARTICLE_TYPE_WORDS:
        return TYPE_WORDS[word[len(_ARTICLE) :]]
    return None


def without_type_word(name: str) -> str | None:
    """An Arabic division name without its leading type word: ``المنطقة الشرقية`` -> ``الشرقيه`` (matching form);
    None when it has none, or when what follows is a type word or a lone ordinal (``الإقليم الخامس``)."""
    words = norm(name).split()
    rest = words[1:]
    if (
        rest
        and _type_of(words[0]) is not None
        and not is_generic(rest[0])
        and not (len(rest) == 1 and rest[0] in _ORDINALS)
    ):
        return " ".join(rest)
    return None


def _core(words: list[str]) -> tuple[list[str], str | None, bool]:
    """The name once its leading type or direction word is gone, that word's kind hint, and whether it named a POI."""
    if len(words) > 1 and _type_of(words[0]) is not None:
        return words[1:], _type_of(words[0]), False
    if len(words) > 1 and words[0] in DIRECTION_WORDS:
        return words[1:], None, False
    if len(words) > 1 and words[0] in POI_WORDS:
        return words[1:], "poi", True
    return words, None, False


def is_generic(word: str) -> bool:
    """A word that names a kind of place (``مدينة``, ``شارع``, ``شمال``), not a place."""
    return word in TYPE_WORDS or word in POI_WORDS or word in DIRECTION_WORDS


def shape_hint(text: str) -> str | None:
    """The kind an Arabic mention's leading word hints at: ``محافظة`` -> ``admin1``, ``شارع`` -> ``poi``."""
    words = norm(text).split()
    if len(words) < 2:
        return None
    for w in (words[0], *(k for k, _ in _without_clitics(words[0]))):
        if _type_of(w) is not None:
            return _type_of(w)
        if w in POI_WORDS:
            return "poi"
    return None


def arabic_variants(text: str, add: Callable[..., None], max_ngram: int = 4) -> None:
    """Pass each query for an Arabic mention to ``add(key, weight, hint, partial=...)``, best first."""
    words = norm(text).split()
    if not words:
        return
    firsts = [(words[0], 1.0), *_without_clitics(words[0])]
    cores: list[list[str]] = []
    for first, w0 in firsts:
        whole = [first, *words[1:]]
        add(" ".join(whole), w0)
        core, hint, poi = _core(whole)
        stripped = core is not whole
        weight = w0 * (0.93 if stripped else 1.0)
        if stripped and not poi:
            add(" ".join(core), weight * (0.92 if whole[0] in DIRECTION_WORDS else 1.0), hint)
        if len(core) > 1:
            add("".join(core), weight * 0.9, hint)
        bare = len(firsts) == 1 or core[0].startswith(_ARTICLE)  # no clitic left to mistake for the name's
        if len(core) == 1 and bare and not poi and not is_generic(core[0]):
            add(_with_or_without_article(core[0]), weight * 0.9, hint)
        cores.append(core if stripped else core[:-1])
    # The leading words of a longer name (``منطقة الاحمدي التعليمية``, ``مستشفى الفروانية``): partial matches,
    # from the name without its clitics.
    for core in cores[-1:]:
        for n in range(min(max_ngram, len(core)), 0, -1):
            gram = core[:n]
            if all(is_generic(t) or t.isdigit() for t in gram) or (n == 1 and len(gram[0]) < 3):
                continue
            add(" ".join(gram), 0.55 + 0.05 * n, None, partial=True)


_WORD = re.compile(r"[\u0621-\u065f\u066e-\u06d3\u06fa-\u06ff]+")
_JOINER = re.compile(r"[ \t#_\u200c-\u200f]*")  # what may lie between two words of one phrase


def word_runs(text: str) -> list[list[tuple[int, int]]]:
    """The spans of a text's Arabic words, in runs that no punctuation, line break or other script interrupts
    (a hashtag's ``_`` joins words, as a space does): the stretches a place's name may span."""
    runs: list[list[tuple[int, int]]] = []
    last = -1
    for m in _WORD.finditer(text):
        if not runs or _JOINER.fullmatch(text, last, m.start()) is None:
            runs.append([])
        runs[-1].append(m.span())
        last = m.end()
    return runs


def phrase_keys(words: list[str]) -> list[tuple[str, float]]:
    """The keys a run of words of a post is looked up by, with their weights: as written, then without the first
    word's clitics (``بمصر`` -> ``مصر``); a lone word only while it is no generic, common or short word."""
    keys = [norm(w) for w in words]
    forms = [(keys[0], 1.0), *_without_clitics(keys[0])]
    if len(keys) == 1:
        return [(k, w) for k, w in forms if len(k) >= 3 and not is_generic(k) and k not in COMMON_WORDS]
    return [(" ".join([first, *keys[1:]]), w) for first, w in forms]
