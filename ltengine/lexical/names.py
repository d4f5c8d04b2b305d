"""Normalising names for lexical comparison: romanise, casefold, strip accents, punctuation and legal forms.

    >>> normalize_name("ООО «Газпром»", legal_forms=True)
    'gazprom'
    >>> normalize_name("Nestlé S.A.", legal_forms=True)
    'nestle'
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from typing import Any

from ltengine.lexical.cleaning import remove_invisible
from ltengine.lexical.scripts import char_script

#: Characters deleted without leaving a space ("S.A." -> "sa", "O'Neil" -> "oneil", בע"מ -> בעמ).
_JOINERS = dict.fromkeys(map(ord, ".'’`\"״׳"), None)
#: Scripts written without spaces between words: their legal forms are also stripped as affixes.
_UNSPACED = frozenset({"Han", "Kana", "Thai", "Hangul"})


class _CharTable(dict):  # type: ignore[type-arg]
    """A ``str.translate`` table that decides each code point on first sight (``rule(char)``: its replacement, or
    None to delete it) and remembers it: the per-character loop then runs in C."""

    def __init__(self, rule: Any) -> None:
        super().__init__()
        self.rule = rule

    def __missing__(self, code: int) -> str | None:
        value = self[code] = self.rule(chr(code))
        return value


#: Punctuation, symbols, spaces and controls separate words -> one space (combining marks do not: Devanagari vowels).
_SEPARATORS = _CharTable(lambda ch: " " if unicodedata.category(ch)[0] in "PSZC" else ch)
#: Combining marks deleted (accents of decomposed Latin letters).
_COMBINING = _CharTable(lambda ch: None if unicodedata.combining(ch) else ch)


def fold(text: str, strip_accents: bool = True) -> str:
    """Remove invisible and invalid code points (:func:`ltengine.engine.text.remove_invisible`), NFKC,
    casefold, delete ``.`` and quote marks, other punctuation and symbols -> one space;
    ``strip_accents`` also drops combining marks (only for Latin text: in Devanagari, Thai or kana
    they are vowels and voicing, so romanise first)."""
    text = unicodedata.normalize("NFKC", remove_invisible(str(text))).casefold().translate(_JOINERS)
    if strip_accents:
        text = unicodedata.normalize("NFC", unicodedata.normalize("NFKD", text).translate(_COMBINING))
    return " ".join(text.translate(_SEPARATORS).split())


@functools.lru_cache(maxsize=65536)
def _latin_base(ch: str) -> bool:
    return char_script(ch) == "Latin"


def raw_key(text: str) -> str:
    """The lexical key of a text in its own script (the char-ngram retriever's ``raw`` analyzer): folded (NFKC,
    casefold, punctuation -> space) without romanising; combining marks are dropped only after Latin letters
    (``Café`` -> ``cafe``; kana voicing and Indic vowels stay)."""
    text = fold(text, strip_accents=False)
    if text.isascii():
        return text
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", text):
        if unicodedata.combining(ch) and out and _latin_base(out[-1]):
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


@functools.lru_cache(maxsize=1)
def _forms() -> tuple[frozenset[str], int, tuple[str, ...]]:
    """Folded legal forms, their longest word count, and the affixes of unspaced scripts (longest first)."""
    from ltengine.lexical.legal_forms import CURATED, ISO_20275

    raw = ISO_20275 | CURATED
    forms = frozenset(f for f in (*(fold(x) for x in raw), *(fold(x, strip_accents=False) for x in raw)) if f)
    affixes = sorted(
        (f for f in forms if len(f) >= 2 and " " not in f and all(char_script(c) in _UNSPACED for c in f)),
        key=len, reverse=True,
    )
    return forms, max(len(f.split()) for f in forms), tuple(affixes)


def strip_legal_forms(folded: str) -> str:
    """Remove legal forms from the start and end of a folded name, repeatedly; never empty it.

    Whole words match the lists of :mod:`ltengine.lexical.legal_forms`; forms in scripts written without
    spaces (株式会社, 有限公司, 주식회사, จำกัด) also match as prefixes or suffixes.
    """
    forms, longest, affixes = _forms()
    tokens = folded.split()
    changed = True
    while changed and len(tokens) > 1:
        changed = False
        for n in range(min(longest, len(tokens) - 1), 0, -1):
            if " ".join(tokens[-n:]) in forms:
                tokens, changed = tokens[:-n], True
                break
            if " ".join(tokens[:n]) in forms:
                tokens, changed = tokens[n:], True
                break
    text = " ".join(tokens)
    changed = True
    while changed:
        changed = False
        for affix in affixes:
            if len(text) > len(affix) and text.endswith(affix):
                text, changed = text[: -len(affix)].strip(), True
            elif len(text) > len(affix) and text.startswith(affix):
                text, changed = text[len(affix) :].strip(), True
    return text


def normalize_names(texts: Sequence[str], *, legal_forms: bool = False, romanize: bool = True,
                    han: str = "auto", use_pypinyin: bool = False, use_pykakasi: bool = True) -> list[str]:
    """Lexical keys of ``texts``: folded, legal forms stripped (optional, before and after romanising),
    romanised to Latin (optional), folded again.  Empty input gives ``""``."""
    folded = [fold(t, strip_accents=not romanize) for t in texts]
    if legal_forms:
        folded = [strip_legal_forms(t) for t in folded]
    if romanize:
        from ltengine.lexical.transliterate import romanize as to_latin

        folded = [fold(t) for t in to_latin(folded, han=han, use_pypinyin=use_pypinyin,  # type: ignore[arg-type]
                                             use_pykakasi=use_pykakasi)]
        if legal_forms:
            folded = [strip_legal_forms(t) for t in folded]
    return folded


def normalize_name(text: str, *, legal_forms: bool = False, romanize: bool = True) -> str:
    """One name's lexical key (see :func:`normalize_names`)."""
    return normalize_names([text], legal_forms=legal_forms, romanize=romanize)[0]
