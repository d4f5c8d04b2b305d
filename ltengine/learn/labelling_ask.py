"""Who answers "same entity?" for :func:`ltengine.label_pairs`: a person in the terminal, the LLM judge,
or a Python function.  Each returns one answer per pair: ``"y"``, ``"n"`` or ``"unsure"``; the console
also ``"undo"`` and ``"quit"``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from ltengine.errors import ConfigError, LinkInputError

YES, NO, UNSURE, UNDO, QUIT = "y", "n", "unsure", "undo", "quit"
_WORDS = {
    "y": YES, "yes": YES, "1": YES, "true": YES, "same": YES, "match": YES,
    "n": NO, "no": NO, "0": NO, "false": NO, "different": NO,
    "u": UNSURE, "?": UNSURE, "unsure": UNSURE, "s": UNSURE, "skip": UNSURE, "": UNSURE,
    "b": UNDO, "undo": UNDO, "back": UNDO,
    "q": QUIT, "quit": QUIT, "exit": QUIT,
}


def parse_answer(value: Any, *, console: bool = False) -> str | None:
    """The answer ``value`` stands for (``y``/``n``/``unsure``; console: also ``undo``/``quit``), or None."""
    if value is None:
        return UNSURE
    if isinstance(value, bool) or (isinstance(value, (int, float)) and value in (0, 1)):
        return YES if value else NO
    answer = _WORDS.get(str(value).strip().lower())
    if answer in (UNDO, QUIT) and not console:
        return None
    if console and str(value).strip() == "":
        return None  # an empty line asks again at the console (no silent "unsure")
    return answer


class ConsoleLabeler:
    """Asks a person in the terminal: ``y`` same, ``n`` different, ``u`` unsure, ``b`` undo, ``q`` quit."""

    interactive = True

    def __init__(self, read: Callable[[str], str] = input, write: Callable[[str], Any] = print) -> None:
        self.read, self.write = read, write

    def ask(self, pair: pd.Series, left_text: str, right_text: str, position: str) -> str:
        self.write(f"\n[{position}]  score {pair.get('score', float('nan')):.3f}  "
                   f"match_probability {pair.get('match_probability', float('nan')):.3f}")
        self.write(f"  left : {left_text}")
        self.write(f"  right: {right_text}")
        while True:
            try:
                raw = self.read("same entity? [y]es / [n]o / [u]nsure / [b]ack (undo) / [q]uit: ")
            except EOFError:
                return QUIT
            answer = parse_answer(raw, console=True)
            if answer is not None:
                return answer
            self.write("  please answer y, n, u, b or q")


class FunctionLabeler:
    """Calls ``function(pair)`` (the candidate row, a Series): True/1/"y" = same, False/0/"n" = different,
    None/"unsure" = unsure."""

    interactive = False

    def __init__(self, function: Callable[[pd.Series], Any]) -> None:
        self.function = function

    def answer_all(self, pairs: pd.DataFrame, texts: list[tuple[str, str]]) -> list[str]:
        answers = []
        for (_, pair) in pairs.iterrows():
            value = self.function(pair)
            answer = parse_answer(value)
            if answer is None:
                raise LinkInputError(f"the labeler function returned {value!r} for pair {pair.name!r}; return "
                                     "True/1/'y' (same), False/0/'n' (different) or None/'unsure'")
            answers.append(answer)
        return answers


class LLMLabeler:
    """The LLM judge of ``rerank="llm:<model>"`` (cached, budgeted, same options as ``rerank_options``)
    answers each pair; a pair without a verdict (error, budget spent) counts as unsure."""

    interactive = False

    def __init__(self, model: str, options: Mapping[str, Any], link_options: Mapping[str, Any]) -> None:
        if not model:
            raise ConfigError("labeler='llm:<model>' needs a model, e.g. labeler='llm:openai/gpt-4o-mini'")
        self.model, self.options, self.link_options = model, dict(options), dict(link_options)
        #: What is left of the session's budget (``max_cost`` dollars, ``max_calls`` requests) over all batches.
        self.left = {key: self.options.pop(key) for key in ("max_cost", "max_calls") if key in self.options}
        self.spent = {"requests": 0, "cost": 0.0, "cache_hits": 0}

    def answer_all(self, pairs: pd.DataFrame, texts: list[tuple[str, str]]) -> list[str]:
        from ltengine.api import merge_knn

        if not texts:
            return []
        if any(value <= 0 for value in self.left.values()):
            return [UNSURE] * len(texts)  # the budget is spent: no more calls
        # one block per pair, holding exactly its two records: the judge sees exactly these pairs
        left = pd.DataFrame({"text": [a for a, _ in texts], "pair": range(len(texts))})
        right = pd.DataFrame({"text": [b for _, b in texts], "pair": range(len(texts))})
        judged = merge_knn(left, right, on="text", k=1, block_on="pair", mode="semantic",
                           rerank=f"llm:{self.model}", rerank_options={"cascade": False, **self.options, **self.left},
                           **self.link_options)
        stage = judged.attrs["ltengine"]["report"]["rerank"]["stages"][-1]
        for key in self.spent:
            self.spent[key] += stage.get(key, 0)
        if "max_calls" in self.left:
            self.left["max_calls"] -= int(stage.get("requests", 0))
        if "max_cost" in self.left:
            self.left["max_cost"] -= float(stage.get("cost", 0.0))
        verdicts = dict(zip(judged["pair_x"] if "pair_x" in judged else judged["pair"], judged["is_match"]))
        out = []
        for i in range(len(texts)):
            verdict = verdicts.get(i, pd.NA)
            out.append(UNSURE if pd.isna(verdict) else (YES if bool(verdict) else NO))
        return out


def make_labeler(labeler: Any, options: Mapping[str, Any] | None, link_options: Mapping[str, Any]) -> Any:
    """The labeler for ``labeler=``: ``"console"``, ``"llm:<model>"``, a callable, or a labeler object."""
    if isinstance(labeler, str):
        if labeler == "console":
            return ConsoleLabeler()
        if labeler.startswith("llm:"):
            return LLMLabeler(labeler[4:], options or {}, link_options)
        raise ConfigError(f"unknown labeler {labeler!r}: use 'console', 'llm:<model>' (e.g. "
                          "'llm:openai/gpt-4o-mini') or a function pair -> True/False/None")
    if isinstance(labeler, (ConsoleLabeler, FunctionLabeler, LLMLabeler)):
        return labeler
    if callable(labeler):
        return FunctionLabeler(labeler)
    raise ConfigError(f"labeler must be 'console', 'llm:<model>' or a function; got {type(labeler).__name__}")
