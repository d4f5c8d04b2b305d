"""Contract tests: every registered retriever against the exact numpy reference."""

from __future__ import annotations

import pytest

from ltengine import get_host
from ltengine.testing import check_retriever

VECTOR_RETRIEVERS = [spec.name for spec in get_host().registry.specs("retriever")
                     if getattr(spec.cls, "inputs", "vectors") == "vectors"]


@pytest.mark.parametrize("name", VECTOR_RETRIEVERS)
def test_every_retriever_matches_exact(name: str) -> None:
    """Vector retrievers only; text retrievers (``inputs = "texts"``) are tested in test_lexical_retriever.py."""
    check_retriever(name)


@pytest.mark.parametrize(
    ("options", "min_recall"),
    [({"index": "flat"}, 1.0), ({"index": "hnsw"}, 0.95), ({"index": "ivf", "ivf_nprobe": 64}, 0.95),
     ({"index": "auto", "auto_threshold": 10}, 0.95)],
)
def test_faiss_index_types(options: dict, min_recall: float) -> None:
    check_retriever("faiss", n_right=2000, n_left=100, min_recall=min_recall, **options)


def test_faiss_auto_switches_by_size() -> None:
    spec = get_host().registry.get("retriever", "faiss")
    retriever = spec.create(options={"auto_threshold": 100})
    assert retriever.kind_for(100) == "flat" and retriever.kind_for(101) == "hnsw"
    # few known queries: exact search is cheaper than building HNSW, whatever the size
    retriever = spec.create(options={"auto_threshold": 100, "auto_flat_queries": 50})
    retriever.expected_queries = 50
    assert retriever.kind_for(10**7) == "flat"
    retriever.expected_queries = 51
    assert retriever.kind_for(101) == "hnsw"


def test_merge_tells_faiss_auto_how_many_queries() -> None:
    """lt.merge knows the left size: a big index searched by few rows stays exact (the report says so)."""
    import numpy as np
    import pandas as pd

    import ltengine as lt

    right = pd.DataFrame({"name": [f"company number {i}" for i in range(300)]})
    left = right.sample(20, random_state=0).reset_index(drop=True)
    opts = {"retriever_options": {"auto_threshold": 100, "auto_flat_queries": 20}, "mode": "semantic"}
    out = lt.merge(left, right, on="name", progress=False, config=lt.LinkConfig(**opts))
    assert out.attrs["ltengine"]["report"]["index"] == {"flat": 1}
    assert (out["name_x"] == out["name_y"]).all()
    many = pd.concat([left] * 2, ignore_index=True)  # 40 queries > 20: HNSW
    out = lt.merge(many, right, on="name", progress=False, config=lt.LinkConfig(**opts))
    assert out.attrs["ltengine"]["report"]["index"] == {"hnsw": 1}
    assert np.isclose(out["score"], 1.0, atol=1e-5).mean() > 0.9


def test_k_larger_than_index_is_clipped() -> None:
    import numpy as np

    retriever = get_host().registry.get("retriever", "faiss").create()
    vectors = np.eye(3, dtype=np.float32)
    retriever.build(vectors, np.array([7, 8, 9]))
    hits = retriever.search(vectors[:1], np.array([0]), 10)
    assert list(hits.id_r) == [7, 8, 9] and list(hits["rank"]) == [1, 2, 3]


def test_bad_faiss_index_option() -> None:
    from ltengine.errors import ConfigError

    with pytest.raises(ConfigError, match="faiss index must be one of"):
        get_host().registry.get("retriever", "faiss").create(options={"index": "annoy"})
    with pytest.raises(ConfigError, match="no option 'nprobe'.*ivf_nprobe"):
        get_host().registry.get("retriever", "faiss").create(options={"nprobe": 3})
