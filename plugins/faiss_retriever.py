"""``faiss``: FAISS inner-product search.  Exact (flat) by default; HNSW or IVF when asked, or
automatically when the indexed block is larger than ``auto_threshold`` rows and more than
``auto_flat_queries`` left rows will be searched (or their number is unknown)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from ltengine.components import Retriever
from ltengine.errors import ConfigError
from ltengine.hookspecs import hookimpl
from ltengine.retrieval import empty_candidates, id_positions, inner_products, rerank_positions, topk_to_frame

INDEX_TYPES = ("auto", "flat", "hnsw", "ivf")


class FaissRetriever(Retriever):
    """Top-k by inner product on unit vectors (= cosine) with FAISS."""

    name = "faiss"

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: "flat" (exact), "hnsw", "ivf", or "auto" (flat up to auto_threshold rows, then hnsw).
        index: str = "auto"
        #: Index size above which "auto" switches from exact flat search to HNSW
        #: (measured in evals/faiss_auto.py; see README).
        auto_threshold: int = 100_000
        #: "auto" stays exact above auto_threshold rows when at most this many left rows will be
        #: searched (the Linker's ``expected_queries`` hint): building HNSW costs about as much as
        #: ~40,000 exact queries, whatever the index size (evals/faiss_auto.py; see README).
        auto_flat_queries: int = 20_000
        hnsw_m: int = 32
        hnsw_ef_construction: int = 80
        hnsw_ef_search: int = 128
        #: IVF lists; None = 4 * sqrt(n).
        ivf_nlist: int | None = None
        ivf_nprobe: int = 16
        #: FAISS OpenMP threads; None = FAISS default (all cores).
        threads: int | None = None

        def __post_init__(self) -> None:
            if self.index not in INDEX_TYPES:
                raise ConfigError(f"faiss index must be one of {INDEX_TYPES}; got {self.index!r}")

    index: Any = None

    def kind_for(self, n: int) -> str:
        """The index type used for ``n`` rows."""
        if self.options.index != "auto":
            return self.options.index
        few_queries = self.expected_queries is not None and self.expected_queries <= self.options.auto_flat_queries
        return "flat" if n <= self.options.auto_threshold or few_queries else "hnsw"

    def build(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        import faiss

        if self.options.threads:
            faiss.omp_set_num_threads(self.options.threads)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = vectors.shape
        self.ids = np.asarray(ids, dtype=np.int64)
        self.size = n
        self.index_type = self.kind_for(n)
        if self.index_type == "flat" or n < 2:
            self.index = faiss.IndexFlatIP(d)
        elif self.index_type == "hnsw":
            self.index = faiss.IndexHNSWFlat(d, self.options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = self.options.hnsw_ef_construction
            self.index.hnsw.efSearch = self.options.hnsw_ef_search
        else:
            nlist = self.options.ivf_nlist or max(1, min(n // 39, int(4 * np.sqrt(n))))
            quantizer = faiss.IndexFlatIP(d)
            self.index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            self.index.train(vectors)
            self.index.nprobe = min(self.options.ivf_nprobe, nlist)
            self._quantizer = quantizer  # keep alive
        self.index.add(vectors)
        if self.index_type == "ivf" and n >= 2:
            self.index.make_direct_map()  # for reconstruct (score_pairs)
        self._order = np.argsort(self.ids, kind="stable")

    def search(self, vectors: np.ndarray, ids: np.ndarray, k: int) -> pd.DataFrame:
        k = min(k, self.size)
        if k == 0 or len(vectors) == 0:
            return empty_candidates()
        if self.index_type == "hnsw":
            self.index.hnsw.efSearch = max(self.options.hnsw_ef_search, k)
        scores, positions = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        # ties are broken by lower right id, as in the exact reference
        return rerank_positions(topk_to_frame(positions, scores, ids, self.ids))

    def score_pairs(self, queries: np.ndarray, right_ids: np.ndarray) -> np.ndarray:
        """Inner product of ``queries[i]`` with the indexed vector of ``right_ids[i]`` (exact, from
        FAISS's own copy of the vectors)."""
        positions = id_positions(self.ids, self._order, right_ids)
        return inner_products(np.asarray(queries, dtype=np.float32), self.index.reconstruct_batch, positions)

    def search_range(self, vectors: np.ndarray, ids: np.ndarray, threshold: float) -> pd.DataFrame:
        if self.index_type != "flat":
            return super().search_range(vectors, ids, threshold)
        # FAISS range search keeps scores strictly above the radius; step just below it, then filter >=
        radius = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
        lims, scores, positions = self.index.range_search(np.ascontiguousarray(vectors, dtype=np.float32), radius)
        counts = np.diff(lims).astype(np.int64)
        frame = pd.DataFrame(
            {
                "id_l": np.repeat(np.asarray(ids, dtype=np.int64), counts),
                "id_r": self.ids[positions],
                "retrieval_score": scores.astype(np.float32),
            }
        )
        frame = frame[frame["retrieval_score"] >= threshold]
        frame = frame.sort_values(["id_l", "retrieval_score", "id_r"], ascending=[True, False, True], kind="stable")
        frame["rank"] = frame.groupby("id_l", sort=False).cumcount().astype(np.int64) + 1
        return frame.reset_index(drop=True)


@hookimpl
def register_retrievers(register):
    register(FaissRetriever)
