"""Cleaning text before it is compared: invisible and invalid code points, symbol-only values.

Removed: controls other than whitespace, format characters such as zero-width spaces, byte-order
marks and direction marks (except the joiners ZWJ/ZWNJ), lone surrogates and Unicode
noncharacters.  Whitespace is collapsed.  A value with no letter or digit left (only symbols or
punctuation, e.g. a lone emoji) is empty unless ``keep_symbols`` is set.
"""

from __future__ import annotations

import functools
import re

#: A letter or a digit of any script (``\\w`` without the underscore).
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
#: Kept although they are format characters: they change how a word is written (Persian, Indic, emoji).
_JOINERS = "\u200c\u200d"


@functools.lru_cache(maxsize=1)
def _invisible() -> re.Pattern[str]:
    """A character class of the code points :func:`clean_text` removes."""
    import unicodedata

    def removed(cp: int) -> bool:
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category == "Cc":
            return not ch.isspace()
        return category == "Cf" and ch not in _JOINERS

    # format characters live in planes 0, 1 and 14 only
    points = [cp for cp in (*range(0x20000), *range(0xE0000, 0xE1000)) if removed(cp)]
    points += [*range(0xD800, 0xE000), *range(0xFDD0, 0xFDF0)]  # surrogates, noncharacters
    points += [plane * 0x10000 + low for plane in range(17) for low in (0xFFFE, 0xFFFF)]
    points.sort()
    ranges, start, prev = [], points[0], points[0]
    for cp in points[1:] + [-1]:
        if cp != prev + 1:
            ranges.append(f"\\U{start:08x}" + (f"-\\U{prev:08x}" if prev > start else ""))
            start = cp
        prev = cp
    return re.compile("[" + "".join(ranges) + "]+")


def remove_invisible(text: str) -> str:
    """``text`` without controls (other than whitespace), format characters (other than ZWJ/ZWNJ),
    lone surrogates and noncharacters, which no model or file format handles well."""
    return text if text.isprintable() else _invisible().sub("", text)


def clean_text(text: str, keep_symbols: bool = False) -> str:
    """Remove invisible and invalid code points, collapse whitespace; ``""`` if no letter or digit is
    left (unless ``keep_symbols``).  ``"Acme\\ud800"`` -> ``"Acme"``, ``"\\u200b"`` -> ``""``."""
    text = " ".join(remove_invisible(text).split())
    if not keep_symbols and text and not (text[0].isalnum() or _LETTER_OR_DIGIT.search(text)):
        return ""
    return text
