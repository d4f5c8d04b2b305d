"""The default chain where several left rows link to one right row (issue #16): top-1 against its components.

    python -m evals.many_to_one [--suite quick|full]     # full adds model="accurate"

Every set of :mod:`evals.default_chain` links each right row at most once.  The adaptive fusion reads each
pair's lead within its right row (how far it trails the right row's best pair), which discounts a right row
that many left rows reach; where many left rows rightly reach it, that must not cost accuracy.  These sets
link the names of one CLDR catalogue in four languages, stacked into one left table, to the English names
(four left rows per right row):

- ``territory_latin``: territories in fr, de, es, it (one script);
- ``territory_mixed``: territories in fr, ru, ja, zh (four scripts);
- ``tz_mixed``: time-zone cities in de, ru, ja, ko.

Measured as :func:`evals.default_chain.evaluate_set` does (top-1 of the default, of ``mode="semantic"``,
``"lexical"``, ``"hybrid"`` and the character TF-IDF baseline, the gap to the best component, calibration of
``match_probability`` over the top-10 candidates).  These sets were looked at when the right-row lead was
chosen (with the quick suite of :mod:`evals.default_chain`); they are a check of that choice, not held out.
"""

from __future__ import annotations

import tempfile
from typing import Any

import pandas as pd

from evals.common import main_for
from evals.datasets import LinkTask, cldr_names, timezone_cities

SETS = {"territory_latin": ("territory", ("fr", "de", "es", "it")),
        "territory_mixed": ("territory", ("fr", "ru", "ja", "zh")),
        "tz_mixed": ("tz", ("de", "ru", "ja", "ko"))}


def stacked(kind: str, langs: tuple[str, ...], name: str) -> LinkTask:
    """The left tables of ``langs`` stacked (ids prefixed with the language), all linked to the one English table."""
    lefts, golds, right = [], [], None
    for lang in langs:
        task = cldr_names(kind, lang) if kind == "territory" else timezone_cities(lang)
        if right is not None and set(task.right["id"]) != set(right["id"]):
            raise ValueError(f"{kind} {lang}: another English table than the first language's")
        right = task.right if right is None else right
        lefts.append(task.left.assign(id=lang + ":" + task.left["id"].astype(str)))
        golds.append(task.gold.assign(id_l=lang + ":" + task.gold["id_l"].astype(str)))
    assert right is not None
    return LinkTask(pd.concat(lefts, ignore_index=True), right, pd.concat(golds, ignore_index=True), name,
                    {"source": f"CLDR {kind} names in {', '.join(langs)} -> en"})


def run(suite: str = "quick") -> dict[str, Any]:
    from evals.default_chain import evaluate_set

    rows = []
    for model in (None, "accurate") if suite == "full" else (None,):
        for name, (kind, langs) in SETS.items():
            task = stacked(kind, langs, name)
            with tempfile.TemporaryDirectory() as cache:
                row = evaluate_set("many_to_one", name, task, ["name"], model, cache)
            row["left_per_right"] = round(len(task.gold) / task.gold["id_r"].nunique(), 2)
            rows.append(row)
            print({k: row[k] for k in ("model", "set", "default", "semantic", "lexical", "hybrid", "gap_pts")},
                  flush=True)
    head = ("| model | set | left rows per right row | default | semantic | lexical | hybrid | tfidf | gap | ECE |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    table = head + "".join(
        f"| {r['model']} | {r['set']} | {r['left_per_right']} | {100 * r['default']:.1f} | {100 * r['semantic']:.1f} | "
        f"{100 * r['lexical']:.1f} | {100 * r['hybrid']:.1f} | {100 * r['tfidf']:.1f} | {r['gap_pts']}"
        f"{' ⚠' if r['flag'] else ''} | {r['calibration']['ece']:.4f} |\n" for r in rows)
    return {"benchmark": "many_to_one", "title": "the default chain with four left rows per right row",
            "suite": suite, "command": f"python -m evals.many_to_one --suite {suite}",
            "rows": [{k: v for k, v in r.items() if k != "calibration"} | {"ece": r["calibration"]["ece"]}
                     for r in rows],
            "tables": [{"name": "many-to-one", "markdown": table}], "markdown": table}


if __name__ == "__main__":
    main_for(run)
