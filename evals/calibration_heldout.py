"""Calibration of ``match_probability`` on sets the calibration was not chosen on (issue #16's held-out check).

    python -m evals.calibration_heldout [--suite quick|full]     # full adds model="accurate" on the quick sets

The calibration's design (the EM mixture, the mutual-best cap and the cap holding the posteriors) was
compared on the 23 sets of ``python -m evals.default_chain --suite quick`` with the fast model.  This
benchmark measures the same thing (ECE over 10 equal-mass bins, Brier and AUC of ``match_probability``
over all top-10 candidates of ``lt.merge_knn(k=10)`` with the defaults; labels as in
:mod:`evals.default_chain`) on sets that were never looked at while choosing it:

- fast model: CLDR time-zone cities and ISO 3166-2 subdivisions in de, es, ar, ko (subdivisions sampled to
  300 links; no Arabic subdivision catalogue) and CLDR territories in the extra languages (el, he, hi, th,
  uk, ...), all linked to English;
- ``--suite full`` adds the accurate model (multilingual-e5-small) on the quick suite's 23 sets.

Run it from two checkouts to compare before and after.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np

from evals.calibration import calibration_summary
from evals.common import main_for
from evals.datasets import DEFAULT_LANGS, LinkTask, cldr_langs, cldr_names, subdivisions, timezone_cities

HELD_OUT_LANGS = ("de", "es", "ar", "ko")


def heldout_sets() -> list[tuple[str, LinkTask, list[str]]]:
    """``(set name, task, linked columns)`` of the sets no calibration choice was compared on."""
    out: list[tuple[str, LinkTask, list[str]]] = []
    for lang in HELD_OUT_LANGS:
        if lang != "ar":  # pycountry has no Arabic iso3166-2 catalogue
            out.append((f"sub_{lang}", subdivisions(lang).subsample(300), ["name"]))
        out.append((f"tz_{lang}", timezone_cities(lang), ["name"]))
    for lang in cldr_langs(extended=True):
        if lang not in DEFAULT_LANGS:
            out.append((f"territory_{lang}", cldr_names("territory", lang), ["name"]))
    return out


def evaluate(name: str, task: LinkTask, on: list[str], model: str | None) -> dict[str, Any]:
    """One set's calibration row (and top-1 of each left row's best candidate, as a sanity check)."""
    from evals.default_chain import _merge, acceptable, calibration_labels, top1

    truth = acceptable(task, on)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        knn = _merge(task, on, None, model, cache, knn=True)
    seconds = round(time.perf_counter() - start, 2)
    labelled = calibration_labels(knn, truth, bool(task.meta.get("gold_complete")))
    best = knn.sort_values(["id_l", "score"], ascending=[True, False], kind="stable").drop_duplicates("id_l")
    summary = calibration_summary(labelled["match_probability"].to_numpy(float), labelled["label"])
    return {"model": model or "fast", "set": name, "n_gold": len(truth), "top1": top1(dict(zip(best["id_l"], best["id_r"])), truth),
            "seconds": seconds, **summary}


def run(suite: str = "quick") -> dict[str, Any]:
    jobs: list[tuple[str, LinkTask, list[str], str | None]] = [(n, t, on, None) for n, t, on in heldout_sets()]
    if suite == "full":
        from evals.default_chain import task_list

        jobs += [(name, task, on, "accurate") for _, name, task, on in task_list("quick")]
    rows = []
    for name, task, on, model in jobs:
        rows.append(evaluate(name, task, on, model))
        print(f"{rows[-1]['model']:8s} {name:24s} ece={rows[-1]['ece']:.4f} brier={rows[-1]['brier']:.4f}", flush=True)
    summary = {}
    for model in sorted({r["model"] for r in rows}):
        eces = np.array([r["ece"] for r in rows if r["model"] == model])
        summary[model] = {"sets": len(eces), "max_ece": float(eces.max()), "mean_ece": round(float(eces.mean()), 4),
                          "sets_above_0.05": int((eces > 0.05).sum())}
    head = "| model | set | n | top-1 | ECE | Brier | AUC |\n|---|---|---|---|---|---|---|\n"
    table = head + "".join(f"| {r['model']} | {r['set']} | {r['n_gold']} | {100 * r['top1']:.1f} | {r['ece']:.4f} | "
                           f"{r['brier']:.4f} | {r['auc']:.4f} |\n" for r in rows)
    return {"benchmark": "calibration_heldout", "title": "match_probability calibration on held-out sets",
            "suite": suite, "command": f"python -m evals.calibration_heldout --suite {suite}",
            "summary": summary, "rows": [{k: v for k, v in r.items() if k != "bins"} for r in rows],
            "tables": [{"name": "held-out calibration", "markdown": table}], "markdown": table}


if __name__ == "__main__":
    main_for(run)
