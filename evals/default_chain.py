"""Does the default chain beat its own components?  Top-1 per labelled set, and calibration (issue #16).

    python -m evals.default_chain [--suite quick|full]      # full adds model="accurate" and larger sets

For every dev-visible labelled set, in one run per set, the top-1 accuracy of ``lt.merge`` with the
defaults (``mode="auto"``), ``mode="semantic"``, ``"lexical"`` and ``"hybrid"``, and a plain baseline:
sklearn ``TfidfVectorizer(analyzer="char", ngram_range=(2, 4))`` over the raw text (the linked columns'
values joined by spaces, no labels), cosine, top-1.  ``best`` is the best of semantic, lexical and the
TF-IDF baseline; ``gap`` = default - best in points; a set is flagged when the default is more than 0.5
points below it (the issue's target).  Hybrid is reported beside them (``vs_hybrid_pts`` = default - hybrid),
not counted as a component.

A prediction counts when it is a gold right row or a right row whose text (the linked columns) equals a
gold right row's (subdivision names repeat across countries: either copy is as good as text can tell).
Top-1 is over the left rows that have a gold link; every left row takes part in the merge.

Calibration (only when the default output has a ``match_probability`` column): ``lt.merge_knn(k=10)``
with the defaults; every candidate of a left row with a gold link is labelled (1 = acceptable, as above),
and where the set's gold is complete (``restaurants``) the candidates of the other left rows are 0.
Reported: expected calibration error over 10 equal-mass bins, Brier score and AUC; a reliability plot
per model goes to ``results/plots/default_chain-reliability-<model>.png``.

Sets (quick / full): CLDR territories in 8 languages -> English (all names); ISO 3166-2 subdivisions and
CLDR time-zone cities (4 / 8 languages; subdivisions sampled to 300 / 1,000 links); the bundled firms of
``examples/``; FEBRL4 (300 links among 1,000 right / all 5,000 x 5,000; nine fields, soc_sec_id
withheld); GeoNames alternate names -> gazetteer (2,000 / 20,000 per side); Fodors-Zagats restaurants
and DBLP-ACM papers (:mod:`evals.entity_matching`, several columns); CLDR territories zh -> zh_Hant and
ja -> zh (same-script CJK).  Embeddings are cached in a fresh folder per set: the default runs first
(cold, timed as ``seconds_default``), the other modes and the calibration run reuse its embeddings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import ltengine as lt
from evals.calibration import calibration_summary, reliability_plot
from evals.common import RESULTS, machine, main_for
from evals.datasets import LinkTask, cldr_langs, cldr_names, febrl4, geonames_link_task, subdivisions, timezone_cities
from evals.entity_matching import cldr_cjk, dblp_acm, restaurants

MODES: tuple[str | None, ...] = (None, "semantic", "lexical", "hybrid")
COMPONENTS = ("semantic", "lexical", "tfidf")
TOLERANCE_PTS = 0.5
FEBRL_FIELDS = ["given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode", "state",
                "date_of_birth"]
SIZES: dict[str, dict[str, Any]] = {
    "quick": {"langs": ("fr", "ru", "zh", "ja"), "sub": 300, "febrl": (300, 1_000), "geonames": 2_000,
              "models": (None,)},
    "full": {"langs": ("fr", "de", "es", "ru", "zh", "ja", "ar", "ko"), "sub": 1_000, "febrl": None,
             "geonames": 20_000, "models": (None, "accurate")},
}
ROOT = Path(__file__).resolve().parent.parent


def _firms() -> LinkTask:
    folder = ROOT / "examples"
    left = pd.read_csv(folder / "firms_left.csv", dtype=str)[["id", "name"]]
    right = pd.read_csv(folder / "firms_right.csv", dtype=str).rename(columns={"reg_id": "id"})[["id", "name"]]
    gold = pd.read_csv(folder / "firms_gold.csv", dtype=str).rename(columns={"id": "id_l", "reg_id": "id_r"})
    return LinkTask(left, right, gold, "firms", {"source": "examples/firms_*.csv"})


def _febrl(size: tuple[int, int] | None) -> LinkTask:
    task = febrl4()
    if size is None:
        return task
    from evals.febrl4_link import sample

    return sample(task, *size)


def task_list(suite: str) -> list[tuple[str, str, LinkTask, list[str]]]:
    """``(family, set name, task, linked columns)`` for every set of the suite, in report order."""
    size = SIZES[suite]
    out: list[tuple[str, str, LinkTask, list[str]]] = []
    for lang in cldr_langs():
        out.append(("cldr_territory", f"territory_{lang}", cldr_names("territory", lang), ["name"]))
    for lang in size["langs"]:
        if lang != "ar":  # pycountry has no Arabic iso3166-2 catalogue
            out.append(("subdivisions", f"sub_{lang}", subdivisions(lang).subsample(size["sub"]), ["name"]))
        out.append(("timezone_cities", f"tz_{lang}", timezone_cities(lang), ["name"]))
    out.append(("firms", "firms", _firms(), ["name"]))
    out.append(("febrl4", "febrl4", _febrl(size["febrl"]), FEBRL_FIELDS))
    out.append(("geonames", f"geonames_{size['geonames']}", geonames_link_task(size["geonames"]), ["name"]))
    for name, task in (("restaurants", restaurants()), ("dblp_acm", dblp_acm())):
        out.append(("entity_matching", name, task, task.meta["columns"]))
    for a, b in (("zh", "zh_Hant"), ("ja", "zh")):
        out.append(("cjk_same_script", f"territory_{a}_{b}", cldr_cjk(a, b), ["name"]))
    return out


def raw_text(frame: pd.DataFrame, on: list[str]) -> np.ndarray:
    """The linked columns' values joined by spaces (missing values skipped): what the baseline compares."""
    parts = [frame[c].astype("string").fillna("").str.strip().to_numpy(dtype=object) for c in on]
    return np.array([" ".join(p for p in row if p) for row in zip(*parts)], dtype=object)


