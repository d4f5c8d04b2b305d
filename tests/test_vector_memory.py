"""The right side's vectors are held once: each encoded chunk goes straight to its rows, and with one exact FAISS
index those rows are the index's own storage (no (rows, d) matrix beside it, no copy into it)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
from ltengine_plugins.faiss_retriever import FaissRetriever

import ltengine as lt
from ltengine.engine.encoding import encode_side, encode_texts, resolve_encoder
from ltengine.run import RunContext

NAMES = np.array(["Moskva", "Москва", "Kyiv", "Київ", "Moskva", "München", "Den Haag", "Kyiv", "北京", "Genève",
                  "Moskva", "東京", "Zürich"], dtype=object)  # repeats, unsorted


def test_encode_texts_writes_each_chunk_to_its_rows() -> None:
    config = lt.LinkConfig(encode_chunk_size=3, progress=False, cache=False)
    host = lt.get_host()
    encoder = resolve_encoder(host.registry, config)
    side = encode_side(encoder, NAMES, "document", RunContext(config, host))
    expected = side[np.arange(len(NAMES))]  # each row's vector, through the distinct texts' matrix
    assert expected.shape == (len(NAMES), encoder.dimension)
    np.testing.assert_array_equal(encode_texts(encoder, NAMES, "document", RunContext(config, host)), expected)
    supplied = np.full_like(expected, np.nan)
    filled = encode_texts(encoder, NAMES, "document", RunContext(config, host), lambda d: supplied)
    assert filled is supplied
    np.testing.assert_array_equal(filled, expected)


def traced_fit(config: lt.LinkConfig, right: pd.DataFrame) -> tuple[lt.Linker, int]:
    """A fitted Linker and the peak of the memory Python and NumPy allocated during ``fit`` (FAISS's is not traced)."""
    linker = lt.Linker(config)
    assert linker.encoder is not None  # the model is loaded before tracing
    tracemalloc.start()
    try:
        linker.fit(right)
        return linker, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fit_encodes_the_right_side_into_the_faiss_index(monkeypatch) -> None:
    right = pd.DataFrame({"name": [f"firm {i % 3000} holdings" for i in range(4000)]})
    left = right.sample(40, random_state=0)
    config = lt.LinkConfig(left_on=("name",), right_on=("name",), mode="semantic", encode_chunk_size=256, progress=False,
                           retriever_options={"index": "flat"})
    lt.Linker(config).fit(right)  # fills the embedding cache: the traced fits read their vectors from disk
    matrix = 4000 * 512 * 4
    linker, peak = traced_fit(config, right)
    monkeypatch.setattr(FaissRetriever, "vector_buffer", lambda self, n, d: None)  # the general path, for comparison
    general, general_peak = traced_fit(config, right)
    assert peak < matrix < general_peak, f"fit allocated {peak} bytes beside the index: the (rows, d) matrix?"
    assert general_peak - peak > 0.9 * matrix  # what the general path holds beside the index: the whole matrix
    found, expected = linker.candidates(left, k=5), general.candidates(left, k=5)
    pd.testing.assert_frame_equal(found, expected)
    assert (found.loc[found["rank"] == 1, "text_r"].to_numpy() == left["name"].to_numpy()).all()
