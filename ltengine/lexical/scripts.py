"""Which writing systems a text column uses, and whether two columns differ enough to need hybrid linking.

What is detected, exactly:

- Only letters count (Unicode general category ``L*``); digits, punctuation, spaces, symbols and
  combining marks are ignored.
- A letter's script is the first word of its Unicode character name, title-cased
  (``"CYRILLIC SMALL LETTER A"`` -> ``Cyrillic``), with these exceptions: ``CJK ...`` ideographs are
  ``Han``; ``HIRAGANA`` and ``KATAKANA`` (also half-width) are ``Kana``; ``FULLWIDTH``/``HALFWIDTH``
  forms take the next word (``FULLWIDTH LATIN ...`` -> ``Latin``); ``HANGUL`` is ``Hangul``; letters
  without a script word (modifier letters, ordinal indicators, ...) are skipped.
- A column's profile is the share of its letters in each script, over an evenly spaced sample of at
  most :data:`SAMPLE_ROWS` non-empty texts.
- Two columns *differ in script* when the total variation distance between their profiles
  (half the sum of absolute differences of the shares) is at least :data:`HYBRID_DISTANCE`, i.e.
  at least 10% of the letters would have to change script to make the profiles equal.  A column
  with no letters at all never counts as different.

Languages that share a script (French vs English) are *not* told apart; pass ``mode="hybrid"``
for those when names are spelled alike across the languages.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

#: Rows sampled per column for the script profile.
SAMPLE_ROWS = 2000
#: Total variation distance between two profiles from which ``mode="auto"`` links in hybrid mode.
HYBRID_DISTANCE = 0.1

_NOT_SCRIPTS = frozenset({"MODIFIER", "FEMININE", "MASCULINE", "MICRO", "SMALL", "CAPITAL", "LETTER", "SIGN"})
_RENAMES = {"CJK": "Han", "IDEOGRAPHIC": "Han", "HIRAGANA": "Kana", "KATAKANA": "Kana", "KATAKANA-HIRAGANA": "Kana"}


@functools.lru_cache(maxsize=65536)
def char_script(ch: str) -> str | None:
    """The script of one character (see the module docstring), or None for non-letters."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    words = unicodedata.name(ch, "").split()
    if words and words[0] in ("FULLWIDTH", "HALFWIDTH"):
        words = words[1:]
    if not words or words[0] in _NOT_SCRIPTS:
        return None
    return _RENAMES.get(words[0], words[0].title())


def script_counts(text: str) -> Counter[str]:
    """Letters per script in ``text``."""
    counts: Counter[str] = Counter()
    for ch in text:
        script = char_script(ch)
        if script is not None:
            counts[script] += 1
    return counts


def dominant_script(text: str) -> str | None:
    """The script of most letters of ``text`` (None if it has no letters)."""
    counts = script_counts(text)
    return counts.most_common(1)[0][0] if counts else None


def _sample(texts: Sequence[str], limit: int) -> Iterable[str]:
    texts = [t for t in texts if t]
    if len(texts) <= limit:
        return texts
    step = len(texts) / limit
    return [texts[int(i * step)] for i in range(limit)]


def script_profile(texts: Sequence[str], sample: int = SAMPLE_ROWS) -> dict[str, float]:
    """Share of letters per script over (a sample of) ``texts``, largest first; {} if no letters."""
    total: Counter[str] = Counter()
    for text in _sample(list(texts), sample):
        total.update(script_counts(str(text)))
    n = sum(total.values())
    return {script: round(count / n, 4) for script, count in total.most_common()} if n else {}


def profile_distance(a: dict[str, float], b: dict[str, float]) -> float:
    """Total variation distance between two script profiles (0 = same mix, 1 = no script shared)."""
    if not a or not b:
        return 0.0
    return 0.5 * sum(abs(a.get(s, 0.0) - b.get(s, 0.0)) for s in set(a) | set(b))


def scripts_differ(a: dict[str, float], b: dict[str, float], distance: float = HYBRID_DISTANCE) -> bool:
    """Whether two columns' profiles differ by at least ``distance`` (see the module docstring)."""
    return bool(a and b) and profile_distance(a, b) >= distance
