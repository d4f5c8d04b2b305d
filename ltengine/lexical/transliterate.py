"""Romanisation: any script to Latin letters, with better romanisers for Chinese and Japanese.

- Everything goes through ``anyascii`` (a general romaniser covering all of Unicode: Cyrillic,
  Greek, Arabic, Hebrew, Devanagari, Thai, Hangul in Revised Romanisation, ...).
- Japanese (texts with kana, or Han texts in a batch where kana texts are common) goes first through
  ``pykakasi`` (Hepburn), with long vowels shortened ("toukyou" -> "tokyo") as English spellings do.
- Chinese (Han texts without kana) is read by ``anyascii`` as Mandarin pinyin; ``pypinyin``
  (``use_pypinyin=True``) is an option but is off by default: it gained nothing measurable over
  anyascii's pinyin on the evaluation sets (see ``evals/hybrid_scripts.py``, table "romanisers").
  A Han-only text read as Japanese whose characters pykakasi cannot all read (银, 沪 ...) is read
  as Chinese instead.

Whether each of these helps is measured in ``evals/hybrid_scripts.py`` (table "romanisers"):
pykakasi gained 2-5 points of lexical top-1 on Japanese, and is on by default.  For Korean,
anyascii's Revised Romanisation is used as is: ``korean-romanizer`` (RR with sound changes,
광역시 -> gwangyeoksi) gained 3.6-4.5 points of lexical top-1 on the Korean sets (cities,
regions, territories) but only -0.3..+1.2 in hybrid mode, and its GPLv3 licence does not suit an
Apache-2.0 core; ``hangul-romanize`` gives anyascii's spelling.  pykakasi and pypinyin are imported only when a text needs them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, Literal

from ltengine.lexical.scripts import script_counts

HanMode = Literal["auto", "chinese", "japanese"]
#: Share of kana texts among the Han/kana texts of a batch from which Han-only texts are read as Japanese.
JAPANESE_SHARE = 0.2


@functools.lru_cache(maxsize=1)
def _kakasi() -> Any:
    import pykakasi

    return pykakasi.kakasi()


def japanese(text: str, long_vowels: bool = False) -> str:
    """Hepburn romaji of ``text`` (pykakasi), words joined by spaces; long vowels shortened unless kept."""
    words = [item["hepburn"] or item["orig"] for item in _kakasi().convert(text)]
    out = " ".join(w for w in words if w.strip())
    return out if long_vowels else _shorten(out)


def _shorten(romaji: str) -> str:
    return re.sub(r"ou|uu|oo|aa|ii|ee", lambda m: m.group(0)[0], romaji)


def chinese(text: str) -> str:
    """Toneless pinyin of ``text`` (pypinyin); the syllables of a run of Han characters are joined."""
    from pypinyin import Style, lazy_pinyin

    out: list[str] = []
    for piece in lazy_pinyin(text, style=Style.NORMAL, errors=lambda chars: [chars]):
        if out and piece.isascii() and piece.isalpha() and out[-1].isascii() and out[-1][-1:].isalpha():
            out[-1] += piece  # join syllables: 北京 -> beijing
        else:
            out.append(piece)
    return "".join(out)


def romanize(
    texts: Sequence[str], *, han: HanMode = "auto", use_pypinyin: bool = False, use_pykakasi: bool = True
) -> list[str]:
    """Latin-letter versions of ``texts`` (same order; Latin text passes through unchanged but for accents).

    ``han`` says how Han-only texts are read: ``"chinese"``, ``"japanese"``, or ``"auto"``
    (Japanese when at least :data:`JAPANESE_SHARE` of the batch's Han/kana texts contain kana).
    """
    from anyascii import anyascii

    kinds = [_kind(t) for t in texts]
    if han == "auto":
        n_kana = kinds.count("kana")
        n_cjk = n_kana + kinds.count("han")
        han = "japanese" if n_cjk and n_kana / n_cjk >= JAPANESE_SHARE else "chinese"
    out = []
    for text, kind in zip(texts, kinds):
        if use_pykakasi and (kind == "kana" or (kind == "han" and han == "japanese")):
            romaji = japanese(text)
            # a Han-only text with characters Japanese does not use (银, 沪...) is Chinese after all
            if kind != "han" or not _has_han(romaji):
                text = romaji
            elif use_pypinyin:
                text = chinese(text)
        elif use_pypinyin and kind == "han":
            text = chinese(text)
        out.append(anyascii(text))
    return out


def _has_han(text: str) -> bool:
    return not text.isascii() and bool(script_counts(text).get("Han"))


def _kind(text: str) -> str:
    """``"kana"`` (has kana), ``"han"`` (has Han, no kana) or ``"other"``."""
    if text.isascii():
        return "other"
    counts = script_counts(text)
    if counts.get("Kana"):
        return "kana"
    return "han" if counts.get("Han") else "other"