def acceptable(task: LinkTask, on: list[str]) -> dict[Any, set[Any]]:
    """Per gold left id: the gold right ids plus every right id whose raw text equals a gold right's."""
    text = dict(zip(task.right["id"], raw_text(task.right, on)))
    by_text: dict[str, set[Any]] = {}
    for rid, value in text.items():
        by_text.setdefault(value, set()).add(rid)
    out: dict[Any, set[Any]] = {}
    for lid, rid in zip(task.gold["id_l"], task.gold["id_r"]):
        out.setdefault(lid, set()).update({rid} | by_text.get(text.get(rid, None), set()))
    return out


def top1(predicted: dict[Any, Any], truth: dict[Any, set[Any]]) -> float:
    """Share of gold left ids whose predicted right id is acceptable (a missing prediction is a miss)."""
    return round(sum(predicted.get(lid) in ok for lid, ok in truth.items()) / len(truth), 4) if truth else float("nan")


def tfidf_top1(task: LinkTask, on: list[str], truth: dict[Any, set[Any]], chunk: int = 2_000) -> dict[Any, Any]:
    """Best right id per gold left id under char 2-4-gram TF-IDF cosine over the raw text (fit on both sides)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    left = task.left[task.left["id"].isin(set(truth))]
    lt_text, rt_text = raw_text(left, on), raw_text(task.right, on)
    vec = TfidfVectorizer(analyzer="char", ngram_range=(2, 4)).fit(np.concatenate([lt_text, rt_text]))
    lm, rm = vec.transform(lt_text), vec.transform(rt_text).T.tocsc()
    right_ids, best = task.right["id"].to_numpy(), []
    for start in range(0, lm.shape[0], chunk):
        sims = (lm[start:start + chunk] @ rm).toarray()
        best.append(sims.argmax(axis=1))
    picks = np.concatenate(best) if best else np.array([], dtype=int)
    return dict(zip(left["id"], right_ids[picks]))


def merge_task(task: LinkTask, on: list[str], mode: str | None, model: str | None, cache_dir: str,
               knn: bool = False) -> pd.DataFrame:
    """``lt.merge`` (or ``lt.merge_knn(k=10)``) of the task's linked columns with the given mode and model."""
    cols = ["id", *on]
    fn = lt.merge_knn if knn else lt.merge
    extra: dict[str, Any] = {"k": 10} if knn else {}
    return fn(task.left[cols], task.right[cols], on=on, mode=mode, model=model, progress=False, cache=True,
              cache_dir=cache_dir, suffixes=("_l", "_r"), **extra)


def calibration_labels(knn: pd.DataFrame, truth: dict[Any, set[Any]], gold_complete: bool) -> pd.DataFrame:
    """``knn`` rows that can be labelled, with ``label`` (1 = acceptable candidate)."""
    known = knn["id_l"].isin(set(truth)) | gold_complete
    rows = knn[known & knn["match_probability"].notna()]
    label = [int(r in truth.get(lid, ())) for lid, r in zip(rows["id_l"], rows["id_r"])]
    return rows.assign(label=label)


