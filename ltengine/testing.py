"""Helpers for plugin authors' tests.

    from ltengine.testing import registered_plugin, check_encoder, check_retriever

    def test_my_encoder():
        with registered_plugin(my_plugin_module):
            check_encoder("my-encoder")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from ltengine.plugins import get_host


@contextlib.contextmanager
def registered_plugin(plugin: Any, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` (a module or object with hookimpls) for the duration of the block."""
    host = get_host()
    registered = host.register(plugin, name=name)
    try:
        yield registered
    finally:
        host.unregister(registered)


def check_encoder(name: str, model: str | None = None, **options: Any) -> np.ndarray:
    """Assert the encoder contract: float32 (n, dimension), finite, unit rows if ``normalized``,
    deterministic, order-preserving.  Returns the vectors of a few sample texts."""
    encoder = get_host().registry.get("encoder", name).create(model=model, options=options)
    texts = ["Toyota Motor Corporation", "トヨタ自動車", "Deutsche Bahn AG", "x"]
    vectors = np.asarray(encoder.encode(texts, role="document"))
    assert vectors.dtype == np.float32, f"encoder {name!r} must return float32, got {vectors.dtype}"
    assert vectors.shape == (len(texts), encoder.dimension), f"bad shape {vectors.shape}"
    assert np.isfinite(vectors).all(), "encoder returned NaN/inf"
    if encoder.normalized:
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    again = np.asarray(encoder.encode(texts[::-1], role="document"))[::-1]
    np.testing.assert_allclose(vectors, again, atol=1e-4, err_msg="encode must be deterministic and order-preserving")
    return vectors


def check_retriever(name: str, *, n_right: int = 300, n_left: int = 50, dim: int = 16, k: int = 5,
                    seed: int = 0, min_recall: float = 1.0, **options: Any) -> None:
    """Assert that retriever ``name`` returns what the exact numpy reference returns (top-k and range)."""
    registry = get_host().registry
    rng = np.random.default_rng(seed)
    right = rng.normal(size=(n_right, dim)).astype(np.float32)
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    left = rng.normal(size=(n_left, dim)).astype(np.float32)
    left /= np.linalg.norm(left, axis=1, keepdims=True)
    right_ids = np.arange(1000, 1000 + n_right, dtype=np.int64)
    left_ids = np.arange(n_left, dtype=np.int64)

    def run(retriever_name: str, opts: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
        retriever = registry.get("retriever", retriever_name).create(options=opts)
        retriever.build(right, right_ids)
        return retriever.search(left, left_ids, k), retriever.search_range(left, left_ids, 0.5)

    expected_knn, expected_range = run("exact", {})
    got_knn, got_range = run(name, options)
    assert list(got_knn.columns[:4]) == ["id_l", "id_r", "retrieval_score", "rank"], list(got_knn.columns)
    for expected, got, what in ((expected_knn, got_knn, "top-k"), (expected_range, got_range, "range")):
        exp_pairs = set(zip(expected.id_l, expected.id_r))
        got_pairs = set(zip(got.id_l, got.id_r))
        recall = len(exp_pairs & got_pairs) / max(1, len(exp_pairs))
        assert recall >= min_recall, f"{name} {what} recall {recall:.3f} < {min_recall}"
        if what == "range":
            assert got_pairs <= exp_pairs, f"{name} range search returned pairs below the threshold"
        merged = expected.merge(got, on=["id_l", "id_r"], suffixes=("_exp", "_got"))
        np.testing.assert_allclose(merged.retrieval_score_exp, merged.retrieval_score_got, atol=1e-4)
    ranks = got_knn.groupby("id_l")["rank"].apply(list)
    assert all(r == list(range(1, len(r) + 1)) for r in ranks), "ranks must be 1..k per left row"
    assert (got_range.retrieval_score >= 0.5).all(), "range search returned scores below the threshold"
    retriever = registry.get("retriever", name).create(options=options)
    retriever.build(right, right_ids)
    if retriever.can_score_pairs:  # optional: scoring given pairs
        pick = rng.integers(0, n_right, size=n_left)
        got = retriever.score_pairs(left, right_ids[pick])
        np.testing.assert_allclose(got, np.einsum("ij,ij->i", left, right[pick]), atol=1e-4)
        try:
            retriever.score_pairs(left[:1], np.array([-1]))
        except KeyError:
            pass
        else:
            raise AssertionError(f"{name}.score_pairs must raise KeyError for a right id it does not hold")
