"""``faiss``: FAISS inner-product search.  Exact (flat) by default; HNSW or IVF when asked, or
automatically when the indexed block is larger than ``auto_threshold`` rows and more than
``auto_flat_queries`` left rows will be searched (or their number is unknown)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pandas as pd

from ltengine.components import Retriever
from ltengine.errors import ConfigError
from ltengine.hookspecs import hookimpl
from ltengine.retrieval import empty_candidates, id_positions, inner_products, rerank_positions, topk_to_frame

INDEX_TYPES = ("auto", "flat", "hnsw", "ivf")
INDEX_FILE = "index.faiss"


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

    def vector_buffer(self, n: int, d: int) -> np.ndarray | None:
        """The exact index's own storage for ``n`` vectors, to fill and pass to :meth:`build` (None for HNSW
        and IVF, which are built from a finished matrix)."""
        if n < 1 or self.kind_for(n) != "flat":
            return None
        import faiss

        index = faiss.IndexFlatIP(d)
        index.codes.resize(n * index.code_size)  # what index.add(n vectors) allocates, left for the caller to fill
        index.ntotal = n
        buffer = faiss.rev_swig_ptr(index.get_xb(), n * d).reshape(n, d)
        self._reserved = (index, buffer)
        return buffer

    def build(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        import faiss

        if self.options.threads:
            faiss.omp_set_num_threads(self.options.threads)
        reserved = self.__dict__.pop("_reserved", None)
        in_place = reserved is not None and vectors is reserved[1]  # filled in vector_buffer: nothing to copy
        if not in_place:
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = vectors.shape
        self.ids = np.asarray(ids, dtype=np.int64)
        self.size = n
        self.index_type = self.kind_for(n)
        if in_place:
            self.index = reserved[0]
        elif self.index_type == "flat" or n < 2:
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
        if not in_place:
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


    # -- persistence and updates ------------------------------------------------------------------
    def save(self, folder: Any) -> None:
        """``index.faiss`` (``faiss.write_index``), ``ids.npy`` and ``meta.json`` in ``folder``."""
        import faiss

        faiss.write_index(self.index, str(folder / INDEX_FILE))
        np.save(folder / "ids.npy", self.ids, allow_pickle=False)
        (folder / "meta.json").write_text(json.dumps({"index_type": self.index_type, "size": int(self.size)}))

    def load(self, folder: Any, *, mmap: bool = False) -> None:
        """Read a saved index; ``mmap`` maps the vectors (flat, HNSW) or inverted lists (IVF) from the
        file instead of reading them (the first :meth:`add`/:meth:`remove` then copies the index into memory)."""
        import faiss

        meta = json.loads((folder / "meta.json").read_text())
        self.index_type, self.size = meta["index_type"], int(meta["size"])
        flags = (faiss.IO_FLAG_MMAP if self.index_type == "ivf" else faiss.IO_FLAG_MMAP_IFC) if mmap else 0
        self.index = faiss.read_index(str(folder / INDEX_FILE), flags)
        self._mapped = bool(mmap)
        self.ids = np.load(folder / "ids.npy", allow_pickle=False)
        if self.index.ntotal != len(self.ids) or self.size != len(self.ids):
            raise ValueError(f"{folder}: the FAISS index holds {self.index.ntotal} vectors for {len(self.ids)} ids")
        if self.index_type == "hnsw":
            self.index.hnsw.efSearch = self.options.hnsw_ef_search
        self._order = np.argsort(self.ids, kind="stable")

    def _owned(self) -> None:
        """Copy a memory-mapped index into memory (FAISS cannot grow or shrink a mapped one)."""
        if self.__dict__.get("_mapped"):
            import faiss

            if type(self.index) is faiss.IndexFlatIP:  # one copy of the mapped vectors, not two
                n, d = self.index.ntotal, self.index.d
                owned = faiss.IndexFlatIP(d)
                if n:
                    owned.add(faiss.rev_swig_ptr(self.index.get_xb(), n * d).reshape(n, d))
                self.index = owned
            else:
                self.index = faiss.deserialize_index(faiss.serialize_index(self.index))
            self._mapped = False

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add rows to the built index: flat and HNSW insert them, IVF assigns them to its trained lists."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(vectors) == 0:
            return
        if self.size < 2 and self.index_type != "flat":  # built as a flat index of one row: build the real kind
            self.build(np.vstack([self._vectors(), vectors]), np.concatenate([self.ids, ids]))
            return
        self._owned()
        self.index.add(vectors)
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.size = len(self.ids)
        self._order = np.argsort(self.ids, kind="stable")

    def remove(self, ids: np.ndarray) -> None:
        """Drop rows: a flat index removes them in place; HNSW and IVF, which cannot, are rebuilt from
        their own copy of the kept vectors (no re-encoding)."""
        import faiss

        drop = np.isin(self.ids, np.asarray(ids, dtype=np.int64))
        if not drop.any():
            return
        self._owned()
        if type(self.index) is faiss.IndexFlatIP:
            self.index.remove_ids(faiss.IDSelectorBatch(np.flatnonzero(drop).astype(np.int64)))
            self.ids = self.ids[~drop]
            self.size = len(self.ids)
            self._order = np.argsort(self.ids, kind="stable")
        else:
            self.build(self._vectors()[~drop], self.ids[~drop])

    def _vectors(self) -> np.ndarray:
        return self.index.reconstruct_n(0, self.index.ntotal) if self.index.ntotal else \
            np.zeros((0, self.index.d), dtype=np.float32)


@hookimpl
def register_retrievers(register):
    register(FaissRetriever)