def evaluate_set(family: str, name: str, task: LinkTask, on: list[str], model: str | None,
                 cache_dir: str) -> dict[str, Any]:
    """One row: top-1 of each mode and of the TF-IDF baseline, the gap, and calibration when available.

    The default runs first on a cold embedding cache (``cache_dir``, fresh per run): its seconds are a
    real run's; the later modes reuse its embeddings (their seconds are not reported)."""
    truth = acceptable(task, on)
    row: dict[str, Any] = {"model": model or "fast", "family": family, "set": name, "n_left": len(task.left),
                           "n_right": len(task.right), "n_gold": len(truth)}
    default_out = None
    for mode in MODES:
        start = time.perf_counter()
        out = merge_task(task, on, mode, model, cache_dir)
        key = mode or "default"
        if mode is None:
            row["seconds_default"] = round(time.perf_counter() - start, 2)
        row[key] = top1(dict(zip(out["id_l"], out["id_r"])), truth)
        if mode is None:
            default_out = out
            row["default_mode"] = out.attrs.get("ltengine", {}).get("report", {}).get("mode")
    start = time.perf_counter()
    row["tfidf"] = top1(tfidf_top1(task, on, truth), truth)
    row["seconds_tfidf"] = round(time.perf_counter() - start, 2)
    row["best"] = max(row[c] for c in COMPONENTS)
    row["best_component"] = next(c for c in COMPONENTS if row[c] == row["best"])
    row["gap_pts"] = round(100 * (row["default"] - row["best"]), 1)
    row["flag"] = row["gap_pts"] < -TOLERANCE_PTS
    row["vs_hybrid_pts"] = round(100 * (row["default"] - row["hybrid"]), 1)
    if default_out is not None and "match_probability" in default_out.columns:
        knn = merge_task(task, on, None, model, cache_dir, knn=True)
        labelled = calibration_labels(knn, truth, bool(task.meta.get("gold_complete")))
        row["calibration"] = calibration_summary(labelled["match_probability"].to_numpy(float), labelled["label"])
    return row


COLUMNS = ["model", "set", "n_gold", "default_mode", "default", "semantic", "lexical", "hybrid", "tfidf",
           "best_component", "gap_pts", "flag", "vs_hybrid_pts", "ece", "brier", "auc", "seconds_default"]


def _table_row(row: dict[str, Any]) -> list[Any]:
    cal = row.get("calibration") or {}
    return [row.get(c, cal.get(c)) for c in COLUMNS]


