"""Base classes of the pipeline stages: Blocker, Encoder, Retriever, Reranker, and the hybrid mode's Fuser.

A component is a class with a ``name`` (plus optional ``aliases``) and an ``Options`` dataclass.
Plugins register component *classes* through the ``register_*`` hooks; the core instantiates them
with validated options.  Components return plain values (Series, arrays, frames); the core owns ids,
blocks, caching, progress bars and the output schema.

Optional capabilities are declared here with their defaults, and the core reads them directly
(never by probing with ``hasattr``): a plugin overrides only what it offers.

- Blocker: ``key_description``
- Encoder: ``accepts``, ``priority``, ``symmetric``, ``normalized``, ``cache_id``, ``training_base``
- Retriever: ``inputs``, ``size``, ``index_type``, ``search_range``, ``score_pairs``/``can_score_pairs``,
  ``pair_features``, ``save``/``load``/``can_save``, ``add``/``remove``/``can_update``
- Reranker: ``attach``, ``cascade_default``, ``output_columns``, ``calls_llm``
- Fuser: ``fit``
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ltengine.errors import ComponentError, ConfigError, did_you_mean

if TYPE_CHECKING:  # heavy imports only for type checkers
    import numpy as np
    import pandas as pd

Kind = Literal["blocker", "encoder", "retriever", "reranker", "fuser"]
Role = Literal["query", "document"]
KINDS: tuple[Kind, ...] = ("blocker", "encoder", "retriever", "reranker", "fuser")

@dataclasses.dataclass(frozen=True)
class NoOptions:
    """Options of a component that takes none."""


def build_options(options_cls: type, values: Mapping[str, Any] | None, owner: str) -> Any:
    """Instantiate ``options_cls`` from ``values``; unknown keys raise ConfigError naming the valid ones."""
    if isinstance(values, options_cls):
        return values
    values = dict(values or {})
    fields = {f.name for f in dataclasses.fields(options_cls)}
    for key in values:
        if key not in fields:
            valid = ", ".join(sorted(fields)) or "none"
            raise ConfigError(
                f"{owner} has no option {key!r}.{did_you_mean(key, fields)} Valid options: {valid}."
            )
    try:
        return options_cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid options for {owner}: {exc}") from exc


class Component:
    """Common base: a registered name, aliases and a frozen ``Options`` dataclass."""

    kind: ClassVar[Kind]
    #: Registry name, e.g. ``"faiss"``.  Must be unique per kind across all plugins (required:
    #: registering a class whose name is empty fails).
    name: ClassVar[str] = ""
    #: Other names accepted for this component.
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Dataclass of the component's options; unknown keys are rejected.
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        merged = {**dict(options or {}), **kwargs}
        self.options = build_options(self.Options, merged, f"{self.kind} {self.name!r}")

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r} {self.options}>"


class Blocker(Component):
    """Assigns each record a block key; only records sharing a key are compared."""

    kind: ClassVar[Kind] = "blocker"

    def __init__(self, columns: Sequence[str] = (), options: Mapping[str, Any] | None = None, **kw: Any):
        super().__init__(options, **kw)
        self.columns = tuple(columns)

    def keys(self, records: pd.DataFrame) -> pd.Series:
        """Return one hashable key per row of ``records`` (index aligned).

        ``records`` holds the blocking columns.  A missing key (NA) puts the row in no block.
        """
        raise NotImplementedError

    @property
    def key_description(self) -> str | None:
        """How the keys were normalised, in words, for the run report (``report["block_keys"]``);
        None (the default): nothing to say."""
        return None


class Encoder(Component):
    """Turns texts into float32 vectors (n, dimension)."""

    kind: ClassVar[Kind] = "encoder"
    #: Model used when none is given.
    default_model: ClassVar[str | None] = None
    #: Whether ``encode`` returns unit-length rows (so inner product = cosine).
    normalized: bool = True
    #: Order in which encoders are asked to claim a model id (:meth:`accepts`) when none is named:
    #: highest first, ties in registration order.  Catch-alls use a low priority (the built-in
    #: sentence-transformers encoder, which accepts any id with a "/", has -100), so a plugin's
    #: encoder with the default 0 claims its model ids first.
    priority: ClassVar[int] = 0

    def __init__(self, model: str | None = None, options: Mapping[str, Any] | None = None, **kw: Any):
        super().__init__(options, **kw)
        self.model = model or self.default_model

    @classmethod
    def accepts(cls, model: str) -> bool:
        """Return True if this encoder should handle ``model`` when no encoder is named explicitly
        (asked in :attr:`priority` order; default: False, claim nothing)."""
        return False

    @property
    def cache_id(self) -> str:
        """Identity of the embeddings this encoder produces (name, model and options): the cache key prefix.

        A model that is a local folder counts by its content (every file, recursively), not its path."""
        from ltengine.model_identity import model_key

        return f"{self.name}|{model_key(self.model)}|{self.options!r}"

    @property
    def symmetric(self) -> bool:
        """True when ``encode`` ignores ``role``: the two sides then share cached vectors (a dedup
        encodes each text once).  Override where the roles differ only by options (prefixes)."""
        return False

    @property
    def dimension(self) -> int:
        """Length of each vector (may load the model)."""
        raise NotImplementedError

    def encode(self, texts: list[str], *, role: Role) -> np.ndarray:
        """Embed ``texts`` (never empty strings) as a float32 array of shape (len(texts), dimension).

        ``role`` is ``"query"`` for the left side and ``"document"`` for the right side; encoders
        with asymmetric prefixes (e5's ``query: ``/``passage: ``) use it.
        """
        raise NotImplementedError

    def training_base(self) -> Mapping[str, str] | None:
        """What :func:`ltengine.train_model` fine-tunes for this encoder: ``{"model": a
        sentence-transformers folder or Hub id, "encoder": the encoder that runs the trained folder,
        "query_prefix": ..., "document_prefix": ...}``; None (the default) when its weights cannot
        be trained (numpy or API models: use an adapter)."""
        return None


class Retriever(Component):
    """Nearest-neighbour search over the right-hand vectors of one block."""

    kind: ClassVar[Kind] = "retriever"
    #: What ``build``/``search`` receive as ``vectors``: ``"vectors"`` (float32 embeddings, the
    #: semantic retrievers) or ``"texts"`` (the records' texts, for lexical retrievers such as
    #: ``char-ngram``, which the Linker uses in the ``lexical`` and ``hybrid`` modes).
    inputs: ClassVar[Literal["vectors", "texts"]] = "vectors"
    #: A hint set before ``build`` when the Linker knows it: how many left rows will be searched
    #: (``lt.merge`` and friends know; a reusable ``Linker.fit`` does not: None).  An index may
    #: use it to pick exact search when an approximate index would cost more to build than it saves.
    expected_queries: int | None = None

    def build(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Index ``vectors`` (n, d), whose rows are the right-hand records ``ids`` (int64)."""
        raise NotImplementedError

    def vector_buffer(self, n: int, d: int) -> np.ndarray | None:
        """Optional: a writable (n, d) float32 array that is the index's own storage.  The Linker may write
        the right-hand vectors into it and pass it to :meth:`build`, which then must not copy it: the vector
        matrix is held once instead of twice.  Only asked of a retriever that can :meth:`score_pairs`.
        Default None: the Linker fills an array of its own."""
        return None

    def search(self, vectors: np.ndarray, ids: np.ndarray, k: int) -> pd.DataFrame:
        """Return the ``k`` best right ids for each query row.

        Result columns: ``id_l`` (from ``ids``), ``id_r``, ``retrieval_score`` (higher = closer),
        ``rank`` (1 = best), sorted by ``id_l`` then ``rank``.  ``k`` never exceeds the index size.
        """
        raise NotImplementedError

    def search_range(self, vectors: np.ndarray, ids: np.ndarray, threshold: float) -> pd.DataFrame:
        """Return every right id with score >= ``threshold`` (same columns as :meth:`search`).

        The default doubles k until each query's worst hit is below the threshold.
        """
        from ltengine.retrieval import range_by_doubling

        size = self.size
        return range_by_doubling(self.search, vectors, ids, threshold, size=int(size) if size else None)

    @property
    def size(self) -> int | None:
        """Number of indexed rows, or None if unknown (the default).  Bounds the default
        :meth:`search_range`.  A retriever may override the property or assign ``self.size`` in ``build``."""
        return self.__dict__.get("_size")

    @size.setter
    def size(self, value: int | None) -> None:
        self.__dict__["_size"] = value

    @property
    def index_type(self) -> str:
        """The kind of index built (e.g. ``"flat"``, ``"hnsw"``), counted in the run report
        (``report["index"]``); default: the registry name.  May be assigned in ``build``."""
        return self.__dict__.get("_index_type") or self.name

    @index_type.setter
    def index_type(self, value: str) -> None:
        self.__dict__["_index_type"] = value

    def score_pairs(self, queries: Any, right_ids: np.ndarray) -> np.ndarray:
        """Score ``queries[i]`` (a vector, or a text for ``inputs = "texts"``) against right id
        ``right_ids[i]`` (one float per pair, the score ``search`` would give).

        The hybrid mode scores every candidate pair with both components: a lexical retriever must
        implement this; a vector retriever that does spares the Linker a copy of the right-hand
        vectors (without it they are kept in memory after ``fit``).
        """
        raise NotImplementedError(f"retriever {self.name!r} cannot score given pairs")

    @property
    def can_score_pairs(self) -> bool:
        """Whether this retriever implements :meth:`score_pairs`."""
        return type(self).score_pairs is not Retriever.score_pairs

    def pair_features(self, texts: Any, right_ids: np.ndarray) -> dict[str, np.ndarray]:
        """Features of given pairs for the hybrid fusers: at least ``score_lexical``; a lexical
        retriever may add string similarities (``char-ngram`` does).  Default:
        ``{"score_lexical": score_pairs(texts, right_ids)}``."""
        return {"score_lexical": self.score_pairs(texts, right_ids)}

    # -- persistence and updates (optional; ``Linker.save``/``load``/``add``/``remove`` need them) --------
    def save(self, folder: Any) -> None:
        """Write the built index into the existing, empty ``folder`` (a :class:`pathlib.Path`) with
        plain formats (``.npy``, ``.json``, FAISS's own files; never pickle)."""
        raise NotImplementedError(f"retriever {self.name!r} cannot be saved")

    def load(self, folder: Any, *, mmap: bool = False) -> None:
        """Read what :meth:`save` wrote into this (unbuilt) retriever, created with the same options;
        ``mmap``: map the index file into memory instead of reading it, where the index allows."""
        raise NotImplementedError(f"retriever {self.name!r} cannot be loaded")

    @property
    def can_save(self) -> bool:
        """Whether this retriever implements :meth:`save` and :meth:`load`."""
        return type(self).save is not Retriever.save and type(self).load is not Retriever.load

    def add(self, vectors: Any, ids: np.ndarray) -> None:
        """Index more right-hand rows (as in :meth:`build`; ``ids`` not yet indexed) without touching the
        rows already indexed: searches then return what a build over all rows would."""
        raise NotImplementedError(f"retriever {self.name!r} cannot add rows to a built index")

    def remove(self, ids: np.ndarray) -> None:
        """Drop the indexed rows ``ids`` (ids not indexed are ignored)."""
        raise NotImplementedError(f"retriever {self.name!r} cannot remove rows from a built index")

    @property
    def can_update(self) -> bool:
        """Whether this retriever implements :meth:`add` and :meth:`remove`."""
        return type(self).add is not Retriever.add and type(self).remove is not Retriever.remove


class RequestPools:
    """Where a reranker's requests to a service run (:meth:`Reranker.use_request_pools`): calling it with a
    concurrency gives the ``concurrent.futures.Executor`` one judging session submits its calls to (the session
    keeps at most that many in flight; ``executor="ray"``: each call a Ray task); :meth:`report` says what ran
    where, for the run report."""

    def __call__(self, concurrency: int) -> Any:
        raise NotImplementedError

    def report(self) -> dict[str, Any]:
        raise NotImplementedError


class Reranker(Component):
    """Re-scores candidate pairs with a stronger (slower) model."""

    kind: ClassVar[Kind] = "reranker"
    default_model: ClassVar[str | None] = None
    #: Whether a chain sends this reranker only the *uncertain* pairs (a band of the previous
    #: score) unless its options say ``cascade``; True for the LLM judge.
    cascade_default: ClassVar[bool] = False
    #: Columns the frame returned by :meth:`score` adds to the output besides ``score`` and
    #: ``is_match`` (e.g. the judge's ``("judge_confidence", "judge_error")``): reserved, so input
    #: tables are checked against them before any work.
    output_columns: ClassVar[tuple[str, ...]] = ()
    #: True for rerankers that call an LLM: they take the CLI's ``--rerank-task``/``--api-base``
    #: and spend the run's budget (``max_cost``, ``max_calls``).
    calls_llm: ClassVar[bool] = False
    #: True when a pair's score depends only on that pair's row (its texts and retrieval score), not on
    #: the other pairs, the run's budget or ``left``/``right``: the pairs can then be split over workers
    #: (``executor="ray"`` scores them on an actor pool).  The cross-encoder sets it.
    scores_pairs_independently: ClassVar[bool] = False

    def __init__(self, model: str | None = None, options: Mapping[str, Any] | None = None, **kw: Any):
        super().__init__(options, **kw)
        self.model = model or self.default_model

    def score(self, pairs: pd.DataFrame, left: pd.DataFrame, right: pd.DataFrame) -> pd.Series | pd.DataFrame:
        """Score candidate ``pairs`` in 0..1 (NaN = no verdict), aligned to ``pairs.index``.

        ``pairs`` has ``id_l``, ``id_r``, ``retrieval_score``, ``rank``, ``text_l`` and ``text_r``;
        ``left``/``right`` are the linked columns indexed by id.  Return a Series, or a DataFrame
        with a ``score`` column plus extra columns that are copied to the output.
        """
        raise NotImplementedError

    def attach(self, run: Any) -> None:
        """Called before :meth:`score` with the run, a :class:`ltengine.engine.rerank.RerankRun`
        (``context``, ``budget``, ``dry_run``, this stage's ``report``, ``cache(namespace)``);
        the default does nothing.  (Typed ``Any``: the SDK sits below the engine.)"""

    def use_request_pools(self, pools: RequestPools) -> None:
        """Send this reranker's requests to its service through ``pools`` instead of threads of this process
        (``executor="ray"`` hands rerankers that ``calls_llm`` a pool of Ray tasks); the default ignores it,
        so such a reranker simply runs its requests here."""


class Fuser(Component):
    """Combines the semantic and lexical scores of candidate pairs into one score (hybrid mode)."""

    kind: ClassVar[Kind] = "fuser"

    def fuse(self, pairs: pd.DataFrame) -> pd.Series:
        """Return one fused score per row of ``pairs`` in [0, 1] (higher = better), aligned to its index.

        ``pairs`` has ``id_l``, ``id_r``, ``score_semantic`` (cosine of the embeddings, -1..1),
        ``score_lexical`` (cosine of the character n-gram vectors, 0..1), and ``rank_semantic`` /
        ``rank_lexical``: each pair's rank (1 = best) by that score among the candidates of its left row,
        ``gap_semantic`` / ``gap_lexical``: the score minus that row's best (<= 0), and ``script_l``:
        the dominant script of the left text ("Latin", "Cyrillic", "Han", ...; "none" without letters).
        """
        raise NotImplementedError

    @classmethod
    def fit(cls, pairs: pd.DataFrame, labels: Any) -> dict[str, Any]:
        """Learn this fuser's options from labelled pairs (``labels``: 1 = match); return them as a dict."""
        raise ComponentError(f"fuser {cls.name!r} has no parameters to fit; fit 'weighted' instead")
