"""Calibration of ``match_probability`` (fitted without labels) over all top-10 candidates, and top-1.

    python -m evals.calibration_check [--modes auto,semantic,lexical] [--sets cldr-fr,cldr-ja,cldr-zh,firms,febrl4]

Per set and mode: top-1 of ``lt.merge`` (the ranking, unchanged by calibration), and over every
top-10 candidate of ``lt.merge_knn(k=10)``: expected calibration error (10 equal-mass bins), Brier
score and AUC of ``match_probability`` against the gold links, the same for ``score`` clipped to
[0, 1] ("before": the only number a user had), the fitted parameters' size, and the share of the
run the calibration fit took.  Labels are used only to score, never to fit.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

import ltengine as lt

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-mass bins of ``p``."""
    order = np.argsort(p, kind="stable")
    return float(sum(len(part) / len(p) * abs(p[part].mean() - y[part].mean())
                     for part in np.array_split(order, bins) if len(part)))


def calibration(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    return {"ece": round(ece(p, y), 4), "brier": round(float(np.mean((p - y) ** 2)), 4), "auc": round(auc, 4)}


def tasks(names: list[str]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]]:
    """name -> (left, right, gold id_l/id_r, linked columns)."""
    from evals import datasets

    out = {}
    for name in names:
        if name.startswith("cldr-"):
            t = datasets.cldr_names("territory", name.split("-", 1)[1])
        elif name == "febrl4":
            t = datasets.febrl4()
        elif name == "firms":
            left = pd.read_csv(EXAMPLES / "firms_left.csv")
            right = pd.read_csv(EXAMPLES / "firms_right.csv").rename(columns={"reg_id": "id"})
            gold = pd.read_csv(EXAMPLES / "firms_gold.csv").rename(columns={"id": "id_l", "reg_id": "id_r"})
            out[name] = (left, right, gold, ["name"])
            continue
        else:
            raise SystemExit(f"unknown set {name!r}")
        out[name] = (t.left, t.right, t.gold, t.text_columns)
    return out


def run(name: str, left: pd.DataFrame, right: pd.DataFrame, gold: pd.DataFrame, on: list[str],
        mode: str) -> dict:
    truth = set(zip(gold["id_l"], gold["id_r"]))
    l2, r2 = left.rename(columns={"id": "id_l"}), right.rename(columns={"id": "id_r"})
    start = time.perf_counter()
    best = lt.merge(l2, r2, on=on, mode=mode, progress=False)
    seconds = time.perf_counter() - start
    timings = best.attrs["ltengine"]["timings"]
    report = best.attrs["ltengine"]["report"]
    top1 = float(np.mean([(a, b) in truth for a, b in zip(best["id_l"], best["id_r"])]))
    knn = lt.merge_knn(l2, r2, on=on, mode=mode, k=10, progress=False)
    y = np.array([(a, b) in truth for a, b in zip(knn["id_l"], knn["id_r"])], dtype=float)
    p = knn["match_probability"].to_numpy(dtype=float)
    same = np.allclose(best["match_probability"].to_numpy(), knn[knn["rank"] == 1]["match_probability"].to_numpy())
    row = {"set": name, "mode": report["mode"], "asked": mode, "left": len(left), "right": len(right),
           "top1": round(top1, 4), "pairs": len(knn), "matches_in_top10": int(y.sum()),
           "after": calibration(p, y), "before_score_as_p": calibration(np.clip(knn["score"].to_numpy(float), 0, 1), y),
           "mean_p_top1": round(float(best["match_probability"].mean()), 4),
           "auto_cut": {"kept": int((best["match_probability"] >= 0.5).sum()),
                        "precision": round(float(np.mean([(a, b) in truth for a, b, q in zip(
                            best["id_l"], best["id_r"], best["match_probability"]) if q >= 0.5] or [np.nan])), 4)},
           "merge_seconds": round(seconds, 2), "calibrate_share": round(timings.get("calibrate", 0.0)
                                                                         / timings["total_link"], 4),
           "knn_top1_probabilities_equal_merge": bool(same),
           "em": {k: report["calibration"][k] for k in ("pairs", "iterations", "converged", "match_share")}}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="auto,semantic,lexical")
    parser.add_argument("--sets", default="cldr-fr,cldr-ja,cldr-zh,firms,febrl4")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    rows = []
    for name, (left, right, gold, on) in tasks(args.sets.split(",")).items():
        for mode in args.modes.split(","):
            row = run(name, left, right, gold, on, mode)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