def markdown(rows: list[dict[str, Any]]) -> str:
    """The per-set table as Markdown (top-1 in %, gap in points)."""
    head = ["model", "set", "n", "auto→", "default", "semantic", "lexical", "hybrid", "tfidf", "best", "gap", "vs hybrid", "ECE",
            "Brier", "AUC"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cal = r.get("calibration") or {}
        pct = [f"{100 * r[k]:.1f}" for k in ("default", "semantic", "lexical", "hybrid", "tfidf")]
        gap = f"{r['gap_pts']:+.1f}" + (" ⚠" if r["flag"] else "")
        cells = [r["model"], r["set"], str(r["n_gold"]), str(r.get("default_mode")), *pct, r["best_component"], gap,
                 f"{r['vs_hybrid_pts']:+.1f}",
                 *(str(cal.get(k, "–")) for k in ("ece", "brier", "auc"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def febrl3_clusters(suite: str) -> dict[str, Any]:
    """:func:`cluster_quality` on FEBRL3 (all of it; quick: the entities whose number ends in 1, a tenth)."""
    from evals.datasets import febrl3
    from evals.febrl3_dedup import split

    task = febrl3()
    if suite == "full":
        return cluster_quality(task.records.reset_index(drop=True), task.gold_cluster.reset_index(drop=True))
    return cluster_quality(*split(task, "quick")[2:])


def cluster_quality(records: pd.DataFrame, gold: pd.Series) -> dict[str, Any]:
    """``lt.cluster_rows`` on the ten Febrl fields with no threshold given: pairwise P/R/F1, clusters, and the
    share of true singletons (by ``gold``, each record's entity) left alone."""
    from evals.febrl3_dedup import FIELDS

    start = time.perf_counter()
    out = lt.cluster_rows(records, on=FIELDS, progress=False, cache=False)
    seconds = round(time.perf_counter() - start, 1)
    metrics = lt.evaluate(out, gold)
    singles = (gold.map(gold.value_counts()) == 1).to_numpy()
    alone = (out["cluster"].map(out["cluster"].value_counts()) == 1).to_numpy()
    return {"records": len(records), "true_clusters": int(gold.nunique()), "pred_clusters": int(out["cluster"].nunique()),
            **{k: round(float(metrics[k]), 4) for k in ("pairwise_precision", "pairwise_recall", "pairwise_f1")},
            "true_singletons": int(singles.sum()),
            "singletons_kept": round(float(alone[singles].mean()), 4) if singles.any() else None,
            "threshold": out.attrs.get("ltengine", {}).get("report", {}).get("threshold"), "seconds": seconds}


def code_version() -> str:
    """The commit the numbers were taken on, and whether ltengine/ or plugins/ had uncommitted edits."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ltengine", "plugins"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" + uncommitted edits in ltengine/ or plugins/" if dirty else "")


def run(suite: str = "quick") -> dict[str, Any]:
    """Every set of the suite under every model of the suite; writes the reliability plots when calibrated."""
    import tempfile

    rows: list[dict[str, Any]] = []
    tasks = task_list(suite)
    for model in SIZES[suite]["models"]:
        lt.merge(pd.DataFrame({"a": ["x"]}), pd.DataFrame({"a": ["y"]}), on="a", model=model, progress=False,
                 cache=False)  # load the model before timing
        for family, name, task, on in tasks:
            with tempfile.TemporaryDirectory(prefix="ltengine-default-chain-") as cache_dir:
                row = evaluate_set(family, name, task, on, model, cache_dir)
            rows.append(row)
            print({k: row[k] for k in ("model", "set", "default", "semantic", "lexical", "hybrid", "tfidf",
                                       "gap_pts")}, flush=True)
    dedup = febrl3_clusters(suite)
    print("febrl3", dedup, flush=True)
    return result(suite, rows, code_version(), dedup)


def result(suite: str, rows: list[dict[str, Any]], code: str, dedup: dict[str, Any] | None = None,
           results: Path = RESULTS) -> dict[str, Any]:
    """The results dict (tables, README table, Markdown, flags) of evaluated ``rows``; draws the reliability
    plots under ``results/plots``."""
    plots = []
    for model in dict.fromkeys(r["model"] for r in rows):
        curves = {r["set"]: r["calibration"]["bins"] for r in rows if r["model"] == model and r.get("calibration")}
        if curves:
            path = results / "plots" / f"default_chain-reliability-{model}.png"
            plots.append(reliability_plot(curves, path, f"match_probability reliability ({model}, top-10)").name)
    flagged = [f"{r['model']}:{r['set']}" for r in rows if r["flag"]]
    models = list(dict.fromkeys(r["model"] for r in rows))
    tables = [{"title": f"Top-1 per set ({model}): the default chain vs its components, hybrid, TF-IDF baseline",
               "columns": COLUMNS, "rows": [_table_row(r) for r in rows if r["model"] == model],
               "note": f"best = max(semantic, lexical, tfidf); gap_pts = 100 * (default - best); flag: gap < "
                       f"-{TOLERANCE_PTS}; ece/brier/auc: match_probability over all top-10 candidates (empty "
                       f"until the output has match_probability)"} for model in models]
    if dedup:
        tables.append({"title": "FEBRL3 lt.cluster_rows(on=all ten fields), no threshold given",
                       "columns": list(dedup), "rows": [list(dedup.values())],
                       "note": "target (issue #16): pairwise F1 >= 0.90, true singletons kept singletons"})
    readme = {"title": "default chain vs best component (top-1 %)",
              "columns": ["model", "set", "default", "best component", "best", "gap (pts)"],
              "rows": [[r["model"], r["set"], round(100 * r["default"], 1), r["best_component"],
                        round(100 * r["best"], 1), r["gap_pts"]] for r in rows]}
    return {"benchmark": "default_chain", "title": "Default chain vs its best component, and calibration (issue #16)",
            "suite": suite, "command": f"python -m evals.default_chain --suite {suite}", "tables": tables,
            "readme": readme, "markdown": markdown(rows), "flagged": flagged, "reliability_plots": plots,
            "plots": [{"table": i, "kind": "bar", "x": "set", "y": ["default", "semantic", "lexical", "tfidf"],
                       "title": f"Top-1 per set ({model}): default vs components", "ylabel": "top-1",
                       "ylim": [0, 1]} for i, model in enumerate(models)],
            "notes": [f"flagged (default > {TOLERANCE_PTS} pts below its best component): {flagged or 'none'}"],
            "rows": rows, "febrl3_cluster_rows": dedup, "code": code, "machine": machine()}


if __name__ == "__main__":
    result = main_for(run)
    print(result["markdown"])
