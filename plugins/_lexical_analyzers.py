"""How the ``char-ngram`` retriever reads texts: its analyzers and the ``"auto"`` choice between them.

Three analyzers, each a block of an L2-normalised TF-IDF vector:

- ``romanised``: character n-grams (within words) of the romanised, folded key
  (:func:`ltengine.lexical.names.normalize_names`): ``Газпром`` and ``Gazprom`` share n-grams;
- ``raw``: character n-grams of the text folded but *not* romanised (NFKC, casefold, accents on Latin
  letters dropped, punctuation to spaces): kanji, kana, Hangul and Han keep what romanising loses;
- ``words``: sublinear TF-IDF over the words of the raw key, for longer texts (descriptions, addresses,
  multi-column records), where shared rare words say more than shared n-grams.

A pair's score is the weighted sum of its per-analyzer cosines (weights summing to 1, so it stays in
[0, 1]); the weights belong to the *query* text, so :meth:`search` and :meth:`score_pairs` agree and a
row's score never depends on the other rows of its batch.  ``analyzer="auto"`` builds ``romanised``
and ``raw`` (and ``words`` when the right-hand texts have a median of at least
:data:`WORDS_MIN_MEDIAN` words) and weighs, per query text: every letter in a script group that
makes up at least :data:`SCRIPT_SHARE` of the right-hand letters -> ``raw`` (+ ``words``); otherwise
(a cross-script query) -> ``romanised`` alone, today's behaviour; a right-hand column whose letters
mix script groups, or is Han (with kana) -> ``raw`` and ``romanised`` half each (simplified and
traditional characters differ where their pinyin agrees).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from ltengine.errors import ConfigError
from ltengine.lexical.scripts import script_counts, script_profile

PARTS = ("romanised", "raw", "words")
#: Analyzer names accepted by the ``analyzer`` option (parts joined by ``+`` in any order, or "auto").
ANALYZERS = ("auto", "romanised", "raw", "words", "raw+words", "raw+romanised", "romanised+words",
             "raw+romanised+words")
#: Median words per right-hand text from which ``auto`` adds the ``words`` analyzer.
WORDS_MIN_MEDIAN = 4.0
#: Share of the right-hand letters a script group needs to count as the right side's script.
SCRIPT_SHARE = 0.1
#: Weight of ``words`` beside ``raw`` for same-script queries when ``words`` is built.
WORDS_WEIGHT = 0.5
#: Weight of ``raw`` beside ``romanised`` when the right side is Han (with kana) and so is the query.
HAN_RAW_WEIGHT = 0.3
#: Kana is read with Han (Japanese mixes both): one script group.
_GROUPS = {"Kana": "Han"}
#: Han on both sides (Chinese variants, Japanese beside Chinese): characters differ where the readings agree.
_HAN = frozenset({"Han"})


def parse_analyzer(value: str) -> tuple[str, ...]:
    """The parts of an ``analyzer`` option (``()`` for ``"auto"``); ConfigError naming the value otherwise."""
    parts = tuple(p.strip() for p in str(value).split("+"))
    if value == "auto":
        return ()
    aliases = {"romanized": "romanised"}
    parts = tuple(aliases.get(p, p) for p in parts)
    if not parts or any(p not in PARTS for p in parts) or len(set(parts)) != len(parts):
        raise ConfigError(f"char-ngram option analyzer must be 'auto' or parts of {PARTS} joined by '+' "
                          f"(e.g. 'raw+words'); got {value!r}")
    return tuple(p for p in PARTS if p in parts)


def groups_of(profile: dict[str, float], share: float = SCRIPT_SHARE) -> frozenset[str]:
    """Script groups holding at least ``share`` of the letters of a script profile."""
    totals: dict[str, float] = {}
    for script, value in profile.items():
        group = _GROUPS.get(script, script)
        totals[group] = totals.get(group, 0.0) + value
    return frozenset(g for g, v in totals.items() if v >= share)


def text_groups(text: str) -> frozenset[str]:
    """Script groups of the letters of one text."""
    return frozenset(_GROUPS.get(s, s) for s in script_counts(text))


def describe_right(texts: Sequence[str], raw_keys: Sequence[str]) -> dict[str, Any]:
    """What ``auto`` looks at on the right-hand side: script profile and groups, median characters and words."""
    profile = script_profile(list(texts))
    nonempty = [k for k in raw_keys if k] or [""]
    return {"scripts": profile, "script_groups": sorted(groups_of(profile)),
            "median_chars": float(statistics.median(len(k) for k in nonempty)),
            "median_words": float(statistics.median(len(k.split()) for k in nonempty))}


def auto_parts(about: dict[str, Any]) -> tuple[str, ...]:
    """The blocks ``auto`` builds for a right side described by :func:`describe_right`."""
    parts = ["romanised", "raw"]
    if about["median_words"] >= WORDS_MIN_MEDIAN:
        parts.append("words")
    return tuple(parts)


def row_weights(text: str, parts: tuple[str, ...], auto: bool, right_groups: frozenset[str]) -> tuple[float, ...]:
    """Weights of each built part (in ``parts`` order) for one query text."""
    if not auto:
        return tuple(1.0 / len(parts) for _ in parts)
    if len(right_groups) > 1:
        chosen = {"raw": 0.5, "romanised": 0.5}
    elif right_groups == _HAN:
        chosen = {"raw": HAN_RAW_WEIGHT, "romanised": 1.0 - HAN_RAW_WEIGHT}
    elif text_groups(text) <= right_groups:
        chosen = {"raw": 1.0 - WORDS_WEIGHT, "words": WORDS_WEIGHT} if "words" in parts else {"raw": 1.0}
    else:
        chosen = {"romanised": 1.0}
    return tuple(chosen.get(p, 0.0) for p in parts)
