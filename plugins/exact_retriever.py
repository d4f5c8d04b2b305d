"""``exact``: brute-force inner-product search in numpy; the reference all retrievers are tested against."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ltengine.components import Retriever
from ltengine.hookspecs import hookimpl
from ltengine.retrieval import empty_candidates, id_positions, inner_products, topk_to_frame

#: Query rows scored per matrix product (bounds memory at rows x index size floats).
QUERY_CHUNK = 1024


class ExactRetriever(Retriever):
    """Exact top-k by inner product (cosine on unit vectors); ties broken by lower right id."""

    name = "exact"
    aliases = ("numpy", "brute-force")

    def build(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.ids = np.asarray(ids, dtype=np.int64)
        self.size = len(self.ids)
        self._order = np.argsort(self.ids, kind="stable")

    def score_pairs(self, queries: np.ndarray, right_ids: np.ndarray) -> np.ndarray:
        """Inner product of ``queries[i]`` with the vector of ``right_ids[i]``."""
        positions = id_positions(self.ids, self._order, right_ids)
        return inner_products(np.asarray(queries, dtype=np.float32), self.vectors.__getitem__, positions)

    def search(self, vectors: np.ndarray, ids: np.ndarray, k: int) -> pd.DataFrame:
        k = min(k, self.size)
        if k == 0 or len(vectors) == 0:
            return empty_candidates()
        frames = []
        for start in range(0, len(vectors), QUERY_CHUNK):
            scores = vectors[start : start + QUERY_CHUNK] @ self.vectors.T
            # lexsort by (-score, position) keeps ties deterministic
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            top = np.take_along_axis(scores, order, axis=1)
            frames.append(topk_to_frame(order, top, ids[start : start + QUERY_CHUNK], self.ids))
        return pd.concat(frames, ignore_index=True)

    def search_range(self, vectors: np.ndarray, ids: np.ndarray, threshold: float) -> pd.DataFrame:
        frames = []
        for start in range(0, len(vectors), QUERY_CHUNK):
            scores = vectors[start : start + QUERY_CHUNK] @ self.vectors.T
            rows, cols = np.nonzero(scores >= threshold)
            frame = pd.DataFrame(
                {
                    "id_l": np.asarray(ids, dtype=np.int64)[start + rows],
                    "id_r": self.ids[cols],
                    "retrieval_score": scores[rows, cols].astype(np.float32),
                }
            )
            frames.append(frame)
        out = pd.concat(frames, ignore_index=True) if frames else empty_candidates()
        out = out.sort_values(["id_l", "retrieval_score", "id_r"], ascending=[True, False, True], kind="stable")
        out["rank"] = out.groupby("id_l", sort=False).cumcount().astype(np.int64) + 1
        return out.reset_index(drop=True)


    # -- persistence and updates ------------------------------------------------------------------
    def save(self, folder: Any) -> None:
        """``vectors.npy`` and ``ids.npy`` in ``folder``."""
        np.save(folder / "vectors.npy", self.vectors, allow_pickle=False)
        np.save(folder / "ids.npy", self.ids, allow_pickle=False)

    def load(self, folder: Any, *, mmap: bool = False) -> None:
        """Read saved vectors (``mmap``: mapped from the file, read-only)."""
        vectors = np.load(folder / "vectors.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
        ids = np.load(folder / "ids.npy", allow_pickle=False)
        if len(vectors) != len(ids):
            raise ValueError(f"{folder}: {len(vectors)} vectors for {len(ids)} ids")
        self.vectors, self.ids, self.size = vectors, ids, len(ids)
        self._order = np.argsort(self.ids, kind="stable")

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Append rows (the result equals a build over all of them)."""
        self.build(np.vstack([self.vectors, np.asarray(vectors, dtype=np.float32)]),
                   np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)]))

    def remove(self, ids: np.ndarray) -> None:
        """Drop rows (the result equals a build over the others)."""
        keep = ~np.isin(self.ids, np.asarray(ids, dtype=np.int64))
        self.build(self.vectors[keep], self.ids[keep])


@hookimpl
def register_retrievers(register):
    register(ExactRetriever)
