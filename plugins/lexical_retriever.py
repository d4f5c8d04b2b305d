"""``char-ngram``: a lexical retriever (TF-IDF of character n-grams and words, cosine).

How texts are read is the ``analyzer`` option (:mod:`ltengine_plugins._lexical_analyzers`):
``romanised`` (below), ``raw`` (folded, not romanised), ``words``, their ``+`` combinations, or
``auto`` (the default), which chooses per query text from the scripts and lengths of both sides.  The choice is
recorded in :attr:`index_type` (``char-ngram:romanised+raw+words``) and :attr:`analysis`.

Unlike vector retrievers it indexes *texts* (``inputs = "texts"``): each text is turned into its
lexical key by :func:`ltengine.lexical.names.normalize_names` (romanised to Latin, casefolded, accents and
punctuation stripped, legal forms optionally removed), then into a sparse L2-normalised TF-IDF
vector of character n-grams (scikit-learn's ``TfidfVectorizer(analyzer="char_wb")``, computed with NumPy by
:mod:`ltengine_plugins._char_ngrams`: the same rows, bit for bit), so ``Газпром``, ``ガスプロム``
and ``Gazprom`` share n-grams.  Scores are cosines in [0, 1]; pairs sharing no n-gram are never
returned.

Top-k search is ``sparse_dot_topn``'s multi-threaded sparse product that keeps only each query row's
``k`` best scores (no dense score matrix; exact; ties at the ``k``-th score broken by lower row position: a
query row whose tie there runs past the ``2k + 1`` rows the product keeps is searched again keeping
``TIE_ROWS`` = 512, unless a tied row has 512 identical copies, such as a value repeated in thousands of rows;
:mod:`ltengine_plugins._sparse_topk`).  Range search is a sparse matrix product in chunks of query rows sized
so that one chunk never holds more than ``max_cells`` scores (default 2**24; the sparse product and its dense
copy take up to ~12 bytes a score, ~200 MiB): memory stays bounded at a million right-hand rows (16 query rows
per chunk there).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from ltengine_plugins._lexical_analyzers import auto_parts, describe_right, parse_analyzer, row_weights
from ltengine_plugins._lexical_state import add_rows, load_state, remove_rows, save_state, stack_parts
from ltengine_plugins._sparse_topk import identical_row_counts, top_k

from ltengine.components import Retriever
from ltengine.errors import ConfigError
from ltengine.hookspecs import hookimpl
from ltengine.lexical.names import raw_key
from ltengine.retrieval import empty_candidates, id_positions, topk_to_frame

HAN_MODES = ("auto", "chinese", "japanese")
#: Guards the remembered query keys and rows: threads share a fitted Linker (module-level, so that
#: retrievers stay picklable for Ray and saving).
_MEMO_LOCK = threading.RLock()
#: The ``analyzer`` option's default.
DEFAULT_ANALYZER = "auto"


class CharNgramRetriever(Retriever):
    """Character n-gram (and word) TF-IDF retrieval over normalised texts, romanised or raw."""

    name = "char-ngram"
    aliases = ("lexical", "tfidf")
    inputs = "texts"

    @dataclasses.dataclass(frozen=True)
    class Options:
        #: How texts are read: "auto", "romanised", "raw", "words" or parts joined by "+" ("raw+words").
        analyzer: str = DEFAULT_ANALYZER
        #: n-gram lengths of the raw analyzer (characters; "char_wb" keeps them within words, or "char").
        raw_ngram_min: int = 1
        raw_ngram_max: int = 3
        raw_ngram_kind: str = "char_wb"
        #: Smallest and largest n-gram length (characters, within word boundaries).
        ngram_min: int = 1
        ngram_max: int = 3
        #: Romanise non-Latin scripts (anyascii; pykakasi for Japanese, pypinyin for Chinese).
        romanize: bool = True
        #: Strip firms' legal forms (GmbH, S.A., ООО, 株式会社, ...) from the start and end of names.
        legal_forms: bool = False
        #: How Han-only texts are read: "auto" (Japanese if the batch has enough kana), "chinese", "japanese".
        han: str = "auto"
        #: pypinyin for Chinese (off: anyascii's pinyin was as good); pykakasi for Japanese (on: +2-5 points).
        use_pypinyin: bool = False
        use_pykakasi: bool = True
        #: Sublinear term frequency (1 + log tf).
        sublinear_tf: bool = True
        #: Most scores held in memory at once during a search (bounds memory; query rows per chunk
        #: = max_cells // index size).
        max_cells: int = 2**24

        def __post_init__(self) -> None:
            if not 1 <= self.ngram_min <= self.ngram_max:
                raise ConfigError(f"char-ngram needs 1 <= ngram_min <= ngram_max; got {self.ngram_min}, {self.ngram_max}")
            if self.han not in HAN_MODES:
                raise ConfigError(f"char-ngram option han must be one of {HAN_MODES}; got {self.han!r}")
            parse_analyzer(self.analyzer)
            if not 1 <= self.raw_ngram_min <= self.raw_ngram_max:
                raise ConfigError("char-ngram needs 1 <= raw_ngram_min <= raw_ngram_max; "
                                  f"got {self.raw_ngram_min}, {self.raw_ngram_max}")
            if self.raw_ngram_kind not in ("char", "char_wb"):
                raise ConfigError(f"char-ngram option raw_ngram_kind must be 'char' or 'char_wb'; got {self.raw_ngram_kind!r}")
            if self.max_cells < 1:
                raise ConfigError(f"char-ngram option max_cells must be positive; got {self.max_cells}")

    size = 0
    #: Query rows per top-k product (bounds the sparse query block and the kept scores).
    QUERY_ROWS = 65_536
    #: Rows kept when a query row is searched again for the lowest positions of a tie at its k-th score.
    TIE_ROWS = 512
    #: Most query keys remembered (a hybrid link romanises each left text for the search, then
    #: again for the string similarities of its candidate pairs: the second time is a lookup).
    KEY_CACHE_SIZE = 200_000
    #: Candidate pairs whose sparse rows :meth:`pair_features` gathers at once (8,192: 1.28 s -> 0.25 s for
    #: 350,000 pairs on GeoNames 10k names; gathered whole, the rows outgrow the CPU caches).
    PAIR_ROWS = 8192

    # -- text -> sparse rows ----------------------------------------------------------------------
    def keys(self, texts: Sequence[str]) -> list[str]:
        """The lexical keys (normalised, romanised) of ``texts``."""
        from ltengine.lexical.names import normalize_names

        o = self.options
        return normalize_names([str(t) for t in texts], legal_forms=o.legal_forms, romanize=o.romanize,
                               han=o.han, use_pypinyin=o.use_pypinyin, use_pykakasi=o.use_pykakasi)

    def query_keys(self, texts: Sequence[str]) -> list[str]:
        """:meth:`keys` of query texts, remembered for the next call (bounded)."""
        return self._cached("_query_keys", texts, self.keys)

    def _cached(self, slot: str, texts: Sequence[str], compute: Any) -> list[Any]:
        with _MEMO_LOCK:
            cache = self.__dict__.setdefault(slot, {})
            unique = list(dict.fromkeys(texts))
            missing = [t for t in unique if t not in cache]
            if missing:
                if len(cache) + len(missing) > self.KEY_CACHE_SIZE:
                    cache.clear()
                    missing = unique
                cache.update(zip(missing, compute(missing)))
            return [cache[t] for t in texts]

    def _part_inputs(self, part: str, texts: Sequence[str], *, query: bool) -> list[str]:
        if part == "romanised":
            return self.query_keys(texts) if query else self.keys(texts)
        return self._cached("_raw_keys", texts, lambda ts: [raw_key(str(t)) for t in ts]) if query else \
            [raw_key(str(t)) for t in texts]

    def _weights(self, texts: Sequence[str]) -> np.ndarray:
        """Per query text, the weight of each built part (rows sum to 1)."""
        auto, parts, groups = self.auto, self.parts, self.right_groups
        rows = self._cached("_row_weights", texts, lambda ts: [row_weights(str(t), parts, auto, groups) for t in ts])
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), len(parts))

    def transform(self, texts: Sequence[str]) -> Any:
        """Sparse TF-IDF rows (CSR, float32) of query ``texts`` in the index's vocabulary: one L2-normalised
        block per part, scaled by the text's weight for that part (so a dot product with an index row
        is the weighted sum of the parts' cosines).  Rows are remembered (bounded): a hybrid link
        transforms each left text for the search, then again for the features of its candidate pairs."""
        import scipy.sparse as sp

        texts = [str(t) for t in texts]
        with _MEMO_LOCK:
            blocks, where = self.__dict__.setdefault("_query_rows", ([], {}))
            missing = list(dict.fromkeys(t for t in texts if t not in where))
            if len(where) + len(missing) > self.KEY_CACHE_SIZE:
                blocks.clear()
                where.clear()
                missing = list(dict.fromkeys(texts))
            if missing:
                block = self._transform_new(missing)  # before `where` points at it: a failure leaves no dangling rows
                where.update((text, (len(blocks), row)) for row, text in enumerate(missing))
                blocks.append(block)
            located = np.array([where[t] for t in texts], dtype=np.int64).reshape(len(texts), 2)
            if len(blocks) == 1:
                return blocks[0][located[:, 1]]
            order = np.argsort(located[:, 0], kind="stable")
            parts = [blocks[b][located[order[located[order, 0] == b], 1]] for b in np.unique(located[:, 0])]
            rows = sp.vstack(parts, format="csr", dtype=np.float32)
            inverse = np.empty(len(texts), dtype=np.int64)
            inverse[order] = np.arange(len(texts))
            return rows[inverse]

    def _transform_new(self, texts: list[str]) -> Any:
        import scipy.sparse as sp

        if self.parts == ("romanised",):
            rows = self.vectorizers[0].transform(self.query_keys(texts)).astype(np.float32, copy=False).tocsr()
        else:
            weights = self._weights(texts)
            blocks = [sp.diags(weights[:, i]) @ vectorizer.transform(self._part_inputs(part, texts, query=True))
                      if weights[:, i].any() else sp.csr_matrix((len(texts), len(vectorizer.vocabulary_)), dtype=np.float32)
                      for i, (part, vectorizer) in enumerate(zip(self.parts, self.vectorizers))]  # unused parts: zeros
            rows = stack_parts(blocks)  # as the index's parts are stacked (scipy's hstack, array for array)
        # each row's n-grams in column order (the weighting's product leaves them unordered): the top-k product then
        # walks the index's rows in memory order, 1.9x faster at 100,000 names (evals/results/lexical_search_100000.json)
        rows.sort_indices()
        return rows

    def _vectorizer(self, part: str) -> Any:
        """The part's TF-IDF vectorizer: character n-grams of up to 3 characters with NumPy
        (:mod:`ltengine_plugins._char_ngrams`, scikit-learn's rows bit for bit), anything else scikit-learn's."""
        from ltengine_plugins._char_ngrams import MAX_N, NgramTfidfVectorizer

        o = self.options
        kind, ngrams = {"romanised": ("char_wb", (o.ngram_min, o.ngram_max)),
                        "raw": (o.raw_ngram_kind, (o.raw_ngram_min, o.raw_ngram_max))}.get(part, ("word", (1, 1)))
        if kind != "word" and ngrams[1] <= MAX_N:
            return NgramTfidfVectorizer(analyzer=kind, ngram_range=ngrams, sublinear_tf=o.sublinear_tf, dtype=np.float32)
        from sklearn.feature_extraction.text import TfidfVectorizer

        common = {"sublinear_tf": o.sublinear_tf, "dtype": np.float32, "lowercase": False}
        if kind != "word":
            return TfidfVectorizer(analyzer=kind, ngram_range=ngrams, **common)
        return TfidfVectorizer(analyzer="word", token_pattern=r"(?u)\b\w+\b", **common)

    def build(self, vectors: Sequence[str], ids: np.ndarray) -> None:
        """Index the right-hand texts ``vectors`` (for this retriever, texts) with ids ``ids``."""
        o = self.options
        texts = [str(t) for t in vectors]
        self.ids = np.asarray(ids, dtype=np.int64)
        self.size = len(self.ids)
        parts = parse_analyzer(o.analyzer)
        self.auto = not parts
        raw = [raw_key(t) for t in texts] if (self.auto or "raw" in parts or "words" in parts) else None
        about = describe_right(texts, raw) if raw is not None else {}
        self.parts = auto_parts(about) if self.auto else parts
        self.right_groups = frozenset(about.get("script_groups", ()))
        self.analysis = {"analyzer": o.analyzer, "parts": list(self.parts), **about}
        self.index_type = f"{self.name}:{'+'.join(self.parts)}"
        self.vectorizers, blocks = [], []
        for part in self.parts:
            inputs = self.keys(texts) if part == "romanised" else raw
            assert inputs is not None
            if part == "romanised" or (part == "raw" and "romanised" not in self.parts):
                self.right_keys = np.asarray(inputs, dtype=object)  # for the string similarities of pairs
            if not any(k.strip() for k in inputs):  # nothing to index: keep an empty vocabulary that matches nothing
                inputs = [*inputs, "\x00" if part != "words" else "x"]
            vectorizer = self._vectorizer(part)
            rows = vectorizer.fit_transform(inputs)
            blocks.append(rows[: self.size] if rows.shape[0] > self.size else rows)  # slicing copies
            del rows
            self.vectorizers.append(vectorizer)
        if "words" in self.parts and "romanised" not in self.parts and "raw" not in self.parts:
            self.right_keys = np.asarray(raw, dtype=object)
        self.vectorizer = self.vectorizers[0]
        self.matrix = stack_parts(blocks)  # empties blocks: the parts are gone before _ready's transposed copy
        self._ready()

    # -- search ---------------------------------------------------------------------------------
    def _chunks(self, queries: Any) -> Any:
        rows = max(1, self.options.max_cells // max(1, self.size))
        for start in range(0, queries.shape[0], rows):
            yield start, (queries[start : start + rows] @ self._columns).toarray()

    def search(self, vectors: Sequence[str], ids: np.ndarray, k: int) -> pd.DataFrame:
        k = min(k, self.size)
        if k == 0 or len(vectors) == 0:
            return empty_candidates()
        queries = self.transform(vectors).tocsr()
        ids = np.asarray(ids, dtype=np.int64)
        frames = []
        for start in range(0, queries.shape[0], self.QUERY_ROWS):
            chunk = queries[start : start + self.QUERY_ROWS]
            top, top_scores = self._top_k(chunk, k)
            frames.append(topk_to_frame(top, top_scores, ids[start : start + chunk.shape[0]], self.ids))
        return pd.concat(frames, ignore_index=True)

    def _top_k(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each query row's ``k`` best (position, score), score descending then lower position
        (:func:`ltengine_plugins._sparse_topk.top_k`: ties past the kept rows searched again, up to :attr:`TIE_ROWS`)."""
        return top_k(queries, self._columns, k, tie_rows=self.TIE_ROWS, max_cells=self.options.max_cells,
                     copies=self._copies)

    def _copies(self) -> np.ndarray:
        """Per indexed row, how many indexed rows hold the same TF-IDF row (counted on the first tie, then kept)."""
        with _MEMO_LOCK:
            if "_copy_counts" not in self.__dict__:
                self._copy_counts = identical_row_counts(self.matrix.tocsr())
            return self._copy_counts

    def search_range(self, vectors: Sequence[str], ids: np.ndarray, threshold: float) -> pd.DataFrame:
        if self.size == 0 or len(vectors) == 0:
            return empty_candidates()
        queries = self.transform(vectors)
        ids = np.asarray(ids, dtype=np.int64)
        frames = []
        for start, scores in self._chunks(queries):
            rows, cols = np.nonzero((scores >= threshold) & (scores > 0))
            frames.append(pd.DataFrame({"id_l": ids[start + rows], "id_r": self.ids[cols],
                                        "retrieval_score": scores[rows, cols].astype(np.float32)}))
        out = pd.concat(frames, ignore_index=True)
        out = out.sort_values(["id_l", "retrieval_score", "id_r"], ascending=[True, False, True], kind="stable")
        out["rank"] = out.groupby("id_l", sort=False).cumcount().astype(np.int64) + 1
        return out.reset_index(drop=True)

    def score_pairs(self, texts: Sequence[str], right_ids: np.ndarray) -> np.ndarray:
        """Cosine of the lexical keys of ``texts[i]`` and right row ``right_ids[i]`` (float32, one per pair)."""
        return self.pair_features(texts, right_ids, strings=False)["score_lexical"]

    def pair_features(self, texts: Sequence[str], right_ids: np.ndarray, *, strings: bool = True) -> dict[str, np.ndarray]:
        """``score_lexical`` (the cosine of :meth:`score_pairs`) and, with ``strings``, the string
        similarities of the two lexical keys (:data:`ltengine.lexical.string_features.STRING_FEATURES`),
        one float32 per pair: what the hybrid fusers weigh."""
        from ltengine.lexical.string_features import STRING_FEATURES, string_features

        right_ids = np.asarray(right_ids, dtype=np.int64)
        if len(right_ids) == 0:
            names = ("score_lexical", *STRING_FEATURES) if strings else ("score_lexical",)
            return {name: np.zeros(0, dtype=np.float32) for name in names}
        codes, uniques = pd.factorize(np.asarray(texts, dtype=object))  # each distinct text read once
        uniques = [str(t) for t in uniques]
        queries = self.transform(uniques)
        positions = id_positions(self.ids, self._order, right_ids)
        cosine = np.empty(len(positions), dtype=np.float32)
        for lo in range(0, len(positions), self.PAIR_ROWS):  # rows gathered a chunk at a time: they stay in cache
            part = slice(lo, lo + self.PAIR_ROWS)
            cosine[part] = np.asarray(queries[codes[part]].multiply(self.matrix[positions[part]]).sum(axis=1)).ravel()
        out = {"score_lexical": cosine}
        keys = self.query_keys(uniques) if "romanised" in self.parts else [raw_key(t) for t in uniques]
        if strings:
            out.update(string_features(np.asarray(keys, dtype=object)[codes], self.right_keys[positions]))
        return out


    # -- persistence and updates (plugins/_lexical_state.py: vocabularies as JSON, no pickle) --------
    def save(self, folder: Any) -> None:
        """Write the built index (vocabularies, IDF, TF-IDF matrix, ids, keys) into ``folder``."""
        save_state(self, folder)

    def load(self, folder: Any, *, mmap: bool = False) -> None:
        """Read what :meth:`save` wrote (the matrix is read into memory, also with ``mmap``)."""
        load_state(self, folder, self._vectorizer)
        self._ready()

    def add(self, vectors: Sequence[str], ids: np.ndarray) -> None:
        """Index more texts: new n-grams join the vocabulary and the IDF is refitted from the document
        frequencies held, without re-analysing the rows indexed (the analyzer parts stay as built)."""
        texts = [str(t) for t in vectors]
        raw = [raw_key(t) for t in texts]
        romanised = self.keys(texts) if "romanised" in self.parts else raw
        add_rows(self, [romanised if part == "romanised" else raw for part in self.parts], ids, romanised)
        self._ready()

    def remove(self, ids: np.ndarray) -> None:
        """Drop rows; the IDF is refitted without them."""
        remove_rows(self, ids)
        self._ready()

    def _ready(self) -> None:
        with _MEMO_LOCK:
            self.__dict__.pop("_query_rows", None)  # query rows in the old vocabulary
            self.__dict__.pop("_copy_counts", None)  # counted over the old rows
        self.size = len(self.ids)
        self._columns = self.matrix.T.tocsr()
        self._order = np.argsort(self.ids, kind="stable")


@hookimpl
def register_retrievers(register):
    register(CharNgramRetriever)
