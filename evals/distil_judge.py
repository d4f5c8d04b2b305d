"""lt.distil_judge: an LLM judge's verdicts kept as a local cross-encoder, and the requests it saves.

``python -m evals.distil_judge [--suite quick|full] [--api-base URL --model NAME]`` writes
``evals/results/distil_judge.json``.

Judge: the local OpenAI-compatible test server (tests/openai_server.py: a deterministic judge whose
verdict is "same normalised name"), or a real local LLM behind ``--api-base`` (e.g. llama-cpp-python's
server, see evals/judge_local_llm.py).  Data: synthetic firm names with legal-form and case variants
(tests/llm_fixtures.synthetic_tables) -- dataset A (distilled on) and dataset B (same kind, other
names, never seen by the distillation).  Reported: agreement of the distilled model with the judge on
the held-out rows of A; on B, the pairs and requests the judge alone gets (every candidate; and its
default cascade on the retrieval score) against the distilled cascade (cross-encoder, then the judge
only for pairs whose calibrated score is in 0.1-0.9), and the F1 of each against the true links.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ltengine as lt
from evals.common import prf, write_result

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _f1(out, truth: dict[str, str]) -> dict:
    best = out.sort_values(["name_x", "rerank_score"], ascending=[True, False], kind="stable").groupby("name_x").head(1)
    keep = best["is_match"].fillna(False).astype(bool).to_numpy()
    predicted = set(zip(best.loc[keep, "name_x"], best.loc[keep, "name_y"]))
    return prf(predicted, set(truth.items()))


def _requests(out) -> dict:
    stage = out.attrs["ltengine"]["report"]["rerank"]["stages"][-1]
    return {"pairs": stage["pairs"], "sent": stage["sent"], "requests": stage.get("requests"),
            "cache_hits": stage.get("cache_hits")}


def run(suite: str, api_base: str | None, model: str, epochs: int = 3, learning_rate: float = 1e-4,
        json_mode: bool = True, concurrency: int | None = None) -> dict[str, Any]:
    from llm_fixtures import register_rerank_plugins, synthetic_tables
    from openai_server import FakeOpenAI

    quick = suite == "quick"
    register_rerank_plugins()
    n_a, n_b, k = (60, 40, 5) if quick else (150, 100, 5)
    left_a, right_a, _ = synthetic_tables(seed=11, n=n_a)
    left_b, right_b, truth_b = synthetic_tables(seed=12, n=n_b)
    work = Path(tempfile.mkdtemp(prefix="ltengine-distil-"))
    server = None
    if api_base is None:
        server = FakeOpenAI().start()
        api_base = server.url
        os.environ.setdefault("LTENGINE_TEST_KEY", "sk-local")
    judge_opts = {"api_base": api_base, "api_key_env": "LTENGINE_TEST_KEY", "batch_size": 8, "timeout": 120.0,
                  "input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "json_mode": json_mode,
                  **({} if concurrency is None else {"concurrency": concurrency, "timeout": 600.0})}
    judge = f"llm:{model}"
    link = {"model": "fast", "cache_dir": str(work / "cache"), "progress": False}
    try:
        start, cpu = time.perf_counter(), time.process_time()
        path = lt.distil_judge(
            left_a, right_a, on="name", judge=judge, k=k, judge_options=judge_opts, max_pairs=4 * n_a,
            output_dir=work / "judge-ce", base_model="all-MiniLM-L6-v2", epochs=epochs, batch_size=16, max_length=32,
            learning_rate=learning_rate, max_minutes=None, link_options={"cache_dir": link["cache_dir"]}, progress=False,
        )
        distil_seconds = {"wall": round(time.perf_counter() - start, 1), "cpu": round(time.process_time() - cpu, 1)}
        report = json.loads((Path(path) / "distillation.json").read_text())
        card = json.loads((Path(path) / "ltengine-training.json").read_text())
        requests_before = len(server.chat_requests()) if server else None
        rows = {}
        for name, rerank, options in (
            ("judge alone (every candidate)", judge, {**judge_opts, "cascade": False}),
            ("judge alone (default cascade on retrieval)", judge, judge_opts),
            ("distilled cross-encoder alone", f"cross-encoder:{path}", {}),
            ("distilled cascade (cross-encoder, then judge)", [f"cross-encoder:{path}", judge], {"llm": judge_opts}),
        ):
            t0 = time.perf_counter()
            out = lt.merge_knn(left_b, right_b, on="name", k=k, rerank=rerank, rerank_options=options,
                               **{**link, "cache_dir": str(work / f"cache-{len(rows)}")})  # no shared answers
            uses_llm = rerank == judge or isinstance(rerank, list)
            rows[name] = {**_f1(out, truth_b), **(_requests(out) if uses_llm else {"requests": 0}),
                          "seconds": round(time.perf_counter() - t0, 1)}
        alone = rows["judge alone (every candidate)"]
        cascade = rows["distilled cascade (cross-encoder, then judge)"]
        result = {
            "benchmark": "distil_judge", "suite": suite,
            "command": f"python -m evals.distil_judge --suite {suite} --epochs {epochs} --learning-rate {learning_rate:g}"
            + ("" if server else f" --api-base {api_base} --model {model}") + ("" if json_mode else " --no-json-mode")
            + ("" if concurrency is None else f" --concurrency {concurrency}"),
            "training": {"base_model": "all-MiniLM-L6-v2", "epochs": epochs, "learning_rate": learning_rate,
                         "steps": card.get("steps"), "stopped_by": card.get("stopped_by")},
            "judge": "tests/openai_server.py (rule judge)" if server else f"{model} at {api_base}",
            "dataset_a": {"left": n_a, "right": len(right_a), "k": k}, "dataset_b": {"left": n_b, "right": len(right_b)},
            "distillation": {**{key: report.get(key) for key in (
                "pairs_sent", "pairs_labelled", "judge_matches", "requests", "training_pairs", "holdout_pairs",
                "holdout_agreement", "holdout_f1_vs_judge", "holdout_judge_matches")},
                "calibration": card.get("calibration"), "calibration_ece": card.get("calibration_ece"),
                "seconds": distil_seconds},
            "dataset_b_rows": rows,
            "cascade_share_of_judge_alone_pairs": round(cascade["sent"] / alone["sent"], 4) if alone["sent"] else None,
            "cascade_share_of_judge_alone_requests": round(cascade["requests"] / alone["requests"], 4)
            if alone["requests"] else None,
            "server_requests_total": len(server.chat_requests()) if server else None,
            "server_requests_dataset_b": (len(server.chat_requests()) - requests_before) if server else None,
            "notes": "2-core CPU shared with other jobs: wall times inflated, CPU times beside them; load in machine.",
        }
        return result
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)  # the trained model and caches are scratch


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=("quick", "full"), default="quick")
    parser.add_argument("--api-base", default=None, help="a real OpenAI-compatible server (default: the test server)")
    parser.add_argument("--model", default="openai/gpt-4o-mini", help="litellm model name for --api-base")
    parser.add_argument("--name", default="distil_judge", help="results file name")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--no-json-mode", action="store_true",
                        help="do not ask for response_format=json_object (llama-cpp-python's JSON grammar is slow on CPU)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="requests in flight (1 for a local server that answers one at a time; default: the judge's); "
                             "given, the request timeout is 600 s instead of 120 s")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(args.suite, args.api_base, args.model, args.epochs, args.learning_rate, not args.no_json_mode,
                 args.concurrency)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(f"wrote {write_result(result, args.name)}")
    return result


if __name__ == "__main__":
    main()
